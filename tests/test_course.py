"""`ptgrade init-course`: a course folder outside the repository where the README's nbgrader
flow runs unchanged, its gradebook inside; and the course files a built kit carries."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.sandbox import isolation

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_pytorch_workflow_exercises"
SAMPLES = REPO / "samples" / ASSIGNMENT


def ptgrade(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def nbgrader(course: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTGRADE_")}
    # nbgrader shells out to alembic, in the venv (the README says to put it on PATH).
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(PTGRADE_CELL_TIMEOUT="10", PTGRADE_TIMEOUT="120", MPLBACKEND="Agg")
    done = subprocess.run(
        ["nbgrader", *args], cwd=course, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"nbgrader {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


@pytest.mark.slow
def test_the_readme_nbgrader_flow_runs_in_a_new_course(tmp_path_factory):
    course = tmp_path_factory.mktemp("elsewhere") / "my-course"
    made = ptgrade("init-course", str(course), cwd=course.parent)
    assert made.returncode == 0, made.stderr
    assert "nbgrader generate_assignment" in made.stdout
    assert sorted(p.name for p in (course / "source").iterdir()) == [
        "01_pytorch_workflow",
        ASSIGNMENT,
        "checks",
    ]
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    released = course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert "HIDDEN TESTS" not in released.read_text()
    assert (course / "gradebook.db").is_file()  # the course's own, not the temp folder's

    edited = json.loads((SAMPLES / "cleo_no_zero_grad.ipynb").read_text())
    for cell in edited["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "training_loop_tests":
            cell["source"] = "pass  # no checks here, thank you\n"
    for student, notebook in {
        "ada": (SAMPLES / "ada_correct.ipynb").read_text(),
        "cleo": json.dumps(edited),
    }.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_text(notebook)
    log = nbgrader(course, "autograde", ASSIGNMENT)
    # nbgrader's checksum warning for every released test cell is gone; a real edit is named.
    assert "Attribute 'checksum'" not in log
    assert log.count("was edited") == 1 and "training_loop_tests was edited" in log
    nbgrader(course, "generate_feedback", ASSIGNMENT)
    assert (course / "feedback" / "cleo" / ASSIGNMENT / f"{ASSIGNMENT}.html").is_file()
    nbgrader(course, "export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as handle:
        scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert scores == pytest.approx(
        {"ada": 20.0, "cleo": 17.31}
    )  # the edited test cell still grades its section


def test_an_existing_course_is_never_overwritten(tmp_path):
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "notes.md").write_text("mine")
    run = ptgrade("init-course", str(tmp_path / "course"), cwd=tmp_path)
    assert run.returncode == 2 and "not empty" in run.stderr
    assert [p.name for p in (tmp_path / "course").iterdir()] == ["notes.md"]


# The instructor's wheel (`make course-wheel`); the students' wheel holds no solutions
# (tests/test_installed_kit.py).
COURSE_WHEEL = {**os.environ, "PTGRADE_WHEEL": "course"}


@pytest.mark.slow
def test_a_built_kit_carries_the_course_files(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=COURSE_WHEEL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("ptgrade-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "grader/course/nbgrader_config.py",
        f"grader/course/source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb",
        "grader/course/source/01_pytorch_workflow/01_pytorch_workflow.ipynb",
        "grader/course/source/checks/test_training_hidden.py",
    } <= names


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_a_built_kits_solutions_are_hidden_from_the_notebook(tmp_path, monkeypatch):
    """Package data lies inside grader/, which the sandbox shows read-only: bubblewrap covers it."""
    kit = tmp_path / "site-packages"
    shutil.copytree(REPO / "grader", kit / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    secret = kit / "grader" / "course" / "source" / "checks" / "test_training_hidden.py"
    secret.parent.mkdir(parents=True)
    secret.write_text("SECRET = 1\n")
    monkeypatch.setattr(isolation, "package_root", lambda: kit)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    command = isolation.bwrap_command(scratch)
    read = [sys.executable, "-c", f"print(open({str(secret)!r}).read())"]
    seen = subprocess.run([*command, *read], capture_output=True, text=True, timeout=60)
    if "bwrap:" in seen.stderr and "FileNotFoundError" not in seen.stderr:
        pytest.skip(f"bubblewrap does not work here: {seen.stderr.strip()}")
    assert seen.returncode != 0 and "FileNotFoundError" in seen.stderr
    shown = [*command, sys.executable, "-c", "import grader.integrations.course; print('kit ok')"]
    env = {**os.environ, "PYTHONPATH": str(kit)}
    assert "kit ok" in subprocess.run(shown, capture_output=True, text=True, env=env).stdout


@pytest.mark.slow
def test_a_kit_installed_from_its_wheel_grades_with_its_own_course_files(tmp_path):
    """`pip install ptgrade-*.whl` into a fresh venv: the worker starts under bubblewrap (the
    venv's site-packages shown, the kit's course copy covered), the hidden checks come from the
    wheel, and the reference solutions get full marks (ptgrade doctor's self-test)."""
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*build, "-w", str(wheels), str(REPO)], check=True, capture_output=True, env=COURSE_WHEEL
    )
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (wheel,) = wheels.glob("ptgrade-*.whl")
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "-c", str(REPO / "constraints.txt"), str(wheel)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if installed.returncode != 0:
        pytest.skip(f"the kit's dependencies cannot be installed here: {installed.stderr[-300:]}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PTGRADE_", "PYTHON"))}
    doctor = subprocess.run(
        [str(venv / "bin" / "ptgrade"), "doctor"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "the copy the built kit carries" in doctor.stdout
    assert doctor.stdout.count("the reference solution scores 20/20") == 2
