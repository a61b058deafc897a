"""Gradescope's autograder results.json: one test per section, scored by the grader."""

from __future__ import annotations

import json

from grader.reports.text import hidden_checks, points, simulated_gpu, status_line
from grader.result import GradeResult, SectionResult


def section_output(section: SectionResult) -> str:
    """What a student reads under a section on Gradescope: each distinct failure and its hint."""
    lines = []
    for check in section.failures():
        lines.append(f"- {check.message or f'Check {check.id} failed.'}")
        if check.hint_text:
            lines.append(f"  Hint: {check.hint_text}")
    if section.note:
        lines.append(f"Note: {section.note}")
    return "\n".join(lines) if lines else "All checks passed."


def render(result: GradeResult) -> str:
    failed = [s.title for s in result.sections if not s.passed]
    summary = [f"Score: {points(result.score)} / {points(result.max_score)}"]
    if status_line(result):
        summary.append(status_line(result))
    if failed:
        summary.append("Sections to revisit: " + ", ".join(failed) + ".")
    summary += [line for line in (hidden_checks(result), simulated_gpu(result)) if line]
    summary += [f"Warning: {error}" for error in result.errors]
    report = {
        "score": result.score,
        "output": "\n".join(summary),
        "output_format": "text",
        "tests": [
            {
                "name": section.title,
                "number": section.id,
                "score": section.score,
                "max_score": section.max_score,
                "output": section_output(section),
                "output_format": "text",  # never HTML or Markdown: it quotes the student
                "visibility": "visible",
            }
            for section in result.sections
        ],
        "stdout_visibility": "visible",
        # Gradescope has no "not graded": a grader error's 0 is marked here and in the output,
        # so that the instructor can find and regrade it.
        "extra_data": {"status": result.status},
    }
    return json.dumps(report, indent=2)
