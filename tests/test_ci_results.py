"""Results CI can act on: an exit code per kind of failure, a report whatever happened, and no
scratch folders left behind by a killed grader."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "01_pytorch_workflow_exercises"
CORRECT = SAMPLES / "ada_correct.ipynb"
ASSIGNMENT = "01_pytorch_workflow_exercises"
LIMITS = ["--timeout", "30", "--memory-mb", "2048"]

pytestmark = pytest.mark.slow


def ptgrade(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="module")
def broken_solutions(tmp_path_factory) -> Path:
    """The instructor's solutions with a hidden check that cannot even be imported: every
    grade fails through the kit's side, never the student's."""
    folder = tmp_path_factory.mktemp("broken") / "solutions"
    shutil.copytree(REPO / "solutions", folder)
    with open(folder / "checks" / "test_training_hidden.py", "a") as handle:
        handle.write("\nimport a_module_the_instructor_forgot\n")
    return folder


def test_a_grader_error_exits_3_and_still_writes_a_report_that_says_so(tmp_path, broken_solutions):
    report, summary = tmp_path / "report.xml", tmp_path / "summary.md"
    run = ptgrade(
        "grade", str(CORRECT), "--solutions", str(broken_solutions), "--format", "junit",
        "--output", str(report), "--min-score", "1", *LIMITS,
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert "Traceback (most recent call last)" not in run.stderr
    assert "a_module_the_instructor_forgot" in run.stderr
    suite = ET.parse(report).getroot()
    assert suite.get("errors") == "1" and suite.get("name") == ASSIGNMENT
    error = suite.find("testcase/error")
    assert error is not None and error.get("type") == "grader_error"
    assert "no mistake in the notebook is the cause" in error.get("message")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["status"] == "grader_error" and properties["score"] == ""
    assert "not graded / 20" in summary.read_text()
    assert "⚠️ Not graded\\: the grader failed" in summary.read_text()

    run = ptgrade("grade", str(CORRECT), "--solutions", str(broken_solutions), "--format", "json")
    assert run.returncode == 3
    data = json.loads(run.stdout)
    assert data["status"] == "grader_error" and data["score"] is None


def test_an_unusable_file_exits_2_with_a_report_that_says_why(tmp_path):
    path = tmp_path / "submission.ipynb"
    path.write_text("{not json")
    for fmt in ("junit", "json", "gradescope", "html"):
        out = tmp_path / f"report.{fmt}"
        run = ptgrade("grade", str(path), "--format", fmt, "--output", str(out))
        assert run.returncode == 2 and "not a notebook" in run.stderr
        assert "Traceback" not in run.stderr
        text = out.read_text()
        assert "not a notebook" in text
        assert "Every section passed" not in text
        if fmt != "json":  # there: "status"
            assert "Not graded: this file cannot be graded (" in text
    assert json.loads((tmp_path / "report.json").read_text())["status"] == "unusable"
    gradescope = json.loads((tmp_path / "report.gradescope").read_text())
    assert gradescope["score"] == 0 and gradescope["extra_data"] == {"status": "unusable"}


def test_a_crashed_notebook_is_graded_and_its_report_says_it_crashed(tmp_path):
    notebook = nbformat.read(CORRECT, as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "predictions":
            cell.source = "import os\nos._exit(1)\n" + cell.source
    path = tmp_path / f"{ASSIGNMENT}.ipynb"
    nbformat.write(notebook, path)
    run = ptgrade("grade", str(path), "--format", "junit", *LIMITS)
    assert run.returncode == 0, run.stderr
    suite = ET.fromstring(run.stdout.encode())
    error = suite.find("testcase[@name='grading']/error")
    assert error is not None and error.get("type") == "crashed"
    assert "crashed" in error.get("message") and "scored on the cells that ran" in error.get(
        "message"
    )
    assert int(suite.get("failures")) > 0  # the sections after the crash


def test_batch_exits_3_leaves_scores_empty_and_grades_them_again(tmp_path, broken_solutions):
    submitted = tmp_path / "submitted"
    submitted.mkdir()
    shutil.copy(CORRECT, submitted / "ada.ipynb")
    (submitted / "zed.ipynb").write_text("{not json")
    command = ["batch", str(submitted), "--output", str(tmp_path / "grades"), "--jobs", "1"]
    run = ptgrade(*command, "--solutions", str(broken_solutions), *LIMITS)
    assert run.returncode == 3, run.stderr
    assert "could not be graded through the grader's own failure (ada)" in run.stderr
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "grades" / "grades.csv"))}
    assert rows["ada"]["status"] == "grader_error" and rows["ada"]["score"] == ""
    assert rows["zed"]["status"] == "unusable" and rows["zed"]["score"] == "0.0"
    # Fixed solutions: the grader error is graded again, not kept as a result.
    run = ptgrade(*command, *LIMITS)
    assert run.returncode == 0, run.stderr
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "grades" / "grades.csv"))}
    assert rows["ada"]["status"] == "graded" and rows["ada"]["score"] == "20.0"


def _worker_folders(pid: int) -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob(f"ptgrade-worker-{pid}-*"))


def test_a_killed_graders_scratch_folder_goes_on_the_next_start(tmp_path):
    hangs = nbformat.read(CORRECT, as_version=4)
    hangs.cells[-1].source = "while True:\n    pass\n"
    path = tmp_path / f"{ASSIGNMENT}.ipynb"
    nbformat.write(hangs, path)
    grader = subprocess.Popen(
        [sys.executable, "-m", "grader.cli", "grade", str(path), "--cell-timeout", "120"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    # Its folder is named after its pid (other graders on this machine have folders too).
    while not [f for f in _worker_folders(grader.pid) if any(f.glob("submission-*"))]:
        assert time.monotonic() < deadline and grader.poll() is None
        time.sleep(0.2)
    (left,) = _worker_folders(grader.pid)
    time.sleep(2)  # the submission is running in it now
    os.killpg(grader.pid, signal.SIGKILL)  # as the OOM killer or a cancelled CI job does
    grader.wait()
    assert left.is_dir() and any(left.glob("submission-*"))

    # A folder of a process that still runs is kept, whatever its age.
    alive = subprocess.Popen(
        [sys.executable, "-c", "from grader.sandbox.scratch import make_scratch; import time; "
         "print(make_scratch('ptgrade-worker-'), flush=True); time.sleep(600)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        kept = Path(alive.stdout.readline().strip())
        run = ptgrade("grade", str(CORRECT), "--format", "json", *LIMITS)
        assert run.returncode == 0, run.stderr
        assert not left.exists()
        assert kept.is_dir()
    finally:
        alive.kill()
        alive.wait()
    shutil.rmtree(kept, ignore_errors=True)


def test_grades_csv_has_one_row_per_student_of_a_repository_layout(tmp_path):
    repos = tmp_path / "repos"
    (repos / "ana").mkdir(parents=True)
    (repos / "bo").mkdir()
    shutil.copy(SAMPLES / "cleo_no_zero_grad.ipynb", repos / "ana" / f"{ASSIGNMENT}.ipynb")
    shutil.copy(CORRECT, repos / "ana" / "scratch copy.ipynb")  # not what she handed in
    (repos / "ana" / "notes.ipynb").write_text(json.dumps(nbformat.v4.new_notebook()))
    shutil.copy(CORRECT, repos / "bo" / "homework.ipynb")
    output = tmp_path / "grades"
    run = ptgrade("batch", str(repos), "--output", str(output), "--jobs", "1", *LIMITS)
    assert run.returncode == 0, run.stderr
    assert len(list((output / "results").glob("*.json"))) == 4  # every notebook's own result
    rows = list(csv.DictReader(open(output / "grades.csv")))
    assert [(r["student"], r["submission"], r["score"]) for r in rows] == [
        ("ana", f"ana/{ASSIGNMENT}", "17.31"),
        ("bo", "bo/homework", "20.0"),
    ]
