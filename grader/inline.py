"""Checks called from a notebook: `check(section)` for students, `assert_section` in test cells.

Both grade the *saved* notebook file apart, exactly as `ptgrade` does (the same sandbox and
checks), and remember the result until the file changes. Inside the grader's own sandbox they do
nothing, so a notebook being graded never starts grading itself.
"""

from __future__ import annotations

import inspect
import os
from functools import lru_cache
from pathlib import Path

from grader.assignments import ASSIGNMENTS

# Set by the grader's sandbox: a notebook being graded must not start grading itself.
SANDBOX_ENV = "PTGRADE_SANDBOX"


def _inside_sandbox() -> bool:
    return os.environ.get(SANDBOX_ENV) == "1"


def find_notebook(explicit: str | os.PathLike | None = None) -> Path:
    """The notebook this code runs in: given, $PTGRADE_NOTEBOOK, Jupyter's session, or the
    one assignment notebook in the working folder."""
    candidates = [explicit, os.environ.get("PTGRADE_NOTEBOOK")]
    for frame in inspect.stack()[1:6]:
        candidates.append(frame.frame.f_globals.get("__session__"))
    candidates.append(os.environ.get("JPY_SESSION_NAME"))
    for candidate in candidates:
        if candidate and str(candidate).endswith(".ipynb") and Path(candidate).is_file():
            return Path(candidate)
    here = [Path(f"{a}.ipynb") for a in ASSIGNMENTS if Path(f"{a}.ipynb").is_file()]
    if len(here) == 1:
        return here[0]
    raise FileNotFoundError(
        "ptgrade could not tell which notebook to check: save it, then call "
        'check("section", notebook="path/to/notebook.ipynb")'
    )


@lru_cache(maxsize=8)
def _graded(path: str, mtime_ns: int, size: int, hidden: bool):
    from grader.grading import Options, grade

    return grade(path, Options(hidden=hidden))


def section_result(section: str, hidden: bool = False, notebook=None):
    path = find_notebook(notebook)
    stat = path.stat()
    result = _graded(str(path.resolve()), stat.st_mtime_ns, stat.st_size, hidden)
    try:
        return result.section(section)
    except StopIteration:
        known = ", ".join(s.id for s in result.sections)
        raise KeyError(f"no section {section!r} in this assignment (sections: {known})") from None


def failure_text(section) -> str:
    lines = [f"Section {section.id!r}: {section.score:g} of {section.max_score:g} points."]
    for check in section.failures():
        lines.append(f"- {check.message}")
        if check.hint_text:
            lines.append(f"  Hint: {check.hint_text}")
    if section.note:
        lines.append(section.note)
    return "\n".join(lines)


def check(section: str, notebook: str | os.PathLike | None = None) -> None:
    """Grade the saved notebook apart and show one section's verdict (save the notebook first)."""
    if _inside_sandbox():
        return
    result = section_result(section, hidden=False, notebook=notebook)
    try:
        from IPython.display import HTML, display

        from grader.reports.html import section_table_html

        display(HTML(section_table_html(result)))
    except ImportError:
        print(failure_text(result) if not result.passed else f"Section {section!r}: passed.")


def assert_section(
    section: str, hidden: bool = False, notebook: str | os.PathLike | None = None
) -> None:
    """Raise AssertionError with the student-facing message when a section fails."""
    if _inside_sandbox():
        return
    result = section_result(section, hidden=hidden, notebook=notebook)
    if not result.passed:
        raise AssertionError(failure_text(result))
