"""Stand-ins come from the contract: a student's check fails the sections the instructor's grade
fails, with or without solutions/, and no stand-in's work counts as the student's."""

from __future__ import annotations

import nbformat
import pytest

from grader.assignments import ASSIGNMENTS
from grader.grading import Options, grade
from grader.standins import standins
from tests.submissions.build import build_submission, reference_sources

FLOAT_SPLIT = {
    "name": "float_split_index",
    "changes": [
        {
            "cell": "split",
            "old": "train_split = int(0.8 * len(X))",
            "new": "train_split = 0.8 * len(X)",
        }
    ],
}


def failed(result) -> dict[str, set[str]]:
    return {
        s.id: {c.hint for c in s.checks if not c.passed} for s in result.sections if not s.passed
    }


@pytest.mark.parametrize("assignment", ["01_pytorch_workflow_exercises", "01_pytorch_workflow"])
def test_check_without_solutions_fails_the_sections_grade_fails(assignment, tmp_path):
    notebook = tmp_path / f"{assignment}.ipynb"
    nbformat.write(build_submission(assignment, FLOAT_SPLIT), notebook)
    no_solutions = tmp_path / "no-solutions"
    no_solutions.mkdir()
    student = grade(notebook, Options(solutions=str(no_solutions), hidden=False))
    instructor = grade(notebook)
    assert failed(student) == failed(instructor) == {"split": {"split.float_index"}}
    # The later sections ran on the grader's stand-in: the right split of the student's X.
    split = next(s for s in student.sections if s.id == "split")
    assert "graded as if this cell had made `X_train`" in split.note


@pytest.mark.parametrize("assignment", ["01_pytorch_workflow_exercises", "01_pytorch_workflow"])
def test_no_stand_in_is_the_solutions_code(assignment):
    solution = reference_sources(assignment)
    for section_id, standin in standins(ASSIGNMENTS[assignment]).items():
        if isinstance(standin, str) and section_id in solution:
            assert standin.strip() != solution[section_id].strip()
            assert "BEGIN SOLUTION" not in standin


def test_a_failed_training_cell_is_stood_in_for_without_a_training_run(tmp_path):
    """The training stand-in sets the parameters the grader's replay reaches: no optimizer step
    runs in the student's process for it, and the later sections pass on it."""
    assignment = "01_pytorch_workflow_exercises"
    entry = {
        "name": "training_raises",
        "changes": [
            {
                "cell": "training_loop",
                "old": "for epoch in range(epochs):",
                "new": "raise ValueError('stop')\nfor epoch in range(epochs):",
            }
        ],
    }
    notebook = tmp_path / f"{assignment}.ipynb"
    nbformat.write(build_submission(assignment, entry), notebook)
    result = grade(notebook)
    assert set(failed(result)) == {"training_loop"}
    for section_id in ("predictions", "save_model", "load_model"):
        assert result.section(section_id).passed, section_id
