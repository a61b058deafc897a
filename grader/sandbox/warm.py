"""A warm worker: one process that imported torch once and forks a fresh child per submission.

The fixed cost of a submission (starting Python, importing torch and IPython, torch._dynamo's
first-optimizer import) is paid once here, before any fork. The worker is single-threaded, so
forking it is safe, and it does nothing but fork, wait, kill and report: the student's code only
ever runs in the children. It is started inside the confinement `grader.sandbox.isolation` chose
(bubblewrap or `unshare`: then it is PID 1 of its own PID namespace, with no network).

Control channel (a SOCK_SEQPACKET socket, one JSON message each): the grader sends
{"op": "run", ...} with the record channel's socket attached, the worker answers {"pid": N} once
the child exists, then {"status": S} once it has ended and everything it started is gone; the
grader may send {"op": "kill"} meanwhile. The child talks to the grader only through the record
channel (see runner.py); it never holds the control channel.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.errors import GraderError
from grader.sandbox.limits import apply_child_limits, drop_privileges
from grader.settings import SANDBOX_ENV, from_environment

CHANNEL_FD = 3  # where the child finds its record channel
MAX_MESSAGE = 1 << 20
SWEEP_SECONDS = 30.0  # SIGKILLed processes exit at once; a loaded machine may take a while


def _child(request: dict, channel: int) -> None:
    """In the forked child: isolate, limit, run the notebook, and never return."""
    code = 1
    try:
        os.setsid()
        os.dup2(channel, CHANNEL_FD)
        os.closerange(CHANNEL_FD + 1, 1 << 16)  # the control channel above all
        null = os.open(os.devnull, os.O_RDWR)
        # Raw writes to fd 1 and 2 go nowhere; print() is captured and capped by the runner.
        for fd in (0, 1) if from_environment("debug") else (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        apply_child_limits(request["memory_mb"], request.get("nproc"))
        drop_privileges(request.get("uid"))
        home = request["home"]
        os.environ.update(HOME=home, TMPDIR=home, IPYTHONDIR=os.path.join(home, ".ipython"))
        if request.get("cpu"):
            os.environ["CUDA_VISIBLE_DEVICES"] = ""  # CUDA reads it at its first use
        os.chdir(request["workdir"])
        channel = socket.socket(fileno=CHANNEL_FD)
        if request.get("task") == "read_saved":  # the models the notebook saved, nothing else
            from grader.sandbox.child.saved_reader import serve as read_saved

            read_saved(channel, request)
        else:
            from grader.sandbox.child.runner import serve

            serve(channel, request["config"])
        code = 0
    except BaseException:
        if from_environment("debug"):
            import traceback

            traceback.print_exc(file=sys.__stderr__)
    finally:
        os._exit(code)


def _sweep(pid: int, uid: int | None) -> None:
    """Kill whatever the child left behind: its group, and (where we can) everything else."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if os.getpid() == 1:
        # PID 1 of our own namespace: kill(-1) reaches every other process in it, daemons that
        # left the session included, and they all are orphans we reap.
        deadline = time.monotonic() + SWEEP_SECONDS
        while time.monotonic() < deadline:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if not _reap_all():
                return
            time.sleep(0.01)
    elif uid is not None and os.geteuid() == 0:
        # No namespace: a helper with the student's uid kills every process of that uid.
        for _ in range(3):
            helper = os.fork()
            if helper == 0:
                try:
                    os.setgid(uid)
                    os.setuid(uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
            os.waitpid(helper, 0)


def _reap_all() -> bool:
    """Reap every finished child; True while some are still alive."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _send(control: socket.socket, message: dict) -> None:
    try:
        control.send(json.dumps(message).encode())
    except OSError:  # the grader is gone; the next recv ends the worker
        pass


def _run_one(control: socket.socket, request: dict, channel: int) -> None:
    pid = os.fork()
    if pid == 0:
        control.close()
        _child(request, channel)
    os.close(channel)
    _send(control, {"pid": pid})
    # A pidfd is readable the moment the child exits; without one (Linux < 5.3), poll for it.
    try:
        exited = [os.pidfd_open(pid)]
    except (AttributeError, OSError):
        exited = []
    status = None
    try:
        while status is None:
            ready, _, _ = select.select([control, *exited], [], [], 0.5 if exited else 0.02)
            if control in ready:
                try:
                    message = control.recv(MAX_MESSAGE)
                except OSError:  # the grader is gone (ECONNRESET): so is its submission
                    message = b""
                if not message or json.loads(message).get("op") == "kill":
                    os.kill(pid, signal.SIGKILL)
            try:
                done, wait_status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                status = os.waitstatus_to_exitcode(wait_status)
    finally:
        for fd in exited:
            os.close(fd)
    _sweep(pid, request.get("uid"))
    _send(control, {"status": status})


def serve(control_fd: int, huge_pages: bool = False) -> None:
    from grader.sandbox.child.runner import prepare

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    control = socket.socket(fileno=control_fd)
    # CUDA must not start in the worker (it would fail in every forked child): torch's own
    # `is_available()` / `device_count()` then ask NVML, which is fork-safe, not the CUDA runtime.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    prepare()
    # What was imported lives as long as the worker: the children's garbage collector need not
    # walk it again and again (and by not touching it, keeps the pages shared with the worker).
    # The collection first (0.15 s) frees the import's garbage; a worker of one or a few forks
    # (`nbgrader validate`, a live kernel's checks) keeps it rather than pay for that.
    if huge_pages:
        gc.collect()
    gc.freeze()
    if huge_pages:
        collapse_to_huge_pages()
    os.environ[SANDBOX_ENV] = "1"
    _send(control, {"ready": True, "pid": os.getpid()})
    forks = 0
    while True:
        if huge_pages and forks and forks % RECOLLAPSE_EVERY == 0:
            collapse_to_huge_pages()  # mends what the children's copy-on-write split (~3 ms)
        try:
            message, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 1)
        except OSError:  # the grader died before reading what we sent it (ECONNRESET)
            return
        if not message:
            return
        request = json.loads(message)
        if request.get("op") != "run" or not fds:
            for fd in fds:
                os.close(fd)
            continue
        _run_one(control, request, fds[0])
        forks += 1


HUGE_PAGE = 2 << 20
MADV_COLLAPSE = 25  # Linux 6.1+
# Children's copy-on-write slowly splits the worker's huge pages (measured: 217 -> 203 MB after
# 150 children); collapsing again now and then puts them back.
RECOLLAPSE_EVERY = 100


def collapse_to_huge_pages() -> int:
    """Back the worker's private memory with 2 MB pages where Linux agrees; the bytes it moved.

    fork copies one page-table entry per 4 kB page of the worker (about 250 MB: torch, IPython,
    matplotlib), and each child's exit frees as many again. Measured on a 2-core machine: fork
    7 ms and exit 8 ms on 4 kB pages, 1.3 ms and 2.2 ms on huge pages. A child still copies
    only the 4 kB it writes (the kernel splits a huge page on copy-on-write). It costs about
    half a second once, so only a worker meant for many submissions asks for it (ptgrade batch,
    a Dask worker). Best effort: an older kernel refuses the call and nothing changes.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        with open("/proc/self/maps") as maps:
            regions = [line.split() for line in maps]
    except (OSError, AttributeError):
        return 0
    moved = 0
    for fields in regions:
        name = fields[5] if len(fields) > 5 else ""
        if fields[1] != "rw-p" or name not in ("", "[heap]"):  # anonymous memory only
            continue
        start, end = (int(address, 16) for address in fields[0].split("-"))
        first, last = -(-start // HUGE_PAGE) * HUGE_PAGE, end // HUGE_PAGE * HUGE_PAGE
        if last - first >= HUGE_PAGE and libc.madvise(first, last - first, MADV_COLLAPSE) == 0:
            moved += last - first
    return moved


def _die_with_parent() -> None:
    """Linux: the worker is killed when the grader (or bwrap/unshare) above it goes away."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class WarmWorker:
    """The grader's handle on one warm worker process; restarted if it ever dies."""

    def __init__(
        self, env: dict[str, str], prefix: tuple[str, ...] = (), huge_pages: bool = False
    ) -> None:
        self._env = env
        self._prefix = prefix
        self._huge_pages = huge_pages  # see collapse_to_huge_pages
        self._process: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._command: list[str] = []
        self._ready = False
        self._stderr = None  # the worker's stderr, kept to say why it did not start

    def launch(self) -> None:
        """Start the worker process unless it runs; don't wait for it (it imports torch)."""
        if self._process is not None and self._process.poll() is None:
            return
        if self._control is not None:  # the channel of a worker that died
            self._control.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._command = [
            *self._prefix,
            sys.executable,
            "-m",
            "grader.sandbox.warm",
            str(theirs.fileno()),
        ]
        if self._huge_pages:
            self._command.append("--huge-pages")
        if self._stderr is not None:
            self._stderr.close()
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            self._command,
            stdin=subprocess.DEVNULL,
            stderr=self._stderr,
            env=self._env,
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        self._control = ours
        self._ready = False

    def _await_ready(self) -> None:
        if self._ready:
            return
        ready = self._receive(120)
        if not ready or not ready.get("ready"):
            self.close()
            command = " ".join(self._command[:3])
            raise GraderError(f"the warm worker did not start ({command} ...){self._said()}")
        self._ready = True

    def _said(self) -> str:
        """The end of what the worker wrote on stderr (why it could not start), or nothing."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - 2000))
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return f": {' / '.join(lines[-6:])}" if lines else ""

    def _receive(self, timeout: float | None) -> dict | None:
        ready, _, _ = select.select([self._control], [], [], timeout)
        if not ready:
            return None
        try:
            message = self._control.recv(MAX_MESSAGE)
        except OSError:
            return None
        return json.loads(message) if message else None

    def ensure_running(self) -> None:
        """Start the worker (import torch there) unless it is already up, and wait for it."""
        self.launch()
        self._await_ready()

    def start(self, request: dict, channel: socket.socket) -> None:
        """Fork a child for `request`; it gets `channel` (the grader keeps the other end)."""
        self.ensure_running()
        message = json.dumps({"op": "run", **request}).encode()
        socket.send_fds(self._control, [message], [channel.fileno()])
        started = self._receive(60)
        if not started or "pid" not in started:
            self._abandon()
            raise RuntimeError("the warm worker did not fork a child")

    def finish(self, kill: bool, timeout: float = 30) -> int | None:
        """The child's exit status once it and all it started are gone (killing it if asked)."""
        if self._control is None:
            return None
        if kill:
            try:
                self._control.send(json.dumps({"op": "kill"}).encode())
            except OSError:
                pass
        answer = self._receive(timeout)
        if answer is None or "status" not in answer:
            self._abandon()  # a worker that does not answer is killed with all it holds
            return None
        return answer["status"]

    def _abandon(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self.close()

    def close(self) -> None:
        if self._control is not None:
            self._control.close()  # the worker reads EOF and exits
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("control_fd", type=int)
    parser.add_argument("--huge-pages", action="store_true", help="for a worker of many forks")
    arguments = parser.parse_args()
    serve(arguments.control_fd, arguments.huge_pages)
