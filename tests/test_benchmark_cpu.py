"""benchmarks/nbgrader_vs_plain.py counts the CPU of what a command leaves behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A command that leaves a process burning 0.5 CPU seconds behind it, as nbgrader leaves the
# kit's warm worker (below bubblewrap, which never waits for it).
MEASURE = """
import subprocess, sys
sys.path.insert(0, {root!r})
from benchmarks.nbgrader_vs_plain import _children_cpu, adopt_orphans, reap_orphans

BURN = "import time\\nend = time.process_time() + 0.5\\nwhile time.process_time() < end: pass"
if {adopt}:
    adopt_orphans()
before = _children_cpu()
leave = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {{BURN!r}}])"
subprocess.run([sys.executable, "-c", leave], check=True)
reap_orphans()
print(_children_cpu() - before)
"""


def counted(adopt: bool) -> float:
    script = MEASURE.format(root=str(ROOT), adopt=adopt)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return float(done.stdout.strip().splitlines()[-1])


def test_the_cpu_of_an_orphan_is_counted_once_it_is_adopted():
    assert counted(adopt=True) >= 0.5


def test_without_adopting_it_the_orphans_cpu_is_lost():
    # What the benchmark measured before: the reason it adopts.
    assert counted(adopt=False) < 0.5
