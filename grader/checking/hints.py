"""The catalogue of known mistakes: a stable id and a kind next step for each (`ptgrade hints`),
the errors that point to them, read from hints.toml; the one place a hint is chosen for an
error a cell raised."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from grader.packs import all_packs, pack_for

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


CATALOGUE = Path(__file__).with_name("core_hints.toml")  # package data (pyproject.toml)


@dataclass(frozen=True)
class Catalogue:
    """One hints.toml as data: the core's, a pack's, or the two merged."""

    names: dict[str, str]  # what each placeholder stands for where no assignment is given
    hints: dict[str, Hint]
    errors: tuple[ErrorPattern, ...]
    plain_errors: tuple[PlainError, ...]
    section_hints: dict[tuple[str, str], str]

    def __add__(self, other: Catalogue) -> Catalogue:
        """Both, this one's entries first (its errors are tried first, its hints win)."""
        return Catalogue(
            {**other.names, **self.names},
            {**other.hints, **self.hints},
            self.errors + other.errors,
            self.plain_errors + other.plain_errors,
            {**other.section_hints, **self.section_hints},
        )


@functools.cache
def read_catalogue(path: Path) -> Catalogue:
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    names = dict(data.get("names", {}))
    return Catalogue(
        names,
        {
            entry["id"]: Hint(entry["id"], entry["text"].format(**names), entry["text"])
            for entry in data.get("hint", [])
        },
        tuple(ErrorPattern(**e) for e in data.get("error", [])),
        tuple(PlainError(**e) for e in data.get("plain_error", [])),
        {(e["hint"], e["section"]): e["becomes"] for e in data.get("section_hint", [])},
    )


def catalogue(assignment=None) -> Catalogue:
    """The hints for `assignment` (an Assignment or its id): its pack's catalogue over the
    core's; with none given, every pack's, in the registry's order."""
    if assignment is None:
        chosen = all_packs()
    else:
        try:
            chosen = (pack_for(assignment),)
        except KeyError:  # an assignment no pack knows: the core's hints alone
            chosen = ()
    return _merged(tuple(pack.hints for pack in chosen if pack.hints is not None))


@functools.cache
def _merged(paths: tuple[Path, ...]) -> Catalogue:
    merged = read_catalogue(CATALOGUE)
    for path in reversed(paths):
        merged = read_catalogue(path) + merged
    return merged


class _AllHints(Mapping):
    """Every hint of every pack by id, looked up in the registry as it is now."""

    def __getitem__(self, hint_id: str) -> Hint:
        return catalogue().hints[hint_id]

    def __iter__(self):
        return iter(catalogue().hints)

    def __len__(self) -> int:
        return len(catalogue().hints)


_BUILT = catalogue()
# The names a hint's placeholders stand for where no assignment is given.
DEFAULT_NAMES: dict[str, str] = _BUILT.names
HINTS: Mapping[str, Hint] = _AllHints()
ERROR_PATTERNS: tuple[ErrorPattern, ...] = _BUILT.errors
# torch's own words for some errors, which a beginner cannot act on: what the student reads.
PLAIN_ERRORS: tuple[PlainError, ...] = _BUILT.plain_errors
SECTION_HINTS: dict[tuple[str, str], str] = _BUILT.section_hints


def assignment_names(assignment) -> dict[str, str]:
    """What each placeholder of a hint's text stands for in `assignment`'s notebook."""
    return assignment.hint_names()


def hint_text(hint_id: str | None, assignment=None) -> str:
    """A hint's text; for `assignment`, in its own names (`model_0` in the walkthrough where
    the exercises have `model_1`)."""
    if hint_id is None:
        return ""
    hint = catalogue(assignment).hints[hint_id]
    if assignment is None:
        return hint.text
    return hint.template.format(**{**catalogue(assignment).names, **assignment_names(assignment)})


def section_hint(hint_id: str, section_id: str, assignment=None) -> str:
    """The hint for an error raised in `section_id` that `hint_for_error` gave `hint_id`: the
    same error can mean a different fix in each section."""
    return catalogue(assignment).section_hints.get((hint_id, section_id), hint_id)


def and_list(items: list[str]) -> str:
    """Items as a sentence lists them: "`a`", "`a` and `b`", "`a`, `b` and `c`"."""
    return " and ".join(filter(None, [", ".join(items[:-1]), *items[-1:]]))


def plain_error(ename: str, evalue: str, assignment=None) -> str:
    """An error's message as the student reads it: torch's own where it is short and says what
    to change, else the words of hints.toml's [[plain_error]]; on one line (a state_dict's
    missing keys come on lines of their own)."""
    for entry in catalogue(assignment).plain_errors:
        found = re.search(entry.pattern, evalue, re.S) if ename == entry.type else None
        if found:
            return entry.words.format(*found.groups())
    return " ".join(evalue.split())


def hint_for_error(ename: str, evalue: str, assignment=None) -> str:
    """The most specific hint for an exception a cell raised (in `assignment`'s notebook)."""
    for entry in catalogue(assignment).errors:
        if ename == entry.type and re.search(entry.pattern, evalue):
            return entry.hint
    return "cell.raised"
