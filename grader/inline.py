"""Checks called from inside a notebook: `check(section)` for students, `assert_section` for test cells."""

from __future__ import annotations

import os

# Set by the grader's sandbox: a notebook being graded must not start grading itself.
SANDBOX_ENV = "PTGRADE_SANDBOX"


def _inside_sandbox() -> bool:
    return os.environ.get(SANDBOX_ENV) == "1"


def check(section: str, notebook: str | None = None) -> None:
    """Grade the saved notebook apart and show one section's verdict."""
    if _inside_sandbox():
        return
    # Filled in by the grader core.


def assert_section(section: str, hidden: bool = False, notebook: str | None = None) -> None:
    """Raise AssertionError with the student-facing message when a section fails."""
    if _inside_sandbox():
        return
    # Filled in by the grader core.
