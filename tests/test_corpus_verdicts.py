"""Every submission in tests/submissions/ gets exactly the per-section verdict it expects.

Faulty submissions must fail the named section with the named hint, and no other hint unless the
entry says `exact = false` (and nothing else may fail);
valid variants must get full marks. This is the kit's accuracy on its corpus (see README).
"""

from __future__ import annotations

import re

import nbformat
import pytest

from grader.grading import grade
from tests.submissions.build import build_submission, load_corpus

ASSIGNMENTS = ("01_pytorch_workflow_exercises", "01_pytorch_workflow")
CASES = [
    pytest.param(assignment, entry, id=f"{assignment}:{entry['name']}")
    for assignment in ASSIGNMENTS
    for entry in load_corpus(assignment)
]


# What a student must never read: a traceback, the grader's own names (`_ptgrade_...`, a
# record's keys), or its mechanism (a replay, probes, stand-ins, snapshots, the trace).
INTERNALS = re.compile(
    r"Traceback \(most recent|File \"|_ptgrade|_standin|grad_enabled|param_ids|params_after|"
    r"optimizer_class|loss_class|\bsnapshot|\breplay|\bprob(e|ed|es|ing)\b|stand-in|"
    r"\btrace\b|\btracer\b|internal error|Expected one of cpu",
    re.IGNORECASE,
)


def student_texts(result) -> list[str]:
    """Every text a report shows the student: the failing checks' messages and hints, the
    sections' notes and the notebook's errors."""
    texts = list(result.errors)
    for section in result.sections:
        texts += [section.note] if section.note else []
        texts += [text for check in section.failures() for text in (check.message, check.hint_text)]
    return texts


def verdicts(result) -> dict[str, set[str]]:
    """Failed sections and the hint ids they report."""
    return {
        section.id: {check.hint for check in section.checks if not check.passed}
        for section in result.sections
        if not section.passed
    }


@pytest.mark.parametrize(("assignment", "entry"), CASES)
def test_submission_gets_its_expected_verdict(assignment, entry, tmp_path):
    notebook = tmp_path / f"{assignment}.ipynb"
    nbformat.write(build_submission(assignment, entry), notebook)
    result = grade(notebook)
    expected = entry.get("expect", {})
    found = verdicts(result)
    assert set(found) == set(expected), (
        f"{entry['name']}: failed sections {sorted(found)} but expected {sorted(expected)}; "
        f"hints {found}"
    )
    for section, hint in expected.items():
        assert hint in found[section], (
            f"{entry['name']}: {section} reported {found[section]}, expected {hint}"
        )
        # That hint and no other, unless the entry says several checks rightly fail.
        assert not entry.get("exact", True) or found[section] == {hint}, (
            f"{entry['name']}: {section} reported {found[section]}, expected only {hint}"
        )
    # Where an entry also names what a section must say (a count, say), its message says it.
    for section, text in entry.get("says", {}).items():
        messages = " ".join(c.message for c in result.section(section).failures())
        assert text in messages, f"{entry['name']}: {section} said {messages!r}"
    # Where an entry names what a section's note says ("" for none), or what the report says
    # of a failing given cell, the report says it.
    for section, text in entry.get("notes", {}).items():
        note = result.section(section).note
        assert (text in note) if text else not note, f"{entry['name']}: {section} noted {note!r}"
    for text in entry.get("errors", []):
        assert any(text in error for error in result.errors), (
            f"{entry['name']}: the report's errors {result.errors!r} lack {text!r}"
        )
    # What a student reads names their code and values, never the grader's own workings.
    for text in student_texts(result):
        found = INTERNALS.search(text)
        assert found is None, f"{entry['name']}: {found.group(0)!r} shown to a student: {text!r}"
    # A section whose work is missing or forged keeps none of its points.
    for section in entry.get("no_points", []):
        assert result.section(section).score == 0, (
            f"{entry['name']}: {section} kept {result.section(section).score} points"
        )
    if not expected:
        assert result.score == result.max_score
