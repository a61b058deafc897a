"""Run a submission apart: a child process in a scratch folder, with time, memory and output caps."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.assignments import DATA_NAMES
from grader.notebook import Submission

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
        "cells": [
            {"index": c.index, "source": c.source, "role": c.role, "grade_id": c.grade_id}
            for c in submission.cells
        ],
        "reference": reference,
        "sections": sections,
        "final_names": final_names,
        "probe_inputs": PROBE_INPUTS,
        "cell_timeout": limits.cell_timeout,
        "output_limit": limits.output_chars,
    }


def _child_limits(memory_mb: int):
    def apply() -> None:
        if memory_mb > 0:
            size = memory_mb * 1024 * 1024
            # RLIMIT_DATA caps heap and anonymous mappings without counting torch's large
            # virtual reservations the way RLIMIT_AS would.
            resource.setrlimit(resource.RLIMIT_DATA, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _drain(stream, limit: int, sink: list[str]) -> None:
    kept = 0
    for chunk in iter(lambda: stream.read(65536), b""):
        if kept < limit:
            sink.append(chunk[: limit - kept].decode("utf-8", "replace"))
            kept += len(chunk)
    stream.close()


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def execute(submission: Submission, limits: Limits, reference: dict[str, str]) -> Execution:
    """Execute the notebook in a scratch copy; every process it started is gone on return."""
    import torch

    scratch = Path(tempfile.mkdtemp(prefix="ptgrade-"))
    workdir = scratch / "work"
    private = scratch / "private"
    workdir.mkdir()
    private.mkdir()
    shutil.copy2(submission.path, workdir / submission.path.name)
    config_path = private / "config.json"
    record_path = private / "record.pt"
    config = build_config(submission, limits, reference, workdir)
    config_path.write_text(json.dumps(config), encoding="utf-8")

    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", PTGRADE_SANDBOX="1", PYTHONUNBUFFERED="1")
    env.pop("GITHUB_STEP_SUMMARY", None)
    if limits.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))

    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "grader.runner", str(config_path), str(record_path)],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        preexec_fn=_child_limits(limits.memory_mb),
    )
    output: list[str] = []
    drainer = threading.Thread(
        target=_drain, args=(process.stdout, limits.output_chars, output), daemon=True
    )
    drainer.start()
    status, detail = "finished", ""
    try:
        returncode = process.wait(timeout=limits.notebook_timeout)
        if returncode != 0:
            status = "crashed"
            detail = _describe_exit(returncode)
    except subprocess.TimeoutExpired:
        status = "timeout"
        detail = f"the notebook ran for more than {limits.notebook_timeout:g} s and was stopped"
    finally:
        kill_group(process)
        process.wait()
    drainer.join(timeout=5)
    duration = time.monotonic() - started

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
        output="".join(output),
        duration=duration,
    )


def _describe_exit(returncode: int) -> str:
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
