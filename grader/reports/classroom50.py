"""Classroom 50's `result.json` (schema `classroom50/result/v1`): one test per section.

Classroom 50's runner (autograde-runner, runner.py) runs an assignment's `autograder.py` in the
student's checkout and reads `./result.json`; its contract is documented in the classroom50
wiki ("The result.json contract", Advanced Autograding) and in
schemas/result-v1.schema.json of foundation50/classroom50. The submission's identity
(classroom, assignment, owner, tag, links) comes from the runner's environment.

Scores there are whole numbers, the kit's are not (a section's checks share its points, 0.67
each of 2): points are written in hundredths (`$PTGRADE_CLASSROOM50_SCALE`, default 100), so
17.5 / 20 is 1750 / 2000; each test keeps the kit's own `points` and `max_points` beside them,
with the section's messages and hints, as the diagnostic fields the schema preserves.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess

from grader.reports.gradescope import section_output
from grader.reports.text import status_line
from grader.result import GradeResult

SCHEMA = "classroom50/result/v1"


def _utc(seconds: float) -> str:
    instant = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def _committed_at() -> float | None:
    """The graded commit's committer date (the checkout the runner starts us in)."""
    try:
        done = subprocess.run(
            ["git", "show", "-s", "--format=%ct", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return float(done.stdout.strip()) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def runner_fields(env: os._Environ | dict) -> dict:
    """The submission's identity, as the Classroom 50 runner hands it to an autograder."""
    import time

    commit = env.get("COMMIT_URL") or "unknown"
    return {
        "schema": SCHEMA,
        "classroom": env.get("CLASSROOM") or "unknown",
        "assignment": env.get("ASSIGNMENT") or "unknown",
        "assignment_type": env.get("ASSIGNMENT_TYPE") or "individual",
        "owner": env.get("OWNER") or env.get("USERNAME") or "unknown",
        "submission": env.get("SUBMISSION_TAG") or "submit/unknown",
        "commit": commit,
        "release": env.get("RELEASE_URL") or "unknown",
        "review": env.get("REVIEW_URL") or commit,
        "datetime": _utc(_committed_at() or time.time()),
        "graded_at": _utc(time.time()),
    }


def scale() -> int:
    from grader.settings import from_environment

    return from_environment("classroom50_scale")


def render(result: GradeResult) -> str:
    factor = scale()
    tests = []
    for section in result.sections:
        earned = round(section.score * factor)
        possible = round(section.max_score * factor)
        tests.append(
            {
                "test-name": f"{section.title} ({section.id})",
                "passed": section.passed,
                "score": min(earned, possible),
                "max-score": possible,
                # Diagnostic fields, kept verbatim by the runner and the collector.
                "points": section.score,
                "max_points": section.max_score,
                "message": section_output(section),
                "hints": [c.hint for c in section.failures() if c.hint],
            }
        )
    if not tests:  # not graded: one failed test that says why, worth the assignment's points
        tests.append(
            {
                "test-name": "notebook",
                "passed": False,
                "score": 0,
                "max-score": round(result.max_score * factor),
                "message": status_line(result),
                "status": result.status,
            }
        )
    report = runner_fields(os.environ)
    report["score"] = sum(t["score"] for t in tests)
    report["max-score"] = sum(t["max-score"] for t in tests)
    report["tests"] = tests
    return json.dumps(report, indent=2)
