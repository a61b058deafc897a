"""`ptgrade gradescope-bundle`: the zip unpacked into Gradescope's layout, and its
`run_autograder` run on submissions there, this venv's Python standing in for setup.sh."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_pytorch_workflow_exercises"
SAMPLES = REPO / "samples" / ASSIGNMENT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    done = subprocess.run(
        [sys.executable, "-m", "grader.cli", "gradescope-bundle", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def autograde(bundle: Path, root: Path, files: dict[str, bytes]) -> dict:
    """Gradescope's steps: unzip into source/, copy run_autograder up, submission in, run."""
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
        for info in archive.infolist():  # extractall drops the modes; Gradescope keeps them
            mode = info.external_attr >> 16
            if mode & stat.S_IXUSR:
                (root / "source" / info.filename).chmod(0o755)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    for name, content in files.items():
        (root / "submission" / name).write_bytes(content)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTGRADE_")}
    env.update(AUTOGRADER_ROOT=str(root), PTGRADE_PYTHON=sys.executable)
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [str(root / "run_autograder")], capture_output=True, text=True, env=env, timeout=300,
        cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((root / "results" / "results.json").read_text())


def test_the_zip_has_what_gradescope_runs(bundle):
    names = set(zipfile.ZipFile(bundle).namelist())
    assert {"setup.sh", "run_autograder", "requirements.txt"} <= names
    assert "kit/grader/cli.py" in names and "kit/solutions/checks/test_training_hidden.py" in names
    assert f"kit/solutions/{ASSIGNMENT}/{ASSIGNMENT}.ipynb" in names
    assert not any("__pycache__" in name for name in names)
    modes = {i.filename: i.external_attr >> 16 for i in zipfile.ZipFile(bundle).infolist()}
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    requirements = zipfile.ZipFile(bundle).read("requirements.txt").decode()
    assert "torch==" in requirements


def test_a_submission_is_graded_into_results_json(bundle, tmp_path):
    notebook = (SAMPLES / "cleo_no_zero_grad.ipynb").read_bytes()
    results = autograde(bundle, tmp_path / "autograder", {"my homework (1).ipynb": notebook})
    assert results["score"] == pytest.approx(17.31)
    tests = {t["number"]: t for t in results["tests"]}
    assert len(tests) == 9 and sum(t["max_score"] for t in tests.values()) == 20
    assert tests["training_loop"]["score"] < tests["training_loop"]["max_score"]
    assert "zero_grad" in tests["training_loop"]["output"]
    assert results["extra_data"] == {"status": "graded"}
    # The hidden checks and solutions were the bundle's, and the student's uid cannot read them.
    solutions = tmp_path / "autograder" / "source" / "kit" / "solutions"
    assert stat.S_IMODE(solutions.stat().st_mode) & 0o077 == 0


def test_a_submission_without_a_notebook_gets_a_results_json_that_says_so(bundle, tmp_path):
    results = autograde(bundle, tmp_path / "autograder", {"answers.py": b"print('hi')\n"})
    assert results["score"] == 0 and results["extra_data"] == {"status": "unusable"}
    assert "Not graded" in results["output"] and "no such file" in results["output"]
