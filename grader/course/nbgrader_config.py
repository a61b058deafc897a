"""nbgrader settings of a ptgrade course, written by `ptgrade init-course`.

source/<assignment>/   the instructor's notebooks (solutions, nbgrader markup, points)
source/checks/         the hidden checks: never release them
release/               what `nbgrader generate_assignment` writes for students
gradebook.db           this course's grades (not the temp folder's, shared and lost)
"""

import os

from grader.nbgrader_support import configure

c = get_config()  # noqa: F821 (injected by nbgrader's config loader)

# nbgrader defines __file__ while it reads this file; an absolute root keeps it quiet.
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "ptgrade-course"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.db_url = os.environ.get(
    "PTGRADE_GRADEBOOK_URL", "sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db")
)

# The kit's own settings: time limits, hidden checks, its verdicts in its test cells.
configure(c)
