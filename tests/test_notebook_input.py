"""Awkward but gradable notebooks: older format, extra cells, reordered or deleted cells."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest

from grader.grading import grade
from grader.notebook.reading import UnusableNotebook, load_submission
from grader.packs.workflow01.assignments import ASSIGNMENTS

REPO = Path(__file__).resolve().parent.parent
CORRECT = REPO / "samples" / "01_pytorch_workflow_exercises" / "ada_correct.ipynb"


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


@pytest.fixture
def notebook():
    return nbformat.read(CORRECT, as_version=4)


def test_an_nbformat_3_notebook_is_upgraded_and_graded(tmp_path, notebook):
    path = tmp_path / "01_pytorch_workflow_exercises.ipynb"
    nbformat.write(nbformat.convert(notebook, 3), path, version=3)
    assert nbformat.read(path, as_version=nbformat.NO_CONVERT).nbformat == 3
    result = grade(path)
    assert result.score == result.max_score


def test_extra_cells_do_not_matter(tmp_path, notebook):
    notebook.cells.insert(3, nbformat.v4.new_code_cell("print('my own experiment')\nz = 1 + 1"))
    notebook.cells.append(nbformat.v4.new_markdown_cell("My notes"))
    # A package the student installed in their own session: named by the cell's first line.
    extra = "\n# installed in my own session\nimport ptgrade_no_such_package"
    notebook.cells.insert(4, nbformat.v4.new_code_cell(extra))
    path = tmp_path / "mine.ipynb"
    nbformat.write(notebook, path)
    result = grade(path)
    assert result.score == result.max_score
    assert result.errors == [
        "An ungraded cell (`# installed in my own session`) raised ModuleNotFoundError: No module "
        "named 'ptgrade_no_such_package' (the grader has only the packages it was installed "
        "with)"
    ]


def test_graded_cells_in_another_order_are_still_found(tmp_path, notebook):
    cells = notebook.cells
    split = next(i for i, c in enumerate(cells) if _grade_id(c) == "split")
    model = next(i for i, c in enumerate(cells) if _grade_id(c) == "model")
    cells.insert(model + 1, cells.pop(split))  # the split now runs after the model cell
    path = tmp_path / "reordered.ipynb"
    nbformat.write(notebook, path)
    result = grade(path)
    assert result.section("split").passed and result.section("model").passed
    # The locked plot cell that needs the split now runs too early: reported, not fatal.
    assert any("given cell" in error for error in result.errors)


def test_a_deleted_graded_cell_fails_only_its_section(tmp_path, notebook):
    notebook.cells = [c for c in notebook.cells if _grade_id(c) != "loss_optimizer"]
    path = tmp_path / "deleted.ipynb"
    nbformat.write(notebook, path)
    result = grade(path)
    failed = {s.id for s in result.sections if not s.passed}
    assert failed == {"loss_optimizer"}
    assert result.section("loss_optimizer").checks[0].hint == "cell.missing"
    assert any("missing" in error for error in result.errors)


def test_a_graded_cell_turned_markdown_is_named_as_such(tmp_path, notebook):
    index = next(i for i, c in enumerate(notebook.cells) if _grade_id(c) == "training_loop")
    code = notebook.cells[index]
    markdown = nbformat.v4.new_markdown_cell(code.source)
    markdown.metadata = code.metadata  # what Jupyter keeps when the cell type is switched
    notebook.cells[index] = markdown
    path = tmp_path / "markdown.ipynb"
    nbformat.write(notebook, path)
    result = grade(path)
    failed = {s.id for s in result.sections if not s.passed}
    assert failed == {"training_loop"}  # the reference trains the model for the later cells
    check = result.section("training_loop").checks[0]
    assert check.hint == "cell.not_code" and "is a Markdown cell" in check.message
    assert any("markdown cell: it never ran" in error for error in result.errors)


def test_graded_cells_that_lost_their_tags_are_found_by_their_instructions(tmp_path, notebook):
    for cell in notebook.cells:  # an editor that drops cell metadata, under Colab's copy name
        cell.metadata.pop("nbgrader", None)
    path = tmp_path / "Copy of 01_pytorch_workflow_exercises.ipynb"
    nbformat.write(notebook, path)
    result = grade(path)
    assert result.assignment == "01_pytorch_workflow_exercises"
    assert result.score == result.max_score
    assert any("had lost their nbgrader tags" in error for error in result.errors)


def _retyped(notebook, section_id: str, keep_instructions: bool = True):
    """The graded cell deleted and typed again: a new code cell, without nbgrader's tag."""
    index = next(i for i, c in enumerate(notebook.cells) if _grade_id(c) == section_id)
    source = notebook.cells[index].source
    if not keep_instructions:
        source = "\n".join(line for line in source.splitlines() if not line.startswith("#"))
    notebook.cells[index] = nbformat.v4.new_code_cell(source)
    return notebook


def test_a_graded_cell_typed_again_is_found_only_with_its_instructions(tmp_path, notebook):
    path = tmp_path / "retyped.ipynb"
    nbformat.write(_retyped(copy.deepcopy(notebook), "split"), path)
    submission = load_submission(path)
    assert "split" in submission.stub_ids
    assert submission.notes == [
        "graded cell 'split' had lost its nbgrader tag: found it by its instructions"
    ]
    nbformat.write(_retyped(notebook, "split", keep_instructions=False), path)
    submission = load_submission(path)
    assert "split" not in submission.stub_ids  # no way to tell it from the student's own cells
    assert submission.notes == ["graded cell 'split' is missing from the notebook"]


