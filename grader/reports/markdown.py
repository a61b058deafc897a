"""Markdown for a GitHub Actions step summary: the score, a section table, what to fix.

Everything from the grade is escaped (grader/safe_text.py): a student's error message may hold
HTML, links, images or backticks, and the page is rendered with HTML allowed.
"""

from __future__ import annotations

from grader.reports.text import about_the_run, points, status_line
from grader.result import GradeResult
from grader.safe_text import markdown_text, markdown_with_code


def render(result: GradeResult) -> str:
    score = points(result.score) if result.graded else "not graded"
    lines = [
        f"## {markdown_text(result.assignment)}: {score} / {points(result.max_score)}",
        "",
        *([f"⚠️ {markdown_with_code(status_line(result))}", ""] if status_line(result) else []),
        *[f"{markdown_text(line)}  " for line in about_the_run(result)],
        "",
        "| Section | Points | Result |",
        "| --- | ---: | :---: |",
    ]
    for section in result.sections:
        mark = "✅" if section.passed else "❌"
        score = f"{points(section.score)}/{points(section.max_score)}"
        lines.append(f"| {markdown_text(section.title)} | {score} | {mark} |")
    for section in result.sections:
        if section.passed:
            continue
        lines += ["", f"### ❌ {markdown_text(section.title)}", ""]
        for check in section.failures():
            lines.append(f"- {markdown_with_code(check.message or f'Check {check.id} failed.')}")
            if check.hint_text:
                lines.append(f"  - Hint: {markdown_with_code(check.hint_text)}")
        if section.note:
            lines.append(f"- Note: {markdown_with_code(section.note)}")
    if result.errors:
        lines += ["", "### Warnings", ""]
        lines += [f"- {markdown_with_code(error)}" for error in result.errors]
    return "\n".join(lines) + "\n"
