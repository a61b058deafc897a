"""A pack made only for tests/test_tiny_pack.py: one notebook, two sections, nothing of chapter 01.

`make_numbers` defines `numbers = torch.arange(5)`; `total` defines `total = numbers.sum()`.
If the core assumed chapter 01's names anywhere, grading this pack would show it.
"""

from __future__ import annotations

from pathlib import Path

from grader.packs import Assignment, Pack, Section

HERE = Path(__file__).resolve().parent

NUMBERS = Assignment(
    id="tiny_numbers",
    title="Tiny: numbers and their total",
    sections=(
        Section("make_numbers", "Make the numbers", ("numbers",), "# Define `numbers`"),
        Section("total", "Add them up", ("total",), "# Define `total`"),
    ),
    default_points={"make_numbers": 1, "total": 2},
)


def standins(assignment: Assignment) -> dict[str, str]:
    """A failed `make_numbers` cell: the grader's own `numbers`, so `total` is judged alone."""
    return {"make_numbers": "numbers = torch.arange(5)"}


PACK = Pack(
    id="tiny",
    assignments=(NUMBERS,),
    checks_dir=HERE / "checks",
    hints=HERE / "hints.toml",
    standins=standins,
)
