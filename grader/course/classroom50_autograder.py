"""Classroom 50 autograder for ptgrade (written by `ptgrade classroom50-bundle`).

Put this folder's contents at CLASSROOM/autograders/ASSIGNMENT/ in the classroom50
repository. Classroom 50 publishes that folder on GitHub Pages, where anyone can fetch it:
it holds the kit and its visible checks only, never the solutions or the hidden checks (the
kit grades without them; run the hidden checks yourself with `ptgrade batch` on the
collected repositories). The runner starts this script in the student's checkout and reads
./result.json (schema classroom50/result/v1); the exit status is 0 whenever the notebook was
graded or found ungradable (the result says so) and non-zero for the grader's own failure
(the runner then records an error, not a score).
"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASSIGNMENT = "@ASSIGNMENT@"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"  # its path in the student's repository
DEPENDENCIES = ("torch", "numpy", "matplotlib", "nbformat", "IPython", "pytest", "tqdm")


def missing_dependencies() -> bool:
    found = subprocess.run(
        [sys.executable, "-c", f"import {', '.join(DEPENDENCIES)}"], capture_output=True
    )
    return found.returncode != 0


if missing_dependencies():
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet",
         "--extra-index-url", "https://download.pytorch.org/whl/cpu",
         "-r", str(HERE / "requirements.txt")],
        check=True,
    )  # fmt: skip

# The kit comes first on the path, ahead of the checkout the runner starts us in: a
# student's grader/ package, conftest.py or sitecustomize.py is never imported.
launch = "import sys; sys.path[0] = sys.argv.pop(1); from grader.cli import main; sys.exit(main())"
done = subprocess.run(
    [sys.executable, "-c", launch, str(HERE / "kit"), "grade", NOTEBOOK,
     "--assignment", ASSIGNMENT, "--format", "classroom50", "--output", "result.json"],
    env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PTGRADE_SOLUTIONS")},
)  # fmt: skip
sys.exit(0 if done.returncode in (0, 2) else done.returncode)
