"""Run the pytest checks in the grader's own process on a record; return one verdict per check.

One pytest session per grading process and checks folder, kept open in a thread: pytest starts
and collects once, then its test loop (plugin.RecordPlugin) judges each record it is handed.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from pathlib import Path

import pytest

from grader.plugin import CheckJob, RecordPlugin, Verdict
from grader.record import Record

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
CHECKS_TIMEOUT = 120.0  # seconds one record's checks may take (they take milliseconds)
# Plugins the checks don't need. Each of these would touch process-wide state (file descriptors,
# warning filters, the root logger, faulthandler) for as long as the session stays open, or
# keeps every report (the terminal) and so grows with every submission.
UNUSED_PLUGINS = (
    "cacheprovider",
    "xdist",
    "randomly",
    "unraisableexception",
    "threadexception",
    "terminal",
    "warnings",
    "logging",
    "faulthandler",
    "junitxml",
    "pastebin",
)


class CheckSession:
    """A pytest session in a daemon thread, serving CheckJobs until the process ends or
    `close()` (which open_checks calls when the check files changed)."""

    def __init__(self, paths: list[str]) -> None:
        self.owner = os.getpid()  # a forked process must open its own: threads don't fork
        self.files = checks_files(paths)
        self._jobs: queue.Queue = queue.Queue()
        self._plugin = RecordPlugin(self._jobs)
        self.exit_code: int | None = None
        self.stuck = False
        args = [
            *paths,
            *("-c", str(CHECKS_DIR / "pytest.ini"), "--rootdir", str(CHECKS_DIR)),
            "--import-mode=importlib",
            "--capture=no",  # the checks print nothing; fd capture would swallow ours
            # The checks raise Mistakes, not bare asserts; rewriting would leave pytest's import
            # hook in this process for as long as the session lives (a student's kernel too).
            "--assert=plain",
        ]
        for name in UNUSED_PLUGINS:
            args += ["-p", f"no:{name}"]
        self._thread = threading.Thread(
            target=self._serve, args=(args,), name="ptgrade-checks", daemon=True
        )
        self._thread.start()

    def _serve(self, args: list[str]) -> None:
        try:
            import torch  # noqa: F401  (here, in this thread, while the sandbox runs)

            self.exit_code = pytest.main(args, plugins=[self._plugin])
        finally:
            while not self._jobs.empty():  # nobody waits forever on a session that ended
                job = self._jobs.get_nowait()
                if job is not None:
                    job.done.set()

    def run(self, job: CheckJob) -> list[Verdict]:
        if not self._thread.is_alive():
            raise RuntimeError(self._failure())
        self._jobs.put(job)
        deadline = time.monotonic() + CHECKS_TIMEOUT
        while not job.done.wait(0.5):
            if not self._thread.is_alive():
                break
            if time.monotonic() > deadline:
                # A check that never returns is the grader's bug: this submission says so, and
                # the next one gets a new session (this thread is left to itself).
                self.stuck = True
                raise RuntimeError(f"the checks did not finish within {CHECKS_TIMEOUT:g} s")
        if not job.judged:
            raise RuntimeError(self._failure())
        return job.verdicts

    def close(self) -> None:
        """End the session's thread once it is free (it serves what it was already handed)."""
        self._jobs.put(None)

    def _failure(self) -> str:
        errors = "\n".join(self._plugin.collection_errors)
        return f"the checks could not run (pytest exit {self.exit_code}):\n{errors}"


_SESSIONS: dict[tuple[str, ...], CheckSession] = {}


def checks_files(paths) -> tuple:
    """Each file of the checks as it is now (name, time, size): a session collected from other
    versions is stale (an instructor editing a check while a kernel runs `check()`)."""
    found = []
    for folder in map(Path, paths):
        for file in sorted(folder.rglob("*")):
            if file.suffix in (".py", ".ini") and "__pycache__" not in file.parts:
                try:
                    stat = file.stat()
                except OSError:
                    continue
                found.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def _forget_modules(paths) -> None:
    """Drop the checks' modules, so that a new session imports their files again (pytest
    hands back a module already in sys.modules)."""
    folders = [Path(p).resolve() for p in paths]
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if (
            file
            and name != "grader.checks"
            and any(Path(file).resolve().is_relative_to(folder) for folder in folders)
        ):
            del sys.modules[name]


def open_checks(hidden_dir: Path | None = None) -> CheckSession:
    """This process's session for these checks, opened (collecting in its thread) if need be.
    Opened before a submission runs, pytest's start-up overlaps the sandbox's work."""
    paths = (str(CHECKS_DIR),) + ((str(hidden_dir),) if hidden_dir is not None else ())
    session = _SESSIONS.get(paths)
    if session is not None and session.owner == os.getpid() and not session.stuck:
        if session.files == checks_files(paths):
            return session
        session.close()
        _forget_modules(paths)
    session = _SESSIONS[paths] = CheckSession(list(paths))
    return session


def run_checks(
    record: Record, present_sections: set[str], hidden_dir: Path | None = None
) -> list[Verdict]:
    """Run the public checks, and the hidden ones in `hidden_dir` (solutions/checks) if given."""
    job = CheckJob(record, present_sections, include_hidden=hidden_dir is not None)
    return open_checks(hidden_dir).run(job)
