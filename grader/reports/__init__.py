"""Turn one GradeResult into a report: pick the format by name."""

from __future__ import annotations

from collections.abc import Callable

from grader.reports import classroom50, gradescope, html, json, junit, markdown, text
from grader.result import GradeResult

_RENDERERS: dict[str, Callable[[GradeResult], str]] = {
    "text": text.render,
    "json": json.render,
    "junit": junit.render,
    "gradescope": gradescope.render,
    "markdown": markdown.render,
    "html": html.render,
    "classroom50": classroom50.render,
}

FORMATS: tuple[str, ...] = tuple(_RENDERERS)


def render(result: GradeResult, fmt: str) -> str:
    """The report for `result` in format `fmt` (one of FORMATS)."""
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}"
        ) from None
    return renderer(result)
