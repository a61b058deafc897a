"""Small inline SVG charts for the feedback pages: points, lines and a histogram, no libraries."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 400
LEFT, TOP, BOTTOM = 60, 15, 350  # the plot area's edges; its right edge depends on the legend
LEGEND = 170  # room kept right of the plot for the legend
LARGEST = 1e100  # larger values would overflow the scale's arithmetic: skipped like NaN


@dataclass(frozen=True)
class Series:
    """One legend entry: a scatter of points, or a line through them in order."""

    label: str
    color: str
    xs: Sequence[float]
    ys: Sequence[float]
    line: bool = False

    def points(self) -> list[tuple[float, float]]:
        return [(x, y) for x, y in zip(self.xs, self.ys) if _drawable(x) and _drawable(y)]


def _drawable(value: object) -> bool:
    try:
        return math.isfinite(value) and abs(value) < LARGEST  # type: ignore[arg-type]
    except (TypeError, OverflowError):  # None, a string, 10**400: a student's list holds anything
        return False


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round numbers (1, 2 or 5 times a power of ten) from at most lo to at least hi."""
    size = max(abs(lo), abs(hi))
    if hi - lo <= size * 1e-9 or size < 1e-90:  # one value, or values too close to tell apart
        pad = size / 10 if size >= 1e-90 else 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [k * step for k in range(first, last + 1)]


def _frame(
    xs: Sequence[float], ys: Sequence[float], x_label: str, y_label: str, right: int, whole_y: bool
) -> tuple[str, Callable[[float], float], Callable[[float], float]]:
    """The box, ticks and axis labels; and the functions from data to picture coordinates."""
    x_ticks, y_ticks = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (right - LEFT)

    def sy(y: float) -> float:
        return BOTTOM - (y - y0) / (y1 - y0) * (BOTTOM - TOP)

    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{right - LEFT}" height="{BOTTOM - TOP}" '
        'fill="none" stroke="#888"/>'
    ]
    for t in x_ticks:
        parts.append(
            f'<line x1="{sx(t):.1f}" y1="{BOTTOM}" x2="{sx(t):.1f}" y2="{BOTTOM + 4}" stroke="#888"/>'
            f'<text x="{sx(t):.1f}" y="{BOTTOM + 17}" text-anchor="middle">{t:g}</text>'
        )
    for t in y_ticks:
        if whole_y and t != round(t):
            continue  # a count of students has no fractions
        parts.append(
            f'<line x1="{LEFT - 4}" y1="{sy(t):.1f}" x2="{LEFT}" y2="{sy(t):.1f}" stroke="#888"/>'
            f'<text x="{LEFT - 7}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>'
        )
    parts.append(
        f'<text x="{(LEFT + right) / 2:.0f}" y="{HEIGHT - 12}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text transform="translate(16 {(TOP + BOTTOM) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    return "".join(parts), sx, sy


def _svg(title: str, body: str) -> str:
    # No xmlns: inside an HTML page the parser puts <svg> in the SVG namespace by itself.
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'font-family="sans-serif" font-size="12"><title>{escape(title)}</title>{body}</svg>'
    )


def chart(series: Sequence[Series], x_label: str, y_label: str, title: str) -> str:
    """Every series on shared axes, the legend right of the plot; non-finite points are skipped."""
    drawn = [(s, s.points()) for s in series]
    xs = [x for _, points in drawn for x, _ in points] or [0.0, 1.0]
    ys = [y for _, points in drawn for _, y in points] or [0.0, 1.0]
    right = WIDTH - LEGEND
    frame, sx, sy = _frame(xs, ys, x_label, y_label, right, whole_y=False)
    parts = [frame]
    for i, (s, points) in enumerate(drawn):
        label, color = escape(s.label), escape(s.color)
        key_y = TOP + 12 + 20 * i
        if s.line:
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
            parts.append(
                f'<polyline aria-label="{label}" points="{coords}" fill="none" '
                f'stroke="{color}" stroke-width="1.5"/>'
                f'<line x1="{right + 12}" y1="{key_y}" x2="{right + 30}" y2="{key_y}" '
                f'stroke="{color}" stroke-width="1.5"/>'
            )
        else:
            dots = "".join(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5"/>' for x, y in points
            )
            parts.append(
                f'<g aria-label="{label}" fill="{color}">{dots}</g>'
                f'<circle cx="{right + 21}" cy="{key_y}" r="3.5" fill="{color}"/>'
            )
        parts.append(f'<text x="{right + 36}" y="{key_y + 4}">{label}</text>')
    return _svg(title, "".join(parts))


def histogram(
    values: Sequence[float], edges: Sequence[float], x_label: str, y_label: str, title: str
) -> str:
    """Bars counting the values between consecutive edges; the last bar includes its right edge."""
    counts = [0] * (len(edges) - 1)
    for value in values:
        if _drawable(value) and edges[0] <= value <= edges[-1]:
            counts[min(bisect.bisect_right(edges, value) - 1, len(counts) - 1)] += 1
    right = WIDTH - 20
    frame, sx, sy = _frame(
        [edges[0], edges[-1]], [0, max(counts) or 1], x_label, y_label, right, whole_y=True
    )
    bars = "".join(
        f'<rect x="{sx(a):.1f}" y="{sy(n):.1f}" width="{sx(b) - sx(a):.1f}" '
        f'height="{sy(0) - sy(n):.1f}"><title>{a:g} to {b:g}: {n}</title></rect>'
        for a, b, n in zip(edges, edges[1:], counts)
        if n
    )
    return _svg(
        title, f'<g aria-label="{escape(title)}" fill="#4c72b0" stroke="white">{bars}</g>' + frame
    )
