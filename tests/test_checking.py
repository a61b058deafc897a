"""The checks' pytest session stays open per process and judges each record on its own."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.checking.pytest_session import run_checks
from grader.grading import Options, grade
from grader.packs.workflow01 import PACK

CHECKS = PACK.checks_dir  # chapter 01's public checks
REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "samples" / "01_pytorch_workflow_exercises"
OPTIONS = Options()


def verdicts(name: str) -> dict[str, tuple[bool, str | None]]:
    result = grade(SAMPLES / f"{name}.ipynb", OPTIONS)
    return {c.id: (c.passed, c.hint) for s in result.sections for c in s.checks}


def test_a_record_is_judged_the_same_whatever_came_before():
    correct = verdicts("ada_correct")
    faulty = verdicts("cleo_no_zero_grad")
    assert all(passed for passed, _ in correct.values())
    assert not all(passed for passed, _ in faulty.values())
    assert verdicts("ada_correct") == correct
    assert verdicts("cleo_no_zero_grad") == faulty


def _grade_in_fork(queue) -> None:
    queue.put(verdicts("cleo_no_zero_grad"))


def test_a_forked_process_opens_its_own_session():
    here = verdicts("cleo_no_zero_grad")  # this process's session is open (its thread runs)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_grade_in_fork, args=(queue,))
    child.start()
    there = queue.get(timeout=120)
    child.join(timeout=30)
    assert there == here


def test_checks_that_cannot_be_collected_stop_grading_with_a_clear_error(tmp_path):
    hidden = tmp_path / "checks"
    hidden.mkdir()
    (hidden / "test_broken.py").write_text("def test_(:\n")
    with pytest.raises(RuntimeError, match="the checks could not run"):
        run_checks(record=None, present_sections=set(), hidden_dir=hidden, checks_dir=CHECKS)


def test_a_failing_check_is_reported_without_printing_its_arguments(monkeypatch):
    # pytest's long traceback repr()s a failing test's arguments: for a record that is thousands
    # of tensors printed, most of a failing submission's grading time. A verdict needs only the
    # exception.
    from grader.record.submission import Record

    printed = []
    monkeypatch.setattr(Record, "__repr__", lambda self: printed.append(1) or "Record(...)")
    faulty = verdicts("cleo_no_zero_grad")
    assert not all(passed for passed, _ in faulty.values())
    assert printed == []


def _a_record(monkeypatch):
    import grader.grading

    seen = {}
    real = grader.grading.run_checks

    def spy(record, present, hidden_dir=None):
        seen["args"] = (record, present)
        return real(record, present, hidden_dir)

    monkeypatch.setattr(grader.grading, "run_checks", spy)
    grade(SAMPLES / "ada_correct.ipynb", OPTIONS)
    return seen["args"]


def test_checks_that_never_finish_fail_that_submission_only(tmp_path, monkeypatch):
    import grader.checking.pytest_session

    record, present = _a_record(monkeypatch)
    hidden = tmp_path / "checks"
    hidden.mkdir()
    (hidden / "test_slow.py").write_text(
        "import time\n"
        "from grader.checking.plugin import check\n"
        "CALLS = []\n"
        "@check('split', 'slow', hidden=True)\n"
        "def test_slow():\n"
        "    CALLS.append(1)\n"
        "    if len(CALLS) == 1:\n"
        "        time.sleep(5)  # only the first time: past the limit below\n"
    )
    monkeypatch.setattr(grader.checking.pytest_session, "CHECKS_TIMEOUT", 1.0)
    first = grader.checking.pytest_session.open_checks(hidden, checks_dir=CHECKS)
    started = time.monotonic()
    cut = {v.id: v for v in run_checks(record, present, hidden_dir=hidden)}
    # The verdicts come back on time: the checks given so far, the one that never finished
    # (and any after it) as the grader's error, never a missing grade.
    assert time.monotonic() - started < 3
    assert cut["split.slow"].internal_error == "the checks did not finish within 1 s"
    assert not cut["split.slow"].passed
    assert cut["device.value"].passed and not cut["device.value"].internal_error
    # The next record gets a session of its own, not a place behind the stuck one.
    monkeypatch.setattr(grader.checking.pytest_session, "CHECKS_TIMEOUT", 120.0)
    verdicts = run_checks(record, present, hidden_dir=hidden)
    assert grader.checking.pytest_session.open_checks(hidden, checks_dir=CHECKS) is not first
    assert verdicts and all(v.passed for v in verdicts)


def test_the_open_session_leaves_the_process_imports_alone():
    # The session lives as long as its process (a student's kernel, for `check()`): no pytest
    # import hook may stay behind in it.
    probe = (
        "import sys\n"
        "from grader.grading import grade\n"
        f"grade({str(SAMPLES / 'ada_correct.ipynb')!r})\n"
        "print(sorted(type(finder).__name__ for finder in sys.meta_path))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "AssertionRewritingHook" not in done.stdout
    assert "[" in done.stdout  # the probe did print the finders


def test_an_edited_check_stops_grading_instead_of_being_collected_again(tmp_path, monkeypatch):
    # The checks are loaded once a process, before any notebook runs: a check file that changes
    # afterwards (an instructor's edit, or anything else) is never collected silently.
    import grader.checking.pytest_session
    from grader.errors import GraderError

    record, present = _a_record(monkeypatch)
    hidden = tmp_path / "checks"
    hidden.mkdir()
    check = hidden / "test_edited.py"
    source = (
        "from grader.checking.plugin import check\n"
        "@check('split', 'edited', hidden=True)\n"
        "def test_edited():\n"
        "    assert {outcome}\n"
    )
    check.write_text(source.format(outcome="True"))
    first = grader.checking.pytest_session.open_checks(hidden, checks_dir=CHECKS)
    assert all(v.passed for v in run_checks(record, present, hidden_dir=hidden))
    assert (
        grader.checking.pytest_session.open_checks(hidden, checks_dir=CHECKS) is first
    )  # unchanged files: the same session
    check.write_text(source.format(outcome="False, 'edited to fail'"))
    with pytest.raises(GraderError, match=f"{check} changed on disk while this grader ran"):
        run_checks(record, present, hidden_dir=hidden)
    check.write_text(source.format(outcome="True"))  # as it was: the same checks again
    assert all(v.passed for v in run_checks(record, present, hidden_dir=hidden))


def test_installed_pytest_plugins_stay_out_of_the_checks(tmp_path):
    # A plugin installed beside the kit (entry point `pytest11`) is loaded by any plain pytest
    # run; the kit's checks session must not load it: it would run inside every grade.
    marker = tmp_path / "loaded"
    (tmp_path / "stray_plugin.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\n"
        "def pytest_configure(config):\n"
        f"    open({str(marker)!r}, 'w').write('configured')\n"
    )
    info = tmp_path / "stray_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stray-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\nstray = stray_plugin\n")
    probe = (
        "from grader.grading import grade\n"
        f"result = grade({str(SAMPLES / 'ada_correct.ipynb')!r})\n"
        "print('SCORE', result.score, result.max_score)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    # The plugin is installed: a plain pytest run loads it.
    empty = tmp_path / "no_tests"
    empty.mkdir()
    plain = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(empty)]
    subprocess.run(plain, capture_output=True, timeout=120, env=env, cwd=empty)
    assert marker.read_text() == "configured"
    marker.unlink()
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    score, max_score = done.stdout.split("SCORE")[1].split()
    assert float(score) == float(max_score) > 0
    assert not marker.exists(), "the installed plugin ran inside the kit's checks"
