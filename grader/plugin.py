"""The pytest plugin that feeds a record to the checks and collects their verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from grader.assignments import Assignment
from grader.hints import hint_for_error
from grader.record import Mistake, Record


def check(section: str, name: str, weight: float = 1.0, only: str | None = None, hidden=False):
    """Mark a pytest function as a graded check of `section` (only=assignment id to restrict)."""
    return pytest.mark.ptgrade(section=section, name=name, weight=weight, only=only, hidden=hidden)


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


DEVICE_HINTS = {"training_loop": "training.off_device", "load_model": "load.not_on_device"}


def section_problem(record: Record, section_id: str, present: set[str]) -> Mistake | None:
    """Why a section cannot be judged on the student's code at all, if it cannot."""
    if section_id not in present:
        return Mistake(
            f"The graded cell `{section_id}` is missing from your notebook.", "cell.missing"
        )
    cell = record.stub_cell(section_id)
    if cell is None:
        why = record.detail or "the notebook stopped before it"
        hint = "cell.timeout" if record.status == "timeout" else "cell.raised"
        return Mistake(f"This cell never ran: {why}.", hint)
    if cell["status"] == "timeout":
        return Mistake(f"Your cell was stopped: {cell['error']['evalue']}.", "cell.timeout")
    if cell["status"] == "error":
        error = cell["error"]
        where = f" on line {error['line_number']}" if error.get("line_number") else ""
        code = f" (`{error['line']}`)" if error.get("line") else ""
        message = f"Your cell raised {error['ename']}{where}{code}: {error['evalue']}"
        if error["ename"] == "NotImplementedError":
            message = "This cell has not been filled in yet."
        hint = hint_for_error(error["ename"], error["evalue"])
        # The same device error means a different fix in each section.
        hint = DEVICE_HINTS.get(section_id, hint) if hint == "device.mismatch" else hint
        return Mistake(message, hint)
    return None


class RecordPlugin:
    def __init__(self, record: Record, present_sections: set[str], include_hidden: bool) -> None:
        self._record = record
        self._present = present_sections
        self._include_hidden = include_hidden
        self.verdicts: list[Verdict] = []

    # -- fixtures -------------------------------------------------------------------------
    @pytest.fixture
    def record(self) -> Record:
        return self._record

    @pytest.fixture
    def assignment(self) -> Assignment:
        return self._record.assignment

    @pytest.fixture(autouse=True)
    def _section_was_run(self, request) -> None:
        marker = request.node.get_closest_marker("ptgrade")
        if marker is None:
            return
        problem = section_problem(self._record, marker.kwargs["section"], self._present)
        if problem is not None:
            raise problem

    # -- collection and results -----------------------------------------------------------
    def pytest_configure(self, config) -> None:
        config.addinivalue_line("markers", "ptgrade: a graded check")

    def pytest_collection_modifyitems(self, session, config, items) -> None:
        keep, drop = [], []
        sections = set(self._record.assignment.section_ids)
        for item in items:
            marker = item.get_closest_marker("ptgrade")
            wanted = (
                marker is not None
                and marker.kwargs["section"] in sections
                and marker.kwargs["only"] in (None, self._record.assignment.id)
                and (self._include_hidden or not marker.kwargs["hidden"])
            )
            (keep if wanted else drop).append(item)
        items[:] = keep
        if drop:
            config.hook.pytest_deselected(items=drop)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        marker = item.get_closest_marker("ptgrade")
        if marker is None:
            return
        if report.when == "call" or (report.when == "setup" and report.failed):
            self.verdicts.append(self._verdict(marker.kwargs, call, report))

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
            else:  # a bug in a check must show, not pass silently or blame the student
                verdict.internal_error = f"{type(error).__name__}: {error}"
                verdict.message = "The grader could not run this check (internal error)."
        return verdict
