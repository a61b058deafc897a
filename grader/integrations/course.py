"""The course files the kit ships, and `ptgrade init-course DIR`: a ready nbgrader course.

In a checkout the files are the repository's own (solutions/, with the hidden checks in
solutions/checks/); a built kit (wheel) carries the same files as package data under
grader/course/source/ (setup.py copies them at build time). The nbgrader config of a course is
grader/course/nbgrader_config.py either way.
"""

from __future__ import annotations

import shutil
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

from grader.packs import all_assignments

HERE = Path(__file__).resolve().parents[1] / "course"
CONFIG = HERE / "nbgrader_config.py"
# Folders nbgrader makes in a course, and what a course's git repository should not hold.
GITIGNORE = "submitted/\nautograded/\nfeedback/\nrelease/\ngradebook.db\n.ipynb_checkpoints/\n"


class CourseError(Exception):
    """The course folder cannot be made; the message says why, in one line."""


def source_folder() -> Path:
    """The kit's instructor sources: the assignments' notebooks and checks/."""
    packaged = HERE / "source"
    if packaged.is_dir():
        return packaged
    from grader.sandbox.isolation import package_root

    return package_root() / "solutions"


def source_files() -> list[tuple[Path, str]]:
    """(file, its path under the course's source/) for every file a course needs."""
    source = source_folder()
    files = []
    for assignment in all_assignments():
        notebook = source / assignment / f"{assignment}.ipynb"
        if not notebook.is_file():
            raise CourseError(f"the kit has no {notebook}: reinstall it (pip install ptgrade)")
        files.append((notebook, f"{assignment}/{assignment}.ipynb"))
    checks = sorted((source / "checks").glob("*.py"))
    if not checks:
        raise CourseError(f"the kit has no hidden checks in {source / 'checks'}: reinstall it")
    files += [(path, f"checks/{path.name}") for path in checks]
    return files


def read_nbgrader_config(folder: Path):
    """The nbgrader config of the course in `folder` (its nbgrader_config.py, as nbgrader reads
    it there; not the Jupyter config folders' files) and ""; or None and why it is not read
    ("" where there is no such file). A config that fails to run raises CourseError."""
    path = folder / "nbgrader_config.py"
    if not path.is_file():
        return None, ""
    try:
        import nbgrader  # noqa: F401 (the config imports it: grader.nbgrader_support)
        from traitlets.config import PyFileConfigLoader
    except ImportError:
        return None, (
            f"nbgrader is not installed, so {path} is not read (pip install 'ptgrade[nbgrader]')"
        )
    try:
        return PyFileConfigLoader(path.name, path=str(folder.resolve())).load_config(), ""
    except Exception as error:
        raise CourseError(f"{path} could not be read: {type(error).__name__}: {error}") from None


def init_course(target: Path) -> list[str]:
    """Write a new course into `target` (absent or empty); the paths written."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        what = "a file" if not target.is_dir() else "a folder that is not empty"
        raise CourseError(f"{target} is {what}: name a new folder for the course")
    files = source_files()
    try:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CONFIG, target / "nbgrader_config.py")
        (target / ".gitignore").write_text(GITIGNORE)
        for path, relative in files:
            (target / "source" / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / "source" / relative)
    except OSError as error:
        raise CourseError(f"cannot write {target}: {error.strerror or error}") from None
    return ["nbgrader_config.py", ".gitignore", *(f"source/{r}" for _, r in files)]


NEXT_STEPS = """\
Next, in {folder} (nbgrader needs the environment's bin folder, where alembic is, on PATH):
  nbgrader generate_assignment {assignment}      # release/ for students
  # collect each student's notebook as submitted/<student>/<assignment>/<assignment>.ipynb
  nbgrader autograde {assignment}
  nbgrader generate_feedback {assignment}
  nbgrader export --to grades.csv
The gradebook is {folder}/gradebook.db. Keep source/checks/ out of anything students get."""


def kit_files() -> list[tuple[Path, str]]:
    """(file, its path as grader/...) for the kit's own package: what a bundle imports. Never
    the course sources a built kit carries (grader/course/source)."""
    package = Path(__file__).resolve().parents[1]
    files = []
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        if "__pycache__" in relative.parts or relative.parts[:2] == ("course", "source"):
            continue
        if path.is_file():
            files.append((path, f"grader/{relative.as_posix()}"))
    return files


def requirements() -> str:
    """The kit's dependencies, each pinned to the version installed here (tested together)."""
    import re

    lines = []
    for requirement in requires("ptgrade") or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        try:
            lines.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            lines.append(requirement)
    return "\n".join(lines) + "\n"
