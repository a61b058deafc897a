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

# The kit's settings for grading (ptgrade settings, run here, shows each value and its source;
# $PTGRADE_* in nbgrader's environment, and nbgrader's --PTGrade.x=..., beat these lines):
# c.PTGrade.cell_timeout = 60        # seconds one cell may run, in nbgrader's kernel and the kit's
# c.PTGrade.notebook_timeout = 300   # seconds the whole notebook may run
# c.PTGrade.memory_mb = 4096         # memory the submission may allocate (MB)
# c.PTGrade.output_chars = 200000    # characters of printed output kept
# c.PTGrade.device = "auto"          # "cpu": hide any GPU from the submission
# c.PTGrade.isolation = "auto"       # how the submission's code is confined: bwrap, unshare, none
# c.PTGrade.solutions = "source"     # the hidden checks and points (default: the source folder)

# The kit's own steps: its verdicts in its test cells, computed outside the student's kernel.
configure(c)
