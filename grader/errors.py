"""The grader's own failures (its installation, its sandbox, its checks): never a student's.

Raised instead of a grade, so that a kit that cannot run is never read as a student's 0: the
command line prints one line and exits 3, and `nbgrader autograde` stops with the reason
(grader/nbgrader_support.py) instead of recording the notebook's points as 0.
"""

from __future__ import annotations


class GraderError(RuntimeError):
    """The kit could not grade this notebook; nothing in the notebook caused it."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"ptgrade could not grade this notebook, and no mistake in it is the cause: {reason}"
        )
        self.reason = reason
