"""What a pack's checks import: the one public namespace for check authors (docs/packs.md).

A check is a plain pytest function marked with `@check(section, name, weight)`; it takes the
fixtures `record` (the submission as recorded) and `assignment` (its contract), and raises a
`Mistake` (or calls `expect`) with a message for the student and a hint id of the catalogue.
"""

from __future__ import annotations

from grader.checking.plugin import check
from grader.contract import Assignment, Section
from grader.notebook.cell_source import appends_to, assigned_lines, names_made, parse
from grader.record.submission import Mistake, ModuleValue, Record, expect, same_values, what_it_is

__all__ = [
    "Assignment",
    "Mistake",
    "ModuleValue",
    "Record",
    "Section",
    "appends_to",
    "assigned_lines",
    "check",
    "expect",
    "names_made",
    "parse",
    "same_values",
    "what_it_is",
]
