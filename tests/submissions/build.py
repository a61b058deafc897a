"""Builds a submission: the released notebook, its stubs filled with reference code, plus changes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import nbformat

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pyproject allows it, tomllib is 3.11+
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = Path(__file__).resolve().parent
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")

Entry = dict[str, Any]


class StaleChange(ValueError):
    """A corpus change no longer matches the notebook it is applied to."""


def released_path(assignment_id: str, root: Path = ROOT) -> Path:
    return root / "exercises" / assignment_id / f"{assignment_id}.ipynb"


def solution_path(assignment_id: str, root: Path = ROOT) -> Path:
    return root / "solutions" / assignment_id / f"{assignment_id}.ipynb"


def load_corpus(assignment_id: str) -> list[Entry]:
    with open(CORPUS_DIR / f"{assignment_id}.toml", "rb") as f:
        return tomllib.load(f)["submission"]


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _is_stub(cell: nbformat.NotebookNode) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def reference_code(solution_source: str) -> str:
    """A solution cell's source without its BEGIN/END SOLUTION lines (instruction comments kept)."""
    lines = solution_source.splitlines()
    return "\n".join(line for line in lines if line.strip() not in SOLUTION_MARKERS)


def reference_sources(assignment_id: str, root: Path = ROOT) -> dict[str, str]:
    """grade_id -> the reference code a correct student would type into that stub cell."""
    solutions = nbformat.read(solution_path(assignment_id, root), as_version=4)
    return {_grade_id(c): reference_code(c.source) for c in solutions.cells if _is_stub(c)}


def _apply(sources: dict[str, str], released: dict[str, str], change: dict[str, Any]) -> None:
    if "delete" in change:
        cell = change["delete"]
        if cell not in sources or cell not in released:  # a given cell stays
            raise StaleChange(f"delete: no stub cell {cell!r}")
        del sources[cell]
        return
    cell = change["cell"]
    if cell not in sources:
        raise StaleChange(f"no stub cell {cell!r}")
    if change.get("unfilled") and cell in released:
        sources[cell] = released[cell]
    elif "source" in change:
        sources[cell] = change["source"].rstrip("\n")
    elif "old" in change:
        count = sources[cell].count(change["old"])
        if count != 1:
            raise StaleChange(
                f"cell {cell!r}: `old` must occur exactly once, found {count} times:\n{change['old']}"
            )
        sources[cell] = sources[cell].replace(change["old"], change["new"])
    else:
        raise ValueError(f"unknown change: {change!r}")


def build_submission(assignment_id: str, entry: Entry, root: Path = ROOT) -> nbformat.NotebookNode:
    """The released notebook with every stub filled with reference code, then `entry`'s changes."""
    notebook = nbformat.read(released_path(assignment_id, root), as_version=4)
    released = {_grade_id(c): c.source for c in notebook.cells if _is_stub(c)}
    sources = reference_sources(assignment_id, root)
    missing = released.keys() - sources.keys()
    if missing:
        raise StaleChange(f"released stub cells without a solution: {sorted(missing)}")
    # A given cell (the walkthrough's `data`) is changed by its grade_id as a stub is: a
    # student can edit one where nothing locks it.
    given = {_grade_id(c): c.source for c in notebook.cells if _grade_id(c) and not _is_stub(c)}
    sources = {**given, **sources}
    for change in entry.get("changes", []):
        try:
            _apply(sources, released, change)
        except StaleChange as error:
            raise StaleChange(f"submission {entry.get('name')!r}: {error}") from None

    cells = []
    for cell in notebook.cells:
        grade_id = _grade_id(cell)
        if _is_stub(cell) or grade_id in given:
            if grade_id not in sources:
                continue  # deleted by the student
            cell = copy.deepcopy(cell)
            cell.source = sources[grade_id]
        cells.append(cell)
    notebook.cells = cells
    return notebook
