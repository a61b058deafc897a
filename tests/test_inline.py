"""`from grader import check; check("section")` in a real Jupyter kernel shows the verdict."""

from __future__ import annotations

from pathlib import Path

from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent
FAULTY = REPO / "samples" / "01_pytorch_workflow_exercises" / "cleo_no_zero_grad.ipynb"


def test_check_shows_one_section_as_a_small_table_in_a_real_kernel(tmp_path):
    cells = [
        new_code_cell(
            f'from grader import check\ncheck("training_loop", notebook={str(FAULTY)!r})'
        ),
        new_code_cell(f'check("split", notebook={str(FAULTY)!r})'),
    ]
    notebook = new_notebook(cells=cells)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    failing = "".join(o.get("data", {}).get("text/html", "") for o in notebook.cells[0].outputs)
    passing = "".join(o.get("data", {}).get("text/html", "") for o in notebook.cells[1].outputs)
    assert "<table" in failing and "<table" in passing
    assert "`optimizer.zero_grad()` is not called" in failing.replace("&#x27;", "'")
    assert "Call `optimizer.zero_grad()` every epoch" in failing
    assert "optimizer.zero_grad" not in passing
    assert not any(o.output_type == "error" for c in notebook.cells for o in c.outputs)