def test_of_two_untagged_copies_of_a_graded_cell_the_last_is_graded(tmp_path, notebook):
    _retyped(notebook, "model")
    index = next(i for i, c in enumerate(notebook.cells) if "# Define `class" in c.source)
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(notebook.cells[index].source))
    path = tmp_path / "Untitled.ipynb"  # the assignment is told by the instructions too
    nbformat.write(notebook, path)
    submission = load_submission(path)
    model = next(c for c in submission.cells if c.grade_id == "model")
    assert model.index == index + 1
    assert "2 cells hold the instructions of 'model': graded the last" in submission.notes


def test_a_stub_raise_left_after_the_code_is_dropped_with_a_warning(tmp_path, notebook):
    index = next(i for i, c in enumerate(notebook.cells) if _grade_id(c) == "device")
    notebook.cells[index].source += "\n# YOUR CODE HERE\nraise NotImplementedError()  # done?\n"
    data = next(c for c in notebook.cells if _grade_id(c) == "data")
    data.source += "\nif False:\n    raise NotImplementedError()"  # the student's own: kept
    path = tmp_path / "01_pytorch_workflow_exercises.ipynb"
    nbformat.write(notebook, path)
    submission = load_submission(path)
    device = next(c for c in submission.cells if c.grade_id == "device")
    assert "raise NotImplementedError" not in device.source
    assert device.source.splitlines()[-1] == "# YOUR CODE HERE"  # the lines above stay put
    data = next(c for c in submission.cells if c.grade_id == "data")
    assert data.source.endswith("    raise NotImplementedError()")
    assert submission.notes == [
        "graded cell 'device' still ends with the stub's `raise NotImplementedError()` (line 5), "
        "which stops it with an error in Jupyter: graded without that line; delete it"
    ]


def _stub(grade_id: str) -> str:
    released = REPO / "exercises" / CORRECT.parent.name / f"{CORRECT.parent.name}.ipynb"
    cells = nbformat.read(released, as_version=4).cells
    return next(c.source for c in cells if _grade_id(c) == grade_id)


def _code_moved_below(notebook, grade_id: str, parts: list[str] | None = None):
    """The graded cell left as released, its code in new cells right below it."""
    index = next(i for i, c in enumerate(notebook.cells) if _grade_id(c) == grade_id)
    code = notebook.cells[index].source
    notebook.cells[index].source = _stub(grade_id)
    below = [nbformat.v4.new_code_cell(part) for part in (parts or [code])]
    notebook.cells[index + 1 : index + 1] = below
    return notebook


def test_code_written_below_an_untouched_graded_cell_is_graded(tmp_path, notebook):
    path = tmp_path / "01_pytorch_workflow_exercises.ipynb"
    nbformat.write(_code_moved_below(copy.deepcopy(notebook), "split"), path)
    result = grade(path)
    assert result.score == result.max_score  # as nbgrader's tests after those cells would see
    assert any("with your code for it in the cell below" in error for error in result.errors)


def test_only_code_that_makes_the_sections_names_is_taken_for_its_answer(tmp_path, notebook):
    model = next(c for c in notebook.cells if _grade_id(c) == "model").source
    cut = model.index("# Instantiate")
    two = [model[:cut], model[cut:]]  # the class, then the instance
    path = tmp_path / "01_pytorch_workflow_exercises.ipynb"
    nbformat.write(_code_moved_below(copy.deepcopy(notebook), "model", two), path)
    submission = load_submission(path)
    graded = next(c for c in submission.cells if c.grade_id == "model")
    assert graded.source == two[1]  # the last of the two cells: model_1 exists after it
    assert "in the 2 cells below" in submission.notes[0]
    nbformat.write(_code_moved_below(notebook, "split", ["print(X.shape)"]), path)
    submission = load_submission(path)
    split = next(c for c in submission.cells if c.grade_id == "split")
    assert "raise NotImplementedError()" in split.source  # a scratch cell: still unfilled
    assert submission.notes == []


@pytest.mark.parametrize("assignment", sorted(ASSIGNMENTS))
def test_each_sections_marker_begins_its_instructions(assignment):
    """The markers that find an untagged graded cell are the instructions' first line, in the
    released notebook and in the instructor's."""
    for folder in ("exercises", "solutions"):
        path = REPO / folder / assignment / f"{assignment}.ipynb"
        stubs = {
            _grade_id(c): c.source
            for c in nbformat.read(path, as_version=4).cells
            if c.get("metadata", {}).get("nbgrader", {}).get("solution")
        }
        for section in ASSIGNMENTS[assignment].sections:
            assert stubs[section.id].startswith(section.marker), (folder, section.id)


def test_unknown_assignment_name_is_a_clear_error(notebook, tmp_path):
    path = tmp_path / "x.ipynb"
    nbformat.write(copy.deepcopy(notebook), path)
    with pytest.raises(UnusableNotebook, match="unknown assignment 'nope'"):
        load_submission(path, "nope")


def test_reading_notebooks_does_not_load_the_iri_format_parser():
    # jsonschema (under nbformat) would build rfc3987_syntax's parser at import: 0.75 s of every
    # ptgrade process. A notebook still reads and validates without it.
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from grader.notebook.reading import load_submission\n"
        "import nbformat\n"
        f"submission = load_submission({str(CORRECT)!r})\n"
        "nbformat.validate(nbformat.read(submission.path, as_version=4))\n"
        "print(len(submission.cells) > 0, sys.modules.get('rfc3987_syntax') is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
