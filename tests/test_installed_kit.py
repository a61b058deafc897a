"""The kit as users get it: the wheel, an installed kit's sandbox, and failures it cannot hide.

The end-to-end run (a fresh venv outside the checkout, the README's install lines, a student's
`ptgrade check` and test cells in a real kernel, CI's `ptgrade grade`, nbgrader in a course
folder of its own, with bubblewrap and without) is tools/smoke_installed.py; the last test here
runs it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.errors import GraderError
from grader.sandbox import isolation
from grader.sandbox.warm import WarmWorker

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "-q", "-w", str(out)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("ptgrade-*.whl"))


def test_the_wheel_holds_every_file_of_the_package(wheel):
    """Every file git tracks under grader/ (pytest.ini among them) is in the wheel: a file left
    out fails every grade of an installed kit."""
    tracked = subprocess.run(
        ["git", "ls-files", "grader"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    missing = [name for name in tracked if name not in shipped]
    assert "grader/packs/workflow01/checks/pytest.ini" in tracked
    assert missing == []


def test_the_wheel_ships_no_solutions_and_no_hidden_checks(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert not [n for n in names if n.startswith(("solutions/", "reference_models/", "tests/"))]
    assert not [n for n in names if "hidden" in n]


def test_the_sandbox_binds_what_the_interpreter_needs_and_no_secret():
    """Derived from the running interpreter (sys.prefix, sysconfig's site-packages, where torch
    lies), never from the checkout: an installed kit's venv is outside it."""
    import sysconfig

    import torch

    binds = isolation._python_dirs()
    system = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"]
    needed = [
        sys.prefix,
        sysconfig.get_path("purelib"),
        sysconfig.get_path("stdlib"),
        os.path.dirname(torch.__file__),
    ]
    for path in needed:
        real = os.path.realpath(path)
        assert isolation._under(real, binds + system), f"{real} is not visible in the sandbox"
    for secret in isolation._secret_folders():
        assert not isolation._under(secret, binds), f"{secret} would be visible"
    assert str((REPO_ROOT / "solutions").resolve()) in isolation._secret_folders()


def test_a_worker_that_cannot_start_says_why():
    """A worker that dies at start (a venv the sandbox cannot see) is the grader's error, with
    what the worker said, not a bare 'did not start'."""
    why = "python3: cannot open /venv/bin/python: No such file"
    worker = WarmWorker(dict(os.environ), ("sh", "-c", f"echo '{why}' >&2; exit 127", "sh"))
    with pytest.raises(GraderError, match="did not start") as raised:
        worker.ensure_running()
    assert why in raised.value.reason


def test_checks_that_cannot_start_name_the_missing_file(tmp_path, monkeypatch):
    """pytest exit 4 with no collection error used to give an empty reason."""
    from grader.checking import pytest_session as checking

    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    # a kit without its pytest.ini: the session's first folder is the pack's checks
    session = checking.CheckSession([str(checks)])
    session._thread.join(60)
    assert session.exit_code == 4
    reason = session._failure()
    assert "pytest.ini is missing from the kit's installation" in reason


def test_a_kit_failure_under_nbgrader_autograde_is_an_error_not_a_zero(caplog):
    """A test cell where the kit failed (GraderError) stops the notebook with the reason, which
    nbgrader logs as an ERROR; it is not the student's 0."""
    from grader.nbgrader_support import KitFailed, KitVerdicts, KitVerdictsInValidate

    reason = "ptgrade could not grade this notebook, and no mistake in it is the cause: X"
    cell = nbformat.v4.new_code_cell('assert_section("split")')
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "split_tests", "points": 2}
    cell.outputs = [nbformat.v4.new_output("error", ename="GraderError", evalue=reason)]
    resources = {"unique_key": "submitted/ada/01_pytorch_workflow_exercises"}
    with caplog.at_level(logging.ERROR), pytest.raises(KitFailed, match="no mistake in it"):
        KitVerdicts().preprocess_cell(cell, resources, 0)
    assert any(r.levelno == logging.ERROR and reason in r.getMessage() for r in caplog.records)
    # nbgrader validate shows the cell's own error to the student instead.
    KitVerdictsInValidate().preprocess_cell(cell, resources, 0)


