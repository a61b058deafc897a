"""nbgrader end to end: its test cells call the kit, and it records the points `ptgrade` gives.

The slow tests build a scratch course from this repository (the solutions as source, the
repository's nbgrader_config.py), run the real `nbgrader` commands on the bundled sample
submissions and compare what nbgrader records with `ptgrade grade` / `ptgrade check`.
"""

from __future__ import annotations

import copy
import csv
import functools
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grader import inline
from grader.result import CheckResult, SectionResult
from tests.submissions.build import build_submission, load_corpus

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_pytorch_workflow_exercises"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
SAMPLES = REPO_ROOT / "samples" / ASSIGNMENT
# Short limits keep the endless loop quick; the same ones go to nbgrader and to `ptgrade`.
# Not shorter: on a 2-core machine shared with other work, nbgrader's kernel took over 5 s to
# `import torch`, and nbgrader fails a whole submission whose cell runs out of time.
CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 15, 120
# Where no loop must run out: a cell limit that such a machine keeps.
ROOMY_CELL_TIMEOUT = 60
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ---------------------------------------------------------------------------------------------
# grader.inline on its own: which notebook, what a test cell shows, nothing on stderr
# ---------------------------------------------------------------------------------------------


def _section(score: float, max_score: float = 2.0) -> SectionResult:
    passed = score >= max_score
    checks = [
        CheckResult("split.sizes", True, 1.0, 1.0),
        CheckResult(
            "split.float_index",
            passed,
            1.0 if passed else 0.0,
            1.0,
            message="`train_split` is 80.0, a float.",
            hint="split.float_index",
            hint_text="Use `int(0.8 * len(X))`.",
        ),
    ]
    if score == 0:
        checks[0] = CheckResult("split.sizes", False, 0.0, 1.0, message="No split.")
    return SectionResult("split", "Split the data 80/20", score, max_score, checks)


@pytest.fixture
def graded_as(monkeypatch):
    """Make every kit call in a test cell see this section result; records `hidden` per call."""
    calls: list[bool] = []

    def use(result: SectionResult) -> list[bool]:
        def fake(section, hidden=False, notebook=None):
            calls.append(hidden)
            return result

        monkeypatch.setattr(inline, "section_result", fake)
        return calls

    monkeypatch.delenv(inline.SANDBOX_ENV, raising=False)
    return use


def test_a_passing_section_shows_nothing(graded_as, monkeypatch, capsys):
    graded_as(_section(2.0))
    for mode in (None, "validate", "autograde"):
        if mode:
            monkeypatch.setenv(inline.NBGRADER_ENV, mode)
        assert inline.assert_section("split") is None
        assert inline.assert_section("split", hidden=True) is None
    assert capsys.readouterr().out == ""


def test_a_failing_section_raises_the_message_and_hint_outside_autograde(graded_as, monkeypatch):
    graded_as(_section(1.0))
    for mode in (None, "validate"):
        if mode:
            monkeypatch.setenv(inline.NBGRADER_ENV, mode)
        with pytest.raises(AssertionError) as error:
            inline.assert_section("split")
        assert str(error.value) == (
            "Section 'split': 1 of 2 points.\n"
            "- `train_split` is 80.0, a float.\n"
            "  Hint: Use `int(0.8 * len(X))`."
        )


def test_autograde_gives_partial_credit_as_the_cells_value(graded_as, monkeypatch, capsys):
    calls = graded_as(_section(1.0))
    monkeypatch.setenv(inline.NBGRADER_ENV, "autograde")
    assert inline.assert_section("split") == 1.0
    assert inline.assert_section("split", hidden=True) == 1.0
    # Both calls count the hidden checks; only the visible one prints the verdict.
    assert calls == [True, True]
    assert capsys.readouterr().out == (
        "Section 'split': 1 of 2 points.\n"
        "- `train_split` is 80.0, a float.\n"
        "  Hint: Use `int(0.8 * len(X))`.\n"
    )


def test_autograde_raises_for_a_section_with_no_points(graded_as, monkeypatch):
    graded_as(_section(0.0))
    monkeypatch.setenv(inline.NBGRADER_ENV, "autograde")
    with pytest.raises(AssertionError, match=r"Section 'split': 0 of 2 points\.\n- No split\."):
        inline.assert_section("split")


def test_grading_writes_nothing_on_stderr(monkeypatch, tmp_path, capfd):
    """nbgrader zeroes a test cell with stderr output: warnings from grading must not reach it."""
    import warnings

    def noisy_grade(path, options):
        warnings.warn(
            "To copy construct from a tensor, use clone().detach()", UserWarning, stacklevel=1
        )
        print("a warning", file=sys.stderr)
        os.write(2, b"a C++ warning\n")
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('child\\n')"])
        return "graded"

    monkeypatch.setattr("grader.grading.grade", noisy_grade)
    notebook = tmp_path / NOTEBOOK
    shutil.copy(SAMPLES / "ada_correct.ipynb", notebook)
    stat = notebook.stat()
    assert inline._graded(str(notebook), stat.st_mtime_ns, stat.st_size, True, None) == "graded"
    print("after", file=sys.stderr)
    assert capfd.readouterr().err == "after\n"


