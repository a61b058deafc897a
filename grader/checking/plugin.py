"""The pytest plugin that feeds a record to the checks and collects their verdicts."""

from __future__ import annotations

import queue
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from grader.checking.hints import hint_for_error, plain_error, section_hint
from grader.contract import Assignment
from grader.notebook.cell_source import code_lines, names_made
from grader.packs import pack_for
from grader.record.submission import Mistake, Record


def check(section: str, name: str, weight: float = 1.0, only: str | None = None, hidden=False):
    """Mark a pytest function as a graded check of `section` (only=assignment id to restrict)."""
    return pytest.mark.ptgrade(section=section, name=name, weight=weight, only=only, hidden=hidden)


INTERNAL_ERROR = "The grader could not run this check (internal error)."


@dataclass
class Verdict:
    section: str
    id: str
    weight: float
    passed: bool
    message: str = ""
    hint: str | None = None
    hidden: bool = False
    internal_error: str | None = None


# Names a notebook's code uses that only an import makes: Python's and the PyTorch stack's
# usual ones, for any chapter.
IMPORTS = {
    "Path": "from pathlib import Path",
    "torch": "import torch",
    "nn": "from torch import nn",
    "optim": "from torch import optim",
    "F": "import torch.nn.functional as F",
    "plt": "import matplotlib.pyplot as plt",
    "np": "import numpy as np",
    "os": "import os",
}


def section_problem(record: Record, section_id: str, present: set[str]) -> Mistake | None:
    """Why a section cannot be judged on the student's code at all, if it cannot."""
    if section_id not in present and section_id in record.not_code:
        kind = record.not_code[section_id].capitalize()
        return Mistake(
            f"The graded cell `{section_id}` is a {kind} cell, so it never ran.", "cell.not_code"
        )
    if section_id not in present:
        return Mistake(
            f"The graded cell `{section_id}` is missing from your notebook.", "cell.missing"
        )
    cell = record.stub_cell(section_id)
    if cell is None:
        why = record.detail or "the notebook stopped before it"
        hint = "cell.timeout" if record.status == "timeout" else "cell.raised"
        return Mistake(f"This cell never ran: {why}.", hint)
    if cell["status"] == "timeout" and not record.trace_cut(cell["index"]):
        return Mistake(f"Your cell was stopped: {cell['error']['evalue']}.", "cell.timeout")
    # A loop past the trace's budget is judged on the start the trace kept, whether or not it
    # then ended within the cell's limit: machine speed must not decide the points.
    if cell["status"] == "error":
        return _cell_error(record, section_id, cell["error"])
    return None


def _cell_error(record: Record, section_id: str, error: dict) -> Mistake:
    """A cell's error as the student reads it, with the most specific hint for it."""
    where = f" on line {error['line_number']}" if error.get("line_number") else ""
    code = f" (`{error['line']}`)" if error.get("line") else ""
    inner = error.get("inner") or {}
    if inner.get("function"):  # raised in a function another cell defined (`forward`)
        code += f", in `{inner['function']}`" + (f" (`{inner['line']}`)" if inner["line"] else "")
    assignment = record.assignment
    message = (
        f"Your cell raised {error['ename']}{where}{code}: "
        f"{plain_error(error['ename'], error['evalue'], assignment)}"
    )
    hint = hint_for_error(error["ename"], error["evalue"], assignment)
    if hint == "cell.not_implemented":
        stub_raise = error.get("in_cell") and _at_top_level(record, section_id, error)
        if stub_raise and _code_after(record, section_id, error.get("line_number")):
            message = (
                f"Your cell stops on line {error['line_number']}, the stub's `raise "
                "NotImplementedError()`, before the code after it runs."
            )
            hint = "cell.raise_left"
        elif stub_raise:  # the stub's own `raise NotImplementedError()`
            message = "This cell has not been filled in yet."
        else:  # raised in a function of the student's own, called from the cell
            hint = "cell.raised"
    undefined = re.match(r"name '(\w+)' is not defined", error["evalue"])
    if hint == "name.undefined" and undefined and not inner.get("function"):
        name = undefined.group(1)
        below = _made_below(record, section_id, name, error.get("line_number"))
        if below:  # `y = weight * X + bias` above `X = ...`
            message += f" (`{name}` is made on line {below}, below it)"
            hint = "cell.order"
        elif name in IMPORTS:  # `Path("models")` without its import
            message += f" (it comes with `{IMPORTS[name]}`)"
            hint = "cell.import_missing"
    pack = pack_for(record.assignment)
    if pack.diagnose is not None:  # what the pack knows of its sections sharpens the hint
        message, hint = pack.diagnose(record, section_id, error, message, hint)
    else:
        hint = section_hint(hint, section_id, record.assignment)  # hints.toml's [[section_hint]]
    return Mistake(message, hint)


def _made_below(record: Record, section_id: str, name: str, line: int | None) -> int | None:
    """The line below the failing one where the cell itself makes the undefined name."""
    cell = record.stub_cell(section_id)
    made = names_made(cell.get("source", "")).get(name) if cell and line else None
    return made if made is not None and made > line else None


def _source_line(record: Record, section_id: str, line_number: int | None) -> str | None:
    cell = record.stub_cell(section_id)
    lines = cell.get("source", "").splitlines() if cell else []
    return lines[line_number - 1] if line_number and 0 < line_number <= len(lines) else None


def _at_top_level(record: Record, section_id: str, error: dict) -> bool:
    """Whether the failing line is a statement of the cell itself, not of a function in it."""
    line = _source_line(record, section_id, error.get("line_number"))
    return line is not None and not line[:1].isspace()


