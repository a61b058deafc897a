"""A pack made only for this test (tests/packs/tiny_pack) grades through the core as chapter 01
does: the proof that the core reaches a chapter only through grader.packs (docs/packs.md)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import packs
from grader.checking.hints import hint_text
from grader.grading import Options, grade

REPO = Path(__file__).resolve().parent.parent
PACKS = REPO / "tests" / "packs"
sys.path.insert(0, str(PACKS))

import tiny_pack  # noqa: E402  (tests/packs, put on the path above)

SOLUTION = PACKS / "tiny_pack" / "solution.ipynb"
RIGHT = {"make_numbers": "numbers = torch.arange(5)", "total": "total = numbers.sum()"}


@pytest.fixture
def tiny():
    packs.register(tiny_pack.PACK)
    yield tiny_pack.PACK
    packs.unregister(tiny_pack.PACK.id)


def notebook(tmp_path: Path, name: str = "tiny_numbers", **changed: str) -> Path:
    """The solution with the cells of `changed` (section id -> code) put in its place."""
    book = nbformat.read(SOLUTION, as_version=4)
    for cell in book.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in changed:
            cell.source = changed[grade_id]
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(book, path)
    return path


def sections(result) -> dict:
    return {s.id: s for s in result.sections}


def test_the_registry_finds_the_pack_and_its_assignment(tiny):
    assert packs.pack_for("tiny_numbers") is tiny
    assert "tiny_numbers" in packs.all_assignments()
    assert "01_pytorch_workflow_exercises" in packs.all_assignments()  # the built-in one too
    assert hint_text("total.wrong", tiny.assignments[0]).startswith("Add the numbers up")


def test_a_right_notebook_gets_full_marks(tiny):
    result = grade(SOLUTION)
    assert result.assignment == "tiny_numbers"
    assert (result.score, result.max_score) == (3, 3)
    assert [s.id for s in result.sections] == ["make_numbers", "total"]
    assert result.errors == []
    assert result.figures == {}  # the pack draws no pictures


def test_a_wrong_total_loses_that_section_only_with_the_packs_hint(tiny, tmp_path):
    result = grade(notebook(tmp_path, total="total = numbers.sum() + 1"))
    found = sections(result)
    assert found["make_numbers"].score == found["make_numbers"].max_score == 1
    assert found["total"].score == 0
    [failure] = found["total"].failures()
    assert failure.hint == "total.wrong"
    assert failure.hint_text == "Add the numbers up with `numbers.sum()`."
    assert "not the sum of `numbers`" in failure.message


def test_a_failed_first_section_gets_the_packs_stand_in(tiny, tmp_path):
    result = grade(notebook(tmp_path, make_numbers="numbers = torch.arange(5) / undefined_name"))
    found = sections(result)
    assert found["make_numbers"].score == 0
    assert found["make_numbers"].failures()[0].hint == "name.undefined"  # the core's catalogue
    assert found["total"].score == 2  # judged on the stand-in's `numbers`
    assert result.score == 2


def test_without_stand_ins_a_later_section_is_judged_as_it_ran(tiny, tmp_path):
    bare = dataclasses.replace(tiny.assignments[0], id="tiny_bare")
    packs.register(dataclasses.replace(tiny, id="tiny_bare", assignments=(bare,), standins=None))
    try:
        path = notebook(tmp_path, make_numbers="numbers = torch.arange(5) / undefined_name")
        result = grade(path, Options(assignment="tiny_bare"))
    finally:
        packs.unregister("tiny_bare")
    found = sections(result)
    assert result.assignment == "tiny_bare"
    assert found["make_numbers"].score == 0
    assert found["total"].score == 0  # `numbers` was never made: its cell raises NameError
    assert "Your cell raised NameError" in found["total"].failures()[0].message


def test_the_released_notebook_scores_nothing_and_says_so(tiny):
    result = grade(PACKS / "tiny_pack" / "tiny_numbers.ipynb")
    assert result.score == 0
    for section in result.sections:
        assert section.failures()[0].message == "This cell has not been filled in yet."


def test_ptgrade_grade_finds_the_pack_named_in_the_environment(tmp_path):
    """No register(): `PTGRADE_PACKS=module:attribute`, the module on the Python path."""
    path = notebook(tmp_path, total="total = numbers.sum() * 2")
    env = {
        **os.environ,
        "PTGRADE_PACKS": "tiny_pack:PACK",
        "PYTHONPATH": os.pathsep.join([str(PACKS), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [sys.executable, "-m", "grader.cli", "grade", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert (report["assignment"], report["score"], report["max_score"]) == ("tiny_numbers", 1, 3)
    [total] = [s for s in report["sections"] if s["id"] == "total"]
    assert total["checks"][0]["hint"] == "total.wrong"


def test_a_packs_check_can_read_a_model_of_its_own(tiny):
    """Record.module() asks nothing of chapter 01's contract (its model's name) of a pack
    that has none."""
    import torch

    from grader.record.builders import RecordBuilder

    record = (
        RecordBuilder("tiny_numbers")
        .cell("make_numbers", "numbers = torch.nn.Linear(1, 1)")
        .values("make_numbers", numbers=torch.nn.Linear(1, 1))
        .build()
    )
    model = record.module("numbers", "make_numbers")
    assert model.class_name == "Linear"
    assert len(model.parameters) == 2
