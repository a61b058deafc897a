"""grader/checking/hints.toml, the catalogue as data: every error pattern matches its own example first,
every placeholder is one each assignment fills, every hint a check names exists, and the
placeholders put each assignment's names exactly where the regex renaming they replaced did."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from grader import cli
from grader.checking.hints import (
    DEFAULT_NAMES,
    ERROR_PATTERNS,
    HINTS,
    PLAIN_ERRORS,
    SECTION_HINTS,
    assignment_names,
    hint_for_error,
    hint_text,
    plain_error,
    section_hint,
)
from grader.packs.workflow01.assignments import ASSIGNMENTS

REPO = Path(__file__).resolve().parent.parent
IDS = re.compile(r"[a-z_]+\.[a-z_0-9]+")


@pytest.mark.parametrize(
    "index", range(len(ERROR_PATTERNS)), ids=lambda i: f"{i}-{ERROR_PATTERNS[i].hint}"
)
def test_each_error_example_is_matched_first_by_its_own_pattern(index):
    entry = ERROR_PATTERNS[index]
    first = next(
        i
        for i, other in enumerate(ERROR_PATTERNS)
        if other.type == entry.type and re.search(other.pattern, entry.example)
    )
    assert first == index, f"entry {first} ({ERROR_PATTERNS[first].pattern!r}) takes it first"
    assert hint_for_error(entry.type, entry.example) == entry.hint


@pytest.mark.parametrize("index", range(len(PLAIN_ERRORS)))
def test_each_plain_error_example_reads_as_it_says(index):
    entry = PLAIN_ERRORS[index]
    first = next(
        i
        for i, other in enumerate(PLAIN_ERRORS)
        if other.type == entry.type and re.search(other.pattern, entry.example, re.S)
    )
    assert first == index, f"entry {first} ({PLAIN_ERRORS[first].pattern!r}) takes it first"
    assert plain_error(entry.type, entry.example) == (entry.shows or entry.words)
    assert "{" not in plain_error(entry.type, entry.example)


def test_an_error_no_pattern_knows_gets_the_general_hint():
    assert hint_for_error("ZeroDivisionError", "division by zero") == "cell.raised"
    assert hint_for_error("TypeError", "a message no pattern knows") == "cell.raised"


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def test_every_placeholder_is_one_each_assignment_fills():
    for assignment in ASSIGNMENTS.values():
        assert set(assignment_names(assignment)) == set(DEFAULT_NAMES), assignment.id
    for hint in HINTS.values():
        assert _placeholders(hint.template) <= set(DEFAULT_NAMES), hint.id
        for assignment in ASSIGNMENTS.values():
            hint_text(hint.id, assignment)  # formats: no stray brace, no unknown name


def test_placeholders_are_used():
    """A placeholder no text uses is a name rewritten nowhere: the catalogue lost it."""
    used = set().union(*(_placeholders(hint.template) for hint in HINTS.values()))
    assert used == set(DEFAULT_NAMES)


def test_every_hint_the_catalogue_points_to_exists():
    pointed = {entry.hint for entry in ERROR_PATTERNS}
    pointed |= {hint for hint, _ in SECTION_HINTS} | set(SECTION_HINTS.values())
    assert pointed - set(HINTS) == set()


def _hint_arguments(tree: ast.AST):
    """The hint argument of every `Mistake(message, hint)` and `expect(ok, message, hint)`."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", None))
        position = {"Mistake": 1, "expect": 2}.get(name)
        if position is None:
            continue
        if len(node.args) > position:
            yield node.args[position]
        yield from (keyword.value for keyword in node.keywords if keyword.arg == "hint")


def test_every_hint_a_check_reports_is_catalogued():
    sources = [*(REPO / "grader").rglob("*.py"), *(REPO / "solutions" / "checks").rglob("*.py")]
    named = set()
    for path in sources:
        for argument in _hint_arguments(ast.parse(path.read_text(encoding="utf-8"))):
            for node in ast.walk(argument):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    named |= {node.value} if IDS.fullmatch(node.value) else set()
    assert len(named) > 50  # the scan finds the checks' hints
    assert named - set(HINTS) == set()


def _renamed_the_old_way(text: str, assignment) -> str:
    """hint_text's regex renaming before the catalogue had placeholders (int, 3b9892c): the
    catalogue quoted the exercises' names, rewritten where they stand alone."""
    names = {
        "model_1": assignment.model_name,
        "loaded_model": assignment.loaded_name,
        "self.weight": f"self.{assignment.weight_attr}",
    }
    for ours, theirs in names.items():
        text = re.sub(rf"(?<![\w.]){re.escape(ours)}\b", theirs, text)
    return text


@pytest.mark.parametrize("assignment_id", sorted(ASSIGNMENTS))
def test_placeholders_give_what_the_regex_renaming_gave(assignment_id):
    assignment = ASSIGNMENTS[assignment_id]
    for hint_id in HINTS:
        expected = _renamed_the_old_way(hint_text(hint_id), assignment)
        assert hint_text(hint_id, assignment) == expected, hint_id
    assert "{" not in hint_text("model.init", assignment)
    assert '`print(f"Epoch: {epoch}' in hint_text("cell.str_concat", assignment)


def test_the_walkthrough_hint_in_its_own_names():
    walkthrough = ASSIGNMENTS["01_pytorch_workflow"]
    assert hint_text("optimizer.other_params", walkthrough) == (
        "Give the optimizer exactly this model's parameters: `params=model_0.parameters()`."
    )
    assert "`loaded_model_0 = LinearRegressionModel()`" in hint_text("load.chained", walkthrough)
    assert "`loaded_model_preds = loaded_model_0(X_test)`" in hint_text(
        "load.preds_not_reloaded", walkthrough
    )


def test_a_section_can_change_an_errors_hint():
    assert section_hint("device.mismatch", "training_loop") == "training.off_device"
    assert section_hint("file.missing", "load_model") == "load.file_missing"
    assert section_hint("file.missing", "save_model") == "file.missing"
    assert section_hint("device.mismatch", "model") == "device.mismatch"


def test_ptgrade_hints_lists_every_hint_in_the_exercises_names(capsys):
    assert cli.cmd_hints(None, None) == cli.EXIT_OK
    shown = capsys.readouterr().out
    for hint in HINTS.values():
        assert f"{hint.id}\n    {hint.text}\n" in shown
    assert "{model}" not in shown and "model_1" in shown
