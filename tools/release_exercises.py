"""Release the student exercises: run `nbgrader generate_assignment` on every solution notebook."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ("01_pytorch_workflow", "01_pytorch_workflow_exercises")


def find_nbgrader(env: dict[str, str]) -> str:
    """The nbgrader executable on the PATH given, or SystemExit saying how to install it."""
    nbgrader = shutil.which("nbgrader", path=env["PATH"])
    if nbgrader is None:
        raise SystemExit(
            "error: nbgrader was not found (looked in the venv next to "
            f"{sys.executable} and on PATH).\n"
            "Install it with `make setup` (or `pip install -e '.[nbgrader]'`) and try again."
        )
    return nbgrader


def release(root: Path = REPO_ROOT, assignments: tuple[str, ...] = ASSIGNMENTS) -> None:
    """Write `<root>/exercises/<assignment>/` from `<root>/solutions/<assignment>/`."""
    env = dict(os.environ)
    # nbgrader shells out to alembic, which lives next to this interpreter in the venv.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    nbgrader = find_nbgrader(env)
    for assignment in assignments:
        if not (root / "solutions" / assignment).is_dir():
            raise SystemExit(f"error: no solutions/{assignment}/ under {root}")
    with tempfile.TemporaryDirectory(prefix="ptgrade-gradebook-") as gradebook_dir:
        # A throwaway gradebook per run: nothing about a release belongs in the repository.
        db_url = "sqlite:///" + str(Path(gradebook_dir) / "gradebook.db")
        for assignment in assignments:
            # Start clean so a file removed from solutions/ disappears from exercises/ too.
            shutil.rmtree(root / "exercises" / assignment, ignore_errors=True)
            cmd = [nbgrader, "generate_assignment", assignment, "--force", "--db", db_url]
            result = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(
                    f"error: nbgrader generate_assignment {assignment} failed "
                    f"(exit {result.returncode}):\n{result.stdout}{result.stderr}"
                )
            print(f"released exercises/{assignment}/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "assignments", nargs="*", default=list(ASSIGNMENTS), help="assignments to release"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO_ROOT,
        help="course root holding nbgrader_config.py and solutions/ (default: the repository)",
    )
    args = parser.parse_args(argv)
    release(args.root.resolve(), tuple(args.assignments))
    return 0


if __name__ == "__main__":
    sys.exit(main())
