"""A warm worker: one process that imported torch once and forks a fresh child per submission.

The fixed cost of a submission (starting Python, importing torch and IPython, torch._dynamo's
first-optimizer import) is paid once here, before any fork. The worker is single-threaded, so
forking it is safe, and it does nothing but fork, wait and report: the student's code only ever
runs in the children.

Protocol (JSON lines): the parent writes {"config", "record", "output", "memory_mb", "cpu"};
the worker answers {"pid": N} once the child exists, then {"status": S} when it has ended.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from grader.sandbox_limits import apply_child_limits


def _child(request: dict) -> None:
    """In the forked child: isolate, limit, run the notebook, and never return."""
    code = 1
    try:
        os.setsid()
        apply_child_limits(request["memory_mb"])
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        if request.get("cpu"):
            os.environ["CUDA_VISIBLE_DEVICES"] = ""  # CUDA reads it at its first use
        with open(request["config"], encoding="utf-8") as handle:
            config = json.load(handle)
        os.chdir(config["workdir"])
        from grader.runner import run

        run(config, request["record"])
        code = 0
    finally:
        os._exit(code)


def serve() -> None:
    from grader.runner import prepare

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    prepare()
    os.environ["PTGRADE_SANDBOX"] = "1"
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)


def _die_with_parent() -> None:
    """Linux: the worker is killed when the grader that started it goes away."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class WarmWorker:
    """The grader's handle on one warm worker process; restarted if it ever dies."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self._process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "grader.warm"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self._env,
            text=True,
            bufsize=1,
        )
        ready = process.stdout.readline()
        if not ready:
            raise RuntimeError("the warm worker did not start")
        return process

    def _alive(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = self._start()
        return self._process

    def run(self, request: dict, timeout: float) -> tuple[int | None, bool]:
        """Run one child; return (exit status, timed_out). Kills its process group at the end."""
        process = self._alive()
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        pid = json.loads(process.stdout.readline())["pid"]
        timed_out = False
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        if not ready:
            timed_out = True
            _kill_group(pid)
        line = process.stdout.readline()
        _kill_group(pid)  # grandchildren the submission left behind
        status = json.loads(line)["status"] if line else None
        return status, timed_out

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait(timeout=10)
        self._process = None


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    serve()
