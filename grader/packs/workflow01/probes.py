"""The inputs the grader probes a submission's model with, drawn anew for every snapshot."""

from __future__ import annotations

import random


def probe_inputs() -> list[list[float]]:
    """Inputs the model's forward is probed with: drawn by the grader anew for every snapshot,
    so a `forward` cannot tell the grader's calls from the notebook's by their values. Two
    decimals and |x| <= 2: a line's value is exact to float32's rounding on them."""
    draw = random.SystemRandom()
    values: list[float] = []
    while len(values) < 5:
        value = round(draw.uniform(-2, 2), 2)
        if value not in values:
            values.append(value)
    return [values]
