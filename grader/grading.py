"""The pipeline: notebook -> sandbox -> record -> checks -> score. One call grades one notebook."""

from __future__ import annotations

import ast
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from grader.checking.hints import and_list, hint_for_error, hint_text, plain_error
from grader.checking.plugin import Verdict
from grader.checking.pytest_session import CHECKS_TIMEOUT, open_checks, run_checks
from grader.contract import Assignment
from grader.notebook.cell_source import parse
from grader.notebook.reading import (
    Submission,
    find_solutions_dir,
    load_submission,
    solution_notebook,
)
from grader.packs import pack_for
from grader.record.submission import Record
from grader.result import CheckResult, GradeResult, SectionResult
from grader.safe_text import printable
from grader.sandbox.execution import Execution, Limits, cleanup, execute
from grader.sandbox.execution import isolation as sandbox_isolation
from grader.sandbox.isolation import imported_folders, require
from grader.sandbox.saved_files import READ_SECONDS, read_saved_files
from grader.settings import Settings

# After the notebook's own limit, the grader's work has bounds of its own: stopping the
# notebook's processes (sandbox: 30 s at most), reading its saved models (saved_files, 10 s)
# and the checks (checking, 30 s). A grade returns within --timeout and these, always.
AFTER_THE_NOTEBOOK = 30.0 + READ_SECONDS + CHECKS_TIMEOUT


@dataclass(frozen=True)
class Options:
    limits: Limits = Limits()
    solutions: str | None = None  # the instructor's solutions/ folder; found automatically
    hidden: bool = True  # run hidden checks (only where solutions are present)
    assignment: str | None = None
    # The notebook is the user's own (`ptgrade check`, check() in it): it runs under the best
    # confinement there is, weak or not. Anyone else's is refused a weak one (isolation.refusal).
    own_notebook: bool = False

    @classmethod
    def of(cls, settings: Settings, **how) -> Options:
        """The options of a grade under `settings` (its limits and solutions: every grade's
        options are built here, from the one settings object); `how`: hidden, assignment,
        own_notebook (what the command grades, not a setting)."""
        return cls(limits=settings.limits, solutions=settings.solutions, **how)


def section_points(assignment: Assignment, solutions_dir: Path | None) -> dict[str, float]:
    """Points per section from the solution's autograder cells (nbgrader metadata)."""
    points = dict(assignment.default_points)
    notebook = solution_notebook(assignment, solutions_dir)
    if notebook is None:
        return points
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id", "")
        if meta.get("grade") and grade_id.endswith("_tests"):
            section = grade_id.removesuffix("_tests")
            if section in points:
                points[section] = float(meta.get("points", points[section]))
    return points


def build_record(submission: Submission, execution: Execution) -> Record:
    raw = execution.record or {"cells": [], "snapshots": {}, "final": {}, "trace": []}
    record = Record(
        assignment=submission.assignment,
        raw=raw,
        status=execution.status,
        detail=execution.detail,
        not_code=submission.not_code,
    )
    paths = set()
    for values in [raw.get("final", {})] + list(raw.get("snapshots", {}).values()):
        for name in pack_for(submission.assignment).saved_file_names:
            value = values.get(name, {})
            if value.get("kind") in ("path", "value") and isinstance(value.get("value"), str):
                paths.add(value["value"])
    if paths:
        record.saved_files = read_saved_files(execution.workdir, paths)
    return record


def as_if_on_a_gpu(hint: str | None, assignment: Assignment) -> str:
    """What a message caused by the simulated GPU adds: that it was one, and what would fail on
    a real GPU (the pack's `gpu_notes`); "" for any other message."""
    notes = pack_for(assignment).gpu_notes
    if hint not in notes:
        return ""
    return (
        "Graded as if on a GPU: this grader has none, so your notebook ran on a simulated one "
        f"(`torch.cuda.is_available()` was True). On a real GPU, {notes[hint]}."
    )


def score(
    submission: Submission, record: Record, verdicts: list[Verdict], points: dict[str, float]
) -> list[SectionResult]:
    sections = []
    for section in submission.assignment.sections:
        mine = [v for v in verdicts if v.section == section.id]
        total_weight = sum(v.weight for v in mine) or 1.0
        max_points = points.get(section.id, 1.0)
        checks = []
        for verdict in mine:
            share = max_points * verdict.weight / total_weight
            message = verdict.message
            note = as_if_on_a_gpu(verdict.hint, record.assignment) if not verdict.passed else ""
            if record.simulated_gpu and note:
                message = f"{message} ({note})"
            checks.append(
                CheckResult(
                    id=verdict.id,
                    passed=verdict.passed,
                    points=round(share if verdict.passed else 0.0, 4),
                    max_points=round(share, 4),
                    message=message,
                    hint=verdict.hint,
                    hint_text=hint_text(verdict.hint, submission.assignment),
                    hidden=verdict.hidden,
                )
            )
        failed = any(not c.passed for c in checks)
        note = _note(record, section, submission.assignment, failed)
        sections.append(
            SectionResult(
                id=section.id,
                title=section.title,
                score=round(sum(c.points for c in checks), 2),
                max_score=max_points,
                checks=checks,
                note=note,
            )
        )
    return sections


