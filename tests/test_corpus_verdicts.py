"""Every submission in tests/submissions/ gets exactly the per-section verdict it expects.

Faulty submissions must fail the named section with the named hint, and no other hint unless the
entry says `exact = false` (and nothing else may fail);
valid variants must get full marks. This is the kit's accuracy on its corpus (see README).
"""

from __future__ import annotations

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
    # A section whose work is missing or forged keeps none of its points.
    for section in entry.get("no_points", []):
        assert result.section(section).score == 0, (
            f"{entry['name']}: {section} kept {result.section(section).score} points"
        )
    if not expected:
        assert result.score == result.max_score
