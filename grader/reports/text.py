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
    """What the notebook's code ran under (grader/sandbox/isolation.py), in words; "" if not known."""
    found = result.execution.get("confinement")
    return str(found.get("description", "")) if isinstance(found, dict) else ""


def hidden_checks(result: GradeResult) -> str:
    """Whether the instructor's hidden checks ran, in words; "" if the result does not say."""
    ran = result.execution.get("hidden_checks")
    if ran is True:
        return "Hidden checks: ran."
    if ran is False:
        return "Hidden checks: not run here (the instructor's grade runs them too)."
    return ""


def simulated_gpu(result: GradeResult) -> str:
    """A line where the notebook was graded on the simulated GPU of a grader without one."""
    if result.execution.get("device") != "simulated cuda":
        return ""
    return (
        "Device: graded as if on a GPU (this machine has none, so a simulated one stood in): "
        "device mistakes fail here as they would on a real GPU."
    )


def about_the_run(result: GradeResult) -> list[str]:
    """The lines every report ends with: confinement, hidden checks, simulated GPU."""
    found = confinement(result)
    lines = [f"Ran under: {found}"] if found else []
    return lines + [line for line in (hidden_checks(result), simulated_gpu(result)) if line]


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
    for line in about_the_run(result):
        lines += _wrap(line, "", "           ")
    for error in result.errors:
        prefix = f"{_YELLOW}warning:{_RESET} " if color else "warning: "
        wrapped = _wrap(error, "warning: ", "         ")
        lines += [prefix + wrapped[0].removeprefix("warning: ")] + wrapped[1:]
    return "\n".join(lines) + "\n"