def _note(record: Record, section, assignment: Assignment, failed: bool) -> str:
    """What the section's report adds about how its cell ran: a loop judged on its start, or a
    cell whose mistake the later sections do not pay for again. Only where it is true: the
    last section has no later ones."""
    ids = [s.id for s in assignment.sections]
    later = ids[ids.index(section.id) + 1 :]
    made = ", ".join(f"`{name}`" for name in section.names)
    right = (
        f"the sections after it were graded as if this cell had made {made} right, so that "
        "each is judged on its own code"
    )
    cell = record.stub_cell(section.id)
    if cell and record.trace_cut(cell["index"]) and cell["status"] in ("ok", "timeout"):
        from grader.record.schema import MAX_EVENTS  # torch: not before the worker starts

        # The same words whether the cell ended in time or not (a loaded machine).
        note = (
            f"Your loop made more than {MAX_EVENTS:,} calls of the model, the loss and the "
            "optimizer, far more than the exercise needs: it was judged on those first calls, "
            "the same whether or not the cell ended within its time limit"
        )
        return f"{note} (where it did not, {right})." if later and made else f"{note}."
    if cell and cell.get("substituted") and later and made:
        what = "stopped before its end" if cell["status"] != "ok" else "left out a name"
        return f"Your cell {what}: {right}."
    if cell and cell.get("repaired") and failed and later:
        names = and_list([f"`{n}`" for n in cell["repaired"]["names"]])
        return (
            f"The sections after it ran with {names} put right, so this slip costs points here "
            "only."
        )
    return ""


def grade(
    path: str | os.PathLike, options: Options = Options(), submission: Submission | None = None
) -> GradeResult:
    """Grade one notebook (`submission`: the one already read from `path`). Raises
    notebook.UnusableNotebook when it cannot be graded at all."""
    submission = submission or load_submission(path, options.assignment)
    solutions_dir = find_solutions_dir(options.solutions)
    # Stand-ins come from the contract, never from the solutions: `check` stands in as `grade`.
    pack = pack_for(submission.assignment)
    reference = dict(pack.standins(submission.assignment)) if pack.standins else {}
    hidden_dir = solutions_dir / "checks" if solutions_dir is not None else None
    if not (options.hidden and hidden_dir is not None and hidden_dir.is_dir()):
        hidden_dir = None
    checks = open_checks(hidden_dir, checks_dir=pack.checks_dir)
    confinement = sandbox_isolation()
    if not options.own_notebook:
        require(confinement, imported_folders(solutions_dir))
    checks.wait_collected()  # imported before the notebook's code runs, never after
    execution = execute(submission, options.limits, reference)
    try:
        record = build_record(submission, execution)
        checks_started = time.monotonic()
        verdicts = run_checks(record, set(submission.stub_ids), hidden_dir)
        checks_seconds = time.monotonic() - checks_started
    finally:
        cleanup(execution)
    sections = score(
        submission, record, verdicts, section_points(submission.assignment, solutions_dir)
    )
    errors = list(submission.notes)
    if execution.status != "finished":
        errors.append(f"The notebook did not finish: {execution.detail}.")
    errors += [f"{v.id}: {v.internal_error}" for v in verdicts if v.internal_error]
    sources = {c.index: c.source for c in submission.cells}
    for cell in record.cells:
        if cell.get("role") == "given" and cell.get("status") != "ok" and cell.get("error"):
            source = sources.get(cell["index"], "")
            text, cause = (
                _given_cell_error(cell, source, record.assignment),
                _caused_by(cell, sections, record, sources),
            )
            if cause:  # after Python's "Did you mean: ...?" too
                text = f"{text if text[-1:] in '?!' else text.rstrip('.') + '.'} {cause}"
            if record.simulated_gpu:
                error = cell["error"]
                hint = hint_for_error(error["ename"], error["evalue"], record.assignment)
                note = as_if_on_a_gpu(hint, record.assignment)
                text += f" ({note})" if note else ""
            errors.append(text)
    return GradeResult(
        assignment=submission.assignment.id,
        notebook=printable(str(path), newlines=False),  # a file name can hold any byte
        score=round(sum(s.score for s in sections), 2),
        max_score=round(sum(s.max_score for s in sections), 2),
        sections=sections,
        errors=errors,
        execution={
            "status": execution.status,
            "detail": execution.detail,
            "seconds": round(execution.duration, 2),
            # What the student's code ran on, as the sandbox saw it: a real GPU, the simulated
            # one of a CPU-only grader (grader/sandbox/child/simulated_gpu.py), or the CPU alone.
            "device": ran_on(record),
            "torch": record.raw.get("torch_version", ""),
            # Whether the instructor's hidden checks ran: a student's `check` (no solutions
            # at hand) is not the whole grade.
            "hidden_checks": hidden_dir is not None,
            # What kept the notebook's code from the grader's files, network and processes.
            "confinement": confinement.as_dict(),
            # Where a grade's time goes (benchmarks/batch_vs_nbgrader.py prints the medians):
            # the cells as they ran in the sandbox, the sandbox in all (start, snapshots,
            # shipping the record), and the checks.
            "timings": {
                "cells": round(sum(c.get("duration", 0.0) for c in record.cells), 4),
                "sandbox": round(execution.duration, 4),
                "checks": round(checks_seconds, 4),
            },
        },
        figures=pack.figure_data(record) if pack.figure_data else {},
    )


