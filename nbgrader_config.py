"""nbgrader settings: instructor sources in solutions/, released exercises in exercises/."""

import math
import os
import sys
import tempfile

from grader.inline import seconds_from_env
from grader.nbgrader_support import autograde_steps, use_kit_steps_in_validate, warm_up_for

c = get_config()  # noqa: F821 (injected by nbgrader's config loader)

# nbgrader defines __file__ while it reads this file; an absolute root keeps it quiet.
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "ptgrade"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# Models saved by running a solution notebook must not be released with it.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "models"]

# The gradebook never lives in the repository: tools/release_exercises.py passes a fresh
# `--db` per run; a bare `nbgrader` call uses $PTGRADE_GRADEBOOK_URL or a file in the temp dir.
c.CourseDirectory.db_url = os.environ.get(
    "PTGRADE_GRADEBOOK_URL",
    "sqlite:///" + os.path.join(tempfile.gettempdir(), "ptgrade-gradebook.db"),
)

# The test cells call the kit (`assert_section`), which grades the saved notebook apart, in the
# kernel nbgrader starts (that kernel inherits this process's environment).
# Hidden checks and points come from this course's solutions, unless $PTGRADE_SOLUTIONS says.
os.environ.setdefault(
    "PTGRADE_SOLUTIONS",
    os.path.join(c.CourseDirectory.root, c.CourseDirectory.source_directory),
)

# One pair of time limits for the student's code, in nbgrader's kernel as in the kit's sandbox:
# $PTGRADE_CELL_TIMEOUT seconds a cell (ptgrade's --cell-timeout) and $PTGRADE_TIMEOUT seconds
# the notebook (--timeout). The first test cell grades the whole notebook, so a test cell gets
# the notebook's time and a minute for the kit to start.
CELL_TIMEOUT = seconds_from_env("PTGRADE_CELL_TIMEOUT", 60)
NOTEBOOK_TIMEOUT = seconds_from_env("PTGRADE_TIMEOUT", 300)


def cell_timeout(cell) -> int:
    seconds = NOTEBOOK_TIMEOUT + 60 if "assert_section(" in cell.source else CELL_TIMEOUT
    return max(1, math.ceil(seconds))


c.Execute.timeout_func = cell_timeout

# A deleted test cell is put back, so that the kit still grades its section.
c.OverwriteCells.add_missing_cells = True

# The kit's test cells get their verdicts from the kit, computed in this (nbgrader's) process
# while the kernel runs the notebook, never from what the student's kernel printed there: a
# student cell cannot fake them, and stray stderr (a late warning) does not zero them. The
# grading is warm across an autograde run (one worker, a fresh confined child per submission).
# See grader/nbgrader_support.py and docs/nbgrader.md.
c.Autograde.autograde_preprocessors = autograde_steps()
use_kit_steps_in_validate()  # nbgrader reads no `c.Validator.preprocessors`
# Under `autograde` and `validate`, the kit's grader starts now, while nbgrader does.
warm_up_for(sys.argv)
