"""Where `nbgrader autograde`'s CPU goes, process by process: the kit against plain asserts.

    .venv/bin/python benchmarks/autograde_cpu_by_process.py [--rounds 2] [--copies 1]

The course and submissions are benchmarks/nbgrader_vs_plain.py's (six submissions, each handed
in K times with --copies K). Each round runs `nbgrader autograde` on both assignments,
alternated, while /proc is read as in benchmarks/validate_cpu_by_process.py (the same roles:
nbgrader's own process, its kernels, the kit's warm worker, the sandbox children). Prints each
run's CPU seconds by role, then the medians and the kit's extra CPU by role: what a run pays once
(the warm worker; in nbgrader's process, torch and pytest) and what grows with the notebooks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.nbgrader_vs_plain import (  # noqa: E402
    KIT,
    PLAIN,
    adopt_orphans,
    build_course,
    submissions,
)
from benchmarks.validate_cpu_by_process import ROLES, cpu_by_role  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args(argv)
    adopt_orphans()
    scratch = Path(tempfile.mkdtemp(prefix="ptgrade-autograde-cpu-"))
    runs: dict[str, list[dict[str, float]]] = {KIT: [], PLAIN: []}
    try:
        notebooks = submissions(max(1, args.copies))
        course = build_course(scratch, notebooks)
        for round_ in range(args.rounds):
            for assignment in (PLAIN, KIT) if round_ % 2 == 0 else (KIT, PLAIN):
                load = os.getloadavg()[0]
                extra = ["--force"] if round_ else []
                command = ["autograde", assignment, "--create", *extra]
                wall, by_role = cpu_by_role(course, command)
                runs[assignment].append(by_role)
                shown = ", ".join(f"{r} {s:.2f}" for r, s in by_role.items() if s)
                print(f"{assignment:30s} wall {wall:5.1f} s, load {load:.1f}: {shown}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    n = len(notebooks)
    medians = {
        a: {r: statistics.median(b[r] for b in done) for r in ROLES} for a, done in runs.items()
    }
    print(f"\nmedians of {args.rounds} rounds, CPU seconds by process, {n} notebooks:")
    for assignment, cpu in medians.items():
        shown = ", ".join(f"{r} {s:.2f}" for r, s in cpu.items() if s)
        print(f"{assignment:30s} {sum(cpu.values()):6.2f} ({shown})")
    kit, plain = medians[KIT], medians[PLAIN]
    extra = {r: kit[r] - plain[r] for r in ROLES}
    print(
        f"the kit's extra, {sum(extra.values()):.2f} s: nbgrader's own process "
        f"{extra['nbgrader']:+.2f} (import torch and pytest once, the checks of each notebook), "
        f"warm worker {extra['warm worker']:+.2f} (once a run), sandbox children "
        f"{extra['sandbox child']:+.2f} ({extra['sandbox child'] / n:.2f} a notebook), kernels "
        f"{extra['kernel']:+.2f} (the same notebooks: noise), other {extra['other']:+.2f}; "
        f"plain: {sum(plain.values()) / n:.2f} s a notebook"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
