"""How the warm worker is confined: bubblewrap, else `unshare`, else nothing; decided once.

The worker (and every submission forked from it) starts inside the strongest confinement this
machine offers; `plan()` says which one and what it protects, so the sandbox, the tests and the
README all speak of the same guarantees.

- "bwrap": a new root holding only the system, Python, the venv and the `grader` package
  (read-only) plus one writable scratch folder, and an NVIDIA GPU's device nodes where the
  machine has one; no network, its own PID namespace.
- "unshare": no network, its own PID namespace and /proc, but the whole file system is visible.
- "none": the child's own session and process group only.

`PTGRADE_ISOLATION=bwrap|unshare|none` (or `--isolation`) asks for one. Chosen automatically, a
confinement that leaves the file system visible is refused where the notebook's code would run
as root or could rewrite what the grader imports (`refusal`): only asking for it runs it there.
The worker's environment is an allow-list (`sandbox_environment`): no token or key of the
grader's reaches the notebook's code.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError
from grader.settings import BY_NAME, environment_variable

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
    asked: bool = False  # named by PTGRADE_ISOLATION (--isolation), not chosen automatically

    @property
    def runs_as(self) -> str:
        if self.sandbox_uid is not None:
            return "a uid of its own"  # one per grading process (SANDBOX_UID_BASE + its pid)
        return "root" if os.geteuid() == 0 else "the grader's own user"

    def describe(self) -> str:
        parts = [self.kind]
        parts.append("no network" if self.network_cut else "network open")
        parts.append("own PID namespace" if self.pid_namespace else "process group only")
        parts.append("files confined" if self.files_confined else "files visible")
        parts.append(f"runs as {self.runs_as}")
        if self.asked:
            parts.append("as asked")
        return ", ".join(parts)

    def as_dict(self) -> dict:
        """What a result says about the confinement its notebook ran under."""
        return {
            "kind": self.kind,
            "description": self.describe(),
            "files_confined": self.files_confined,
            "network_cut": self.network_cut,
            "pid_namespace": self.pid_namespace,
            "runs_as": self.runs_as,
            "uid": self.sandbox_uid,
            "asked": self.asked,
        }


def package_root() -> Path:
    """The folder holding the `grader` package (the repository root in a checkout)."""
    return Path(__file__).resolve().parents[2]


def _secret_folders() -> list[str]:
    """What the notebook's code must never see: the solutions and their hidden checks (wherever
    --solutions or $PTGRADE_SOLUTIONS puts them) and, in a checkout, the reference models."""
    from grader.notebook.reading import find_solutions_dir

    found = [
        find_solutions_dir(),
        package_root() / "solutions",
        package_root() / "reference_models",
    ]
    # A course wheel's own copy (setup.py) lies inside site-packages, which the interpreter
    # needs: bwrap_command covers that copy with an empty folder instead.
    packaged = os.path.realpath(package_root() / "grader" / "course" / "source")
    return [
        os.path.realpath(p)
        for p in found
        if p is not None and os.path.exists(p) and os.path.realpath(p) != packaged
    ]


def _python_dirs() -> list[str]:
    """What the interpreter needs, read-only: its installation, the venv, the standard library
    and site-packages (sysconfig's), and the other folders on sys.path. Derived from the running
    interpreter, so an installed kit (the venv anywhere, the package in its site-packages) and
    a checkout's editable install both work. Never a folder that holds a secret (a checkout's
    root holds solutions/), nor the working folder (a course's submissions)."""
    dirs = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    dirs.add(os.path.dirname(os.path.realpath(sys.executable)))
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_path(name)
        if path:
            dirs.add(os.path.realpath(path))
    dirs.add(os.path.realpath(package_root()))  # site-packages of an installed kit
    for entry in sys.path:
        real = os.path.realpath(entry) if entry else ""
        if real and os.path.isdir(real) and real != os.path.realpath(os.getcwd()):
            dirs.add(real)
    secrets = _secret_folders()
    safe = [
        p for p in dirs if os.path.isdir(p) and not any(_under(secret, [p]) for secret in secrets)
    ]
    # Keep the outermost folders only.
    kept: list[str] = []
    for path in sorted(safe, key=len):
        if not _under(path, kept):
            kept.append(path)
    return kept


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
    grader = os.path.realpath(package_root() / "grader")
    if not _under(grader, binds):  # a checkout's package: its root holds the solutions
        binds.append(grader)
    made: set[str] = set()
    for path in [*binds, str(scratch_root)]:
        # bwrap would make the folders above a bind 0700, closed to the dropped uid.
        for parent in reversed(Path(path).parents[:-1]):
            if str(parent) not in made and not _under(str(parent), system):
                command += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
    for path in binds:
        command += ["--ro-bind", path, path]
    # A built kit carries the course's solutions and hidden checks as package data
    # (grader/integrations/course.py): inside the package the notebook may read, so they are covered.
    packaged = package_root() / "grader" / "course" / "source"
    if packaged.is_dir():
        command += ["--tmpfs", str(packaged)]
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
    """The strongest confinement that works here, or the one `PTGRADE_ISOLATION` names (a
    GraderError where that one does not work: never a weaker one in its place)."""
    wanted = wanted or environment_variable("isolation") or "auto"
    if wanted != "auto" and wanted not in KINDS:
        raise GraderError(f"PTGRADE_ISOLATION={wanted!r} is not one of auto, {', '.join(KINDS)}")
    probe_root = Path(os.environ.get("TMPDIR", "/tmp"))
    candidates = KINDS if wanted == "auto" else (wanted,)
    kind = next((k for k in candidates if _available(k, str(probe_root))), None)
    if kind is None:
        raise GraderError(f"{wanted} was asked for (PTGRADE_ISOLATION) but {_why_not(wanted)}")
    asked = wanted != "auto"
    if kind == "bwrap":
        command = tuple(bwrap_command(scratch_root))
        return Isolation("bwrap", command, True, True, True, _sandbox_uid(True), asked)
    if kind == "unshare":
        prefix = _unshare_prefix() or ()
        return Isolation("unshare", prefix, True, True, False, _sandbox_uid(False), asked)
    return Isolation("none", (), False, False, False, _sandbox_uid(False), asked)


def _why_not(kind: str) -> str:
    if shutil.which(kind) is None:
        return f"`{kind}` is not installed"
    return f"`{kind}` does not work here (user namespaces refused?)"


# ---------------------------------------------------------------------------------------------
# Failing closed: a weak confinement chosen automatically is refused where it matters
# ---------------------------------------------------------------------------------------------


def refusal(isolation: Isolation, imported: list[Path]) -> str | None:
    """Why the notebook's code must not run under `isolation`, in one line, or None.

    Chosen automatically (not asked for), a confinement that leaves the file system visible is
    refused where the code would run as root, or could rewrite a file under `imported` (the
    grader's package, the hidden checks), which the grader imports after the code has run."""
    if isolation.asked or isolation.files_confined:
        return None
    weakness = None
    if isolation.runs_as == "root":
        weakness = "as root with the whole file system visible"
    else:
        found = (_exposed(folder, isolation.sandbox_uid) for folder in imported)
        exposed = next((path for path in found if path is not None), None)
        if exposed is not None:
            weakness = f"with the whole file system visible, where it could rewrite {exposed}"
    if weakness is None:
        return None
    return (
        f"refusing to run the notebook's code {weakness} (bubblewrap: {_why_not('bwrap')}; "
        f"the fallback here is `{isolation.kind}`). Install bubblewrap, or accept this "
        f"confinement with --isolation {isolation.kind} (PTGRADE_ISOLATION={isolation.kind})"
    )


def imported_folders(solutions_dir: Path | None) -> list[Path]:
    """What the grader imports after a notebook's code has run: its own package (the checks,
    the reports), and the hidden checks of the solutions it grades with."""
    folders = [Path(__file__).resolve().parents[1]]
    if solutions_dir is not None and (solutions_dir / "checks").is_dir():
        folders.append(solutions_dir / "checks")
    return folders


class Refused(Exception):
    """The submission's code would run under a confinement the user did not ask for."""


def refuse_weak_confinement(solutions: str | None) -> None:
    """Raise Refused (one line) before anything starts, where the confinement this machine
    offers is one that only asking for runs (`refusal`); `solutions` is --solutions."""
    import tempfile

    from grader.notebook.reading import find_solutions_dir

    try:
        confinement = plan(Path(tempfile.gettempdir()))
    except GraderError as error:  # a confinement asked for that does not work here
        raise Refused(error.reason) from None
    reason = refusal(confinement, imported_folders(find_solutions_dir(solutions)))
    if reason is not None:
        raise Refused(reason)


def require(isolation: Isolation, imported: list[Path]) -> None:
    """Raise GraderError where `refusal` refuses."""
    reason = refusal(isolation, imported)
    if reason is not None:
        raise GraderError(reason)


def _exposed(folder: Path, uid: int | None) -> Path | None:
    """A file or folder that the code's uid (None: this process's) could write or replace,
    under `folder` or above it; None if there is none."""
    folder = folder.resolve()
    above = [*reversed(folder.parents), folder]
    for parent, child in zip(above, above[1:]):
        if _replaceable(parent, child, uid):
            return child
    for path in [folder, *folder.rglob("*")]:
        if _writable(path, uid):
            return path
    return None


def _replaceable(parent: Path, child: Path, uid: int | None) -> bool:
    """Whether `child` can be renamed away and put back by `uid` through its `parent`."""
    try:
        info = parent.stat()
        owner = child.lstat().st_uid
    except OSError:
        return False
    sticky = info.st_mode & stat.S_ISVTX and owner != (os.getuid() if uid is None else uid)
    return _writable(parent, uid) and not sticky


def _writable(path: Path, uid: int | None) -> bool:
    if uid is None:
        return os.access(path, os.W_OK, follow_symlinks=False)
    try:
        info = path.lstat()
    except OSError:
        return False
    if stat.S_ISLNK(info.st_mode):
        return False  # a link's own mode means nothing; what it points to is checked itself
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IWUSR)
    if info.st_gid == uid:  # the dropped uid's only group is its own
        return bool(info.st_mode & stat.S_IWGRP)
    return bool(info.st_mode & stat.S_IWOTH)


# ---------------------------------------------------------------------------------------------
# The worker's environment: an allow-list
# ---------------------------------------------------------------------------------------------

# What Python, torch, numpy and matplotlib read, and the kit's own debug switch. Nothing else
# of the grader's environment reaches the notebook's code: a CI job's GITHUB_TOKEN, AWS_*
# keys, a database URL would otherwise be one `print(os.environ)` from the student's report.
SANDBOX_ENV_NAMES = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "PYTHONHASHSEED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING",
        "PYTHONUTF8",
        "PYTHONWARNINGS",
        "VIRTUAL_ENV",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        BY_NAME["debug"].env,
    }
)
SANDBOX_ENV_PREFIXES = ("LC_", "CUDA_", "CUBLAS_", "PYTORCH_", "TORCH_")


def sandbox_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The part of `environ` (default: this process's) that the worker may have."""
    environ = dict(os.environ) if environ is None else environ
    return {
        name: value
        for name, value in environ.items()
        if name in SANDBOX_ENV_NAMES or name.startswith(SANDBOX_ENV_PREFIXES)
    }
