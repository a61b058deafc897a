"""On a machine with an NVIDIA GPU the student's code runs on CUDA for real (skipped without one).

Run them, and a graded batch on the GPU, with `bash benchmarks/cuda_check.sh`.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch

from grader.grading import grade
from tests.submissions.build import build_submission, load_corpus

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU with CUDA"),
]

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_pytorch_workflow_exercises"
DEVICE_ENTRIES = [
    e["name"]
    for e in load_corpus(ASSIGNMENT)
    if e["name"].startswith(("device_", "valid_", "state_"))
]


def failures(result) -> dict[str, list[str]]:
    """What each failed section said (a cell's CUDA error included), for the assertion."""
    return {s.id: [c.message for c in s.failures()] for s in result.sections if not s.passed}


def test_the_correct_sample_gets_full_marks_on_cuda():
    result = grade(REPO / "samples" / ASSIGNMENT / "ada_correct.ipynb")
    # On the GPU itself, not on the simulated GPU (a sandbox that hid the GPU would get here).
    assert result.execution["device"] == "cuda", result.execution
    assert result.score == result.max_score, (result.errors, failures(result))


@pytest.mark.parametrize("name", DEVICE_ENTRIES)
def test_device_entries_get_the_same_verdict_on_real_cuda(name, tmp_path):
    """The simulated GPU of a CPU-only grader and a real GPU must agree."""
    entry = next(e for e in load_corpus(ASSIGNMENT) if e["name"] == name)
    notebook = tmp_path / f"{ASSIGNMENT}.ipynb"
    nbformat.write(build_submission(ASSIGNMENT, entry), notebook)
    result = grade(notebook)
    assert result.execution["device"] == "cuda", result.execution
    failed = {
        s.id: {c.hint for c in s.checks if not c.passed} for s in result.sections if not s.passed
    }
    expected = entry.get("expect", {})
    assert set(failed) == set(expected), (failed, failures(result))
    for section, hint in expected.items():
        assert hint in failed[section]
