"""`ptgrade` as a user runs it: exit codes, formats, the step summary, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "01_pytorch_workflow_exercises"
CORRECT = SAMPLES / "ada_correct.ipynb"
FAULTY = SAMPLES / "cleo_no_zero_grad.ipynb"


def ptgrade(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=240,
    )


def test_grade_json_has_the_stable_shape_and_exit_0_whatever_the_score():
    run = ptgrade("grade", str(FAULTY), "--format", "json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert {"assignment", "notebook", "score", "max_score", "sections", "errors"} <= set(report)
    assert report["assignment"] == "01_pytorch_workflow_exercises"
    sections = {s["id"]: s for s in report["sections"]}
    assert list(sections) == [
        "device",
        "data",
        "split",
        "model",
        "loss_optimizer",
        "training_loop",
        "predictions",
        "save_model",
        "load_model",
    ]
    check_keys = {"id", "passed", "points", "max_points", "message", "hint"}
    assert all(check_keys <= set(c) for s in report["sections"] for c in s["checks"])
    failed = [c for c in sections["training_loop"]["checks"] if not c["passed"]]
    assert {c["hint"] for c in failed} >= {"training.no_zero_grad"}
    assert report["score"] < report["max_score"] == 20


def test_min_score_sets_exit_1_and_says_why():
    run = ptgrade("grade", str(FAULTY), "--format", "json", "--min-score", "19.5")
    assert run.returncode == 1
    assert "below --min-score 19.5" in run.stderr
    assert json.loads(run.stdout)["score"] < 19.5


def test_check_exits_0_only_when_everything_passes(tmp_path):
    good = ptgrade("check", str(CORRECT))
    bad = ptgrade("check", str(FAULTY))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Score: 20 / 20" in good.stdout
    assert bad.returncode == 1
    assert "`optimizer.zero_grad()` is not called" in bad.stdout
    assert "hint: Call `optimizer.zero_grad()` every epoch" in bad.stdout


def test_junit_report_written_to_file_and_step_summary_appended(tmp_path):
    report, summary = tmp_path / "report.xml", tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    run = ptgrade(
        "grade",
        str(FAULTY),
        "--format",
        "junit",
        "--output",
        str(report),
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert run.returncode == 0, run.stderr
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert int(suite.get("failures")) >= 1
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    assert "| Section |" in text and "training_loop" in text.replace(
        "Training and testing loop", "training_loop"
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not a notebook (invalid JSON"),
        ('{"hello": 1}', "not a Jupyter notebook"),
        (None, "no such file"),
        ("folder", "is a folder, not a notebook (`ptgrade batch FOLDER --output DIR`"),
    ],
)
def test_unusable_input_exits_2_with_one_line_and_no_traceback(tmp_path, content, reason):
    path = tmp_path / "submission.ipynb"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    run = ptgrade("grade", str(path))
    assert run.returncode == 2
    assert reason in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_a_report_goes_into_a_new_folder_or_fails_before_grading(tmp_path):
    report = tmp_path / "reports" / "ci" / "report.xml"
    run = ptgrade("grade", str(FAULTY), "--format", "junit", "--output", str(report))
    assert run.returncode == 0 and report.read_text().startswith("<?xml")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    run = ptgrade("grade", str(FAULTY), "--output", str(blocked / "report.json"))
    assert run.returncode == 2
    assert run.stderr == f"ptgrade: cannot write {blocked / 'report.json'}: {blocked} is a file\n"


def test_batch_output_that_cannot_be_a_folder_is_refused(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    run = ptgrade("batch", str(FAULTY.parent), "--output", str(blocked))
    assert run.returncode == 2
    assert run.stderr == f"ptgrade: cannot write results under {blocked}: Not a directory\n"


def test_an_unreachable_scheduler_is_one_line_and_nothing_graded(tmp_path):
    output = tmp_path / "grades"
    wait = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    scheduler = "tcp://127.0.0.1:9"  # the discard port: nothing listens there
    run = ptgrade(
        "batch", str(FAULTY.parent), "--output", str(output), "--scheduler", scheduler, env=wait
    )
    assert run.returncode == 2
    assert f"ptgrade: cannot reach the Dask scheduler at {scheduler}" in run.stderr
    assert "Traceback" not in run.stderr and not list((output / "results").iterdir())


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--timeout", "-1", "-1 is below the least allowed, 0.1"),
        ("--cell-timeout", "abc", "'abc' is not a number"),
        ("--cell-timeout", "nan", "'nan' is not a finite number"),
        ("--memory-mb", "1", "1 is below the least allowed, 64"),
        ("--solutions", "/no/such/solutions", "/no/such/solutions: no such folder"),
    ],
)
def test_impossible_options_are_refused_before_grading(option, value, says):
    run = ptgrade("grade", str(FAULTY), option, value)
    assert run.returncode == 2
    assert f"argument {option}: {says}" in run.stderr and "Traceback" not in run.stderr


def test_a_notebook_of_another_assignment_is_refused(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    path = tmp_path / "homework.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("print('hello')")]), path)
    run = ptgrade("grade", str(path))
    assert run.returncode == 2
    assert "not a notebook of this kit's assignments" in run.stderr


def test_version_names_the_kit_and_the_torch_it_grades_with():
    from importlib.metadata import version

    run = ptgrade("--version")
    assert run.returncode == 0
    assert run.stdout.startswith(f"ptgrade {version('ptgrade')} (torch {version('torch')}, ")


def test_output_cut_short_by_its_reader_ends_quietly():
    # The reader of `ptgrade hints | head` gone before the first line: every write fails.
    ptgrade_bin = Path(sys.executable).parent / "ptgrade"
    process = subprocess.Popen(
        [str(ptgrade_bin), "hints"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141  # as `yes | head` under pipefail
    assert stderr == ""  # no traceback


def test_hints_lists_the_catalogue():
    from grader.checking.hints import HINTS

    run = ptgrade("hints")
    assert run.returncode == 0
    for hint_id in HINTS:
        assert hint_id in run.stdout


def test_the_warm_worker_can_start_before_torch_is_imported():
    # One grade's start-up costs the longer of two torch imports, not their sum: the CLI starts
    # the warm worker before importing torch itself, and the worker's own imports stay lean.
    probe = (
        "import sys\n"
        "loaded = lambda: sorted(m for m in ('torch', 'nbformat') if m in sys.modules)\n"
        "import grader.sandbox.warm\n"
        "print(loaded())\n"
        "import grader.cli, grader.sandbox.execution\n"
        "print(loaded())\n"
        "from grader import check\n"
        "print(callable(check))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    worker, cli, helper = done.stdout.split("\n")[:3]
    assert worker == "[]"  # the worker imports torch itself, and nothing it does not need
    assert cli == "['nbformat']"  # no torch before the worker is started
    assert helper == "True"  # `from grader import check` still works in a notebook
