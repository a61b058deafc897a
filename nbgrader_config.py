"""nbgrader settings: instructor sources in solutions/, released exercises in exercises/."""

import os
import tempfile

from grader.nbgrader_support import configure

c = get_config()  # noqa: F821 (injected by nbgrader's config loader)

# nbgrader defines __file__ while it reads this file; an absolute root keeps it quiet.
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "ptgrade"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# The gradebook never lives in the repository: tools/release_exercises.py passes a fresh
# `--db` per run; a bare `nbgrader` call uses $PTGRADE_GRADEBOOK_URL or a file in the temp dir.
c.CourseDirectory.db_url = os.environ.get(
    "PTGRADE_GRADEBOOK_URL",
    "sqlite:///" + os.path.join(tempfile.gettempdir(), "ptgrade-gradebook.db"),
)

# The kit's own settings: time limits, hidden checks, its verdicts in its test cells.
configure(c)
