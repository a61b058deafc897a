"""The sandbox's child: execute a notebook's cells in an IPython shell and write the record.

Started as `python -m grader.runner CONFIG RECORD` by sandbox.py (or forked from a warm worker).
Nothing here trusts the student's code: the record is rewritten after every cell, so whatever
kills the process, the parent still has everything up to the cell that did it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import time
import traceback
from typing import Any

RECORD_VERSION = 1


class CellTimeout(BaseException):
    """Raised inside a cell that ran past its time limit."""


class CappedText(io.TextIOBase):
    """Keeps the first `limit` characters written and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self) -> str:
        tail = f"\n[... {self.dropped} more characters of output dropped]" if self.dropped else ""
        return "".join(self.parts) + tail


def prepare() -> None:
    """Pay the fixed costs once (a warm worker calls this before it forks)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import torch
    from IPython.core.interactiveshell import InteractiveShell  # noqa: F401

    # The first optimizer built in a process imports torch._dynamo (about a second).
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)


def _error_info(error: BaseException, source: str) -> dict[str, Any]:
    line_number = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
    if line_number is None:
        for frame in traceback.extract_tb(error.__traceback__):
            if frame.filename.startswith("<ipython-input") or "ipykernel" in frame.filename:
                line_number = frame.lineno
    lines = source.splitlines()
    line = lines[line_number - 1].strip() if line_number and 0 < line_number <= len(lines) else None
    message = error.msg if isinstance(error, SyntaxError) else str(error)
    return {
        "ename": type(error).__name__,
        "evalue": str(message)[:500],
        "line_number": line_number,
        "line": line,
    }


def _run_cell(shell, source: str, timeout: float) -> dict[str, Any]:
    def on_alarm(signum, frame):
        raise CellTimeout()

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        result = shell.run_cell(source, store_history=False, silent=False)
    except CellTimeout:  # raised outside the cell's own try/except
        result = None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    outcome: dict[str, Any] = {"duration": time.monotonic() - started, "error": None}
    error = None
    if result is None:
        error = CellTimeout()
    else:
        error = result.error_before_exec or result.error_in_exec
    if error is None:
        outcome["status"] = "ok"
    elif isinstance(error, CellTimeout):
        outcome["status"] = "timeout"
        outcome["error"] = {
            "ename": "TimeoutError",
            "evalue": f"the cell ran for more than {timeout:g} s",
            "line_number": None,
            "line": None,
        }
    else:
        outcome["status"] = "error"
        outcome["error"] = _error_info(error, source)
    return outcome


def run(config: dict[str, Any], record_path: str) -> None:
    """Execute every code cell (test cells skipped) and keep the record up to date on disk."""
    import torch
    from IPython.core.interactiveshell import InteractiveShell

    from grader.snapshot import MISSING, describe
    from grader.trace import Tracer

    os.environ["PTGRADE_SANDBOX"] = "1"
    output = CappedText(int(config.get("output_limit", 200_000)))
    real_stdout, real_stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = output

    tracer = Tracer()
    tracer.install()
    shell = InteractiveShell.instance(colors="nocolor")
    namespace = shell.user_ns
    probe_inputs = config.get("probe_inputs", [])
    reference = config.get("reference", {})
    section_names: dict[str, list[str]] = config["sections"]
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "assignment": config["assignment"],
        "cells": [],
        "snapshots": {},
        "final": {},
        "trace": tracer.events,
        "trace_truncated": False,
        "output": "",
        "finished": False,
        "torch_version": str(torch.__version__),
        "cuda_available": bool(torch.cuda.is_available.__wrapped__()),
    }

    def snapshot(names) -> dict[str, Any]:
        values = {}
        for name in names:
            if name in namespace:
                try:
                    values[name] = describe(namespace[name], tracer, probe_inputs)
                except Exception as error:  # a hostile object: note it, keep going
                    values[name] = {"kind": "unreadable", "error": repr(error)[:300]}
            else:
                values[name] = MISSING
        return values

    def save() -> None:
        record["output"] = output.getvalue()
        record["trace_truncated"] = tracer.truncated
        temporary = record_path + ".tmp"
        with tracer.paused():
            torch.save(record, temporary)
        os.replace(temporary, record_path)

    save()
    for cell in config["cells"]:
        if cell["role"] == "test":
            continue
        tracer.cell = cell["index"]
        tracer.substituted = cell["role"] == "reference"  # standing in for a deleted cell
        outcome = _run_cell(shell, cell["source"], float(config.get("cell_timeout", 60)))
        tracer.substituted = False
        outcome.update(index=cell["index"], grade_id=cell.get("grade_id"), role=cell["role"])
        outcome["substituted"] = False
        grade_id = cell.get("grade_id")
        if cell["role"] == "stub" and outcome["status"] != "ok" and grade_id in reference:
            tracer.substituted = True
            fallback = _run_cell(shell, reference[grade_id], float(config.get("cell_timeout", 60)))
            tracer.substituted = False
            outcome["substituted"] = True
            outcome["reference_status"] = fallback["status"]
        record["cells"].append(outcome)
        if cell["role"] in ("stub", "reference") and grade_id in section_names:
            record["snapshots"][grade_id] = snapshot(section_names[grade_id])
        save()

    tracer.cell = None
    record["final"] = snapshot(config.get("final_names", []))
    record["finished"] = True
    save()
    sys.stdout, sys.stderr = real_stdout, real_stderr


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config_path, record_path = argv
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    os.chdir(config["workdir"])
    prepare()
    run(config, record_path)
    # Skip interpreter teardown: a student's atexit handlers or threads must not hold us here.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
