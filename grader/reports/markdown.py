"""Markdown for a GitHub Actions step summary: the score, a section table, what to fix."""

from __future__ import annotations

from grader.reports.text import points
from grader.result import GradeResult


def cell(text: str) -> str:
    """Text that stays inside one table cell: no pipe splits it, no newline ends the row."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def _line(text: str) -> str:
    return " ".join(text.split())


def render(result: GradeResult) -> str:
    lines = [
        f"## {cell(result.assignment)}: {points(result.score)} / {points(result.max_score)}",
        "",
        "| Section | Points | Result |",
        "| --- | ---: | :---: |",
    ]
    for section in result.sections:
        mark = "✅" if section.passed else "❌"
        score = f"{points(section.score)}/{points(section.max_score)}"
        lines.append(f"| {cell(section.title)} | {score} | {mark} |")
    for section in result.sections:
        if section.passed:
            continue
        lines += ["", f"### ❌ {_line(section.title)}", ""]
        for check in section.failures():
            lines.append(f"- {_line(check.message or f'Check {check.id} failed.')}")
            if check.hint_text:
                lines.append(f"  - Hint: {_line(check.hint_text)}")
        if section.note:
            lines.append(f"- Note: {_line(section.note)}")
    if result.errors:
        lines += ["", "### Warnings", ""]
        lines += [f"- {_line(error)}" for error in result.errors]
    return "\n".join(lines) + "\n"
