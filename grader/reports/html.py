"""A self-contained feedback page: score, sections, failures with hints, and two charts."""

from __future__ import annotations

from html import escape

from grader.packs import Pack, all_assignments, pack_for
from grader.reports.text import about_the_run, points, status_line
from grader.result import GradeResult, SectionResult

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 60em; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
.notebook { color: #666; margin-top: 0; }
.total { font-size: 1.3em; font-weight: bold; }
table { border-collapse: collapse; margin: 1em 0; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.points { text-align: right; white-space: nowrap; }
.pass { color: #11703a; font-weight: bold; }
.fail { color: #b3261e; font-weight: bold; }
.hint { color: #444; margin: 0.2em 0 0.6em 0; }
.note { color: #6b4e00; }
.warnings { background: #fff7e0; border: 1px solid #e6c65c; padding: 0.5em 1em; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #ddd; }
.nodata { color: #666; font-style: italic; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""


def _verdict(passed: bool) -> str:
    return '<span class="pass">PASS</span>' if passed else '<span class="fail">FAIL</span>'


def section_table_html(section: SectionResult) -> str:
    """One section's checks as a small table (the in-notebook `check()` shows this)."""
    rows = []
    for check in section.checks:
        rows.append(
            "<tr>"
            f"<td><code>{escape(check.id)}</code></td>"
            f"<td>{_verdict(check.passed)}</td>"
            f"<td>{escape(check.message)}</td>"
            f"<td>{escape(check.hint_text) if not check.passed else ''}</td>"
            "</tr>"
        )
    caption = (
        f"{escape(section.title)} ({escape(section.id)}): "
        f"{points(section.score)}/{points(section.max_score)}"
    )
    note = f'<p class="note">{escape(section.note)}</p>' if section.note else ""
    return (
        f"<table><caption>{caption}</caption>"
        "<tr><th>Check</th><th>Passed</th><th>Message</th><th>Hint</th></tr>"
        + "".join(rows)
        + "</table>"
        + note
    )


def _sections_table(result: GradeResult) -> str:
    rows = [
        "<tr>"
        f"<td>{escape(s.title)}</td><td><code>{escape(s.id)}</code></td>"
        f'<td class="points">{points(s.score)} / {points(s.max_score)}</td>'
        f"<td>{_verdict(s.passed)}</td>"
        "</tr>"
        for s in result.sections
    ]
    return (
        "<table><tr><th>Section</th><th>id</th><th>Points</th><th>Result</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _failures(result: GradeResult) -> str:
    parts = []
    for section in result.sections:
        if section.passed:
            continue
        items = []
        for check in section.failures():
            hint = (
                f'<div class="hint">Hint: {escape(check.hint_text)}</div>'
                if check.hint_text
                else ""
            )
            items.append(f"<li>{escape(check.message or f'Check {check.id} failed.')}{hint}</li>")
        note = f'<p class="note">{escape(section.note)}</p>' if section.note else ""
        parts.append(f"<h3>{escape(section.title)}</h3><ul>{''.join(items)}</ul>{note}")
    if not parts:
        return "<p>Every section passed.</p>" if result.sections else ""
    return "<h2>What to fix</h2>" + "".join(parts)


def _picture(title: str, svg: str | None, missing: str) -> str:
    if svg is None:
        return f'<h3>{escape(title)}</h3><p class="nodata">{escape(missing)}</p>'
    return f"<figure><figcaption><strong>{escape(title)}</strong></figcaption>{svg}</figure>"


def _ran_under(result: GradeResult) -> str:
    return "".join(f'<p class="notebook">{escape(line)}</p>' for line in about_the_run(result))


def _pack(assignment_id: str) -> Pack | None:
    try:
        return pack_for(assignment_id)
    except KeyError:  # a result of an assignment no pack knows: no pictures
        return None


def render(result: GradeResult) -> str:
    assignment = all_assignments().get(result.assignment)
    title = assignment.title if assignment is not None else result.assignment
    warnings = ""
    if result.errors:
        items = "".join(f"<li>{escape(e)}</li>" for e in result.errors)
        warnings = f'<div class="warnings"><strong>Warnings</strong><ul>{items}</ul></div>'
    pack = _pack(result.assignment)
    drawn = pack.pictures(result.figures, assignment) if pack and pack.pictures else []
    pictures = "".join(_picture(*picture) for picture in drawn)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}: feedback</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="notebook">{escape(result.notebook)}</p>
<p class="total">Score: {points(result.score) if result.graded else "none"} / {points(result.max_score)}</p>
{f'<p class="warnings">{escape(status_line(result))}</p>' if status_line(result) else ""}
{_ran_under(result)}
{warnings}
{_sections_table(result)}
{_failures(result)}
{"<h2>Pictures</h2>" if pictures else ""}
{pictures}
</body>
</html>
"""
