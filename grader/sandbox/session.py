"""The grader's side of the record channel: send each cell, take its answer, build the record.

The record is assembled here, in the grader, from answers taken as each cell ends. A cell can
therefore neither rewrite what earlier cells recorded nor replace the record with a file; an
answer that is late, malformed or out of turn ends the run (the process is killed), and the
sections before it keep their verdicts.
"""

from __future__ import annotations

import time
from typing import Any

from grader.notebook.cell_source import names_made
from grader.packs import pack_for
from grader.record.schema import RECORD_VERSION, EventReader, FormatError, check_value
from grader.sandbox.channel import ChannelError, ChannelTimeout, receive_answer, send_request

SAME_DEVICE = "on the same device"  # torch's words for tensors on two devices

GRACE = 3.0  # seconds past a cell's limit before the grader stops waiting for the process
START_TIMEOUT = 60.0
CELL_STATUSES = ("ok", "error", "timeout")


class Session:
    def __init__(self, channel, limits, deadline: float, assignment: str) -> None:
        self._channel = channel
        self._limits = limits
        self._deadline = deadline
        self._seq = 0
        self._events = EventReader()
        self._pack = pack_for(assignment)  # its stand-ins' repairs, its probes
        self.answered = False
        self.finished = False
        self.status = "finished"
        self.detail = ""
        self.record: dict[str, Any] = {
            "version": RECORD_VERSION,
            "assignment": assignment,
            "cells": [],
            "snapshots": {},
            "final": {},
            "trace": [],
            "trace_truncated": [],  # cells whose events past MAX_EVENTS were not recorded
            "output": "",
            "finished": False,
            "torch_version": "",
            "cuda_available": False,
            "simulated_gpu": False,
        }

    # -- one request, one answer ----------------------------------------------------------
    def _ask(
        self,
        request: dict[str, Any] | None,
        wait: float,
        cell: int | None = None,
        substituted: bool = False,
    ) -> dict[str, Any]:
        """Send `request`, take its answer. The answer's events are filed under `cell`, the cell
        the grader just ran (None: the grader's own look at the values), whatever they say."""
        if request is not None:
            self._seq += 1
            send_request(self._channel, {**request, "seq": self._seq})
        deadline = min(time.monotonic() + wait, self._deadline)
        answer = receive_answer(self._channel, deadline)
        if answer.get("seq") != self._seq:
            raise ChannelError("an answer came out of turn")
        self.answered = True
        try:
            events = self._events.read(answer.get("events", []), cell, substituted)
        except FormatError as error:
            raise ChannelError(f"the trace is malformed ({error})") from None
        self.record["trace"].extend(events)
        # The child may say it cut the cell it just ran (its own cap); no other cell's.
        cut = answer.get("trace_truncated")
        if cell is not None and isinstance(cut, list) and cell in cut:
            self._events.truncated.add(cell)
        self.record["trace_truncated"] = sorted(self._events.truncated)
        if isinstance(answer.get("output"), str):
            self.record["output"] = answer["output"][: self._limits.output_chars + 200]
        return answer

    def _run(self, index: int, source: str, substituted: bool) -> dict[str, Any]:
        request = {"op": "run", "index": index, "source": source, "substituted": substituted}
        answer = self._ask(request, self._limits.cell_timeout + GRACE, index, substituted)
        return _checked_outcome(answer.get("outcome"))

    def _snapshot(self, names: list[str]) -> dict[str, Any]:
        # Fresh inputs for every snapshot's probes.
        inputs = self._pack.probe_inputs() if self._pack.probe_inputs else []
        request = {"op": "snapshot", "names": names, "probe_inputs": inputs}
        answer = self._ask(request, self._limits.cell_timeout + GRACE)
        values = answer.get("values")
        values = values if isinstance(values, dict) else {}
        try:
            return {
                name: check_value(values[name])
                if name in values
                else {"kind": "unreadable", "error": "the grader could not read it in time"}
                for name in names
            }
        except FormatError as error:
            raise ChannelError(f"a value is malformed ({error})") from None

    # -- the notebook ---------------------------------------------------------------------
    def run(
        self,
        cells: list[dict],
        reference: dict[str, str],
        sections: dict[str, tuple[str, ...]],
        names: list[str],
    ) -> None:
        """Run `cells` in order, snapshotting `names` after each cell of `sections` (section id
        -> the names its cell must define); on any failure, set status and detail and stop."""
        try:
            hello = self._ask(None, START_TIMEOUT)
            self.record["torch_version"] = str(hello.get("torch_version", ""))[:50]
            self.record["cuda_available"] = hello.get("cuda_available") is True
            self.record["simulated_gpu"] = hello.get("simulated_gpu") is True
            for cell in cells:
                if cell["role"] == "test":
                    continue
                self._cell(cell, reference, sections, names)
            self.record["final"] = self._snapshot(names)
            self._ask({"op": "exit"}, START_TIMEOUT)
            self.record["finished"] = self.finished = True
        except ChannelTimeout:
            self.status = "timeout"
            if time.monotonic() >= self._deadline:
                self.detail = (
                    f"the notebook ran for more than {self._limits.notebook_timeout:g} s "
                    "and was stopped"
                )
            else:
                self.detail = (
                    f"a cell ran past its {self._limits.cell_timeout:g} s limit and did not "
                    "stop, so the notebook was stopped"
                )
        except ChannelError as error:
            self.status = "crashed"
            if "closed" not in str(error):  # the process died: the worker says how
                self.detail = f"its record could not be read ({error})"

    def _cell(self, cell: dict, reference: dict[str, str], sections, names) -> None:
        grade_id = cell.get("grade_id")
        source = resolve(cell["source"], self.record)  # a stand-in may depend on earlier values
        outcome = self._run(cell["index"], source, cell["role"] == "reference")
        outcome.update(index=cell["index"], grade_id=grade_id, role=cell["role"])
        if cell["role"] == "stub":
            outcome["source"] = cell["source"]  # the grader's own copy, for messages
        outcome["substituted"] = False
        substitutable = cell["role"] == "stub" and grade_id in reference
        gpu = self.record["cuda_available"] or self.record["simulated_gpu"]
        try:
            moved = ""
            if substitutable and outcome["status"] == "error":
                moved = self._at_error(outcome, cell["source"], names, gpu)
            if substitutable and outcome["status"] != "ok":
                self._substitute(outcome, moved + resolve(reference[grade_id], self.record))
        finally:
            self.record["cells"].append(outcome)
        if cell["role"] in ("stub", "reference") and grade_id in sections:
            snapshot = self._snapshot(names)
            self.record["snapshots"][grade_id] = snapshot
            # A cell that ran but left out a name its section defines (`model_0 = ...`
            # deleted) would fail every later cell that uses it: the reference code defines
            # it for them. This section is judged on the snapshot above, the student's.
            missing = [n for n in sections[grade_id] if snapshot[n].get("kind") == "missing"]
            if substitutable and outcome["status"] == "ok" and missing:
                self._substitute(outcome, reference[grade_id])
            device = self._pack.device_name
            if cell["role"] == "stub" and device in sections[grade_id] and gpu:
                self._without_gpu(cell["source"], device)
            if cell["role"] == "stub" and outcome["status"] == "ok" and not outcome["substituted"]:
                self._repair(outcome, snapshot, gpu, reference.get(grade_id))

    def _without_gpu(self, source: str, device: str) -> None:
        """The device cell's `device` (the pack's device_name) on a machine without a GPU too:
        the branch a GPU machine never runs (`else "mps"`) is judged as well."""
        answer = self._ask(
            {"op": "run_without_gpu", "source": source, "names": [device]},
            self._limits.cell_timeout + GRACE,
        )
        values = answer.get("values")
        value = values.get(device) if isinstance(values, dict) else None
        if value is None:
            return
        if isinstance(value, dict) and value.get("kind") == "error":
            # The cell raised there: only its message, as text, is kept.
            self.record["without_gpu"] = {
                device: {"kind": "error", "error": str(value.get("error"))[:500]}
            }
            return
        try:
            self.record["without_gpu"] = {device: check_value(value)}
        except FormatError as error:
            raise ChannelError(f"a value is malformed ({error})") from None

    def _at_error(self, outcome: dict, source: str, names: list[str], gpu: bool) -> str:
        """A cell that raised: its values as it raised, before any stand-in (the stand-in keeps
        what of the student's is fine, such as their model class; a device error's message
        names the value actually elsewhere). For a same-device error, the lines that move the
        values off `device` on its failing line to it, run before the stand-in, so that the
        later sections do not meet the same misplaced tensor again."""
        snapshot = self._snapshot(names)
        self.record.setdefault("at_error", {})[outcome["grade_id"]] = snapshot
        error = outcome["error"] or {}
        pack = self._pack
        if SAME_DEVICE not in str(error.get("evalue")) or not (pack.misplaced and pack.moves):
            return ""
        if self._device_changed(snapshot, source):
            return ""  # the cell changed the device itself: the values are where they were
        try:
            found = pack.misplaced(snapshot, error.get("line") or "", source, gpu)
            return pack.moves(snapshot, [n for n in found if n in names])
        except Exception:  # an odd value: the stand-in alone (the message stays torch's)
            return ""

    def _device_changed(self, snapshot: dict, source: str) -> bool:
        """Whether the cell assigns the pack's device name a value other than the one the
        cells before it left (`device = "cpu"` in a later cell that then raised)."""
        name = self._pack.device_name
        before = [s[name] for s in self.record["snapshots"].values() if name in s][-1:]
        if not before or name not in snapshot or name not in names_made(source):
            return False
        return snapshot[name] != before[0]

    def _repair(self, outcome: dict, snapshot: dict, gpu: bool, standin) -> None:
        """A cell that ran but left a value that breaks the later sections (`device = "gpu"`,
        the model left on the CPU): the grader puts it right for them, as a stand-in, and the
        section itself is judged on the snapshot taken before."""
        pack = self._pack
        if pack.repair is None:  # the pack puts nothing right
            return
        assignment = pack.assignment(self.record["assignment"])
        saves = [
            e for e in self.record["trace"] if e["kind"] == "save" and e["cell"] == outcome["index"]
        ]
        earlier = dict(self.record["snapshots"])
        earlier.pop(outcome["grade_id"], None)
        fix = pack.repair(assignment, outcome["grade_id"], snapshot, gpu, saves, earlier)
        if fix is None or (fix[1] is None and standin is None):
            return
        names, source = fix
        source = resolve(standin, self.record) if source is None else source
        done = self._run(outcome["index"], source, True)
        outcome["repaired"] = {"names": names, "status": done["status"]}

    def _substitute(self, outcome: dict, standin) -> None:
        fallback = self._run(outcome["index"], resolve(standin, self.record), True)
        outcome["substituted"] = True
        outcome["reference_status"] = fallback["status"]


