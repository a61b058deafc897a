"""Where `nbgrader validate`'s CPU goes, process by process: the kit against plain asserts.

    .venv/bin/python benchmarks/validate_cpu_by_process.py [--rounds 3]

The course and the notebook are benchmarks/nbgrader_vs_plain.py's (`ada_correct`, in the kit's
form and with plain asserts). Each round runs `nbgrader validate` on both, alternated, while
this script reads every process below nbgrader from /proc (psutil) 20 times a second and keeps
each one's last user + system seconds, by role: nbgrader's own process, its kernel, the kit's
warm worker and the sandbox child it forks. A process's last 50 ms are missed, so the sums are
a little under what RUSAGE_CHILDREN counts; the split is the point. Prints the median of each
role over the rounds, CPU and wall, and the load average before each command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.nbgrader_vs_plain import (  # noqa: E402
    KIT,
    NOTEBOOK,
    PLAIN,
    adopt_orphans,
    build_course,
    environment,
    reap_orphans,
    submissions,
    with_plain_asserts,
)

ROLES = ("nbgrader", "kernel", "warm worker", "sandbox child", "other")


def role(process: psutil.Process) -> str:
    command = " ".join(process.cmdline())
    if "ipykernel" in command:
        return "kernel"
    if "grader.sandbox.warm" in command and process.name().startswith("python"):
        parent = psutil.Process(process.ppid())
        forked = parent.name().startswith("python") and "grader.sandbox.warm" in " ".join(
            parent.cmdline()
        )
        return "sandbox child" if forked else "warm worker"
    if "nbgrader" in command and process.name() != "bwrap":
        return "nbgrader"
    return "other"  # bubblewrap, unshare, fc-list


def validate(course: Path, notebook: Path) -> tuple[float, dict[str, float]]:
    """(wall seconds, CPU seconds by role) of one `nbgrader validate`."""
    return cpu_by_role(course, ["validate", str(notebook)])


def cpu_by_role(course: Path, arguments: list[str]) -> tuple[float, dict[str, float]]:
    """(wall seconds, CPU seconds by role) of one `nbgrader <arguments>` in `course`."""
    last: dict[tuple[int, float], tuple[str, float]] = {}
    started = time.monotonic()
    command = subprocess.Popen(
        ["nbgrader", *arguments],
        cwd=course,
        env=environment(course),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    top = psutil.Process(command.pid)
    while command.poll() is None:
        try:
            processes = [top, *top.children(recursive=True)]
        except psutil.Error:
            processes = []
        for process in processes:
            try:
                # Read each time: a kernel just forked has nbgrader's command line until exec.
                key = (process.pid, process.create_time())
                used = process.cpu_times()
                last[key] = (role(process), used.user + used.system)
            except psutil.Error:
                continue
        time.sleep(0.05)
    wall = time.monotonic() - started
    reap_orphans()
    by_role = dict.fromkeys(ROLES, 0.0)
    for known, seconds in last.values():
        by_role[known] += seconds
    return wall, by_role


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    adopt_orphans()
    scratch = Path(tempfile.mkdtemp(prefix="ptgrade-validate-cpu-"))
    try:
        ada = submissions()["ada_correct"]
        course = build_course(scratch, {"ada_correct": ada})
        forms = {KIT: ada, PLAIN: with_plain_asserts(ada)}
        for assignment, notebook in forms.items():
            (scratch / assignment).mkdir()
            nbformat.write(notebook, scratch / assignment / NOTEBOOK)
        runs: dict[str, list[tuple[float, dict[str, float]]]] = {KIT: [], PLAIN: []}
        for round_ in range(args.rounds):
            for assignment in reversed(forms) if round_ % 2 == 0 else forms:
                load = os.getloadavg()[0]
                wall, by_role = validate(course, scratch / assignment / NOTEBOOK)
                runs[assignment].append((wall, by_role))
                shown = ", ".join(f"{r} {s:.2f}" for r, s in by_role.items() if s)
                print(f"{assignment:30s} wall {wall:5.1f} s, load {load:.1f}: {shown}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nmedians of {args.rounds} rounds, CPU seconds by process:")
    for assignment, done in runs.items():
        cpu = {r: statistics.median(b[r] for _, b in done) for r in ROLES}
        total = statistics.median(sum(b.values()) for _, b in done)
        wall = statistics.median(w for w, _ in done)
        shown = ", ".join(f"{r} {s:.2f}" for r, s in cpu.items() if s)
        print(f"{assignment:30s} CPU {total:5.2f} ({shown}); wall {wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
