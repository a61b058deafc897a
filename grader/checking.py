"""Run the pytest checks in the grader's own process on a record; return one verdict per check."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

from grader.plugin import RecordPlugin, Verdict
from grader.record import Record

CHECKS_DIR = Path(__file__).resolve().parent / "checks"


def run_checks(
    record: Record, present_sections: set[str], hidden_dir: Path | None = None
) -> list[Verdict]:
    """Run the public checks, and the hidden ones in `hidden_dir` (solutions/checks) if given."""
    plugin = RecordPlugin(record, present_sections, include_hidden=hidden_dir is not None)
    paths = [str(CHECKS_DIR)] + ([str(hidden_dir)] if hidden_dir is not None else [])
    args = [
        *paths,
        *("-c", str(CHECKS_DIR / "pytest.ini"), "--rootdir", str(CHECKS_DIR)),
        "--import-mode=importlib",
        "-q",
    ]
    # Plugins the checks don't need; the last two gc.collect() on every run (0.6 s).
    for name in ("cacheprovider", "xdist", "randomly", "unraisableexception", "threadexception"):
        args += ["-p", f"no:{name}"]
    quiet = io.StringIO()
    previous = os.environ.pop("PYTEST_XDIST_WORKER", None)
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            code = pytest.main(args, plugins=[plugin])
    finally:
        if previous is not None:
            os.environ["PYTEST_XDIST_WORKER"] = previous
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise RuntimeError(f"the checks could not run (pytest exit {code}):\n{quiet.getvalue()}")
    return plugin.verdicts
