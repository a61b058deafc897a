"""`ptgrade gradescope-bundle OUT.zip`: the autograder zip Gradescope's "Zip file upload" takes.

Gradescope unpacks it into /autograder/source, runs setup.sh once to build its image, then
/autograder/run_autograder (copied from the zip) for each submission, with the student's
files in /autograder/submission and the grade expected in /autograder/results/results.json.
The zip holds the kit as source (kit/grader, imported through PYTHONPATH: nothing to build),
the solutions and hidden checks beside it (kit/solutions, where the kit looks first in a
checkout), and requirements.txt pinning the versions this kit runs with here.
"""

from __future__ import annotations

import zipfile
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

from grader.assignments import ASSIGNMENTS
from grader.course import HERE, source_files

EXECUTABLE = 0o100755 << 16  # zip's external attributes: a regular file, rwxr-xr-x


class BundleError(Exception):
    """The bundle cannot be written; the message says why, in one line."""


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


def write_bundle(out: Path, assignment: str) -> list[str]:
    """Write the zip; the names in it."""
    if assignment not in ASSIGNMENTS:
        raise BundleError(f"no assignment {assignment!r}: choose one of {', '.join(ASSIGNMENTS)}")
    package = Path(__file__).resolve().parent
    try:
        needed = requirements()
    except PackageNotFoundError:
        raise BundleError("ptgrade is not installed here (pip install -e .), so its "
                          "dependencies cannot be listed") from None  # fmt: skip
    run = (HERE / "gradescope_run_autograder").read_text().replace("@ASSIGNMENT@", assignment)
    files = [f for f in source_files() if f[1].startswith((f"{assignment}/", "checks/"))]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
            _add(bundle, "setup.sh", (HERE / "gradescope_setup.sh").read_text(), EXECUTABLE)
            _add(bundle, "run_autograder", run, EXECUTABLE)
            _add(bundle, "requirements.txt", needed)
            for path in sorted(package.rglob("*")):
                relative = path.relative_to(package)
                skipped = "__pycache__" in relative.parts or relative.parts[:2] == (
                    "course", "source"
                )  # fmt: skip
                if path.is_file() and not skipped:
                    bundle.write(path, f"kit/grader/{relative.as_posix()}")
            for path, relative in files:
                bundle.write(path, f"kit/solutions/{relative}")
            names = bundle.namelist()
    except OSError as error:
        raise BundleError(f"cannot write {out}: {error.strerror or error}") from None
    return names


def _add(bundle: zipfile.ZipFile, name: str, text: str, mode: int = 0o100644 << 16) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = mode
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, text)
