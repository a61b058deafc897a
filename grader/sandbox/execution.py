"""Run a submission apart: a child process in a scratch folder, with time, memory and output caps."""

from __future__ import annotations

import atexit
import json
import multiprocessing.util
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.notebook.reading import Submission
from grader.packs import Pack, all_packs, pack_for
from grader.sandbox.isolation import Isolation, package_root, plan, sandbox_environment
from grader.sandbox.limits import process_limit
from grader.sandbox.scratch import make_scratch, sweep
from grader.sandbox.session import Session
from grader.sandbox.warm import WarmWorker
from grader.settings import REHEARSALS_ENV, Limits


@dataclass
class Execution:
    """What came back from the child: the record (None if it never wrote one) and how it ended."""

    record: dict[str, Any] | None
    status: str  # "finished", "timeout", "crashed"
    detail: str
    workdir: Path
    output: str
    duration: float


def build_config(
    limits: Limits, simulate_gpu: bool = False, pack: Pack | None = None
) -> dict[str, Any]:
    """What the child needs before its first cell; cells and reference code come one by one."""
    return {
        "simulate_gpu": simulate_gpu,
        "probe_inputs": pack.probe_inputs() if pack and pack.probe_inputs else [],
        "cell_timeout": limits.cell_timeout,
        "output_limit": limits.output_chars,
    }


def section_names(submission: Submission) -> list[str]:
    # Every snapshot holds the whole contract: the values are small, and a check can then
    # read any name as it stood right after any graded cell.
    contract = [n for s in submission.assignment.sections for n in s.names] + list(
        pack_for(submission.assignment).snapshot_names
    )
    return list(dict.fromkeys(contract))


@dataclass(frozen=True)
class _Pool:
    """One process's warm worker, its confinement and the scratch root it may write in."""

    owner: int  # the pid that started it: a forked grader must start its own
    worker: WarmWorker
    isolation: Isolation
    scratch_root: Path

    def close(self) -> None:
        if os.getpid() == self.owner:
            self.worker.close()
            shutil.rmtree(self.scratch_root, ignore_errors=True)


_POOL: _Pool | None = None
WORKER_PREFIX = "ptgrade-worker-"


def start_warm_worker(many: bool = False) -> None:
    """Start this process's warm worker now and return at once: it imports torch while the
    caller does its own imports (one grade's start-up then costs the longer of the two).
    `many`: it will fork for many submissions (a batch), so its forks are made cheaper once."""
    warm_worker(wait=False, many=many)


def warm_worker(wait: bool = True, many: bool = False) -> _Pool:
    """This process's warm worker, started on first use (torch imported once, then forked)."""
    global _POOL  # one per grading process, like a connection pool of size one
    if _POOL is None or _POOL.owner != os.getpid():
        sweep(WORKER_PREFIX)  # what killed graders left behind
        scratch_root = make_scratch(WORKER_PREFIX)
        scratch_root.chmod(0o755)
        try:
            isolation = plan(scratch_root)
        except BaseException:
            shutil.rmtree(scratch_root, ignore_errors=True)
            raise
        home = scratch_root / "home"
        home.mkdir()
        env = sandbox_environment()  # an allow-list: no token of the grader's gets in
        env.update(
            MPLBACKEND="Agg",
            PYTHONUNBUFFERED="1",
            HOME=str(home),
            MPLCONFIGDIR=str(home / "matplotlib"),
            TMPDIR=str(home),
        )
        # Each pack's rehearsal, run once by the worker before it forks (runner.prepare).
        rehearsals = [pack.rehearsal for pack in all_packs() if pack.rehearsal]
        env[REHEARSALS_ENV] = json.dumps(rehearsals)
        root = str(package_root())
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        pool = _Pool(
            os.getpid(), WarmWorker(env, isolation.prefix, huge_pages=many), isolation, scratch_root
        )
        atexit.register(pool.close)
        # Pool workers (ptgrade batch) leave through os._exit, which skips atexit.
        multiprocessing.util.Finalize(None, pool.close, exitpriority=10)
        _POOL = pool
    if wait:
        _POOL.worker.ensure_running()
    else:
        _POOL.worker.launch()
    return _POOL


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


def execute(submission: Submission, limits: Limits, reference: dict[str, str]) -> Execution:
    """Execute the notebook in a scratch copy; every process it started is gone on return."""
    pool = warm_worker()
    worker, isolation = pool.worker, pool.isolation
    scratch = Path(tempfile.mkdtemp(prefix="submission-", dir=pool.scratch_root))
    scratch.chmod(0o755)
    workdir, home = scratch / "work", scratch / "home"
    for folder in (workdir, home):
        folder.mkdir()
    shutil.copy2(submission.path, workdir / submission.path.name)
    if isolation.sandbox_uid is not None:
        for path in (workdir, home, workdir / submission.path.name):
            os.chown(path, isolation.sandbox_uid, isolation.sandbox_uid)
    request = {
        "config": build_config(
            # `--device cpu` runs on the CPU: no GPU, real or simulated.
            limits,
            limits.simulate_gpu
            and submission.assignment.device_agnostic
            and limits.device != "cpu",
            pack_for(submission.assignment),
        ),
        "workdir": str(workdir),
        "home": str(home),
        "memory_mb": limits.memory_mb,
        "cpu": limits.device == "cpu",
        "uid": isolation.sandbox_uid,
        "nproc": process_limit(isolation.sandbox_uid),
    }
    started = time.monotonic()
    ours, theirs = socket.socketpair()
    try:
        worker.start(request, theirs)
        theirs.close()
        deadline = started + limits.notebook_timeout
        session = Session(ours, limits, deadline, submission.assignment.id)
        session.run(
            cells_to_run(submission, reference),
            reference,
            {section.id: section.names for section in submission.assignment.sections},
            section_names(submission),
        )
    finally:
        ours.close()
        theirs.close()
    returncode = worker.finish(kill=not session.finished)
    duration = time.monotonic() - started
    status, detail = session.status, session.detail
    if status == "crashed" and not detail:
        detail = _describe_exit(returncode)
        if returncode == 0:
            detail = "the process ended before the last cell"
    return Execution(
        record=session.record if session.answered else None,
        status=status,
        detail=detail,
        workdir=workdir,
        output=session.record["output"],
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


def isolation() -> Isolation:
    """The confinement submissions run under in this process (starts the worker, without
    waiting for it: nothing of a notebook runs in it yet)."""
    return warm_worker(wait=False).isolation
