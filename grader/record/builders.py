"""Hand-made records: a check unit-tested on the values and events it reads, without a sandbox.

A check reads a `Record`: the student's cells, a snapshot of their names after each graded
cell, and the trace's events. `RecordBuilder` makes one from values the test itself holds, in
the record's own format: values are described by the same code the sandbox's child uses
(snapshot.describe), and every event and value is read back through record_format, so a
hand-made record that the grader would refuse from a child is refused here too.

    record = (
        RecordBuilder("01_pytorch_workflow_exercises")
        .cell("data", "X = torch.arange(0, 1, 0.01)")
        .values("data", X=torch.arange(0, 1, 0.01), y=..., weight=0.3, bias=0.9)
        .build()
    )
    with pytest.raises(Mistake):
        test_data.test_X_is_a_column_of_enough_points(record, record.assignment)

Trusted values only: describing a module runs its `forward` in this process.
"""

from __future__ import annotations

from typing import Any

from grader.packs import all_assignments, pack_for
from grader.record.schema import RECORD_VERSION, EventReader, check_value
from grader.record.submission import Record

# The event fields that hold a tensor summary (trace.tensor_summary), not a plain value.
_TENSOR_FIELDS = {"input", "output", "target"}


class RecordBuilder:
    """A record built cell by cell: `.cell(...)`, `.values(...)`, `.event(...)`, `.build()`."""

    def __init__(self, assignment_id: str, *, simulated_gpu: bool = False) -> None:
        self.assignment = all_assignments()[assignment_id]
        self._cells: list[dict[str, Any]] = []
        self._snapshots: dict[str, dict[str, dict]] = {}
        self._final: dict[str, dict] = {}
        self._events: list[tuple[dict[str, Any], int]] = []
        self._simulated_gpu = simulated_gpu

    # -- cells ----------------------------------------------------------------------------
    def cell(self, section_id: str, source: str = "", status: str = "ok", **error: Any):
        """The student's cell of `section_id`; `error` (ename, evalue, line_number, line) for a
        cell that raised."""
        self._cells.append(
            {
                "index": len(self._cells),
                "grade_id": section_id,
                "role": "stub",
                "source": source,
                "status": status,
                "duration": 0.0,
                "substituted": False,
                "error": _error(error) if error or status == "error" else None,
            }
        )
        return self

    def _index(self, section_id: str) -> int:
        for cell in self._cells:
            if cell["grade_id"] == section_id:
                return cell["index"]
        raise KeyError(f"no cell for section {section_id!r}: add it with .cell() first")

    # -- values ---------------------------------------------------------------------------
    def values(self, section_id: str | None, **named: Any):
        """The names as a snapshot after `section_id`'s cell (None: at the notebook's end)."""
        from grader.sandbox.child.snapshot import describe
        from grader.sandbox.child.trace import Tracer

        pack = pack_for(self.assignment)
        tracer, probes = Tracer(), pack.probe_inputs() if pack.probe_inputs else []
        described = {
            name: check_value(describe(value, tracer, probes)) for name, value in named.items()
        }
        target = self._final if section_id is None else self._snapshots.setdefault(section_id, {})
        target.update(described)
        return self

    def raw_values(self, section_id: str | None, **named: dict):
        """Snapshot entries given as the record's own dicts ({"kind": "missing"}, ...)."""
        target = self._final if section_id is None else self._snapshots.setdefault(section_id, {})
        target.update({name: check_value(value) for name, value in named.items()})
        return self

    # -- events ---------------------------------------------------------------------------
    def event(self, section_id: str, kind: str, **fields: Any):
        """One trace event of `kind` in `section_id`'s cell; tensors given for `input`,
        `output` and `target` are summarised as the trace does."""
        from grader.sandbox.child.trace import tensor_summary

        for name in _TENSOR_FIELDS & fields.keys():
            if _is_tensor(fields[name]):
                fields[name] = tensor_summary(fields[name])
        self._events.append(({"kind": kind, **fields}, self._index(section_id)))
        return self

    # -- the record -----------------------------------------------------------------------
    def build(self, status: str = "finished", detail: str = "") -> Record:
        reader = EventReader()
        trace = []
        for event, cell in self._events:
            trace.extend(reader.read([event], cell, substituted=False))
        raw = {
            "version": RECORD_VERSION,
            "assignment": self.assignment.id,
            "cells": self._cells,
            "snapshots": self._snapshots,
            "final": self._final,
            "trace": trace,
            "trace_truncated": [],
            "output": "",
            "finished": status == "finished",
            "torch_version": "",
            "cuda_available": False,
            "simulated_gpu": self._simulated_gpu,
        }
        return Record(assignment=self.assignment, raw=raw, status=status, detail=detail)


def _error(error: dict[str, Any]) -> dict[str, Any]:
    return {
        "ename": error.get("ename", "Exception"),
        "evalue": error.get("evalue", ""),
        "line_number": error.get("line_number"),
        "line": error.get("line"),
        "inner": None,
        "in_cell": True,
    }


def _is_tensor(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor)