def _given_cell_error(cell: dict, source: str, assignment: Assignment) -> str:
    """A cell outside the graded ones that failed, named by its tag, else by its first line
    (a cell the student added, or one whose tag was lost)."""
    error = cell["error"]
    if cell.get("grade_id"):
        where = f"A given cell ({cell['grade_id']})"
    else:
        first = next((line.strip() for line in source.splitlines() if line.strip()), "")
        where = f"An ungraded cell (`{first[:60]}`)"
    text = f"{where} raised {error['ename']}: {plain_error(error['ename'], error['evalue'], assignment)}"
    if error["ename"] == "ModuleNotFoundError":
        text += " (the grader has only the packages it was installed with)"
    return text


def _caused_by(
    cell: dict, sections: list[SectionResult], record: Record, sources: dict[int, str]
) -> str:
    """Which of the student's cells made what a failing given cell read: the kit's cells are
    right, so the cause is a value of the student's (the loss tensors appended to
    `train_loss_values`, which the loss-curve plot cannot draw). Names the student's line
    where a failed check of that section does, else what the values held and the line that
    made them so (data moved to the GPU before a plot)."""
    tree = parse(sources.get(cell["index"], ""))
    if tree is None:
        return ""
    read = _names_read(tree)
    contract = {s.id: s.names for s in record.assignment.sections}
    for section in sections:
        names = [n for n in contract.get(section.id, ()) if n in read]
        failures = section.failures()
        if not names or not failures:
            continue
        # The failure that names what the given cell read, else the section's first.
        named = [c for c in failures if any(f"`{n}`" in c.message for n in names)]
        message = (named or failures)[0].message
        names = [n for n in names if f"`{n}`" in message] or names
        shown = ", ".join(f"`{n}`" for n in names)
        return (
            f"It reads {shown}, which your `{section.id}` cell makes, and that cell has a "
            f"mistake: {message}"
        )
    held = _what_it_held(cell, record, contract, sources)
    if held:
        return held
    made = [n for names in contract.values() for n in names if n in read]
    if made:
        shown = ", ".join(f"`{n}`" for n in dict.fromkeys(made))
        return f"It reads {shown} from your cells: check what they hold there."
    return ""


def _names_read(tree: ast.AST, only_as_tensors: bool = False) -> set[str]:
    """The names a cell reads; with `only_as_tensors`, less those it reads only to copy them to
    the CPU or out of the graph (`y_preds.cpu()`: a tensor on the GPU is fine there)."""
    copied = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("cpu", "detach", "item", "tolist")
    }
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name)
        and isinstance(node.ctx, ast.Load)
        and not (only_as_tensors and id(node) in copied)
    }


