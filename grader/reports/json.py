"""The machine-readable report: the GradeResult as JSON, without the picture data."""

from __future__ import annotations

import json

from grader.result import GradeResult


def render(result: GradeResult) -> str:
    return json.dumps(result.to_dict(), indent=2)
