"""The catalogue of known mistakes: a stable id and a kind next step for each (`ptgrade hints`),
the errors that point to them, read from hints.toml; the one place a hint is chosen for an
error a cell raised."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import resources

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


def _load() -> dict:
    with resources.files("grader").joinpath("hints.toml").open("rb") as handle:
        return tomllib.load(handle)


_DATA = _load()
# The names a hint's placeholders stand for where no assignment is given: the exercises'.
DEFAULT_NAMES: dict[str, str] = dict(_DATA["names"])
HINTS: dict[str, Hint] = {
    entry["id"]: Hint(entry["id"], entry["text"].format(**DEFAULT_NAMES), entry["text"])
    for entry in _DATA["hint"]
}
ERROR_PATTERNS: tuple[ErrorPattern, ...] = tuple(ErrorPattern(**e) for e in _DATA["error"])
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


# torch's own words for some errors, which a beginner cannot act on (a list of twenty device
# types, advice to allowlist classes in `torch.load`): (type, pattern, the words shown
# instead, with the match's groups). The record keeps torch's message, which the hints match.
_PLAIN_ERRORS: tuple[tuple[str, str, str], ...] = (
    (
        "RuntimeError",
        r"device type at start of device string: (.*)$",
        '"{0}" is not a device PyTorch knows: write "cuda" for the GPU, or "cpu"',
    ),
    (
        "RuntimeError",
        r"^Invalid device string: '(.*)'$",
        '"{0}" is not a device PyTorch can read: write "cuda" (or "cuda:0") for the GPU, or "cpu"',
    ),
    (
        "RuntimeError",
        r"^Device string must not be empty",
        'The device is the empty string "": write "cuda" for the GPU, or "cpu"',
    ),
    (
        "UnpicklingError",
        r"^Weights only load failed.*Unsupported global: GLOBAL ([\w.]+)",
        "`torch.load` refused the file: it holds `{0}`, and `torch.load` reads only tensors "
        "(its default, `weights_only=True`)",
    ),
    (
        "UnpicklingError",
        r"^Weights only load failed.*Unsupported operand",
        "`torch.load` could not read the file with its default, `weights_only=True`: the file "
        "was not written the way `torch.save` writes by default",
    ),
    (
        "UnpicklingError",
        r"^Weights only load failed",
        "`torch.load` refused the file: it holds more than tensors, and `torch.load` reads "
        "only tensors (its default, `weights_only=True`)",
    ),
    (
        "RuntimeError",
        r"^Trying to backward through the graph a second time",
        "Trying to backward through the graph a second time: an earlier `backward()` already "
        "went back through (and freed) the graph this loss comes from",
    ),
)


def plain_error(ename: str, evalue: str) -> str:
    """An error's message as the student reads it: torch's own where it is short and says what
    to change, else the words of _PLAIN_ERRORS; on one line (a state_dict's missing keys come
    on lines of their own)."""
    for error_type, pattern, words in _PLAIN_ERRORS:
        found = re.search(pattern, evalue, re.S) if ename == error_type else None
        if found:
            return words.format(*found.groups())
    return " ".join(evalue.split())


def hint_for_error(ename: str, evalue: str) -> str:
    """The most specific hint for an exception a cell raised."""
    for entry in ERROR_PATTERNS:
        if ename == entry.type and re.search(entry.pattern, evalue):
            return entry.hint
    return "cell.raised"
