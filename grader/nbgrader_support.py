"""nbgrader records the kit's verdicts, computed in nbgrader's own process, never in the kernel.

nbgrader gives a test cell its points from the cell's outputs as its kernel left them: an error
is no points, a number as the cell's value is partial credit, anything else full points. When
the kit's `assert_section` computed that verdict inside the student's kernel, a student cell
could replace it (or any of the kit's module attributes there) and get full marks.

`KitExecute` takes the place of nbgrader's `Execute` step (nbgrader_config.py puts it into
`nbgrader autograde` and `nbgrader validate`). Before the kernel starts, it hands the notebook's
code, as nbgrader read it from disk, to the kit in a thread of nbgrader's process: the same
sandbox and checks as `ptgrade batch`, one warm worker for the whole run (torch imported once,
a fresh confined child forked per submission, grader/warm.py). While that grades, nbgrader's
kernel runs the notebook, and `assert_section` there only defers ($PTGRADE_VERDICTS_OUTSIDE).
Then each kit test cell's outputs are rewritten from the kit's verdict: nothing when the
section passed, the messages and hints with the score as the cell's value for partial credit
under autograde, else an AssertionError with them. The kernel's own outputs in that cell are
dropped, but for its stream text (stderr turned into stdout, since nbgrader zeroes a cell with
any stderr: a late warning from the student's previous cell must cost nothing).

Without this step (a course config of its own), `assert_section` grades in the kernel as before.
"""

from __future__ import annotations

import ast
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, SaveAutoGrades

KIT_CALL = "assert_section("
# While KitExecute runs a notebook, the kernel (which inherits it) leaves the verdict to it.
VERDICTS_ENV = "PTGRADE_VERDICTS_OUTSIDE"
NBGRADER_ENV = "NBGRADER_EXECUTION"


def is_kit_test_cell(cell) -> bool:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return (
        cell.get("cell_type") == "code" and bool(nbgrader.get("grade")) and KIT_CALL in cell.source
    )


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
            score = min(section.score, section.max_score)
            return [
                nbformat.v4.new_output("stream", name="stdout", text=text + "\n"),
                nbformat.v4.new_output(
                    "execute_result", data={"text/plain": f"{score:g}"}, execution_count=None
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


class Grading:
    """The kit grades a copy of the notebook in a thread of this (nbgrader's) process."""

    # One grade at a time in a process: they share its warm worker.
    _lock = threading.Lock()

    def __init__(self, nb, resources: dict, autograde: bool) -> None:
        self.autograde = autograde
        # The code as nbgrader read it, before the kernel ran any of it: nothing the student's
        # code writes while it runs (the file on disk included) changes what is graded.
        self.folder = Path(tempfile.mkdtemp(prefix="ptgrade-nbgrader-"))  # 0700
        self.verdicts = Verdicts({})
        self._thread = threading.Thread(target=self._grade, name="ptgrade-grading", daemon=True)
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
        self._thread.start()

    def _grade(self) -> None:
        from grader.grading import Options, grade
        from grader.inline import _limits

        try:
            with self._lock:
                _one_torch_thread()
                limits = _limits()
                for hidden in self.modes:
                    options = Options(limits=limits, hidden=hidden, own_notebook=not hidden)
                    self.verdicts.results[hidden] = grade(self.path, options)
        except Exception as error:  # unusable, refused, or the grader's own failure
            self.verdicts = Verdicts({}, f"{type(error).__name__}: {error}")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def wait(self) -> Verdicts:
        if self._thread.is_alive():
            self._thread.join()
        return self.verdicts


def _one_torch_thread() -> None:
    """The checks' tensors are tiny; torch's thread pool would only fight nbgrader's kernel
    for the cores (as in ptgrade batch's workers)."""
    import torch

    torch.set_num_threads(1)


class KitExecute(Execute):
    """nbgrader's Execute, with each kit test cell's verdict computed by the kit outside the
    kernel (see the module's docstring)."""

    def preprocess(self, nb, resources):
        if not any(is_kit_test_cell(cell) for cell in nb.cells):
            return super().preprocess(nb, resources)
        autograde = os.environ.get(NBGRADER_ENV) == "autograde"
        grading = Grading(nb, resources, autograde)
        previous = os.environ.get(VERDICTS_ENV)
        os.environ[VERDICTS_ENV] = "1"  # the kernel inherits it when it starts, just below
        try:
            nb, resources = super().preprocess(nb, resources)
        finally:
            if previous is None:
                os.environ.pop(VERDICTS_ENV, None)
            else:
                os.environ[VERDICTS_ENV] = previous
            verdicts = grading.wait()  # never leave it grading beside the next notebook
        for cell in nb.cells:
            if is_kit_test_cell(cell):
                cell.outputs = _streams_as_stdout(cell) + verdicts.outputs(cell, autograde)
        return nb, resources


def _streams_as_stdout(cell) -> list:
    """The text the kernel printed in the cell, none of it on stderr, and nothing else: an
    error or a value there is not the kit's verdict."""
    kept = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            output["name"] = "stdout"
            kept.append(output)
    return kept


class KitVerdicts(NbGraderPreprocessor):
    """In kit test cells, stderr output becomes stdout, so that only the kit's verdict counts
    (what KitExecute does too; kept for configs that list it)."""

    def preprocess_cell(self, cell, resources, cell_index):
        if is_kit_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


def _with_kit_execute(steps: list) -> list:
    return [KitExecute if step is Execute else step for step in steps]


def autograde_steps() -> list:
    """nbgrader's autograde steps with KitExecute in place of Execute, and KitVerdicts just
    before the grades are saved."""
    from nbgrader.converters.autograde import Autograde

    steps = _with_kit_execute(Autograde.class_traits()["autograde_preprocessors"].default())
    at = steps.index(SaveAutoGrades)
    return steps[:at] + [KitVerdicts] + steps[at:]


def validate_steps() -> list:
    """nbgrader's validate steps with KitExecute in place of Execute, then KitVerdicts."""
    from nbgrader.validator import Validator

    return _with_kit_execute(Validator.class_traits()["preprocessors"].default()) + [KitVerdicts]