def _test_cell(*outputs: dict, source: str = 'assert_section("split")') -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "split_tests", "points": 2}
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def test_stray_stderr_in_a_kit_test_cell_costs_nothing_the_kit_verdict_counts():
    from nbgrader.utils import determine_grade

    from grader.nbgrader_support import KitVerdicts

    stderr = {"output_type": "stream", "name": "stderr", "text": "UserWarning: late\n"}
    value = {"output_type": "execute_result", "data": {"text/plain": "1.5"}, "metadata": {}}
    error = {"output_type": "error", "ename": "AssertionError", "evalue": "", "traceback": []}
    cases = [((stderr,), 2.0), ((stderr, value), 1.5), ((stderr, error), 0.0)]
    for outputs, points in cases:
        cell = _test_cell(*outputs)
        assert determine_grade(cell)[0] == 0  # what nbgrader alone would record
        KitVerdicts().preprocess_cell(cell, {}, 0)
        assert determine_grade(cell) == (points, 2.0)
        assert cell.outputs[0]["text"] == "UserWarning: late\n"  # still in the feedback
    # Other grade cells keep nbgrader's own rule.
    other = _test_cell(stderr, source="assert answer == 42")
    KitVerdicts().preprocess_cell(other, {}, 0)
    assert determine_grade(other)[0] == 0


def _grade_result(*sections: SectionResult):
    from grader.result import GradeResult

    total = sum(s.score for s in sections)
    return GradeResult("a", "a.ipynb", total, sum(s.max_score for s in sections), list(sections))


def test_the_kit_step_writes_the_verdict_nbgrader_reads():
    """Outside the kernel, KitExecute turns the kit's result into the outputs nbgrader grades:
    as assert_section would in the kernel (the first failing call decides)."""
    from nbgrader.utils import determine_grade

    from grader.nbgrader_support import Verdicts

    source = 'from grader.inline import assert_section\nassert_section("split")\n'
    hidden_source = source + 'assert_section("split", hidden=True)\n'
    full, partial, zero = _section(2.0), _section(1.0), _section(0.0)
    cases = [  # (visible result, hidden result, autograde) -> points
        ((full, full, True), 2.0),
        ((full, partial, True), 1.0),  # autograde counts the hidden checks in every call
        ((partial, partial, True), 1.0),
        ((zero, zero, True), 0.0),
        ((partial, partial, False), 0.0),  # validate: any failure is an error
        ((full, partial, False), 0.0),  # ... in the hidden call too
    ]
    for (visible, hidden, autograde), points in cases:
        verdicts = Verdicts({False: _grade_result(visible), True: _grade_result(hidden)})
        cell = _test_cell(source=hidden_source)
        cell.outputs = verdicts.outputs(cell, autograde)
        assert determine_grade(cell) == (points, 2.0), (visible.score, hidden.score, autograde)
        if 0 < points < 2:
            assert "`train_split` is 80.0, a float." in cell.outputs[0]["text"]
        if points == 0:
            assert "Hint: Use `int(0.8 * len(X))`." in cell.outputs[-1]["evalue"]
    # The grader's own failure, or a section the result lacks: no points, and why.
    cell = _test_cell(source=source)
    cell.outputs = Verdicts({}, "GraderError: no bubblewrap").outputs(cell, True)
    assert determine_grade(cell)[0] == 0 and "no bubblewrap" in cell.outputs[0]["evalue"]
    cell = _test_cell(source='assert_section("nope")')
    cell.outputs = Verdicts({True: _grade_result(full)}).outputs(cell, True)
    assert determine_grade(cell)[0] == 0 and "'nope'" in cell.outputs[0]["evalue"]


def test_a_kit_that_cannot_grade_never_records_a_zero(monkeypatch):
    """The grader's own failure stops nbgrader on that notebook with the reason (GraderError);
    a notebook that is not the kit's gets no points and says why."""
    from grader.errors import GraderError
    from grader.nbgrader_support import Grading
    from grader.notebook.reading import UnusableNotebook

    notebook = nbformat.read(SAMPLES / "ada_correct.ipynb", as_version=4)
    resources = {"nbgrader": {"notebook": ASSIGNMENT}}
    for raised in (GraderError("bubblewrap is broken"), RuntimeError("no worker")):

        def failing(path, options, raised=raised):
            raise raised

        monkeypatch.setattr("grader.grading.grade", failing)
        grading = Grading(notebook, resources, autograde=True)
        grading.wait()
        assert isinstance(grading.failure, GraderError)
        assert str(raised) in str(grading.failure) and not grading.verdicts.results

    def unusable(path, options):
        raise UnusableNotebook("not a notebook of this kit's assignments")

    monkeypatch.setattr("grader.grading.grade", unusable)
    grading = Grading(notebook, resources, autograde=True)
    assert grading.wait().error == "not a notebook of this kit's assignments"
    assert grading.failure is None


def test_the_kit_step_reads_the_sections_a_test_cell_grades():
    from grader.nbgrader_support import kit_calls

    cell = _test_cell(
        source='x = 1\nassert_section("data")\nkit.assert_section("data", hidden=True)'
    )
    assert kit_calls(cell) == [("data", False), ("data", True)]
    # Source it cannot read: the section its grade id names.
    assert kit_calls(_test_cell(source="assert_section(")) == [("split", False)]


def test_under_the_kit_step_the_kernel_leaves_the_verdict_to_it(graded_as, monkeypatch):
    graded_as(_section(0.0))
    monkeypatch.setenv(inline.VERDICTS_ENV, "1")
    with pytest.raises(AssertionError):  # outside nbgrader the variable means nothing
        inline.assert_section("split")
    monkeypatch.setenv(inline.NBGRADER_ENV, "autograde")
    assert inline.assert_section("split") is None


def test_nbgrader_config_runs_the_kit_step_and_shares_the_kit_time_limits(monkeypatch):
    from traitlets.config import PyFileConfigLoader

    from grader.nbgrader_support import KitExecute, KitVerdicts, cell_timeout

    monkeypatch.setenv("PTGRADE_CELL_TIMEOUT", "5")
    monkeypatch.setenv("PTGRADE_TIMEOUT", "120")
    monkeypatch.delenv("PTGRADE_SOLUTIONS", raising=False)
    monkeypatch.setattr("grader.settings._EXPORTED", {}, raising=False)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO_ROOT)).load_config()
    steps = config.Autograde.autograde_preprocessors
    assert steps[steps.index(KitVerdicts) + 1].__name__ == "SaveAutoGrades"
    # The verdicts are computed outside the kernel, by the step that runs it; nbgrader's
    # Validator takes no steps from the config, so the kit's are its defaults.
    from nbgrader.validator import Validator

    assert steps[0] is KitExecute
    assert Validator().preprocessors[-2] is KitExecute
    assert issubclass(Validator().preprocessors[-1], KitVerdicts)
    assert config.OverwriteCells.add_missing_cells is True
    # Loading the config sets nothing: the kit's step reads the settings from the whole
    # config when it runs (the file's c.PTGrade.*, nbgrader's --PTGrade.x=...).
    assert "PTGRADE_SOLUTIONS" not in os.environ
    step = KitExecute(config=config)
    settings = step.kit_settings()
    timeout = functools.partial(cell_timeout, settings.limits)
    assert timeout(_test_cell()) == 180  # the kit grades the whole notebook in a test cell
    assert timeout(nbformat.v4.new_code_cell("while True: pass")) == 5
    # ... and writes the course's solutions for the kernel and the kit's sandbox to find.
    assert os.environ["PTGRADE_SOLUTIONS"] == str(REPO_ROOT / "solutions")
    assert settings.source("solutions").startswith("nbgrader config")


def test_the_kit_step_holds_the_kernel_to_the_courses_cell_timeout(monkeypatch, tmp_path):
    """Real nbgrader, in this process: c.PTGrade.cell_timeout is the kernel's per-cell limit
    (the default 60 s would let this cell finish)."""
    from traitlets.config import Config

    from grader.nbgrader_support import KitExecute, KitFailed

    monkeypatch.delenv("PTGRADE_CELL_TIMEOUT", raising=False)
    monkeypatch.setattr("grader.settings._EXPORTED", {}, raising=False)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # what the step exports stays here
    config = Config()
    config.PTGrade.cell_timeout = 2
    config.PTGrade.solutions = str(tmp_path)
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(20)\nprint('done')")]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    started = time.monotonic()
    ran, _ = KitExecute(config=config).preprocess(notebook, {"metadata": {"path": str(tmp_path)}})
    assert time.monotonic() - started < 15
    outputs = ran.cells[0].outputs
    assert any(o.get("ename") == "CellTimeoutError" for o in outputs), outputs
    assert not any("done" in o.get("text", "") for o in outputs)
    # A bad value: one line naming it, and no notebook run (never a student's 0).
    config.PTGrade.cell_timeout = "60s"
    with pytest.raises(KitFailed, match=r"c\.PTGrade\.cell_timeout must be .* not '60s'"):
        KitExecute(config=config).preprocess(notebook, {})


def test_under_nbgrader_the_notebook_is_the_one_the_kernel_runs(monkeypatch, tmp_path):
    """Not $PTGRADE_NOTEBOOK nor Jupyter's session (stale in an instructor's environment): the
    notebook in the kernel's folder whose code cells are the ones the kernel has run."""
    correct = nbformat.read(SAMPLES / "ada_correct.ipynb", as_version=4)
    copy_ = copy.deepcopy(correct)
    copy_.cells = [
        c for c in copy_.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "data"
    ]
    nbformat.write(correct, tmp_path / NOTEBOOK)
    nbformat.write(copy_, tmp_path / "copy.ipynb")
    nbformat.write(correct, tmp_path / "other.ipynb")
    (tmp_path / "notes.ipynb").write_text("not a notebook")
    code = [c.source for c in correct.cells if c.cell_type == "code" and c.source.strip()]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(inline.NOTEBOOK_ENV, str(SAMPLES / "ben_float_split_index.ipynb"))
    monkeypatch.setenv("JPY_SESSION_NAME", str(SAMPLES / "ben_float_split_index.ipynb"))
    monkeypatch.setenv(inline.NBGRADER_ENV, "autograde")

    # Up to the data cell, both full copies and the one without it could be running.
    monkeypatch.setattr(inline, "_cells_run_so_far", lambda: code[:2])
    with pytest.raises(FileNotFoundError, match="cannot tell which notebook"):
        inline.find_notebook()
    os.remove("other.ipynb")
    with pytest.raises(FileNotFoundError, match=r"matching: 01_pytorch.*ipynb, copy\.ipynb"):
        inline.find_notebook()
    monkeypatch.setattr(inline, "_cells_run_so_far", lambda: code[:5])
    assert inline.find_notebook() == Path(NOTEBOOK)

    # Without a kernel's history, only the assignment's own file name can tell.
    monkeypatch.setattr(inline, "_cells_run_so_far", lambda: None)
    assert inline.find_notebook() == Path(NOTEBOOK)
    # Outside nbgrader the environment is trusted as before.
    monkeypatch.delenv(inline.NBGRADER_ENV)
    assert inline.find_notebook() == SAMPLES / "ben_float_split_index.ipynb"


def test_the_kit_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(inline.CELL_TIMEOUT_ENV, "5")
    monkeypatch.setenv(inline.TIMEOUT_ENV, "120")
    limits = inline._limits()
    assert (limits.cell_timeout, limits.notebook_timeout) == (5.0, 120.0)
    for wrong in ("60s", "-1", "0", "inf"):  # the instructor's typo: named, not a ValueError
        monkeypatch.setenv(inline.CELL_TIMEOUT_ENV, wrong)
        with pytest.raises(ValueError, match=rf"\$PTGRADE_CELL_TIMEOUT must be .* not '{wrong}'"):
            inline._limits()


# ---------------------------------------------------------------------------------------------
# Real nbgrader on a scratch course
# ---------------------------------------------------------------------------------------------