def test_a_batch_says_which_results_are_the_kits_failures(capsys):
    from grader.batch.folder import Job, _say_grader_errors, grader_error

    jobs = [Job(name, name, Path(f"{name}.ipynb")) for name in ("ada", "bo", "cy")]
    results = {
        "ada": grader_error("GraderError: the warm worker did not start: venv not visible"),
        "bo": grader_error("GraderError: the warm worker did not start: venv not visible"),
        "cy": {"status": "graded", "score": 20.0},
    }
    _say_grader_errors(jobs, results)
    said = capsys.readouterr().err
    assert "ERROR: 2 of 3 submissions could not be graded" in said
    assert "venv not visible" in said
    assert said.count("venv not visible") == 1  # one line per distinct reason


def test_the_readme_install_lines_are_the_smoke_tests(wheel):
    from tests.conftest import load_script

    smoke = load_script(REPO_ROOT / "tools" / "smoke_installed.py")
    lines = smoke.readme_lines()
    assert lines["student"] == f"%pip install {wheel.name}"
    assert lines["torch-cpu"] == (
        "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    )
    assert lines["instructor"] == f'pip install "{wheel.name}[nbgrader]"'
    # Offline, only PyTorch's index is dropped (constraints.txt takes the same CPU build).
    assert smoke.offline(lines["torch-cpu"]) == "pip install torch"


@pytest.mark.parametrize("assignment", ["01_pytorch_workflow", "01_pytorch_workflow_exercises"])
def test_each_released_notebook_starts_with_the_readmes_install_lines(assignment):
    from tests.conftest import load_script

    lines = load_script(REPO_ROOT / "tools" / "smoke_installed.py").readme_lines()
    path = REPO_ROOT / "exercises" / assignment / f"{assignment}.ipynb"
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown"
    assert lines["student"] in first.source
    assert f"%{lines['torch-cpu']}" in first.source


def test_pyproject_does_not_pin_torch():
    """A user's own torch (Colab's CUDA build) is kept: the package asks for a range only."""
    import tomllib

    with open(REPO_ROOT / "pyproject.toml", "rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    torch = next(d for d in dependencies if d.startswith("torch"))
    assert "==" not in torch and ">=" in torch


@pytest.mark.slow
def test_the_installed_kit_grades_with_bubblewrap_and_without(tmp_path_factory):
    """tools/smoke_installed.py: the wheel in a fresh venv outside the checkout, the README's
    install lines, a student's check and test cells in a kernel, CI's grade, nbgrader in a
    course of its own; under bubblewrap and with bwrap hidden from PATH."""
    confinements = ["--confinement", "none"]
    if shutil.which("bwrap"):
        confinements = ["--confinement", "bwrap", *confinements]
    work = Path(tempfile.mkdtemp(prefix="ptgrade-smoke-"))
    try:
        done = subprocess.run(
            [
                sys.executable,
                str(REPO_ROOT / "tools" / "smoke_installed.py"),
                "--work",
                str(work),
                *confinements,
            ],
            capture_output=True,
            text=True,
            timeout=1500,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    if not shutil.which("bwrap"):
        pytest.skip("ran without bubblewrap only: bwrap is not installed here")


@pytest.mark.slow
def test_solutions_given_on_the_command_line_reach_a_batchs_workers(tmp_path):
    """`ptgrade batch --solutions DIR`: the points and hidden checks come from DIR in the
    pool's processes too (they used to grade with the kit's own, or none)."""
    solutions = tmp_path / "solutions"
    shutil.copytree(REPO_ROOT / "solutions", solutions, ignore=shutil.ignore_patterns("models"))
    source = solutions / "01_pytorch_workflow_exercises" / "01_pytorch_workflow_exercises.ipynb"
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "split_tests":
            cell.metadata["nbgrader"]["points"] = 4
    nbformat.write(notebook, source)
    submissions = tmp_path / "submitted"
    submissions.mkdir()
    shutil.copy(
        REPO_ROOT / "samples" / "01_pytorch_workflow_exercises" / "ada_correct.ipynb", submissions
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTGRADE_")}
    env["PTGRADE_ISOLATION"] = "bwrap" if shutil.which("bwrap") else "none"
    done = subprocess.run(
        [
            Path(sys.executable).parent / "ptgrade",
            "batch",
            submissions,
            "--output",
            tmp_path / "out",
        ]
        + ["--jobs", "1", "--cell-timeout", "20", "--solutions", solutions],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "results" / "ada_correct.json").read_text())
    assert result["max_score"] == 22.0
    assert result["execution"]["hidden_checks"] is True
