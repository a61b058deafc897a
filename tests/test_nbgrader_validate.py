"""`nbgrader validate` with the course's config: one execution of the notebook where the kit's
test cells are all it grades (the kit's sandbox run), nbgrader's kernel where anything else
needs it (an instructor's own assert cell, `--validate-all`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from tests.test_nbgrader import (
    NOTEBOOK,
    REPO_ROOT,
    SAMPLES,
    nbgrader_validate,
)

# A cell of the student's that leaves a mark when nbgrader's kernel runs it (never in the kit's
# sandbox, where it runs too).
MARKS_THE_KERNEL = """\
import os
if os.environ.get("PTGRADE_SANDBOX") != "1":
    open({mark!r}, "w").close()
"""
INSTRUCTORS_ASSERT = 'assert 1 + 1 == 3, "the instructor\'s own check"'


def _validate(tmp_path: Path, extra_cells: list, *options: str) -> tuple[str, bool]:
    """nbgrader validate on ada_correct with `extra_cells` after its first cell: its output,
    and whether nbgrader's kernel ran the notebook."""
    shutil.copy(REPO_ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(
        REPO_ROOT / "solutions",
        tmp_path / "solutions",
        ignore=shutil.ignore_patterns("models", "__pycache__", ".ipynb_checkpoints"),
    )
    mark = tmp_path / "the-kernel-ran"
    nb = nbformat.read(SAMPLES / "ada_correct.ipynb", as_version=4)
    cells = [nbformat.v4.new_code_cell(MARKS_THE_KERNEL.format(mark=str(mark)))] + extra_cells
    nb.cells[1:1] = cells
    folder = tmp_path / "ada"
    folder.mkdir()
    nbformat.write(nb, folder / NOTEBOOK)
    result = nbgrader_validate(folder / NOTEBOOK, tmp_path, *options)
    return result.stdout, mark.exists()


@pytest.mark.slow
def test_validate_runs_the_notebook_once_when_the_kit_grades_every_cell(tmp_path):
    shown, kernel_ran = _validate(tmp_path, [])
    assert "Success! Your notebook passes all the tests." in shown, shown
    assert not kernel_ran  # the kit's sandbox run was the only one


@pytest.mark.slow
def test_validate_keeps_the_kernel_for_an_instructors_own_assert(tmp_path):
    """A grade cell the kit does not grade gets its verdict from nbgrader's kernel, as before:
    without that run it would have no error, and pass."""
    cell = nbformat.v4.new_code_cell(INSTRUCTORS_ASSERT)
    cell.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": "instructors_assert",
        "points": 1,
        "solution": False,
        "locked": False,
        "schema_version": 3,
    }
    shown, kernel_ran = _validate(tmp_path, [cell])
    assert kernel_ran
    assert "the instructor's own check" in shown, shown
    assert shown.count("The following cell failed:") == 1, shown  # the kit's sections pass


@pytest.mark.slow
def test_validate_all_keeps_the_kernel(tmp_path):
    """`--validate-all` reports any cell's error, which only nbgrader's kernel run shows."""
    failing = nbformat.v4.new_code_cell('raise ValueError("a student cell fails")')
    shown, kernel_ran = _validate(tmp_path, [failing], "--Validator.validate_all=True")
    assert kernel_ran
    assert "a student cell fails" in shown, shown
