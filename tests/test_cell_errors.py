"""Where a cell's error is reported: the line of the cell itself, and a function of another cell
it went through (the model's `forward`), as the runner records them in the sandbox."""

from __future__ import annotations

import pytest

from grader.sandbox.child.runner import _run_cell, new_shell


@pytest.fixture(scope="module")
def shell():
    return new_shell()


def test_an_error_in_a_function_of_another_cell_names_both_lines(shell):
    shell.run_cell("def forward(x):\n    return x * X_missing\n", store_history=False)
    outcome = _run_cell(shell, "a = 1\nb = 2\nc = forward(3)\n", timeout=10)
    error = outcome["error"]
    assert error["ename"] == "NameError"
    # Line 3 of this cell, not line 2 of the cell that defined forward.
    assert (error["line_number"], error["line"]) == (3, "c = forward(3)")
    assert error["inner"] == {"function": "forward", "line": "return x * X_missing"}
    assert error["in_cell"] is False


def test_an_error_in_a_function_of_the_same_cell_names_its_own_line(shell):
    source = "def train():\n    return 1 / 0\n\nx = 1\ntrain()\n"
    error = _run_cell(shell, source, timeout=10)["error"]
    assert (error["line_number"], error["line"], error["inner"]) == (2, "return 1 / 0", None)
    assert error["in_cell"] is True


def test_only_the_stubs_own_not_implemented_error_reads_as_unfilled(shell):
    stub = _run_cell(shell, "# YOUR CODE HERE\nraise NotImplementedError()\n", timeout=10)
    assert stub["error"]["in_cell"] is True
    shell.run_cell(
        "import torch\nclass M(torch.nn.Module):\n    def foward(self, x):\n        return x\n",
        store_history=False,
    )
    torch_raised = _run_cell(shell, "M()(torch.ones(1))\n", timeout=10)["error"]
    assert torch_raised["ename"] == "NotImplementedError"
    assert torch_raised["in_cell"] is False


def test_a_misspelled_name_gets_pythons_suggestion_but_never_ipythons_own(shell):
    shell.run_cell("X_train = 1\n", store_history=False)
    error = _run_cell(shell, "X_Train + 1\n", timeout=10)["error"]
    assert error["evalue"] == "name 'X_Train' is not defined. Did you mean: 'X_train'?"
    error = _run_cell(shell, "Ou + 1\n", timeout=10)["error"]  # `Out` is IPython's
    assert error["evalue"] == "name 'Ou' is not defined"


def test_a_missing_name_of_a_cell_that_never_ran_is_a_mistake_not_a_crash():
    from grader.packs.workflow01.assignments import EXERCISES
    from grader.record.submission import Mistake, Record

    record = Record(EXERCISES, {"cells": [], "snapshots": {}}, "finished")  # the cell deleted
    with pytest.raises(Mistake, match="`model_1` is not defined after the `model` cell."):
        record.module("model_1", "model")


def test_a_name_made_inside_a_function_below_is_not_made_below():
    from grader.notebook.cell_source import names_made

    # helper's X is its own; the loop's and the import's names are the cell's.
    source = "y = weight * X\ndef helper():\n    X = 1\nfor i in range(2):\n    j = i\n"
    source += "import numpy as np\nX = 2\n"
    assert names_made(source) == {"y": 1, "helper": 2, "i": 4, "j": 5, "np": 6, "X": 7}
    assert names_made("%matplotlib inline\nz = 1") == {"z": 2}  # line magics read too
