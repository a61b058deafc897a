"""`ptgrade doctor` on this machine: what it finds, and a FAIL with its fix where grading breaks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_pytorch_workflow_exercises"

pytestmark = pytest.mark.slow


def doctor(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PTGRADE_")}
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", "doctor", *args],
        capture_output=True, text=True, cwd=cwd, env={**environment, **env}, timeout=300,
    )  # fmt: skip


def lines(run: subprocess.CompletedProcess) -> dict[str, str]:
    """topic -> its line(s), the fix included."""
    found: dict[str, str] = {}
    topic = ""
    for line in run.stdout.splitlines():
        if line.startswith("["):
            topic = line[7:].split(":", 1)[0]
            found[topic] = found.get(topic, "") + line + "\n"
        elif topic:
            found[topic] += line + "\n"
    return found


def test_a_working_machine_is_described_line_by_line(tmp_path):
    shutil.copy(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", tmp_path)
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)  # a course whose gradebook is in /tmp
    run = doctor(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    found = lines(run)
    assert found["torch"].startswith("[ ok ] torch: 2.") and "device" in found["torch"]
    assert str(REPO / "solutions") in found["solutions"]
    assert "test_training_hidden.py" in found["hidden checks"]
    assert "torch imported there" in found["worker"]
    assert "the reference solution scores 20/20" in found["self-test"]
    assert f"grades {tmp_path.resolve() / ASSIGNMENT}.ipynb" in found["notebook"]
    assert found["gradebook"].startswith("[warn]") and "in the temp folder" in found["gradebook"]
    assert "fix: export PTGRADE_GRADEBOOK_URL=" in found["gradebook"]
    assert run.stdout.rstrip().endswith("grading works here")


def test_broken_hidden_checks_fail_with_what_to_do(tmp_path):
    solutions = tmp_path / "solutions"
    shutil.copytree(REPO / "solutions", solutions)
    with open(solutions / "checks" / "test_training_hidden.py", "a") as handle:
        handle.write("\nimport a_module_the_instructor_forgot\n")
    run = doctor(tmp_path, "--solutions", str(solutions))
    assert run.returncode == 1, run.stdout
    found = lines(run)
    assert found["self-test"].startswith("[FAIL]")
    assert "a_module_the_instructor_forgot" in found["self-test"] and "fix:" in found["self-test"]
    assert "grading cannot work here (self-test" in run.stdout


def test_a_confinement_that_cannot_work_fails_before_any_grading(tmp_path):
    run = doctor(tmp_path, PTGRADE_ISOLATION="jail")
    assert run.returncode == 1, run.stdout
    found = lines(run)
    assert found["confinement"].startswith("[FAIL]") and "fix:" in found["confinement"]
    assert "worker" not in found and "self-test" not in found
    assert found["notebook"].startswith("[warn]") and "PTGRADE_NOTEBOOK" in found["notebook"]
