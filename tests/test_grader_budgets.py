"""What a hostile submission costs the grader itself: its time and memory stay bounded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import load_script
from tests.submissions.hostile import write

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, timeout: float = 120) -> dict:
    """Run `code` in a fresh Python; return the JSON it prints on its last line."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Checks: no work that grows faster than linearly with the student's data
# ---------------------------------------------------------------------------------------------

SPLIT_OF_30_000_ROWS = """
import json, resource, time
import torch
from grader.packs.workflow01.assignments import ASSIGNMENTS
from grader.packs.workflow01.checks import test_split
from grader.record.submission import Record

def tensor(values):
    return {"kind": "tensor", "shape": list(values.shape), "dtype": "float32", "device": "cpu",
            "requires_grad": False, "values": values}

X = torch.arange(0, 1, 1 / 30_000).unsqueeze(1)
y = 0.3 * X + 0.9
n = int(0.8 * len(X))
snapshot = {"X": X, "y": y, "X_train": X[:n], "y_train": y[:n], "X_test": X[n:], "y_test": y[n:]}
record = Record(
    ASSIGNMENTS["01_pytorch_workflow_exercises"],
    {"snapshots": {"split": {name: tensor(v) for name, v in snapshot.items()}}},
    "finished",
)
# 1 GB more address space than now: pairwise distances of these rows would need 5.8 GB.
with open("/proc/self/status") as status:
    vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, vm + 2**30))
started = time.monotonic()
for check in (test_split.test_80_20_sizes, test_split.test_every_row_in_exactly_one_set,
              test_split.test_pairs_stay_aligned):
    check(record)  # a Mistake or a MemoryError would fail here
print(json.dumps({"seconds": time.monotonic() - started}))
"""


def test_the_split_checks_of_30_000_rows_take_little_time_and_memory():
    found = run_python(SPLIT_OF_30_000_ROWS)
    assert found["seconds"] < 5


# ---------------------------------------------------------------------------------------------
# Saved models: opened apart, under a memory limit and a deadline
# ---------------------------------------------------------------------------------------------

MEASURE = load_script(ROOT / "benchmarks" / "grader_memory.py").measure


@pytest.fixture(scope="module")
def baseline_mb() -> float:
    """What the grading process itself holds for a correct notebook: torch, pytest, checks."""
    found = MEASURE(ROOT / "samples" / "01_pytorch_workflow_exercises" / "ada_correct.ipynb")
    return found["peak_mb"]


def test_a_saved_model_that_inflates_to_half_a_gigabyte_costs_the_grader_nothing(
    tmp_path, baseline_mb
):
    found = MEASURE(write("saved_zip_bomb", tmp_path), "--timeout", "60")
    assert found["exit"] == 0, found
    assert found["peak_mb"] < baseline_mb + 100  # on main: 512 MB more
    save = {s["id"]: s for s in found["report"]["sections"]}["save_model"]
    messages = " ".join(c["message"] for c in save["checks"])
    assert "does not load with `weights_only=True` (its contents unzip to over 64 MB)" in messages


def test_a_saved_view_claiming_a_billion_numbers_is_refused(tmp_path):
    import torch

    from grader.sandbox.child.saved_reader import read_one

    path = tmp_path / "model.pth"
    torch.save({"weight": torch.zeros(1, 1).expand(40_000, 25_000)}, path)
    assert read_one(path) == {
        "exists": True,
        "error": "its tensors hold 1000000000 numbers, more than a model's",
    }
    torch.save({"weight": torch.ones(2, 3)}, path)
    assert read_one(path)["state_dict"]["weight"].tolist() == [[1.0] * 3] * 2


# ---------------------------------------------------------------------------------------------
# A grade comes back within --timeout and a fixed grace
# ---------------------------------------------------------------------------------------------


def test_a_split_of_30_000_rows_is_graded_in_time_and_memory(tmp_path, baseline_mb):
    from grader.grading import AFTER_THE_NOTEBOOK

    found = MEASURE(write("split_of_30000_rows", tmp_path), "--timeout", "20")
    assert found["exit"] == 0, found
    assert found["seconds"] < 20 + AFTER_THE_NOTEBOOK
    assert found["peak_mb"] < baseline_mb + 100  # on main: 5.5 GB more
