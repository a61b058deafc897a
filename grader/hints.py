"""The catalogue of known mistakes: a stable id and a kind next step for each (`ptgrade hints`),
the errors that point to them, read from hints.toml; the one place a hint is chosen for an
error a cell raised."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: pyproject allows it, tomllib is 3.11+
    import tomli as tomllib


@dataclass(frozen=True)
class Hint:
    id: str
    text: str  # in the exercises notebook's names (`ptgrade hints`)
    template: str  # the text with its placeholders, `{model}` (hints.toml)


@dataclass(frozen=True)
class ErrorPattern:
    """An exception a cell raised, recognised by its type and a regex on its message."""

    type: str
    pattern: str
    hint: str
    example: str  # a message the pattern must match (tests/test_hint_catalogue.py)


@dataclass(frozen=True)
class PlainError:
    """Other words for an error whose own a beginner cannot act on; {0} is the match's group."""

    type: str
    pattern: str
    words: str
    example: str  # a message it must match, which reads as `shows` (default: `words`)
    shows: str | None = None


CATALOGUE = Path(__file__).with_name("hints.toml")  # package data (pyproject.toml)


def _load() -> dict:
    with CATALOGUE.open("rb") as handle:
        return tomllib.load(handle)


_DATA = _load()
# The names a hint's placeholders stand for where no assignment is given: the exercises'.
DEFAULT_NAMES: dict[str, str] = dict(_DATA["names"])
HINTS: dict[str, Hint] = {
    entry["id"]: Hint(entry["id"], entry["text"].format(**DEFAULT_NAMES), entry["text"])
    for entry in _DATA["hint"]
}
ERROR_PATTERNS: tuple[ErrorPattern, ...] = tuple(ErrorPattern(**e) for e in _DATA["error"])
# torch's own words for some errors, which a beginner cannot act on: what the student reads.
PLAIN_ERRORS: tuple[PlainError, ...] = tuple(PlainError(**e) for e in _DATA["plain_error"])
SECTION_HINTS: dict[tuple[str, str], str] = {
    (entry["hint"], entry["section"]): entry["becomes"] for entry in _DATA["section_hint"]
}


def assignment_names(assignment) -> dict[str, str]:
    """What each placeholder of a hint's text stands for in `assignment`'s notebook."""
    return {
        "model": assignment.model_name,
        "loaded_model": assignment.loaded_name,
        "weight": assignment.weight_attr,
    }


def hint_text(hint_id: str | None, assignment=None) -> str:
    """A hint's text; for `assignment`, in its own names (`model_0` in the walkthrough where
    the exercises have `model_1`)."""
    if hint_id is None:
        return ""
    if assignment is None:
        return HINTS[hint_id].text
    return HINTS[hint_id].template.format(**assignment_names(assignment))


def section_hint(hint_id: str, section_id: str) -> str:
    """The hint for an error raised in `section_id` that `hint_for_error` gave `hint_id`: the
    same error can mean a different fix in each section."""
    return SECTION_HINTS.get((hint_id, section_id), hint_id)


def and_list(items: list[str]) -> str:
    """Items as a sentence lists them: "`a`", "`a` and `b`", "`a`, `b` and `c`"."""
    return " and ".join(filter(None, [", ".join(items[:-1]), *items[-1:]]))


def plain_error(ename: str, evalue: str) -> str:
    """An error's message as the student reads it: torch's own where it is short and says what
    to change, else the words of hints.toml's [[plain_error]]; on one line (a state_dict's
    missing keys come on lines of their own)."""
    for entry in PLAIN_ERRORS:
        found = re.search(entry.pattern, evalue, re.S) if ename == entry.type else None
        if found:
            return entry.words.format(*found.groups())
    return " ".join(evalue.split())


def hint_for_error(ename: str, evalue: str) -> str:
    """The most specific hint for an exception a cell raised."""
    for entry in ERROR_PATTERNS:
        if ename == entry.type and re.search(entry.pattern, evalue):
            return entry.hint
    return "cell.raised"
