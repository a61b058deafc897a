"""The instructor's wheel carries the course: built with PTGRADE_WHEEL=course (`make
course-wheel`), it holds the repository's solutions/ (the assignments' source notebooks and the
hidden checks) as package data under grader/course/source/, for `ptgrade init-course` and
`ptgrade gradescope-bundle` (grader/integrations/course.py). The default wheel is the students' and holds no
solutions. An editable install reads them from the checkout. Everything else is in
pyproject.toml."""

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

COURSE_FILES = ("*/*.ipynb", "checks/*.py")


class BuildWithCourse(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "solutions"
        target = Path(self.build_lib) / "grader" / "course" / "source"
        if getattr(self, "editable_mode", False) or os.environ.get("PTGRADE_WHEEL") != "course":
            # The students' wheel: no solutions, no hidden checks, not even from an earlier
            # course build that left them in the build folder.
            shutil.rmtree(target, ignore_errors=True)
            return
        for pattern in COURSE_FILES:
            for path in sorted(source.glob(pattern)):
                destination = target / path.relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)


# Each wheel builds in a folder of its own: two builds at once never mix their files.
BUILD_BASE = "build/course" if os.environ.get("PTGRADE_WHEEL") == "course" else "build/kit"
setup(cmdclass={"build_py": BuildWithCourse}, options={"build": {"build_base": BUILD_BASE}})
