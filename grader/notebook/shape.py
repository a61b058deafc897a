"""Check a notebook file before the grader reads it: the first thing wrong with it, in one line.

Whatever a file holds, `parse` returns the notebook's JSON or raises Malformed: the grader never
meets a structure it does not expect (a cell's `source` that is null, a `grade_id` that is a
list, nesting deep enough to exhaust Python's stack, a number of 5 000 digits).
"""

from __future__ import annotations

import json
from typing import Any

MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024  # outputs and pictures included; a notebook is ~0.1 MB
MAX_DEPTH = 100  # JSON nesting; Jupyter's own notebooks stay under 20
NBFORMAT_VERSIONS = (3, 4)
CELL_TYPES = ("code", "markdown", "raw")
NBGRADER_FLAGS = ("solution", "grade", "locked", "task")


class Malformed(ValueError):
    """Why the file is not a notebook the grader can read, in one line."""


def parse(data: bytes) -> dict[str, Any]:
    """The notebook's JSON, checked: a dict whose cells (v4) have the fields and types the
    grader reads. Raises Malformed."""
    if not data.strip():
        raise Malformed("the file is empty")
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise Malformed(f"the file is over {MAX_NOTEBOOK_BYTES // 2**20} MB")
    try:
        text = data.decode("utf-8-sig")  # a byte order mark is harmless
    except UnicodeDecodeError as error:
        raise Malformed(f"not UTF-8 text (byte {error.start} cannot be decoded)") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise Malformed(
            f"not a notebook (invalid JSON at line {error.lineno}: {error.msg})"
        ) from None
    except RecursionError:
        raise Malformed(f"not a notebook (JSON nested more than {MAX_DEPTH} deep)") from None
    except ValueError:  # Python reads no integer of more than 4300 digits
        raise Malformed("not a notebook (it holds a number of more than 4300 digits)") from None
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        raise Malformed("not a Jupyter notebook (no cells)")
    if _depth(raw) > MAX_DEPTH:
        raise Malformed(f"not a notebook (JSON nested more than {MAX_DEPTH} deep)")
    problem = _problem(raw)
    if problem:
        raise Malformed(f"not a valid notebook: {problem}")
    return raw


def _depth(value: Any) -> int:
    """How deeply lists and dicts nest in `value` (without recursion: the depth is unknown)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "text"}.get(
        type(value), "a list" if isinstance(value, list) else "an object"
    )


def _problem(raw: dict[str, Any]) -> str | None:
    version = raw.get("nbformat")
    if isinstance(version, bool) or not isinstance(version, int):
        return f"its `nbformat` version is {_type_name(version)}, not a number"
    if version not in NBFORMAT_VERSIONS:
        return f"nbformat version {version} is not one the grader reads (3 or 4)"
    if not isinstance(raw.get("metadata", {}), dict):
        return f"its `metadata` is {_type_name(raw['metadata'])}, not an object"
    if version == 3:
        return None  # nbformat upgrades it; the result is checked again (cells_problem)
    return cells_problem(raw.get("cells"))


def cells_problem(cells: Any) -> str | None:
    """What is wrong with a v4 notebook's `cells`, if anything."""
    if not isinstance(cells, list):
        return f"`cells` is {_type_name(cells)}, not a list"
    for position, cell in enumerate(cells):
        problem = _cell_problem(cell)
        if problem:
            return f"cell {position + 1} of {len(cells)} {problem}"
    return None


def _cell_problem(cell: Any) -> str | None:
    if not isinstance(cell, dict):
        return f"is {_type_name(cell)}, not an object"
    kind = cell.get("cell_type")
    if kind is None:
        return "has no `cell_type`"
    if kind not in CELL_TYPES:
        shown = repr(kind) if isinstance(kind, str) else _type_name(kind)
        return f"has `cell_type` {shown[:40]}, not code, markdown or raw"
    source = cell.get("source", "")
    if isinstance(source, list):
        if not all(isinstance(line, str) for line in source):
            return "has a `source` list with something other than text in it"
        source = "".join(source)
    elif not isinstance(source, str):
        return f"has `source` {_type_name(source)}, where text is expected"
    if _has_lone_surrogate(source):
        return "has a `source` with a character that is not valid Unicode (a lone surrogate)"
    for field, kind_wanted in (("metadata", dict), ("outputs", list), ("attachments", dict)):
        value = cell.get(field, kind_wanted())
        if not isinstance(value, kind_wanted):
            wanted = "an object" if kind_wanted is dict else "a list"
            return f"has `{field}` {_type_name(value)}, not {wanted}"
    if not all(isinstance(output, dict) for output in cell.get("outputs", [])):
        return "has an output that is not an object"
    return _nbgrader_problem(cell.get("metadata", {}).get("nbgrader"))


def _nbgrader_problem(nbgrader: Any) -> str | None:
    if nbgrader is None:
        return None
    if not isinstance(nbgrader, dict):
        return f"has nbgrader metadata that is {_type_name(nbgrader)}, not an object"
    grade_id = nbgrader.get("grade_id")
    if grade_id is not None and not isinstance(grade_id, str):
        return f"has an nbgrader `grade_id` that is {_type_name(grade_id)}, not text"
    if isinstance(grade_id, str) and _has_lone_surrogate(grade_id):
        return "has an nbgrader `grade_id` that is not valid Unicode"
    for flag in NBGRADER_FLAGS:
        value = nbgrader.get(flag)
        if value is not None and not isinstance(value, bool):
            return f"has nbgrader `{flag}` set to {_type_name(value)}, not true or false"
    return None


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
