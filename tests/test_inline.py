"""`from grader import check; check("section")` in a real Jupyter kernel shows the verdict."""

from __future__ import annotations

from pathlib import Path

from nbclient import NotebookClient
from nbformat import read
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent
FAULTY = REPO / "samples" / "01_pytorch_workflow_exercises" / "cleo_no_zero_grad.ipynb"
CORRECT = REPO / "samples" / "01_pytorch_workflow_exercises" / "ada_correct.ipynb"


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _run_in_a_kernel(notebook, folder: Path):
    """The notebook's cells run in a real Jupyter kernel started in `folder`."""
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return notebook


def test_check_shows_one_section_as_a_small_table_in_a_real_kernel(tmp_path):
    cells = [
        new_code_cell(
            f'from grader import check\ncheck("training_loop", notebook={str(FAULTY)!r})'
        ),
        new_code_cell(f'check("split", notebook={str(FAULTY)!r})'),
    ]
    notebook = _run_in_a_kernel(new_notebook(cells=cells), tmp_path)
    failing = "".join(o.get("data", {}).get("text/html", "") for o in notebook.cells[0].outputs)
    passing = "".join(o.get("data", {}).get("text/html", "") for o in notebook.cells[1].outputs)
    assert "<table" in failing and "<table" in passing
    assert "`optimizer.zero_grad()` is not called" in failing.replace("&#x27;", "'")
    assert "Call `optimizer.zero_grad()` every epoch" in failing
    assert "optimizer.zero_grad" not in passing
    assert not any(o.output_type == "error" for c in notebook.cells for o in c.outputs)


def test_a_check_after_an_unsaved_edit_warns_that_the_saved_file_is_graded(tmp_path):
    saved = tmp_path / "01_pytorch_workflow_exercises.ipynb"
    saved.write_bytes(CORRECT.read_bytes())
    split = next(c for c in read(CORRECT, as_version=4).cells if _grade_id(c) == "split")
    edited = split.source.replace("int(0.8 * len(X))", "int(0.7 * len(X))")
    check = f'from grader import check\ncheck("split", notebook={str(saved)!r})'
    data = "import torch\nX = torch.arange(0, 1, 0.01).unsqueeze(dim=1)\ny = 0.3 * X + 0.9"
    cells = [new_code_cell(data), new_code_cell(edited), new_code_cell(check)]
    cells.append(new_code_cell(split.source))
    cells.append(new_code_cell(check))
    notebook = _run_in_a_kernel(new_notebook(cells=cells), tmp_path)
    stale = "".join(o.get("text", "") for o in notebook.cells[2].outputs)
    fresh = "".join(o.get("text", "") for o in notebook.cells[4].outputs)
    assert (
        "Warning: the `split` cell in the saved notebook is not the one this kernel last ran"
        in stale
    )
    assert "Warning" not in fresh  # the cell run last is the saved one again


def test_importing_the_kit_in_a_kernel_starts_the_grader_in_the_background(tmp_path):
    """So that a student's first check() is a warm grade: the worker (torch imported once) and
    the checks' collection start at the import, not at the first check."""
    probe = (
        "import grader.sandbox.execution, grader.checking.pytest_session\n"
        "pool = grader.sandbox.execution._POOL\n"
        "print('worker', pool is not None and pool.worker._process is not None)\n"
        "print('checks', bool(grader.checking.pytest_session._SESSIONS))"
    )
    cells = [new_code_cell("from grader import check"), new_code_cell(probe)]
    notebook = _run_in_a_kernel(new_notebook(cells=cells), tmp_path)
    shown = "".join(o.get("text", "") for o in notebook.cells[1].outputs)
    assert "worker True" in shown and "checks True" in shown
    assert not any(o.get("name") == "stderr" for c in notebook.cells for o in c.outputs)