# What a given cell cannot use, by the words of its error: (pattern, whether a tensor has it on
# a notebook whose `device` is the second argument, how the sentence says it, what to change).
# Two devices meeting (`y_preds == loaded_model_preds`) name the tensor off `device`, the one
# a student's cell moved away (`y_preds = y_preds.cpu()`), before the tensors on the GPU.
_UNUSABLE = (
    (
        r"on the same device",
        lambda value, device: device == "cuda" and _place(value) != device,
        "on the CPU, while the values it meets are on `device`",
        "keep it on `device`, and copy it to the CPU (`.cpu()`) only inside the call that "
        "needs the copy, such as a plot",
    ),
    (
        r"cuda|device",
        lambda value, device: _place(value) != "cpu",
        "on the GPU, where numpy and matplotlib cannot read them",
        "move the data to `device` in the cells that train and predict, not before",
    ),
    (
        r"requires grad",
        lambda value, device: bool(value.get("requires_grad")),
        "tracking gradients (requires_grad=True), so numpy and matplotlib cannot read them",
        "make the data from plain numbers",
    ),
)


def _place(value: dict) -> str:
    """The kind of device ("cpu", "cuda") a recorded tensor is on."""
    return str(value.get("device", "cpu")).split(":")[0]


def _what_it_held(cell: dict, record: Record, contract: dict, sources: dict[int, str]) -> str:
    """The student's tensors a failing given cell read that its error names (on the GPU,
    tracking gradients), and the line of the student's cell that made them so. The values are
    those the cell saw: of the names it reads, as they were when it ran; of the defaults of a
    function an earlier given cell made (`plot_predictions(train_data=X_train, ...)`), as they
    were when that cell ran."""
    error = cell["error"]
    cells = [cell]
    function = (error.get("inner") or {}).get("function")
    maker = next(
        (
            c
            for c in record.cells
            if c.get("role") == "given"
            and c["index"] < cell["index"]
            and function
            and re.search(rf"^def {re.escape(function)}\b", sources.get(c["index"], ""), re.M)
        ),
        None,
    )
    if maker is not None:
        cells.insert(0, maker)
    ours = [n for names in contract.values() for n in names]
    device = record.student_device() or record.expected_device
    for pattern, has, what, change in _UNUSABLE:
        if not re.search(pattern, error["evalue"], re.I):
            continue
        found: dict[str, int] = {}  # name -> the cell that read it
        for seen in cells:
            tree = parse(sources.get(seen["index"], ""))
            state = _state_at(record, seen["index"])
            if tree is None or state is None:
                continue
            read = _names_read(tree, only_as_tensors=True)
            for name in [n for n in ours if n in read]:
                value = record.raw_value(name, state)
                if value.get("kind") == "tensor" and has(value, device):
                    found.setdefault(name, seen["index"])
        if not found:
            continue
        shown = ", ".join(f"`{n}`" for n in found)
        verb = "is" if len(found) == 1 else "are"
        where = _line_that_moved(record, min(found.values()), pattern, list(found))
        return f"It reads {shown}, which {verb} {what}{where}: {change}."
    return ""


def _state_at(record: Record, index: int) -> str | None:
    """The section whose values a cell saw: the last graded cell that ran before it."""
    before = [
        c
        for c in record.cells
        if c["index"] < index and c.get("grade_id") in record.raw.get("snapshots", {})
    ]
    return max(before, key=lambda c: c["index"])["grade_id"] if before else None


# The lines that put a tensor on the GPU, or make it track gradients.
_MOVES = {
    r"on the same device": re.compile(r"=.*(\.cpu\(|\.to\(\s*['\"]cpu)"),
    r"cuda|device": re.compile(r"\.to\(|\.cuda\(|device\s*=\s*device|set_default_device"),
    r"requires grad": re.compile(r"requires_grad\s*=\s*True|requires_grad_\("),
}


def _line_that_moved(record: Record, index: int, pattern: str, names: list[str]) -> str:
    """'. Your `split` cell makes them so on line 1 (`...`)': the last of the student's cells
    before the given one with a line that moves a tensor to the GPU (or makes it track
    gradients; for two devices meeting, that moves one of `names` off the GPU), its device cell
    (the one that makes the pack's device_name) left out."""
    device = pack_for(record.assignment).device_name
    for section in reversed(record.assignment.sections):
        stub = record.stub_cell(section.id)
        if stub is None or stub["index"] > index or device in section.names:
            continue
        for number, line in enumerate(stub.get("source", "").splitlines(), 1):
            if pattern == r"on the same device" and not any(
                re.match(rf"\s*(\w+\s*,\s*)*{n}\b", line) for n in names
            ):
                continue  # the line must assign one of the tensors found off the device
            if _MOVES[pattern].search(line) and not line.lstrip().startswith("#"):
                return (
                    f". Your `{section.id}` cell makes them so on line {number} (`{line.strip()}`)"
                )
    return ""


def ran_on(record: Record) -> str:
    if record.cuda_available:
        return "cuda"
    return "simulated cuda" if record.simulated_gpu else "cpu"