def _code_after(record: Record, section_id: str, line_number: int | None) -> bool:
    """Whether the cell has code (not just comments) after the given line."""
    cell = record.stub_cell(section_id)
    if cell is None or not line_number:
        return False
    return bool(code_lines("\n".join(cell.get("source", "").splitlines()[line_number:])))


@dataclass
class CheckJob:
    """One record to judge, and the verdicts its checks gave."""

    record: Record
    present_sections: set[str]
    include_hidden: bool
    verdicts: list[Verdict] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    judged: bool = False  # every wanted check ran (False: the session failed on the way)
    planned: list[dict] = field(default_factory=list)  # each wanted check's marker arguments

    def cut_short(self, why: str) -> list[Verdict]:
        """The verdicts given so far, and each planned check not yet judged as the grader's
        error `why` (the checks ran out of time: a verdict must come back all the same)."""
        given = list(self.verdicts)
        judged = {verdict.id for verdict in given}
        for kwargs in self.planned:
            check_id = f"{kwargs['section']}.{kwargs['name']}"
            if check_id not in judged:
                given.append(
                    Verdict(
                        section=kwargs["section"],
                        id=check_id,
                        weight=kwargs["weight"],
                        passed=False,
                        message=INTERNAL_ERROR,
                        hidden=kwargs["hidden"],
                        internal_error=why,
                    )
                )
        return given

    def wants(self, item) -> bool:
        marker = item.get_closest_marker("ptgrade")
        return (
            marker is not None
            and marker.kwargs["section"] in self.record.assignment.section_ids
            and marker.kwargs["only"] in (None, self.record.assignment.id)
            and (self.include_hidden or not marker.kwargs["hidden"])
        )


class RecordPlugin:
    """Collects the checks once, then runs them on each job that arrives on `jobs`.

    pytest's start-up and collection cost more than the checks themselves, so one pytest
    session stays open per grading process (checking.py) and its test loop serves records
    one after another, the way pytest-xdist's workers serve the items they are sent.
    """

    def __init__(self, jobs: queue.Queue) -> None:
        self._jobs = jobs
        self.job: CheckJob | None = None
        self.collection_errors: list[str] = []
        self.collected = threading.Event()  # the check files are imported (or never will be)

    # -- fixtures -------------------------------------------------------------------------
    @pytest.fixture
    def record(self) -> Record:
        return self.job.record

    @pytest.fixture
    def assignment(self) -> Assignment:
        return self.job.record.assignment

    @pytest.fixture(autouse=True)
    def _section_was_run(self, request) -> None:
        marker = request.node.get_closest_marker("ptgrade")
        if marker is None:
            return
        job = self.job
        problem = section_problem(job.record, marker.kwargs["section"], job.present_sections)
        if problem is not None:
            raise problem

    # -- collection and the test loop -----------------------------------------------------
    def pytest_configure(self, config) -> None:
        config.addinivalue_line("markers", "ptgrade: a graded check")

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext}")

    def pytest_collection_finish(self, session) -> None:
        self.collected.set()

    def pytest_collection_modifyitems(self, session, config, items) -> None:
        keep = [item for item in items if item.get_closest_marker("ptgrade") is not None]
        drop = [item for item in items if item.get_closest_marker("ptgrade") is None]
        items[:] = keep
        if drop:
            config.hook.pytest_deselected(items=drop)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session) -> bool:
        while not self.collection_errors:
            job = self._jobs.get()
            if job is None:
                break
            items = [item for item in session.items if job.wants(item)]
            job.planned = [item.get_closest_marker("ptgrade").kwargs for item in items]
            self.job = job
            try:
                for item, following in zip(items, items[1:] + [None]):
                    item.config.hook.pytest_runtest_protocol(item=item, nextitem=following)
                job.judged = True
            finally:
                self.job = None
                job.done.set()
        return True

    @pytest.hookimpl(tryfirst=True, specname="pytest_runtest_makereport")
    def pytest_runtest_makereport_briefly(self, item, call) -> pytest.TestReport | None:
        """A failed check's report without pytest's traceback: a verdict needs the exception
        only, and the long traceback repr()s the check's arguments, a record of thousands of
        tensors (0.7 s for one failing submission)."""
        if call.excinfo is None or call.excinfo.errisinstance(pytest.skip.Exception):
            return None  # pytest's own report
        error = call.excinfo.value
        return pytest.TestReport(
            nodeid=item.nodeid,
            location=item.location,
            keywords={},
            outcome="failed",
            longrepr=f"{type(error).__name__}: {error}",
            when=call.when,
            sections=[],
            duration=call.duration,
            start=call.start,
            stop=call.stop,
            user_properties=item.user_properties,
        )

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        marker = item.get_closest_marker("ptgrade")
        if marker is None or self.job is None:
            return
        if report.when == "call" or (report.when == "setup" and report.failed):
            self.job.verdicts.append(self._verdict(marker.kwargs, call, report))

    def _verdict(self, kwargs: dict[str, Any], call, report) -> Verdict:
        verdict = Verdict(
            section=kwargs["section"],
            id=f"{kwargs['section']}.{kwargs['name']}",
            weight=kwargs["weight"],
            passed=report.passed,
            hidden=kwargs["hidden"],
        )
        if call.excinfo is not None:
            error = call.excinfo.value
            if isinstance(error, Mistake):
                verdict.message, verdict.hint = error.message, error.hint
                sharpen = pack_for(self.job.record.assignment).sharpen
                if sharpen is not None:  # None from a `forward` without `return`?
                    verdict.hint = sharpen(self.job.record, verdict.section, error.hint)
            else:  # a bug in a check must show, not pass silently or blame the student
                verdict.internal_error = f"{type(error).__name__}: {error}"
                verdict.message = INTERNAL_ERROR
        return verdict
