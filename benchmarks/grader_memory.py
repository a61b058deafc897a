"""The grader's own peak memory and time while it grades hostile submissions.

    .venv/bin/python benchmarks/grader_memory.py [--timeout S] [--only NAME ...]

Each submission is graded by `ptgrade grade` in a fresh process, which then reports its own peak
resident memory (getrusage(RUSAGE_SELF): the grading process alone, not its sandbox, whose
memory --memory-mb caps) and the wall time. The first row is the correct sample, for comparison;
the others are tests/submissions/hostile.py's: a saved model that inflates to 512 MiB, a split of
30 000 rows, a flood of a million trace events.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "01_pytorch_workflow_exercises" / "ada_correct.ipynb"

# Run in the measured process: the CLI as a user runs it, then what it cost this process.
MEASURED = """
import contextlib, io, json, resource, sys, time
from grader.cli import main
report, started = io.StringIO(), time.monotonic()
with contextlib.redirect_stdout(report):
    code = main(sys.argv[1:])
print(json.dumps({
    "exit": code,
    "seconds": time.monotonic() - started,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "report": report.getvalue(),
}))
"""


def measure(notebook: Path, *options: str, timeout: float = 600) -> dict:
    """Grade `notebook` (`ptgrade grade NOTEBOOK --format json OPTIONS`) in a fresh process:
    its exit status, seconds, peak memory in MB, and the parsed report (None if none)."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, "grade", str(notebook), "--format", "json", *options],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"exit": done.returncode, "seconds": None, "peak_mb": None, "error": tail[0]}
    found = json.loads(lines[-1])
    found["report"] = json.loads(found["report"]) if found["report"].strip() else None
    return found


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tests.submissions.hostile import HOSTILE, write

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", default="60", help="ptgrade's --timeout (default 60)")
    parser.add_argument("--only", nargs="*", choices=sorted(HOSTILE), help="these cases only")
    args = parser.parse_args()
    cases = {"correct sample": SAMPLE}
    with tempfile.TemporaryDirectory(prefix="ptgrade-memory-") as folder:
        for name in args.only or HOSTILE:
            (Path(folder) / name).mkdir()
            cases[name] = write(name, Path(folder) / name)
        print(f"{'submission':<22} {'grader peak':>12} {'seconds':>8}  result")
        for name, notebook in cases.items():
            found = measure(notebook, "--timeout", args.timeout)
            if found["seconds"] is None:
                print(f"{name:<22} {'-':>12} {'-':>8}  exit {found['exit']}: {found['error']}")
                continue
            report = found["report"] or {}
            execution = report.get("execution", {})
            result = f"{report.get('score')}/{report.get('max_score')}, {execution.get('status')}"
            print(f"{name:<22} {found['peak_mb']:>9.0f} MB {found['seconds']:>8.1f}  {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
