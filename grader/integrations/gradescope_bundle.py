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
from importlib.metadata import PackageNotFoundError
from pathlib import Path

from grader.integrations.course import HERE, kit_files, requirements, source_files
from grader.packs import all_assignments

EXECUTABLE = 0o100755 << 16  # zip's external attributes: a regular file, rwxr-xr-x


class BundleError(Exception):
    """The bundle cannot be written; the message says why, in one line."""


def write_bundle(out: Path, assignment: str) -> list[str]:
    """Write the zip; the names in it."""
    if assignment not in all_assignments():
        raise BundleError(
            f"no assignment {assignment!r}: choose one of {', '.join(all_assignments())}"
        )
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
            for path, relative in kit_files():
                bundle.write(path, f"kit/{relative}")
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
