"""How the warm worker is confined: bubblewrap, else `unshare`, else nothing; decided once.

The worker (and every submission forked from it) starts inside the strongest confinement this
machine offers; `plan()` says which one and what it protects, so the sandbox, the tests and the
README all speak of the same guarantees.

- "bwrap": a new root holding only the system, Python, the venv and the `grader` package
  (read-only) plus one writable scratch folder, and an NVIDIA GPU's device nodes where the
  machine has one; no network, its own PID namespace.
- "unshare": no network, its own PID namespace and /proc, but the whole file system is visible.
- "none": the child's own session and process group only.

`PTGRADE_ISOLATION=bwrap|unshare|none` forces one (for tests, or to turn confinement off).
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

KINDS = ("bwrap", "unshare", "none")
# The students' processes run as this uid plus the grading process's pid (distinct uids keep
# one submission's fork bomb from eating another's process limit).
SANDBOX_UID_BASE = 1_000_000


@dataclass(frozen=True)
class Isolation:
    kind: str
    prefix: tuple[str, ...]  # the command the worker is started under
    network_cut: bool
    pid_namespace: bool
    files_confined: bool
    sandbox_uid: int | None  # None: the student's code runs as the grader's own user

    def describe(self) -> str:
        parts = [self.kind]
        parts.append("no network" if self.network_cut else "network open")
        parts.append("own PID namespace" if self.pid_namespace else "process group only")
        parts.append("files confined" if self.files_confined else "files visible")
        parts.append(f"uid {self.sandbox_uid}" if self.sandbox_uid is not None else "same uid")
        return ", ".join(parts)


def package_root() -> Path:
    """The folder holding the `grader` package (the repository root in a checkout)."""
    return Path(__file__).resolve().parent.parent


def _python_dirs() -> list[str]:
    """What the interpreter needs: its installation, the venv, and site-packages outside them."""
    dirs = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    dirs.add(os.path.dirname(os.path.realpath(sys.executable)))
    root = str(package_root())
    for entry in sys.path:
        real = os.path.realpath(entry) if entry else ""
        if real and os.path.isdir(real) and real != root and not root.startswith(real + os.sep):
            dirs.add(real)
    # Keep the outermost folders only; never the package root itself (it holds solutions/).
    kept = []
    for path in sorted(dirs, key=len):
        if not any(path == k or path.startswith(k + os.sep) for k in kept):
            kept.append(path)
    return [p for p in kept if p != root and not root.startswith(p + os.sep)]


def gpu_device_nodes() -> list[str]:
    """An NVIDIA GPU's device nodes (nvidiactl, nvidia0, nvidia-uvm, ...); none without one."""
    return sorted(glob.glob("/dev/nvidia*"))


def bwrap_command(scratch_root: Path, gpu_nodes: list[str] | None = None) -> list[str]:
    gpu_nodes = gpu_device_nodes() if gpu_nodes is None else gpu_nodes
    command = [
        "bwrap",
        "--die-with-parent",
        "--unshare-pid",
        "--as-pid-1",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        "ptgrade",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--perms",
        "0755",
        "--dir",
        "/tmp",
    ]
    # bwrap's fresh /dev holds no GPU: without these the student's code would see no CUDA
    # and be graded on the simulated GPU of a CPU-only machine. /sys (read-only) as in the
    # setup the CUDA tests passed in on an H200; a bare CUDA call worked without it too.
    for node in gpu_nodes:
        command += ["--dev-bind", node, node]
    if gpu_nodes:
        command += ["--ro-bind-try", "/sys", "/sys"]
    system = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"]
    for path in system:
        if os.path.islink(path):
            command += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            command += ["--ro-bind", path, path]
    binds = [p for p in _python_dirs() if not _under(p, system)]
    binds.append(str(package_root() / "grader"))
    made: set[str] = set()
    for path in [*binds, str(scratch_root)]:
        # bwrap would make the folders above a bind 0700, closed to the dropped uid.
        for parent in reversed(Path(path).parents[:-1]):
            if str(parent) not in made and not _under(str(parent), system):
                command += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
    for path in binds:
        command += ["--ro-bind", path, path]
    command += ["--bind", str(scratch_root), str(scratch_root), "--chdir", str(scratch_root)]
    return command


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


def unshare_command(mount_proc: bool = True) -> list[str]:
    command = ["unshare", "--pid", "--fork", "--kill-child", "--net"]
    if mount_proc:
        # A /proc of the new PID namespace. CUDA fails in a PID namespace that still sees the
        # old /proc (error 304 on an H200, 2026-11-29), and the student's code then sees only
        # its own processes.
        command.insert(3, "--mount-proc")
    if os.geteuid() != 0:
        command[1:1] = ["--user", "--map-root-user"]
    return command


@functools.cache
def _unshare_prefix() -> tuple[str, ...] | None:
    """With its own /proc where the machine allows that mount (some containers refuse it to a
    user namespace), else without: the PID namespace and the cut network still hold there."""
    if shutil.which("unshare") is None:
        return None
    for mount_proc in (True, False):
        if _works(unshare_command(mount_proc)):
            return tuple(unshare_command(mount_proc))
    return None


def _works(prefix: list[str]) -> bool:
    try:
        done = subprocess.run(
            [*prefix, sys.executable, "-c", "import os; assert os.getpid() == 1"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _world_readable(path: str) -> bool:
    """Every folder from / down to `path` can be entered by any user (the dropped uid)."""
    current = Path(path).resolve()
    for folder in [current, *current.parents]:
        try:
            mode = os.stat(folder).st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return True


def _sandbox_uid(files_confined: bool) -> int | None:
    """Root drops the student's code to an unprivileged uid: RLIMIT_NPROC then holds a fork
    bomb, and the code can no longer kill, trace or write what belongs to root. Without a new
    root (bwrap), that uid must be able to reach Python and the package where they are."""
    if os.geteuid() != 0:
        return None
    if not files_confined:
        needed = [*_python_dirs(), str(package_root() / "grader")]
        if not all(_world_readable(p) for p in needed):
            return None
    return SANDBOX_UID_BASE + os.getpid()


@functools.cache
def _available(kind: str, probe_root: str) -> bool:
    if kind == "none":
        return True
    if kind == "bwrap":
        return shutil.which("bwrap") is not None and _works(bwrap_command(Path(probe_root)))
    return _unshare_prefix() is not None


def plan(scratch_root: Path, wanted: str | None = None) -> Isolation:
    """The strongest confinement that works here (or the one `PTGRADE_ISOLATION` names)."""
    wanted = wanted or os.environ.get("PTGRADE_ISOLATION", "auto")
    candidates = KINDS if wanted == "auto" else (wanted,)
    if wanted != "auto" and wanted not in KINDS:
        raise ValueError(f"PTGRADE_ISOLATION={wanted!r}: expected one of auto, {', '.join(KINDS)}")
    probe_root = Path(os.environ.get("TMPDIR", "/tmp"))
    kind = next((k for k in candidates if _available(k, str(probe_root))), "none")
    if kind == "bwrap":
        return Isolation(
            "bwrap", tuple(bwrap_command(scratch_root)), True, True, True, _sandbox_uid(True)
        )
    if kind == "unshare":
        return Isolation("unshare", _unshare_prefix() or (), True, True, False, _sandbox_uid(False))
    return Isolation("none", (), False, False, False, _sandbox_uid(False))
