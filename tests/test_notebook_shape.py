"""Malformed notebook files: each kind is refused with exit 2 and one line saying what is wrong."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.notebook.reading import UnusableNotebook, load_submission
from grader.notebook.shape import MAX_NOTEBOOK_BYTES

REPO = Path(__file__).resolve().parent.parent
CORRECT = REPO / "samples" / "01_pytorch_workflow_exercises" / "ada_correct.ipynb"
BASE = json.loads(CORRECT.read_text(encoding="utf-8"))
STUB = next(
    i for i, c in enumerate(BASE["cells"]) if c["metadata"].get("nbgrader", {}).get("solution")
)


def changed(change) -> bytes:
    """The correct sample with one change made to its JSON (to the first graded cell's)."""
    notebook = copy.deepcopy(BASE)
    change(notebook, notebook["cells"][STUB])
    return json.dumps(notebook).encode()


def setter(*path, value):
    def change(notebook, cell):
        target = cell
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def deleter(key):
    return lambda notebook, cell: cell.pop(key)


# (kind, the file's bytes, what the one line says)
MALFORMED = [
    ("empty", b"", "the file is empty"),
    ("whitespace", b"  \n", "the file is empty"),
    ("not_json", b"{not json", "invalid JSON at line 1"),
    ("not_utf8", b'{"cells": ["\xff\xfe"]}', "not UTF-8 text (byte 12"),
    ("json_list", b"[1, 2]", "not a Jupyter notebook (no cells)"),
    ("json_number", b"42", "not a Jupyter notebook (no cells)"),
    ("deep_nesting", b"[" * 100_000 + b"]" * 100_000, "nested more than 100 deep"),
    (
        "deep_metadata",
        changed(setter("metadata", "x", value=json.loads("[" * 150 + "]" * 150))),
        "nested more than 100 deep",
    ),
    ("huge_integer", b'{"cells": [], "nbformat": 1' + b"0" * 5000 + b"}", "more than 4300 digits"),
    ("nbformat_text", changed(lambda nb, c: nb.update(nbformat="4")), "`nbformat` version is text"),
    ("nbformat_99", changed(lambda nb, c: nb.update(nbformat=99)), "nbformat version 99"),
    ("cells_object", changed(lambda nb, c: nb.update(cells={"a": 1})), "`cells` is an object"),
    ("cell_text", changed(lambda nb, c: nb["cells"].append("print(1)")), "is text, not an object"),
    ("no_cell_type", changed(deleter("cell_type")), "has no `cell_type`"),
    ("cell_type_number", changed(setter("cell_type", value=3)), "`cell_type` a number"),
    ("cell_type_unknown", changed(setter("cell_type", value="python")), "`cell_type` 'python'"),
    ("source_null", changed(setter("source", value=None)), "`source` null, where text"),
    ("source_number", changed(setter("source", value=7)), "`source` a number, where text"),
    ("source_list_of_numbers", changed(setter("source", value=[1, 2])), "something other than"),
    ("source_lone_surrogate", changed(setter("source", value="x = '\ud800'")), "lone surrogate"),
    ("metadata_list", changed(setter("metadata", value=[])), "`metadata` a list"),
    ("nbgrader_text", changed(setter("metadata", "nbgrader", value="yes")), "nbgrader metadata"),
    ("nbgrader_list", changed(setter("metadata", "nbgrader", value=[1])), "nbgrader metadata"),
    (
        "grade_id_list",
        changed(setter("metadata", "nbgrader", "grade_id", value=["split"])),
        "`grade_id` that is a list",
    ),
    (
        "grade_id_object",
        changed(setter("metadata", "nbgrader", "grade_id", value={"a": 1})),
        "`grade_id` that is an object",
    ),
    (
        "solution_text",
        changed(setter("metadata", "nbgrader", "solution", value="yes")),
        "`solution` set to text",
    ),
    ("outputs_text", changed(setter("outputs", value="lots")), "`outputs` text, not a list"),
    (
        "v3_cell_without_input",
        json.dumps(
            {
                "nbformat": 3,
                "nbformat_minor": 0,
                "metadata": {},
                "worksheets": [{"cells": [{"cell_type": "code", "input": None, "outputs": []}]}],
            }
        ).encode(),
        "where text is expected",
    ),
]


@pytest.mark.parametrize(("kind", "content", "says"), MALFORMED, ids=[k for k, _, _ in MALFORMED])
def test_a_malformed_notebook_is_unusable_with_a_reason(kind, content, says, tmp_path):
    path = tmp_path / "01_pytorch_workflow_exercises.ipynb"
    path.write_bytes(content)
    with pytest.raises(UnusableNotebook) as raised:
        load_submission(path)
    assert says in str(raised.value)
    assert "\n" not in str(raised.value)


def ptgrade(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def test_every_kind_is_exit_2_with_one_line_and_no_worker(tmp_path):
    for kind, content, says in MALFORMED:
        path = tmp_path / f"{kind}.ipynb"
        path.write_bytes(content)
        started = time.monotonic()
        run = ptgrade("grade", str(path))
        assert run.returncode == 2, (kind, run.stderr[-500:])
        assert len(run.stderr.splitlines()) == 1 and says in run.stderr, (kind, run.stderr)
        # Refused before the sandbox starts (torch's import alone takes seconds).
        assert time.monotonic() - started < 10, kind


def test_a_file_over_the_size_limit_is_not_read(tmp_path):
    path = tmp_path / "huge.ipynb"
    with open(path, "wb") as handle:
        handle.truncate(MAX_NOTEBOOK_BYTES + 1)  # sparse: no disk used
    run = ptgrade("grade", str(path))
    assert run.returncode == 2
    assert run.stderr.strip().endswith("cannot be read (the file is over 64 MB)")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.ipynb"
    os.mkfifo(path)
    run = ptgrade("grade", str(path), timeout=30)  # reading it would wait for a writer forever
    assert run.returncode == 2
    assert "cannot be read (not a regular file)" in run.stderr


def test_a_name_with_control_characters_stays_on_one_line(tmp_path):
    path = tmp_path / "a\nb\x1b[2J.ipynb"
    path.write_bytes(b"")
    run = ptgrade("grade", str(path))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "\x1b" not in run.stderr
    assert "a\\nb\\x1b[2J.ipynb: the file is empty" in run.stderr


def test_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "01_pytorch_workflow_exercises.ipynb"
    path.write_bytes(b"\xef\xbb\xbf" + CORRECT.read_bytes())
    assert load_submission(path).assignment.id == "01_pytorch_workflow_exercises"
