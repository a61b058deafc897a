"""The limits every submission's process runs under (applied in the forked child itself)."""

from __future__ import annotations

import ctypes
import os
import resource

# Processes and threads the student's uid may hold (torch's thread pools need a few dozen).
SANDBOX_PROCESSES = 128
# Without an unprivileged uid of its own, the child may add this many to its user's count.
EXTRA_PROCESSES = 256
# No single file the submission writes may grow past this (a disk-filling loop stops here).
MAX_FILE_BYTES = 512 * 1024 * 1024
PR_SET_NO_NEW_PRIVS = 38


def process_limit(sandbox_uid: int | None) -> int | None:
    """RLIMIT_NPROC for the child, decided by the grader (outside any user namespace, where
    root is root): root ignores the limit, so only an unprivileged uid makes it hold."""
    if sandbox_uid is not None:
        return SANDBOX_PROCESSES
    if os.geteuid() != 0:
        return _own_processes() + EXTRA_PROCESSES
    return None


def apply_child_limits(memory_mb: int, nproc: int | None = None) -> None:
    if memory_mb > 0:
        # RLIMIT_DATA caps heap and anonymous mappings (torch's and numpy's buffers included)
        # without counting torch's large virtual reservations the way RLIMIT_AS would. The
        # submission gets `memory_mb` on top of what the warm worker already holds (torch,
        # IPython, matplotlib: 0.3 GB with a CPU build of torch, much more with a CUDA build),
        # so the same limit means the same room whichever torch the grader has.
        size = data_in_use() + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    if nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def data_in_use() -> int:
    """Bytes this process holds that RLIMIT_DATA counts (Linux: VmData); 0 where unknown."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def drop_privileges(sandbox_uid: int | None) -> None:
    """Become `sandbox_uid` for good (when root), and never regain privileges through exec."""
    if sandbox_uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(sandbox_uid)
        os.setuid(sandbox_uid)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _own_processes() -> int:
    """Threads of this user now (RLIMIT_NPROC counts threads); a rough count is enough."""
    uid = os.getuid()
    count = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 1024
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == uid:
                count += len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue
    return count
