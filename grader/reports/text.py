"""The terminal report for students: one row per section, then what to fix and the total."""

from __future__ import annotations

import textwrap

from grader.result import GradeResult, SectionResult
from grader.safe_text import printable

WIDTH = 100
_GREEN, _RED, _YELLOW, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[0m"


def points(value: float) -> str:
    """2.0 -> "2", 1.5 -> "1.5": whole points without a trailing .0."""
    return f"{value:g}"


def _wrap(text: str, first: str, rest: str) -> list[str]:
    """`text` wrapped to the report's width, its control characters escaped: a student's error
    message could otherwise move the cursor, clear the screen or rewrite the score line."""
    lines = []
    for paragraph in printable(text).splitlines() or [""]:
        lines += textwrap.wrap(
            paragraph,
            width=WIDTH,
            initial_indent=first if not lines else rest,
            subsequent_indent=rest,
            break_long_words=True,
            break_on_hyphens=False,
        ) or [first.rstrip() if not lines else ""]
    return lines


def confinement(result: GradeResult) -> str:
    """What the notebook's code ran under (grader/isolation.py), in words; "" if not known."""
    found = result.execution.get("confinement")
    return str(found.get("description", "")) if isinstance(found, dict) else ""


def status_line(result: GradeResult) -> str:
    """One sentence on how the grading went, for every report; "" for a normal grade."""
    detail = str(result.execution.get("detail", "") or "").rstrip(".")
    if result.status == "graded":
        return ""
    if result.status in ("timeout", "crashed"):
        what = "ran past its time limit" if result.status == "timeout" else "crashed"
        return (
            f"The notebook {what}{f' ({detail})' if detail else ''}: it was scored on the "
            "cells that ran."
        )
    if result.status == "unusable":
        return f"Not graded: this file cannot be graded ({detail})."
    if result.status == "refused":
        return f"Not graded: the grading machine refused to run it ({detail})."
    return (
        f"Not graded: the grader failed, and no mistake in the notebook is the cause ({detail}). "
        "This is not a score; the instructor needs to grade it again."
    )


def _verdict(section: SectionResult, color: bool) -> str:
    word = "PASS" if section.passed else "FAIL"
    if not color:
        return word
    return f"{_GREEN if section.passed else _RED}{word}{_RESET}"


def _section_lines(section: SectionResult, title_width: int, color: bool) -> list[str]:
    score = f"{points(section.score)}/{points(section.max_score)}"
    row = (
        f"{section.title:<{title_width}}  {section.id:<16}  {score:>9}  {_verdict(section, color)}"
    )
    lines = [row]
    if section.passed:
        return lines
    for check in section.failures():
        lines += _wrap(check.message or f"Check {check.id} failed.", "  - ", "    ")
        if check.hint_text:
            lines += _wrap(check.hint_text, "    hint: ", "          ")
    if section.note:
        lines += _wrap(section.note, "    note: ", "          ")
    return lines


def render(result: GradeResult, color: bool = False) -> str:
    title_width = min(max([len(s.title) for s in result.sections] + [7]), 40)
    header = f"{'Section':<{title_width}}  {'id':<16}  {'Points':>9}  Result"
    heading = printable(f"{result.assignment}: {result.notebook}", newlines=False)
    lines = [heading, "", header, "-" * len(header)]
    for section in result.sections:
        lines += _section_lines(section, title_width, color)
    score = points(result.score) if result.graded else "none"
    lines += ["-" * len(header), f"Score: {score} / {points(result.max_score)}"]
    if status_line(result):
        lines += _wrap(status_line(result), "", "")
    if confinement(result):
        lines += _wrap(confinement(result), "Ran under: ", "           ")
    for error in result.errors:
        prefix = f"{_YELLOW}warning:{_RESET} " if color else "warning: "
        wrapped = _wrap(error, "warning: ", "         ")
        lines += [prefix + wrapped[0].removeprefix("warning: ")] + wrapped[1:]
    return "\n".join(lines) + "\n"
