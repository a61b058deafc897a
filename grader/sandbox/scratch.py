"""Scratch folders in the temp folder that say whose they are, and the sweep of dead ones.

A grader killed by SIGKILL (the OOM killer, a CI job cancelled) never runs its cleanup, so its
`ptgrade-worker-*` folder, with a whole submission's files in it, would stay in the temp folder
for good. Each folder is named after its process (pid, start time, PID namespace); the next
grader to start removes the folders whose process is gone, and never one whose process runs.
Folders of an older kit, without these in their name, are left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

# <prefix><pid>-<start time>-<PID namespace>-<random>: all the sweep needs is in the name,
# which the submission's code cannot change (the folder's parent is not in its sandbox).
_NAMED = re.compile(r"^(?P<prefix>ptgrade-[a-z]+-)(?P<pid>\d+)-(?P<started>\d+)-(?P<ns>\d+)-")


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (None: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command's name


def _namespace() -> str:
    try:
        return re.sub(r"\D", "", os.readlink("/proc/self/ns/pid")) or "0"
    except OSError:
        return "0"


def make_scratch(prefix: str) -> Path:
    """A new folder in the temp folder, named after the process that owns it."""
    pid = os.getpid()
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{pid}-{_started(pid) or 0}-{_namespace()}-"))


def _owner_gone(pid: int, started: str, namespace: str) -> bool:
    if namespace != _namespace():
        return False  # another PID namespace (a container sharing /tmp): its pids mean nothing here
    return _started(pid) != started  # gone, or the pid was reused since


def sweep(prefix: str, root: Path | None = None) -> list[Path]:
    """Remove the `prefix` folders of this user whose process is gone; the ones removed."""
    root = Path(root or tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = _NAMED.match(entry.name)
        if not match or match["prefix"] != prefix:
            continue
        try:
            mine = entry.is_dir(follow_symlinks=False) and (
                entry.stat(follow_symlinks=False).st_uid == os.geteuid()
            )
        except OSError:
            continue
        if mine and _owner_gone(int(match["pid"]), match["started"], match["ns"]):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed
