"""nbgrader records the kit's verdicts, computed in nbgrader's own process, never in the kernel.

nbgrader gives a test cell its points from the cell's outputs as its kernel left them: an error
is no points, a number as the cell's value is partial credit, anything else full points. When
the kit's `assert_section` computed that verdict inside the student's kernel, a student cell
could replace it (or any of the kit's module attributes there) and get full marks.

`KitExecute` takes the place of nbgrader's `Execute` step (nbgrader_config.py puts it into
`nbgrader autograde` and `nbgrader validate`). It copies the notebook's code as nbgrader read it
from disk, before the kernel runs any of it, and when the kernel reaches the first kit test cell
(where the kit used to grade inside the kernel) hands that copy to the kit in a thread of
nbgrader's process: the same sandbox and checks as `ptgrade batch`, one warm worker for the
whole run (torch imported once, a fresh confined child forked per submission, grader/sandbox/warm.py).
While that grades, the kernel runs the rest of the notebook, and `assert_section` there only
defers ($PTGRADE_VERDICTS_OUTSIDE). Then each kit test cell's outputs are rewritten from the
kit's verdict: nothing when the section passed, the messages and hints with the score as the
cell's value for partial credit under autograde, else an AssertionError with them. The kernel's
own outputs in that cell are dropped, but for its stream text (stderr turned into stdout, since
nbgrader zeroes a cell with any stderr: a late warning from the previous cell must cost
nothing). Under `nbgrader validate`, where the kit's test cells are all the notebook's graded
code cells, the kit's sandbox run is the only execution: nbgrader's kernel is not started
(KitExecute._kit_alone). docs/nbgrader.md has the timeline and the measurements.

Without this step (a course config of its own), `assert_section` grades in the kernel as before.
"""

from __future__ import annotations

import ast
import functools
import math
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.preprocessors import (
    ClearHiddenTests,
    Execute,
    NbGraderPreprocessor,
    OverwriteCells,
    SaveAutoGrades,
)

from grader.errors import GraderError
from grader.settings import VERDICTS_ENV, Limits, Settings, resolve

KIT_CALL = "assert_section("
# While KitExecute runs a notebook, the kernel (which inherits it) leaves the verdict to it.
NBGRADER_ENV = "NBGRADER_EXECUTION"


def is_kit_test_cell(cell) -> bool:
    return cell.get("cell_type") == "code" and _is_graded(cell) and KIT_CALL in cell.source


def _is_graded(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def kit_calls(cell) -> list[tuple[str, bool]]:
    """(section, hidden) for each `assert_section("section", hidden=...)` in the cell, in
    order; the section named by the cell's grade id where the source cannot tell."""
    calls = []
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        tree = None
    for node in ast.walk(tree) if tree is not None else ():
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name != "assert_section" or not node.args:
            continue
        section = node.args[0]
        if not (isinstance(section, ast.Constant) and isinstance(section.value, str)):
            continue
        hidden = any(
            k.arg == "hidden" and isinstance(k.value, ast.Constant) and bool(k.value.value)
            for k in node.keywords
        )
        calls.append((node.lineno, node.col_offset, section.value, hidden))
    if calls:
        return [(section, hidden) for _, _, section, hidden in sorted(calls)]
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
    return [(grade_id.removesuffix("_tests"), False)]


@dataclass
class Verdicts:
    """The kit's grades of one notebook: by `hidden`, a GradeResult; or why there is none."""

    results: dict
    error: str = ""

    def outputs(self, cell, autograde: bool) -> list:
        """The outputs that give `cell` the kit's verdict, as `assert_section` would in the
        kernel: the first failing call decides; under autograde both calls count the hidden
        checks and a section with some points gets them as the cell's value."""
        from grader.inline import failure_text

        if self.error:
            return [_error(f"The kit could not grade this notebook: {self.error}")]
        for section_id, hidden in kit_calls(cell):
            result = self.results[hidden or autograde]
            try:
                section = result.section(section_id)
            except StopIteration:
                known = ", ".join(s.id for s in result.sections)
                return [_error(f"No section {section_id!r} in this assignment ({known}).")]
            if section.passed:
                continue
            text = failure_text(section)
            if not autograde or section.score <= 0:
                return [_error(text)]
            score = float(min(section.score, section.max_score))
            return [
                nbformat.v4.new_output("stream", name="stdout", text=text + "\n"),
                # What the kernel showed for the value assert_section returned: its repr.
                nbformat.v4.new_output(
                    "execute_result", data={"text/plain": repr(score)}, execution_count=None
                ),
            ]
        return []


def _error(text: str):
    return nbformat.v4.new_output(
        "error", ename="AssertionError", evalue=text, traceback=[f"AssertionError: {text}"]
    )


def _notebook_name(nb, resources: dict) -> str:
    """The submission's file name: nbgrader names it for autograde; validate does not, and it
    is then the notebook in the working folder (nbgrader's) whose code cells are these."""
    name = (resources.get("nbgrader") or {}).get("notebook")
    if name:
        return f"{name}.ipynb"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    matching = []
    for path in sorted(Path.cwd().glob("*.ipynb")):
        try:
            cells = nbformat.read(path, as_version=4).cells
        except Exception:  # not a notebook: not this one
            continue
        if [c.source for c in cells if c.cell_type == "code"] == code:
            matching.append(path.name)
    return matching[0] if len(matching) == 1 else "submission.ipynb"


# The kit grades in one thread of nbgrader's process, the same for the whole run: the warm
# worker it starts dies with the thread that started it (PR_SET_PDEATHSIG is a thread's), and
# one grade at a time shares that worker.
_GRADER: ThreadPoolExecutor | None = None


def _grader() -> ThreadPoolExecutor:
    global _GRADER
    if _GRADER is None:
        _GRADER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ptgrade-grading")
    return _GRADER


# Set once the kit's checks are collected (or could not be): from then on, the student's code
# in nbgrader's kernel can no longer change what they are.
_CHECKS_PINNED = threading.Event()
_WARMING = False


def warm_up(hidden: bool) -> None:
    """Start the kit's grading (once a process), when nbgrader first gets a notebook with kit
    test cells: an assignment without them, and any other nbgrader command, start nothing.
    `hidden`: autograde, which forks the worker once a submission and uses the hidden checks."""
    global _WARMING
    if not _WARMING:
        _WARMING = True
        _grader().submit(_warm_up, hidden)


def _warm_up(hidden: bool) -> None:
    """The kit's warm-up keeps to one core beside nbgrader's kernel: first this process's part
    (torch, pytest's collection of the checks), then the warm worker's start (torch imported
    once in a process of its own, confined). Under validate (`hidden` False) no cell waits for
    the checks, and the grade waits for the worker, the longer of the two (torch, matplotlib,
    torch._dynamo: about 3 CPU seconds against this process's 1.3): the worker is launched
    first, so that it starts while the kernel imports its own torch."""
    if not hidden:
        _launch_worker()
    try:
        from grader.checking.pytest_session import open_every_pack  # (torch)
        from grader.notebook.reading import find_solutions_dir

        _one_torch_thread()
        solutions = find_solutions_dir()
        checks = solutions / "checks" if solutions is not None and hidden else None
        for session in open_every_pack(checks if checks is not None and checks.is_dir() else None):
            session.wait_collected()
    except Exception:  # only a head start: the first grade says what is wrong
        pass
    finally:
        _CHECKS_PINNED.set()
    try:
        from grader.sandbox.execution import warm_worker

        warm_worker(wait=True, many=hidden)
    except Exception:
        pass


def _launch_worker() -> None:
    """Start the warm worker's process and return at once (a single use: no huge pages)."""
    try:
        from grader.sandbox.execution import start_warm_worker  # (no torch)

        start_warm_worker(many=False)
    except Exception:  # the grade starts it again and says what is wrong
        pass


def _instructors_code(cell) -> bool:
    """Under autograde, a code cell whose source nbgrader put back from the course's source
    (OverwriteCells: a locked cell still named in the gradebook), which the student cannot
    have written."""
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return bool(nbgrader.get("locked")) and bool(nbgrader.get("grade_id"))


class Grading:
    """The kit grades a copy of the notebook in the grading thread of nbgrader's process."""

    def __init__(self, nb, resources: dict, autograde: bool, settings: Settings | None = None):
        self.autograde = autograde
        self.settings = settings  # None: the environment's (grader.inline's limits)
        self.verdicts = Verdicts({})
        self.finished = time.monotonic()  # when the grade was ready
        self.failure: GraderError | None = None
        self._future = None
        # The code as nbgrader read it, before the kernel ran any of it: nothing the student's
        # code writes while it runs (the file on disk included) changes what is graded.
        self.folder = Path(tempfile.mkdtemp(prefix="ptgrade-nbgrader-"))  # 0700
        try:
            self.path = self.folder / _notebook_name(nb, resources)
            nbformat.write(nb, self.path)
        except Exception as error:  # nothing to grade: every kit test cell says why
            self.verdicts = Verdicts({}, f"the notebook could not be copied ({error})")
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        if autograde:
            self.modes = [True]
        else:  # validate: what the student's own check shows, and hidden calls if there are
            hidden = any(h for c in nb.cells if is_kit_test_cell(c) for _, h in kit_calls(c))
            self.modes = [False, True] if hidden else [False]

    def start(self) -> None:
        if self._future is None and self.verdicts.results == {} and not self.verdicts.error:
            self._future = _grader().submit(self._grade)

    def _grade(self) -> None:
        from grader.grading import Options, grade
        from grader.inline import _settings
        from grader.notebook.reading import UnusableNotebook

        try:
            _one_torch_thread()
            settings = self.settings or _settings()
            for hidden in self.modes:
                options = Options.of(settings, hidden=hidden, own_notebook=not hidden)
                self.verdicts.results[hidden] = grade(self.path, options)
        except UnusableNotebook as error:  # not a notebook of this kit: no points, and why
            self.verdicts = Verdicts({}, str(error))
        except Exception as error:  # the kit's own failure is never a student's 0
            reason = error.reason if isinstance(error, GraderError) else repr(error)
            self.failure = GraderError(reason)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.finished = time.monotonic()

    def wait(self) -> Verdicts:
        self.start()
        if self._future is not None:
            self._future.result()
        return self.verdicts


def _one_torch_thread() -> None:
    """The checks' tensors are tiny; torch's thread pool would only fight nbgrader's kernel
    for the cores (as in ptgrade batch's workers)."""
    import torch

    torch.set_num_threads(1)


class KitExecute(Execute):
    """nbgrader's Execute, with each kit test cell's verdict computed by the kit outside the
    kernel (see the module's docstring).

    A submission's grading starts when the kernel reaches the first kit test cell, where the
    kit used to grade inside the kernel: the student's cells before it (the imports, the
    slowest) never share the cores with a submission's sandbox. The rest of the notebook runs
    in the kernel while the kit grades. The kit's warm-up (warm_up, once a run) runs beside the
    kernel's first cells, on one core; under autograde the first cell the student could have
    written waits until it has collected the checks.
    """

    _grading: Grading | None = None
    _autograde = False

    def preprocess(self, nb, resources):
        settings = self.kit_settings()
        self.timeout_func = functools.partial(cell_timeout, settings.limits)
        if not any(is_kit_test_cell(cell) for cell in nb.cells):
            return super().preprocess(nb, resources)
        autograde = os.environ.get(NBGRADER_ENV) == "autograde"
        warm_up(autograde)
        started = time.monotonic()
        self._grading = grading = Grading(nb, resources, autograde, settings)
        self._autograde = autograde
        if not autograde and self._kit_alone(nb):
            return self._kit_verdicts_only(nb, resources, grading)
        previous = os.environ.get(VERDICTS_ENV)
        os.environ[VERDICTS_ENV] = "1"  # the kernel inherits it when it starts, just below
        try:
            nb, resources = super().preprocess(nb, resources)
        finally:
            self._grading = None
            if previous is None:
                os.environ.pop(VERDICTS_ENV, None)
            else:
                os.environ[VERDICTS_ENV] = previous
            ran = time.monotonic() - started
            verdicts = grading.wait()  # never leave it grading beside the next notebook
            self.log.debug(
                "ptgrade: the kernel ran the notebook in %.2f s; the kit's grade was ready "
                "%.2f s later (%.2f s after the kernel started)",
                ran,
                max(0.0, grading.finished - started - ran),
                grading.finished - started,
            )
        if grading.failure is not None:
            # nbgrader then records nothing for this notebook and names the reason (autograde
            # goes on with the next one): a kit that cannot grade never gives a student a 0.
            raise grading.failure
        for cell in nb.cells:
            if is_kit_test_cell(cell):
                cell.outputs = _streams_as_stdout(cell) + verdicts.outputs(cell, autograde)
        return nb, resources

    def kit_settings(self) -> Settings:
        """The kit's settings for this run: $PTGRADE_*, else the course's `c.PTGrade.*` (its
        nbgrader config, nbgrader's command line merged in), else the defaults; written to
        the environment for the kernel, the warm worker and its sandbox (Settings.export). A
        bad value stops the notebook with one ERROR line naming it, as a kit failure: never a
        student's 0."""
        try:
            settings = resolve(config=self.config)
        except ValueError as error:
            self.log.error("ptgrade: %s", error)
            raise KitFailed(f"ptgrade: {error}") from None
        settings.export()
        return settings

    def _kit_alone(self, nb) -> bool:
        """Under `nbgrader validate`, whether the kit's sandbox run can be the notebook's only
        execution: validate reports its grade cells' errors (and locked cells' changes, from
        their sources), never saves the executed notebook, and here every graded code cell is
        a kit test cell, whose outputs the kit writes anyway. Not with `--validate-all`, which
        reports any cell's error, nor where an instructor's own assert cell needs the kernel."""
        from nbgrader.validator import Validator

        if os.environ.get(NBGRADER_ENV) != "validate" or not isinstance(self.parent, Validator):
            return False
        if self.parent.validate_all:
            return False
        graded = [c for c in nb.cells if c.cell_type == "code" and _is_graded(c)]
        return all(is_kit_test_cell(c) for c in graded)

    def _kit_verdicts_only(self, nb, resources, grading: Grading):
        """The kit grades the notebook (one execution, in its sandbox) and its test cells get
        the verdicts; nbgrader's kernel is never started. The other cells keep no outputs, as
        nbgrader's ClearOutput left them."""
        self._grading = None
        verdicts = grading.wait()
        if grading.failure is not None:
            raise grading.failure
        for cell in nb.cells:
            if is_kit_test_cell(cell):
                cell.outputs = verdicts.outputs(cell, autograde=False)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        if self._grading is not None and cell.cell_type == "code":
            if self._autograde and not _instructors_code(cell):
                # The student's code waits until the checks are collected: nothing it writes
                # can then change them (they are pinned by content, grader/checking/pytest_session.py). Under
                # validate the student runs their own checks, on their own files.
                _CHECKS_PINNED.wait()
            if is_kit_test_cell(cell):
                self._grading.start()
        return super().preprocess_cell(cell, resources, index)


def cell_timeout(limits: Limits, cell) -> int:
    """nbgrader's kernel keeps the kit's time limits for the student's code, as the kit's
    sandbox does: `cell_timeout` seconds a cell. The first test cell grades the whole notebook,
    so a test cell gets the notebook's time and a minute for the kit to start."""
    seconds = limits.notebook_timeout + 60 if KIT_CALL in cell.source else limits.cell_timeout
    return max(1, math.ceil(seconds))


def _streams_as_stdout(cell) -> list:
    """The text the kernel printed in the cell, none of it on stderr, and nothing else: an
    error or a value there is not the kit's verdict."""
    kept = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            output["name"] = "stdout"
            kept.append(output)
    return kept


class KitFailed(Exception):
    """The kit could not grade a notebook under nbgrader; the message says why."""


class KitVerdicts(NbGraderPreprocessor):
    """In kit test cells, stderr output becomes stdout, so that only the kit's verdict counts
    (what KitExecute does too; kept for configs that grade in the kernel). A cell where the kit
    itself failed in the kernel (`GraderError`) stops the notebook with the reason, which
    nbgrader logs as an ERROR line, instead of saving the student's 0."""

    stop_on_kit_failure = True  # autograde; validate shows the cell's error to the student

    def preprocess_cell(self, cell, resources, cell_index):
        if is_kit_test_cell(cell):
            for output in cell.get("outputs", []):
                failed = (
                    output.get("output_type") == "error" and output.get("ename") == "GraderError"
                )
                if failed and self.stop_on_kit_failure:
                    reason = output.get("evalue") or "no reason was given"
                    where = resources.get("unique_key") or "a notebook"
                    self.log.error("ptgrade could not grade %s: %s", where, reason)
                    raise KitFailed(f"{where}: {reason}")
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


class KitVerdictsInValidate(KitVerdicts):
    stop_on_kit_failure = False


class QuietOverwriteCells(OverwriteCells):
    """nbgrader's OverwriteCells, without its checksum warning for every test cell of every
    submission that is merely the released cell: the source's cell holds the hidden checks,
    which the release drops, so nbgrader would warn nine times a notebook about nothing. A test
    cell the student really edited is still named (and put back from the source, as before)."""

    def preprocess_cell(self, cell, resources, cell_index):
        self._submitted = cell.source
        return super().preprocess_cell(cell, resources, cell_index)

    def report_change(self, name, attr, old, new) -> None:
        if attr == "checksum":
            source = self.gradebook.find_source_cell(name, self.notebook_id, self.assignment_id)
            released = nbformat.v4.new_code_cell(source.source)
            ClearHiddenTests()._remove_hidden_test_region(released)
            if released.source == self._submitted:
                return  # as released: only the hidden checks differ
            self.log.warning("Test cell %s was edited: it is put back from the source", name)
            return
        super().report_change(name, attr, old, new)


def _with_kit_execute(steps: list) -> list:
    if KitExecute in steps:  # already the kit's (a config read twice in one process)
        return steps
    return [KitExecute if step is Execute else step for step in steps]


def autograde_steps() -> list:
    """nbgrader's autograde steps with KitExecute in place of Execute, and KitVerdicts just
    before the grades are saved."""
    from nbgrader.converters.autograde import Autograde

    steps = _with_kit_execute(Autograde.class_traits()["autograde_preprocessors"].default())
    if KitVerdicts in steps:
        return steps
    at = steps.index(SaveAutoGrades)
    return steps[:at] + [KitVerdicts] + steps[at:]


def sanitize_steps() -> list:
    """nbgrader's sanitize steps (before autograde) with QuietOverwriteCells for its own."""
    from nbgrader.converters.autograde import Autograde

    steps = Autograde.class_traits()["sanitize_preprocessors"].default()
    return [QuietOverwriteCells if step is OverwriteCells else step for step in steps]


def validate_steps() -> list:
    """nbgrader's validate steps with KitExecute in place of Execute, then KitVerdictsInValidate."""
    from nbgrader.validator import Validator

    steps = _with_kit_execute(Validator.class_traits()["preprocessors"].default())
    return steps if KitVerdictsInValidate in steps else steps + [KitVerdictsInValidate]


def use_kit_steps_in_validate() -> None:
    """Make validate_steps() `nbgrader validate`'s steps. nbgrader's Validator does not read its
    `preprocessors` from the config (it is no config option: `c.Validator.preprocessors` only
    draws a warning), so the kit sets the list's default, in this process only."""
    from nbgrader.validator import Validator

    Validator.class_traits()["preprocessors"].default_value = validate_steps()


def configure(c) -> None:
    """The kit's nbgrader settings, for this repository's nbgrader_config.py and a course's
    (`ptgrade init-course`): call after the course's root and source folder are set."""
    # Models saved by running a solution notebook must not be released with it.
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "models"]

    # The kit's settings (time limits, memory, isolation, solutions) are read when KitExecute
    # runs, from the whole config: `c.PTGrade.*` set in this file, before or after this call,
    # and nbgrader's `--PTGrade.x=...` (grader/settings.py: $PTGRADE_* beat them). One pair of
    # time limits holds in nbgrader's kernel as in the kit's sandbox (cell_timeout). Hidden
    # checks and points come from this course's source folder unless c.PTGrade.solutions or
    # $PTGRADE_SOLUTIONS says otherwise.

    # A deleted test cell is put back, so that the kit still grades its section.
    c.OverwriteCells.add_missing_cells = True

    # The kit's test cells get their verdicts from the kit, computed in this (nbgrader's)
    # process while the kernel runs the notebook, never from what the student's kernel printed
    # there: a student cell cannot fake them, and stray stderr (a late warning) does not zero
    # them. The grading is warm across an autograde run (one worker, a fresh confined child per
    # submission). docs/nbgrader.md has the timeline.
    c.Autograde.autograde_preprocessors = autograde_steps()
    c.Autograde.sanitize_preprocessors = sanitize_steps()
    use_kit_steps_in_validate()  # nbgrader reads no `c.Validator.preprocessors`
    # The kit's grading starts with the first notebook that has kit test cells (warm_up).
