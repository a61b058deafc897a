"""Grading students' repositories: the GitHub Actions workflow an instructor copies into the
assignment's template (`ptgrade ci-workflow`), and a Classroom 50 autograder folder
(`ptgrade classroom50-bundle`). docs/course.md says where each one's secrets may live."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from grader.integrations.course import HERE, CourseError, kit_files, requirements
from grader.packs import all_assignments

WORKFLOW = HERE / "github_workflow.yml"
AUTOGRADER = HERE / "classroom50_autograder.py"


def _assignment(assignment: str) -> None:
    if assignment not in all_assignments():
        raise CourseError(
            f"no assignment {assignment!r}: choose one of {', '.join(all_assignments())}"
        )


def write_workflow(out: Path, assignment: str, course_repo: str) -> None:
    """The workflow file, for `assignment`, fetching the kit from `course_repo`."""
    _assignment(assignment)
    text = WORKFLOW.read_text()
    text = text.replace("my-org/my-course-private", course_repo)
    # The template's assignment (its id and its notebook's name) is the one asked for.
    text = re.sub(r"(?m)^(\s*PTGRADE_ASSIGNMENT: )\S+", rf"\g<1>{assignment}", text)
    text = re.sub(r"(?m)^(\s*PTGRADE_NOTEBOOK: )\S+\.ipynb", rf"\g<1>{assignment}.ipynb", text)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    except OSError as error:
        raise CourseError(f"cannot write {out}: {error.strerror or error}") from None


def write_classroom50_bundle(folder: Path, assignment: str) -> list[str]:
    """autograder.py, requirements.txt and the kit (no solutions, no hidden checks: Classroom
    50 publishes this folder on GitHub Pages). The paths written."""
    _assignment(assignment)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise CourseError(f"{folder} is not an empty folder: name a new one")
    written = ["autograder.py", "requirements.txt"]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        script = AUTOGRADER.read_text().replace("@ASSIGNMENT@", assignment)
        (folder / "autograder.py").write_text(script)
        (folder / "requirements.txt").write_text(requirements())
        for path, relative in kit_files():
            if relative.startswith("grader/course/"):
                continue  # the course's templates: nothing the grading imports
            (folder / "kit" / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / "kit" / relative)
            written.append(f"kit/{relative}")
    except OSError as error:
        raise CourseError(f"cannot write {folder}: {error.strerror or error}") from None
    return written