def resolve(standin, record: dict[str, Any]) -> str:
    """A stand-in's source: itself, or what the function it is writes from the record so far."""
    return standin(record) if callable(standin) else standin


def _checked_outcome(outcome: Any) -> dict[str, Any]:
    """A cell's outcome as the grader keeps it: known fields of known types only."""
    if not isinstance(outcome, dict) or outcome.get("status") not in CELL_STATUSES:
        raise ChannelError("a cell's outcome is malformed")
    error = outcome.get("error")
    checked_error = None
    if isinstance(error, dict):
        line_number = error.get("line_number")
        checked_error = {
            "ename": str(error.get("ename", ""))[:100],
            "evalue": str(error.get("evalue", ""))[:500],
            "line_number": line_number if isinstance(line_number, int) else None,
            "line": str(error["line"])[:500] if error.get("line") is not None else None,
            "inner": _checked_inner(error.get("inner")),
            "in_cell": error.get("in_cell") is True,
        }
    duration = outcome.get("duration")
    return {
        "status": outcome["status"],
        "duration": float(duration) if isinstance(duration, (int, float)) else 0.0,
        "error": checked_error,
    }


def _checked_inner(inner: Any) -> dict[str, str] | None:
    """Where in another cell's function the error was raised: two short strings, or None."""
    if not isinstance(inner, dict):
        return None
    return {key: str(inner.get(key) or "")[:200] for key in ("function", "line")}
