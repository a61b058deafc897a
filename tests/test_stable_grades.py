"""The same notebook gets the same grade on every run, and what the kit's own cells raise or
report names the student's cause.

A loop past the trace's budget used to be graded by the machine's speed: a loop that ran close
to the cell limit got 0/6 where it timed out (loaded machine) and 3.82/6 where it ended. It is
now judged on the start the trace kept, whether or not it ended in time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from grader.grading import grade
from tests.submissions.build import build_submission, load_corpus

WALKTHROUGH = "01_pytorch_workflow"
EXERCISES = "01_pytorch_workflow_exercises"

# Past the trace's budget (trace.MAX_EVENTS: about 2 860 of this loop's epochs), then a wait:
# the cell ends within a 60 s limit and is stopped by a 12 s one, after its trace was cut in
# both (the budget is reached in about 3 s on a loaded 2-core machine).
LONG_LOOP = {
    "name": "long_loop",
    "changes": [
        {"cell": "training_loop", "old": "\nepochs = 100", "new": "\nepochs = 3000"},
        {
            "cell": "training_loop",
            "old": "\nfor epoch in range(epochs):",
            "new": "\nimport time\nfor epoch in range(epochs):",
        },
        {
            "cell": "training_loop",
            "old": "\n    ### Training\n",
            "new": "\n    if epoch == epochs - 1:\n        time.sleep(20)\n    ### Training\n",
        },
    ],
}


def _write(tmp_path, assignment: str, entry: dict):
    notebook = tmp_path / f"{assignment}.ipynb"
    nbformat.write(build_submission(assignment, entry), notebook)
    return notebook


def _grade_in_a_process(notebook, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "grader.cli", "grade", str(notebook), "--format", "json"]
        + list(options),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _sections(result: dict) -> list:
    return [
        (
            s["id"],
            s["score"],
            s["note"],
            [(c["id"], c["passed"], c["points"], c["message"], c["hint"]) for c in s["checks"]],
        )
        for s in result["sections"]
    ]


def test_a_long_loop_gets_the_same_grade_whether_or_not_it_ends_in_time(tmp_path):
    notebook = _write(tmp_path, WALKTHROUGH, LONG_LOOP)
    # Three grades at once: each loads the machine for the others.
    runs = {
        limit: _grade_in_a_process(notebook, "--cell-timeout", str(limit)) for limit in (12, 60, 61)
    }
    results = {}
    for limit, run in runs.items():
        out, _ = run.communicate(timeout=400)
        results[limit] = json.loads(out)
    stopped, ended = results[12], results[60]
    # Both paths really ran: one cell stopped by its limit, one that waited its 20 s out.
    assert stopped["execution"]["timings"]["cells"] < 20 <= ended["execution"]["timings"]["cells"]
    assert _sections(stopped) == _sections(ended) == _sections(results[61])
    assert stopped["score"] == ended["score"]
    loop = next(s for s in ended["sections"] if s["id"] == "training_loop")
    failed = [c for c in loop["checks"] if not c["passed"]]
    assert [c["hint"] for c in failed] == ["training.epochs"]
    assert "Your loop made at least" in failed[0]["message"]


def test_a_kit_cell_that_fails_names_the_students_line():
    entry = next(
        e for e in load_corpus(WALKTHROUGH) if e["name"] == "training_raw_loss_tensors_blamed"
    )
    with tempfile.TemporaryDirectory() as folder:
        result = grade(_write(Path(folder), WALKTHROUGH, entry))
    error = next(e for e in result.errors if "plot_loss_curves" in e)
    assert "your `training_loop` cell" in error
    assert "`train_loss_values.append(loss)`" in error
    assert "`loss.detach().numpy()` or `loss.item()`" in error


def test_device_cpu_runs_on_the_cpu_and_says_so(tmp_path):
    notebook = _write(tmp_path, EXERCISES, {"name": "reference", "changes": []})
    run = subprocess.run(
        [sys.executable, "-m", "grader.cli", "grade", str(notebook), "--format", "json"]
        + ["--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = json.loads(run.stdout)
    assert result["execution"]["device"] == "cpu"
    assert result["score"] == result["max_score"]
