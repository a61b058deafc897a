"""Run a submission apart: a child process in a scratch folder, with time, memory and output caps."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.assignments import DATA_NAMES
from grader.notebook import Submission
from grader.warm import WarmWorker

# Inputs the model's forward is probed with; chosen by the grader, not the notebook.
PROBE_INPUTS = [[0.0, 1.0, 2.0, -1.5, 0.25]]


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 60.0
    notebook_timeout: float = 300.0
    memory_mb: int = 4096
    output_chars: int = 200_000
    device: str = "auto"  # "cpu" hides any GPU from the submission


@dataclass
class Execution:
    """What came back from the child: the record (None if it never wrote one) and how it ended."""

    record: dict[str, Any] | None
    status: str  # "finished", "timeout", "crashed"
    detail: str
    workdir: Path
    output: str
    duration: float


def build_config(submission: Submission, limits: Limits, reference: dict[str, str], workdir: Path):
    assignment = submission.assignment
    # Every snapshot holds the whole contract: the values are small, and a check can then
    # read any name as it stood right after any graded cell.
    contract = [n for s in assignment.sections for n in s.names] + list(DATA_NAMES)
    final_names = list(dict.fromkeys(contract))
    sections = {s.id: final_names for s in assignment.sections}
    return {
        "assignment": assignment.id,
        "workdir": str(workdir),
        "cells": cells_to_run(submission, reference),
        "reference": reference,
        "sections": sections,
        "final_names": final_names,
        "probe_inputs": PROBE_INPUTS,
        "cell_timeout": limits.cell_timeout,
        "output_limit": limits.output_chars,
    }


_WORKER: WarmWorker | None = None


def warm_worker() -> WarmWorker:
    """This process's warm worker, started on first use (torch imported once, then forked)."""
    global _WORKER  # one per grading process, like a connection pool of size one
    if _WORKER is None:
        env = dict(os.environ)
        env.update(MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
        env.pop("GITHUB_STEP_SUMMARY", None)
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        _WORKER = WarmWorker(env)
    return _WORKER


def cells_to_run(submission: Submission, reference: dict[str, str]) -> list[dict]:
    """The notebook's cells, plus the reference code of any graded cell the student deleted,
    placed before the next graded cell, so that later sections can still be judged."""
    cells = [
        {"index": c.index, "source": c.source, "role": c.role, "grade_id": c.grade_id}
        for c in submission.cells
    ]
    order = list(submission.assignment.section_ids)
    present = set(submission.stub_ids)
    for section_id in order:
        if section_id in present or section_id not in reference:
            continue
        later = set(order[order.index(section_id) + 1 :])
        position = next(
            (i for i, c in enumerate(cells) if c["role"] == "stub" and c["grade_id"] in later),
            len(cells),
        )
        cells.insert(
            position,
            {
                "index": -1,
                "source": reference[section_id],
                "role": "reference",
                "grade_id": section_id,
            },
        )
    return cells


def _read_capped(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def execute(submission: Submission, limits: Limits, reference: dict[str, str]) -> Execution:
    """Execute the notebook in a scratch copy; every process it started is gone on return."""
    import torch

    scratch = Path(tempfile.mkdtemp(prefix="ptgrade-"))
    workdir = scratch / "work"
    private = scratch / "private"
    workdir.mkdir()
    private.mkdir(mode=0o700)
    shutil.copy2(submission.path, workdir / submission.path.name)
    config_path = private / "config.json"
    record_path = private / "record.pt"
    output_path = private / "output.txt"
    config = build_config(submission, limits, reference, workdir)
    config_path.write_text(json.dumps(config), encoding="utf-8")
    request = {
        "config": str(config_path),
        "record": str(record_path),
        "output": str(output_path),
        "memory_mb": limits.memory_mb,
        "cpu": limits.device == "cpu",
    }
    started = time.monotonic()
    returncode, timed_out = warm_worker().run(request, limits.notebook_timeout)
    duration = time.monotonic() - started

    status, detail = "finished", ""
    if timed_out:
        status = "timeout"
        detail = f"the notebook ran for more than {limits.notebook_timeout:g} s and was stopped"
    elif returncode != 0:
        status = "crashed"
        detail = _describe_exit(returncode)
    record = None
    if record_path.exists():
        try:
            record = torch.load(record_path, weights_only=True)
        except Exception as error:  # a corrupt or forged record is a crash, not our crash
            status, detail = "crashed", f"its record could not be read ({type(error).__name__})"
    if record is None and status == "finished":
        status, detail = "crashed", "the process ended without recording anything"
    elif record is not None and status == "finished" and not record.get("finished"):
        status, detail = "crashed", "the process ended before the last cell"
    return Execution(
        record=record,
        status=status,
        detail=detail,
        workdir=workdir,
        output=_read_capped(output_path, limits.output_chars),
        duration=duration,
    )


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "the grader's worker process died"
    if returncode < 0:
        name = signal.Signals(-returncode).name
        reasons = {
            "SIGKILL": "it was killed (often: it ran out of memory)",
            "SIGSEGV": "it crashed with a segmentation fault",
            "SIGXCPU": "it used too much CPU time",
        }
        return reasons.get(name, f"it was stopped by {name}")
    return f"the process exited with status {returncode}"


def cleanup(execution: Execution) -> None:
    shutil.rmtree(execution.workdir.parent, ignore_errors=True)
