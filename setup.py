"""The instructor's wheel carries the course: built with PTGRADE_WHEEL=course (`make
course-wheel`), it holds the repository's solutions/ (the assignments' source notebooks and the
hidden checks) as package data under grader/course/source/, for `ptgrade init-course` and
`ptgrade gradescope-bundle` (grader/course.py). The default wheel is the students' and holds no
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
        if getattr(self, "editable_mode", False) or os.environ.get("PTGRADE_WHEEL") != "course":
            return  # the students' wheel: no solutions, no hidden checks
        source = Path(__file__).resolve().parent / "solutions"
        target = Path(self.build_lib) / "grader" / "course" / "source"
        for pattern in COURSE_FILES:
            for path in sorted(source.glob(pattern)):
                destination = target / path.relative_to(source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)


setup(cmdclass={"build_py": BuildWithCourse})
