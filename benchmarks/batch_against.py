"""Time `ptgrade batch` of this checkout against a baseline checkout, side by side.

    .venv/bin/python benchmarks/batch_against.py --baseline ../ptgrade-main [--n 30] [--rounds 3]

Both grade the same N submissions (benchmarks/batch_vs_nbgrader.py's mix: correct samples, every
fifth a faulty one), each with its own `.venv`, into a fresh output folder every run, the two
alternated round by round so that a busy machine weighs on both alike. Prints each run's wall
time, the best of each side and the ratio this / baseline (a restructure is to stay within
10 %), with the load average read before each run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_vs_nbgrader import generate  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_batch(checkout: Path, submitted: Path, output: Path, jobs: int) -> float:
    python = checkout / ".venv" / "bin" / "python"
    command = [str(python), "-m", "grader.cli", "batch", str(submitted)]
    command += ["--output", str(output), "--jobs", str(jobs)]
    env = dict(os.environ)
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("GITHUB_STEP_SUMMARY", None)
    started = time.monotonic()
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ptgrade batch in {checkout} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout")
    parser.add_argument("--n", type=int, default=30, help="submissions (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="ptgrade batch --jobs")
    arguments = parser.parse_args()
    baseline = arguments.baseline.resolve()
    if not (baseline / ".venv" / "bin" / "python").is_file():
        raise SystemExit(f"{baseline} has no .venv: run `make setup` there first")
    sides = {"this": REPO_ROOT, "baseline": baseline}
    heads = {
        name: subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=path, capture_output=True, text=True
        ).stdout.strip()
        for name, path in sides.items()
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory(prefix="ptgrade-bench-") as scratch:
        submitted = Path(scratch) / "submitted"
        generate(submitted, arguments.n)
        for round_ in range(arguments.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for name in order:
                load = os.getloadavg()[0]
                output = Path(scratch) / f"out-{name}-{round_}"
                seconds = run_batch(sides[name], submitted, output, arguments.jobs)
                times[name].append(seconds)
                print(
                    f"round {round_ + 1} {name:8} {heads[name]}: {seconds:6.1f} s (load {load:.1f})"
                )
    best = {name: min(values) for name, values in times.items()}
    print(
        f"{arguments.n} submissions, --jobs {arguments.jobs}, best of {arguments.rounds}: "
        f"this {best['this']:.1f} s, baseline {best['baseline']:.1f} s, "
        f"ratio {best['this'] / best['baseline']:.3f}"
    )


if __name__ == "__main__":
    main()
