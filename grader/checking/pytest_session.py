"""Run the pytest checks in the grader's own process on a record; return one verdict per check.

One pytest session per grading process and checks folder, kept open in a thread: pytest starts
and collects once, then its test loop (plugin.RecordPlugin) judges each record it is handed.

The checks are pinned by content: a process loads them once, before any submission runs, and a
check file that changes on disk afterwards is never collected again (grading stops with a
GraderError that names it), so nothing written while a submission ran is imported here.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from pathlib import Path

import pytest

from grader.checking.plugin import CheckJob, RecordPlugin, Verdict
from grader.errors import GraderError
from grader.packs import all_packs, pack_for
from grader.record.submission import Record

CHECKS_TIMEOUT = 30.0  # seconds one record's checks may take (they take milliseconds)
COLLECT_TIMEOUT = 120.0  # seconds pytest may take to start and collect the checks
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
    `close()`."""

    def __init__(self, paths: list[str]) -> None:
        # The first folder is the pack's checks (grader/packs), with their pytest.ini.
        self.checks_dir = Path(paths[0])
        self.owner = os.getpid()  # a forked process must open its own: threads don't fork
        self._jobs: queue.Queue = queue.Queue()
        self._plugin = RecordPlugin(self._jobs)
        self.exit_code: int | None = None
        self.stuck = False
        args = [
            *paths,
            *("-c", str(self.checks_dir / "pytest.ini"), "--rootdir", str(self.checks_dir)),
            "--import-mode=importlib",
            "--capture=no",  # the checks print nothing; fd capture would swallow ours
            # The checks raise Mistakes, not bare asserts; rewriting would leave pytest's import
            # hook in this process for as long as the session lives (a student's kernel too).
            "--assert=plain",
            # Only the kit's plugin: a pytest plugin the machine happens to have installed
            # (coverage, asyncio, a course's own) would run inside every grade, in the
            # instructor's nbgrader and in the student's kernel alike.
            "--disable-plugin-autoload",
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
            self._plugin.collected.set()  # whoever waits for the collection learns it ended
            while not self._jobs.empty():  # nobody waits forever on a session that ended
                job = self._jobs.get_nowait()
                if job is not None:
                    job.done.set()

    def wait_collected(self, timeout: float = COLLECT_TIMEOUT) -> None:
        """Return once pytest has imported the checks: before a submission runs, so that
        nothing it does can change what is imported."""
        if not self._plugin.collected.wait(timeout):
            raise GraderError(f"the checks were not collected within {timeout:g} s")

    def run(self, job: CheckJob, timeout: float | None = None) -> list[Verdict]:
        """The job's verdicts; those the checks did not give within `timeout` (default
        CHECKS_TIMEOUT) are the grader's errors, and the grade still comes back."""
        timeout = CHECKS_TIMEOUT if timeout is None else timeout
        if not self._thread.is_alive():
            raise GraderError(self._failure())
        self._jobs.put(job)
        deadline = time.monotonic() + timeout
        while not job.done.wait(min(0.5, max(timeout, 0.01))):
            if not self._thread.is_alive():
                break
            if time.monotonic() > deadline:
                # A check that never returns is the grader's bug: this submission says so, and
                # the next one gets a new session (this thread is left to itself).
                self.stuck = True
                if not job.planned:  # never even started: there is no verdict to give
                    raise GraderError(f"the checks did not start within {timeout:g} s")
                return job.cut_short(f"the checks did not finish within {timeout:g} s")
        if not job.judged:
            raise GraderError(self._failure())
        return job.verdicts

    def close(self) -> None:
        """End the session's thread once it is free (it serves what it was already handed)."""
        self._jobs.put(None)

    def _failure(self) -> str:
        errors = "\n".join(self._plugin.collection_errors)
        if not errors:  # pytest said why on stderr only; name what the kit can tell
            folder = self.checks_dir
            missing = [str(p) for p in (folder / "pytest.ini", folder) if not p.exists()]
            errors = (
                f"{missing[0]} is missing from the kit's installation (reinstall ptgrade)"
                if missing
                else "pytest stopped before collecting the checks (see the lines above)"
            )
        return f"the checks could not run (pytest exit {self.exit_code}): {errors}"


_SESSIONS: dict[tuple[str, ...], CheckSession] = {}
# The checks' files as this process first loaded them: checks folders -> {file: sha256}.
_PINNED: dict[tuple[str, ...], dict[str, str]] = {}


def checks_contents(paths) -> dict[str, str]:
    """Each file of the checks (and their pytest.ini) by the sha256 of its bytes now."""
    found = {}
    for folder in map(Path, paths):
        for file in sorted(folder.rglob("*")):
            if file.suffix in (".py", ".ini") and "__pycache__" not in file.parts:
                try:
                    found[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
                except OSError:
                    continue
    return found


def _changed(pinned: dict[str, str], now: dict[str, str]) -> list[str]:
    return sorted(name for name in pinned.keys() | now.keys() if pinned.get(name) != now.get(name))


def open_checks(hidden_dir: Path | None = None, *, checks_dir: Path) -> CheckSession:
    """This process's session for a pack's checks (and the hidden ones), opened (collecting in
    its thread) if need be. Opened before a submission runs, pytest's start-up overlaps the
    sandbox's work. Raises GraderError where a check file changed since this process loaded the
    checks."""
    paths = (str(checks_dir),) + ((str(hidden_dir),) if hidden_dir is not None else ())
    now = checks_contents(paths)
    changed = _changed(_PINNED.setdefault(paths, now), now)
    if changed:
        raise GraderError(
            f"{changed[0]} changed on disk while this grader ran; the checks are loaded once "
            "a process, so grade again in a new one to use the file as it is now"
        )
    session = _SESSIONS.get(paths)
    if session is not None and session.owner == os.getpid() and not session.stuck:
        return session
    if session is not None and session.owner == os.getpid():
        session.close()
    # A new session (a fork's, or after a stuck check) takes the checks' modules already
    # imported (pytest hands back a module already in sys.modules): the same content.
    session = _SESSIONS[paths] = CheckSession(list(paths))
    return session


def run_checks(
    record: Record,
    present_sections: set[str],
    hidden_dir: Path | None = None,
    checks_dir: Path | None = None,
) -> list[Verdict]:
    """Run the public checks (`checks_dir`, default: the record's pack's), and the hidden ones
    in `hidden_dir` (solutions/checks) if given."""
    if checks_dir is None:
        checks_dir = pack_for(record.assignment).checks_dir
    job = CheckJob(record, present_sections, include_hidden=hidden_dir is not None)
    return open_checks(hidden_dir, checks_dir=checks_dir).run(job)


def open_every_pack(hidden_dir: Path | None = None) -> list[CheckSession]:
    """A session for every pack's checks: a warm-up, before the notebook's pack is known."""
    return [open_checks(hidden_dir, checks_dir=pack.checks_dir) for pack in all_packs()]