def _code_cell_index(notebook: nbformat.NotebookNode, grade_id: str) -> int:
    for index, cell in enumerate(notebook.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return index
    raise KeyError(grade_id)


def _tampered(path: Path) -> nbformat.NotebookNode:
    """The student emptied a failing section's test cell and deleted a passing one."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[_code_cell_index(notebook, "split_tests")].source = "pass"
    del notebook.cells[_code_cell_index(notebook, "model_tests")]
    return notebook


def _corpus_entry(name: str) -> dict:
    return next(e for e in load_corpus(ASSIGNMENT) if e["name"] == name)


def submissions() -> dict[str, nbformat.NotebookNode]:
    """Student id -> submitted notebook."""
    read = {
        name: nbformat.read(SAMPLES / f"{name}.ipynb", as_version=4)
        for name in ("ada_correct", "eve_whole_model_saved", "finn_endless_loop")
    }
    read["ben_float_split_index_tampered"] = _tampered(SAMPLES / "ben_float_split_index.ipynb")
    read["gus_predictions_deleted"] = build_submission(
        ASSIGNMENT, _corpus_entry("predictions_deleted")
    )
    read["hal_tensor_copy_warning"] = build_submission(ASSIGNMENT, _noisy_but_valid())
    read["ida_split_retyped"] = _retyped(SAMPLES / "ada_correct.ipynb", "split")
    return read


def _retyped(path: Path, grade_id: str) -> nbformat.NotebookNode:
    """The student deleted a graded cell and typed it again: the same code, no nbgrader tag."""
    notebook = nbformat.read(path, as_version=4)
    index = _code_cell_index(notebook, grade_id)
    notebook.cells[index] = nbformat.v4.new_code_cell(notebook.cells[index].source)
    return notebook


def _noisy_but_valid() -> dict:
    """A correct submission that writes to stderr twice: a torch UserWarning (the corpus entry
    `valid_tensor_copy_warning`) and a debugging print to the process's real stderr."""
    entry = copy.deepcopy(_corpus_entry("valid_tensor_copy_warning"))
    test_split = "X_test, y_test = X[train_split:], y[train_split:]"
    debug = 'import sys\nprint("sizes:", len(X_train), len(X_test), file=sys.__stderr__)'
    entry["changes"].append({"cell": "split", "old": test_split, "new": f"{test_split}\n{debug}"})
    return entry


def nbgrader_validate(path: Path, course: Path, *options: str) -> subprocess.CompletedProcess:
    """`nbgrader validate` of one notebook in `course`, which must report (exit 0)."""
    result = subprocess.run(
        ["nbgrader", "validate", *options, str(path)],
        cwd=course,
        env=nbgrader_env(course, ROOMY_CELL_TIMEOUT),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


def nbgrader_env(course: Path, cell_timeout: float = CELL_TIMEOUT) -> dict[str, str]:
    env = dict(os.environ)
    # nbgrader shells out to alembic, next to this interpreter in the venv.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PTGRADE_GRADEBOOK_URL"] = f"sqlite:///{course / 'gradebook.db'}"
    env["PTGRADE_CELL_TIMEOUT"] = str(cell_timeout)
    env["PTGRADE_TIMEOUT"] = str(NOTEBOOK_TIMEOUT)
    env["MPLBACKEND"] = "Agg"
    # Stale pointers an instructor's shell may hold: under nbgrader they must be ignored.
    env["PTGRADE_NOTEBOOK"] = str(SAMPLES / "ada_correct.ipynb")
    env["JPY_SESSION_NAME"] = str(SAMPLES / "ada_correct.ipynb")
    for name in ("PTGRADE_SANDBOX", "PTGRADE_SOLUTIONS", "NBGRADER_EXECUTION"):
        env.pop(name, None)
    return env


def nbgrader(
    course: Path, *args: str, timings: dict | None = None, cell_timeout: float = CELL_TIMEOUT
) -> str:
    started = time.monotonic()
    result = subprocess.run(
        ["nbgrader", *args],
        cwd=course,
        env=nbgrader_env(course, cell_timeout),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if timings is not None:
        timings[args[0]] = round(time.monotonic() - started, 1)
    assert result.returncode == 0, f"nbgrader {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


def ptgrade(*args: str, cell_timeout: float = CELL_TIMEOUT) -> dict:
    """`ptgrade grade|check NOTEBOOK` with the course's limits, as JSON (in this process)."""
    from grader.grading import Options, grade
    from grader.sandbox.execution import Limits

    command, notebook = args
    limits = Limits(cell_timeout=cell_timeout, notebook_timeout=NOTEBOOK_TIMEOUT)
    return grade(notebook, Options(limits=limits, hidden=command == "grade")).to_dict()


@pytest.fixture
def course(tmp_path) -> Path:
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO_ROOT / "nbgrader_config.py", course)
    shutil.copytree(
        REPO_ROOT / "solutions",
        course / "solutions",
        ignore=shutil.ignore_patterns("models", "__pycache__", ".ipynb_checkpoints"),
    )
    return course


def _recorded_points(course: Path, students) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook

    points = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in students:
            notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
            points[student] = {
                g.name.removesuffix("_tests"): g.score
                for g in notebook.grades
                if g.name.endswith("_tests")
            }
    return points


def _cell(path: Path, grade_id: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    return notebook.cells[_code_cell_index(notebook, grade_id)]


@pytest.mark.slow
def test_nbgrader_records_the_points_ptgrade_gives(course):
    timings: dict[str, float] = {}
    nbgrader(course, "generate_assignment", ASSIGNMENT, timings=timings)
    submitted = submissions()
    for student, notebook in submitted.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / NOTEBOOK)

    # `ptgrade grade` on the same files while nbgrader works (the two never share a process).
    started = time.monotonic()
    autograde = subprocess.Popen(
        ["nbgrader", "autograde", ASSIGNMENT],
        cwd=course,
        env=nbgrader_env(course),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    expected = {
        student: ptgrade("grade", str(course / "submitted" / student / ASSIGNMENT / NOTEBOOK))
        for student in submitted
    }
    log, _ = autograde.communicate(timeout=600)
    timings["autograde"] = round(time.monotonic() - started, 1)
    assert autograde.returncode == 0, log
    nbgrader(course, "generate_feedback", ASSIGNMENT, timings=timings)
    nbgrader(course, "export", "--to", str(course / "grades.csv"), timings=timings)
    print(f"nbgrader timings (s), {len(submitted)} submissions: {json.dumps(timings)}")

    # Every section of every submission: nbgrader's points are ptgrade's.
    recorded = _recorded_points(course, submitted)
    for student, result in expected.items():
        wanted = {s["id"]: s["score"] for s in result["sections"]}
        assert recorded[student] == pytest.approx(wanted, abs=1e-6), student
    # The samples really are what the comparison needs: full, partial, zero, timeout, deleted.
    scores = {s: {x["id"]: x["score"] for x in r["sections"]} for s, r in expected.items()}
    assert expected["ada_correct"]["score"] == 20
    assert expected["hal_tensor_copy_warning"]["score"] == 20
    assert 0 < scores["eve_whole_model_saved"]["save_model"] < 1
    assert scores["ben_float_split_index_tampered"]["split"] == 0
    assert scores["finn_endless_loop"]["predictions"] == 0
    assert scores["gus_predictions_deleted"]["predictions"] == 0
    assert expected["ida_split_retyped"]["score"] == 20  # found by its instructions

    with open(course / "grades.csv", newline="") as handle:
        exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert exported == pytest.approx({s: r["score"] for s, r in expected.items()}, abs=1e-6)

    autograded = course / "autograded"
    # The torch warning went to stderr in the student's cell (after the kit first graded, so
    # Jupyter still forwards stderr), and it cost nothing.
    hal = autograded / "hal_tensor_copy_warning" / ASSIGNMENT / NOTEBOOK
    warning = "UserWarning: To copy construct"
    assert any(warning in o.get("text", "") for o in _cell(hal, "data").outputs if _stderr(o))
    for section in expected["hal_tensor_copy_warning"]["sections"]:
        assert not any(_stderr(o) for o in _cell(hal, f"{section['id']}_tests").outputs)

    # Tampered test cells were put back (nbgrader's protection) and the kit's checks ran.
    ben = autograded / "ben_float_split_index_tampered" / ASSIGNMENT / NOTEBOOK
    split_tests = _cell(ben, "split_tests")
    assert 'assert_section("split", hidden=True)' in split_tests.source
    assert split_tests.outputs[-1].output_type == "error"
    assert "slice indices must be integers" in _flat("".join(split_tests.outputs[-1].traceback))
    assert 'assert_section("model", hidden=True)' in _cell(ben, "model_tests").source

    # A partial verdict is in the feedback, with its message and hint.
    feedback = course / "feedback" / "eve_whole_model_saved" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    shown = _flat(html.unescape(feedback.read_text()))
    save_model = next(
        s for s in expected["eve_whole_model_saved"]["sections"] if s["id"] == "save_model"
    )
    failed = [c for c in save_model["checks"] if not c["passed"]]
    assert failed and all(
        _flat(c["message"]) in shown and _flat(c["hint_text"]) in shown for c in failed
    )


def _stderr(output: dict) -> bool:
    return output.get("output_type") == "stream" and output.get("name") == "stderr"


def _flat(text: str) -> str:
    """Text without colours, every run of whitespace one space (as wrapped for a test cell)."""
    return " ".join(ANSI.sub("", text).split())


def _failed_sections(validate_output: str) -> dict[str, str]:
    """Section id -> the error nbgrader validate shows for its test cell."""
    text = ANSI.sub("", validate_output)
    failed = {}
    for block in text.split("The following cell failed:")[1:]:
        section = re.search(r'assert_section\("(\w+)"\)', block).group(1)
        failed[section] = _flat(block.split("The error was:", 1)[1])
    return failed


@pytest.mark.slow
@pytest.mark.parametrize("course_config", [False, True], ids=["in-the-kernel", "kit-step"])
def test_nbgrader_validate_gives_the_verdict_of_ptgrade_check(tmp_path, course_config):
    """Without the course's config (a student's own nbgrader) the kernel grades; with it, the
    kit's step in nbgrader's process does. The verdicts are the same."""
    if course_config:
        shutil.copy(REPO_ROOT / "nbgrader_config.py", tmp_path)
        shutil.copytree(
            REPO_ROOT / "solutions",
            tmp_path / "solutions",
            ignore=shutil.ignore_patterns("models", "__pycache__", ".ipynb_checkpoints"),
        )
    paths = []
    for name in ("ada_correct", "ben_float_split_index"):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(SAMPLES / f"{name}.ipynb", folder / NOTEBOOK)
        paths.append(folder / NOTEBOOK)
    for path in paths:
        result = nbgrader_validate(path, tmp_path)
        check = ptgrade("check", str(path), cell_timeout=ROOMY_CELL_TIMEOUT)
        failing = {s["id"]: s for s in check["sections"] if s["score"] < s["max_score"]}
        shown = _failed_sections(result.stdout)
        assert shown.keys() == failing.keys(), result.stdout
        if not failing:
            assert "Success! Your notebook passes all the tests." in result.stdout
        for section_id, section in failing.items():
            for item in section["checks"]:
                if not item["passed"]:
                    assert _flat(item["message"]) in shown[section_id]
                    assert _flat(item["hint_text"]) in shown[section_id]
    assert "split" in failing  # ben's float split index, in the second notebook


# ---------------------------------------------------------------------------------------------
# The verdict is computed outside the student's kernel; one submission costs only its own result
# ---------------------------------------------------------------------------------------------

REPLACES_THE_KIT = """\
device = "cuda" if torch.cuda.is_available() else "cpu"
import grader.inline
grader.inline.assert_section = lambda *args, **kwargs: None
"""
EDITS_THE_KIT = """\
device = "cuda" if torch.cuda.is_available() else "cpu"
import os
import grader.inline as kit
os.environ["PTGRADE_SANDBOX"] = "1"  # the kit does nothing inside its own sandbox
kit._inside_sandbox = lambda: True
kit._verdicts_outside = lambda: True
"""
# In the kit's sandbox only (nbgrader's kernel runs on): it kills its grading process, then
# its parent (the warm worker every submission is forked from), then itself.
KILLS_ITS_GRADER = """\
import os, signal
if os.environ.get("PTGRADE_SANDBOX") == "1":
    try:
        os.kill(os.getppid(), signal.SIGKILL)
    except OSError:  # not allowed where the worker is the sandbox's PID 1
        pass
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _released_with_device_cell(code: str) -> nbformat.NotebookNode:
    """The released notebook, no exercise answered, the device cell replaced by `code`."""
    notebook = nbformat.read(REPO_ROOT / "exercises" / ASSIGNMENT / NOTEBOOK, as_version=4)
    notebook.cells[_code_cell_index(notebook, "device")].source = code
    return notebook


def _with_a_killer_cell(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    index = _code_cell_index(notebook, "model")
    notebook.cells[index].source = KILLS_ITS_GRADER + notebook.cells[index].source
    return notebook


@pytest.mark.slow
def test_a_student_kernel_cannot_fake_the_points_nor_cost_others_theirs(course):
    """Through the real nbgrader autograde: a submission that replaces `assert_section` in its
    kernel, one that edits the kit's module attributes there, and one that kills its grading
    process (graded first) get ptgrade's points, 0 for every section they faked; the correct
    submission graded after them gets its full marks."""
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    submitted = {
        "abe_kills_its_grader": _with_a_killer_cell(SAMPLES / "ada_correct.ipynb"),
        "bo_replaces_assert_section": _released_with_device_cell(REPLACES_THE_KIT),
        "cy_edits_the_kit": _released_with_device_cell(EDITS_THE_KIT),
        "dot_correct": nbformat.read(SAMPLES / "ada_correct.ipynb", as_version=4),
    }
    for student, notebook in submitted.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / NOTEBOOK)
    nbgrader(course, "autograde", ASSIGNMENT, cell_timeout=ROOMY_CELL_TIMEOUT)
    recorded = _recorded_points(course, submitted)
    expected = {
        student: ptgrade(
            "grade",
            str(course / "submitted" / student / ASSIGNMENT / NOTEBOOK),
            cell_timeout=ROOMY_CELL_TIMEOUT,
        )
        for student in submitted
    }
    for student, result in expected.items():
        wanted = {s["id"]: s["score"] for s in result["sections"]}
        assert recorded[student] == pytest.approx(wanted, abs=1e-6), student
    for cheat in ("bo_replaces_assert_section", "cy_edits_the_kit"):
        faked = {s: p for s, p in recorded[cheat].items() if s != "device"}
        assert faked and not any(faked.values()), (cheat, recorded[cheat])
    killer = expected["abe_kills_its_grader"]
    assert killer["execution"]["status"] == "crashed"
    assert recorded["abe_kills_its_grader"]["model"] == 0
    assert expected["dot_correct"]["score"] == 20
    assert sum(recorded["dot_correct"].values()) == 20


# nbgrader's kernel is unconfined: it can find the kit's warm worker (a process nbgrader
# started) and kill it, with bubblewrap or unshare above it. It writes what it killed in its
# working folder (autograded/<student>/...).
KILLS_THE_WARM_WORKER = """\
import os, signal
if os.environ.get("PTGRADE_SANDBOX") != "1":  # in nbgrader's kernel
    parents = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    def _under_nbgrader(pid, nbgrader=os.getppid()):
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == nbgrader:
                return True
        return False
    killed = []
    for pid in filter(_under_nbgrader, parents):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"grader.sandbox.warm" in cmdline.read():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        except OSError:
            pass
    with open("killed.txt", "w") as out:
        out.write(" ".join(map(str, killed)))
"""


@pytest.mark.slow
def test_a_kernel_that_kills_the_warm_worker_costs_only_its_own_result(course):
    """Through the real nbgrader autograde: the second submission's kernel kills the kit's warm
    worker (warm from the first) before its first test cell. The kit starts a new one: the
    killer gets ptgrade's points or, at worst, nothing recorded (never a wrong score), and the
    submissions before and after it keep all of theirs."""
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    correct = nbformat.read(SAMPLES / "ada_correct.ipynb", as_version=4)
    killer = nbformat.from_dict(correct)
    device = killer.cells[_code_cell_index(killer, "device")]
    device.source = KILLS_THE_WARM_WORKER + device.source
    submitted = {"ann_correct": correct, "bea_kills_the_worker": killer, "cal_correct": correct}
    for student, notebook in submitted.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / NOTEBOOK)
    # nbgrader exits 1 where the kit could not grade a notebook (it records nothing for it).
    done = subprocess.run(
        ["nbgrader", "autograde", ASSIGNMENT],
        cwd=course,
        env=nbgrader_env(course, ROOMY_CELL_TIMEOUT),
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = done.stdout + done.stderr
    assert done.returncode in (0, 1), log

    killed = course / "autograded" / "bea_kills_the_worker" / ASSIGNMENT / "killed.txt"
    assert killed.read_text().split(), f"the kernel found no warm worker to kill:\n{log}"
    recorded = _recorded_points(course, ["ann_correct", "cal_correct"])
    assert sum(recorded["ann_correct"].values()) == 20
    assert sum(recorded["cal_correct"].values()) == 20
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        try:
            own = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "bea_kills_the_worker")
        except MissingEntry:
            own = None
        grades = {g.name: g.score for g in own.grades} if own is not None else {}
    assert grades or done.returncode == 1, log
    if grades:  # graded: as ptgrade grades it (in the sandbox the cell kills nothing)
        assert sum(s for n, s in grades.items() if n.endswith("_tests")) == 20, grades


# ---------------------------------------------------------------------------------------------
# The kit's settings in the course's nbgrader config (c.PTGrade.*)
# ---------------------------------------------------------------------------------------------

# Above CELL_TIMEOUT (nbgrader's kernel must import torch within it), and unlike any other
# limit here, so that the kit's message can only have it from the course's config.
COURSE_CELL_TIMEOUT = 17


@pytest.mark.slow
def test_the_courses_cell_timeout_holds_under_nbgrader_autograde(course):
    """`c.PTGrade.cell_timeout` in the course's nbgrader_config.py, no $PTGRADE_CELL_TIMEOUT:
    the looping cell fails by that limit in nbgrader's kernel and in the kit's sandbox, and
    `ptgrade settings` in the course shows it and where it came from. A bad value on nbgrader's
    command line stops autograde with a line naming it, and records nothing."""
    config = course / "nbgrader_config.py"
    config.write_text(
        config.read_text() + f"\nc.PTGrade.cell_timeout = {COURSE_CELL_TIMEOUT}\n",
        encoding="utf-8",
    )
    env = nbgrader_env(course)
    del env["PTGRADE_CELL_TIMEOUT"]
    ptgrade_command = str(Path(sys.executable).parent / "ptgrade")
    shown = subprocess.run(
        [ptgrade_command, "settings"], cwd=course, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert re.search(
        rf"^cell_timeout +{COURSE_CELL_TIMEOUT}\.0 +nbgrader config \(c\.PTGrade\.cell_timeout\)$",
        shown.stdout,
        re.M,
    ), shown.stdout

    nbgrader(course, "generate_assignment", ASSIGNMENT)
    student = "finn_endless_loop"
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    shutil.copy(SAMPLES / f"{student}.ipynb", folder / NOTEBOOK)

    def autograde(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["nbgrader", "autograde", ASSIGNMENT, *extra],
            cwd=course,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    bad = autograde("--PTGrade.cell_timeout=60s")
    assert bad.returncode != 0
    assert (
        "ptgrade: c.PTGrade.cell_timeout must be a number of seconds above 0, not '60s'"
        in bad.stdout + bad.stderr
    )
    assert not (course / "autograded" / student / ASSIGNMENT / NOTEBOOK).exists()

    ran = autograde()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    graded = course / "autograded" / student / ASSIGNMENT / NOTEBOOK
    kernel_outputs = _cell(graded, "predictions").outputs
    assert any(o.get("ename") == "CellTimeoutError" for o in kernel_outputs), kernel_outputs
    verdict = "".join(
        o.get("evalue", "") + o.get("text", "") for o in _cell(graded, "predictions_tests").outputs
    )
    assert f"more than {COURSE_CELL_TIMEOUT} s" in _flat(verdict), verdict
    assert _recorded_points(course, [student])[student]["predictions"] == 0
