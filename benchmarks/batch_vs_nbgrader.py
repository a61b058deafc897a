"""Measure side by side: `ptgrade batch`, `nbgrader autograde`, and the code alone in a warm Python.

    .venv/bin/python benchmarks/batch_vs_nbgrader.py [--n 100] [--nbgrader-n 10] [--jobs 2]

Generates N submissions of 01_pytorch_workflow_exercises (copies of the correct sample, every
fifth one a faulty sample instead, each under its own student name), then times
(a) `ptgrade batch --jobs J` on all N, from the command's start to its end;
(b) `nbgrader autograde` in a scratch course built like tools/release_exercises.py does, on the
    first `--nbgrader-n` of them (scaled linearly to N when fewer, and said so);
(c) `ptgrade batch --jobs 1` on the first `--alone-n` of them: one grading process, so a
    submission's cost is not inflated by another grade sharing the cores;
(d) the submissions' code cells exec'd in fresh namespaces in one Python that imported torch
    once (the floor: what running the student's code costs at all);
(e) the same, with the sandbox's tracer and simulated GPU installed once in that Python (what
    the instrumentation alone costs, without a fresh process per submission or the checks);
(f) the code alone again, each submission in a fresh fork of that warm Python (timed from the
    fork to the child's exit): what a fresh process per submission costs by itself, the
    isolation the issue asks for, before any instrumentation or checks;
(g) the code cells sent one by one to a Jupyter kernel started once (its namespace reset
    between submissions): how a notebook's code runs in Jupyter, the kernel already warm.
Prints per-submission medians, where a grade's time goes, and the ratios the README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_pytorch_workflow_exercises"
SAMPLES = REPO_ROOT / "samples" / ASSIGNMENT
FAULTY = ["ben_float_split_index", "cleo_no_zero_grad", "dev_interence_mode_typo"]
FAULTY += ["eve_whole_model_saved"]


def generate(submitted: Path, n: int) -> list[Path]:
    """submitted/<student>/<assignment>/<assignment>.ipynb, nbgrader's layout."""
    notebooks = []
    for i in range(n):
        sample = FAULTY[(i // 5) % len(FAULTY)] if i % 5 == 4 else "ada_correct"
        target = submitted / f"student_{i:03d}" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / f"{sample}.ipynb", target)
        notebooks.append(target)
    return notebooks


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("GITHUB_STEP_SUMMARY", None)
    return env


def bench_ptgrade(submitted: Path, output: Path, jobs: int) -> dict:
    command = [sys.executable, "-m", "grader.cli", "batch", str(submitted)]
    command += ["--output", str(output), "--jobs", str(jobs)]
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO_ROOT, env=environment(), capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"ptgrade batch failed:\n{done.stderr[-3000:]}")
    results = [json.loads(p.read_text()) for p in (output / "results").glob("*.json")]
    timings = [r["execution"]["timings"] | {"total": r["grading_seconds"]} for r in results]
    return {
        "wall": wall,
        "count": len(results),
        "median": statistics.median(r["grading_seconds"] for r in results),
        "statuses": sorted({r["status"] for r in results}),
        "phases": {k: statistics.median(t[k] for t in timings) for k in timings[0]},
    }


def bench_nbgrader(scratch: Path, notebooks: list[Path], timeout: float) -> dict:
    """A scratch course: solutions/ as source, generate_assignment, then one autograde run."""
    course = scratch / "course"
    shutil.copytree(REPO_ROOT / "solutions" / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", course)
    db = f"sqlite:///{scratch / 'gradebook.db'}"
    env = environment() | {"PTGRADE_GRADEBOOK_URL": db}
    nbgrader = shutil.which("nbgrader", path=env["PATH"])
    if nbgrader is None:
        raise SystemExit("nbgrader is not installed (pip install -e '.[nbgrader]')")
    subprocess.run(
        [nbgrader, "generate_assignment", ASSIGNMENT, "--force", "--db", db],
        cwd=course,
        env=env,
        check=True,
        capture_output=True,
    )
    for notebook in notebooks:
        student = notebook.parent.parent.name
        target = course / "submitted" / student / ASSIGNMENT / notebook.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(notebook, target)
    command = [nbgrader, "autograde", ASSIGNMENT, "--db", db, "--create"]
    command += [f"--ExecutePreprocessor.timeout={timeout:g}"]
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=course, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    starts = []  # when each student's autograding began, from nbgrader's log
    log = []
    for line in process.stderr:
        log.append(line)
        if "Sanitizing" in line and "submitted" in line:
            starts.append(time.monotonic())
    process.wait()
    wall = time.monotonic() - started
    graded = list((course / "autograded").glob(f"*/{ASSIGNMENT}/*.ipynb"))
    if process.returncode != 0 or len(graded) != len(notebooks):
        raise SystemExit(f"nbgrader autograde failed:\n{''.join(log)[-3000:]}")
    ends = starts[1:] + [started + wall]
    return {
        "wall": wall,
        "count": len(notebooks),
        "median": statistics.median(e - s for s, e in zip(starts, ends)),
    }


WARM_RUNNER = r"""
import json, os, sys, tempfile, time
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat
import torch
from IPython.core.inputtransformer2 import TransformerManager

def code_cells(path):
    # What the grader runs too: every code cell but nbgrader's test cells.
    cells = []
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not (meta.get("grade") and not meta.get("solution")):
            cells.append(TransformerManager().transform_cell(cell.source))
    return cells

tracer = None
if os.environ.get("BENCH_INSTRUMENTED"):
    # What the sandbox installs in each child: the simulated GPU, then the tracer.
    from grader.sandbox.child.simulated_gpu import SimulatedGPU
    from grader.sandbox.child.trace import TensorCopies, Tracer

    SimulatedGPU().install()
    tracer = Tracer()
    tracer.install()

def run(path):
    os.chdir(tempfile.mkdtemp())
    if tracer is not None:  # each submission its own trace (it stops recording at 20 000 events)
        tracer.events.clear()
        tracer.copy = TensorCopies()
    started = time.monotonic()
    namespace = {"__name__": "__main__"}
    for source in code_cells(path):
        try:
            exec(compile(source, "<cell>", "exec"), namespace)
        except Exception:
            pass
    plt.close("all")
    return time.monotonic() - started

def forked(path):
    # A fresh process per submission, forked from this warm one (as ptgrade's warm worker does).
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            run(path)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return time.monotonic() - started

paths = sys.argv[1:]
sys.stdout = open(os.devnull, "w")
run(paths[0])  # torch's own first-use costs (the first optimizer imports torch._dynamo)
if os.environ.get("BENCH_FORK"):
    import gc

    gc.collect()
    gc.freeze()  # as the warm worker does: the children need not walk the imports again
    times = [forked(p) for p in paths]
else:
    times = [run(p) for p in paths]
sys.stdout = sys.__stdout__
print(json.dumps(times))
"""


def bench_warm_python(
    notebooks: list[Path], instrumented: bool = False, fork: bool = False
) -> dict:
    started = time.monotonic()
    extra = {"BENCH_INSTRUMENTED": "1"} if instrumented else {}
    if fork:
        extra["BENCH_FORK"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", WARM_RUNNER, *map(str, notebooks)],
        env=environment() | {"MPLBACKEND": "Agg", "PYTHONPATH": str(REPO_ROOT)} | extra,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.monotonic() - started
    times = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall": wall, "count": len(times), "median": statistics.median(times)}


def bench_warm_kernel(notebooks: list[Path]) -> dict:
    """(g): one kernel for all, as `jupyter_client` drives it; each submission in a fresh
    namespace (`%reset -f`) and folder, timed from its first cell's request to its last reply."""
    import nbformat
    from jupyter_client.manager import start_new_kernel

    def run(kernel, code: str) -> None:
        # A faulty sample's error is in the reply; the cells after it still run, as in (d)-(f).
        kernel.execute_interactive(code, timeout=120, output_hook=lambda message: None)

    started = time.monotonic()
    os.environ["MPLBACKEND"] = "Agg"  # inherited by the kernel, as the other runs have it
    manager, kernel = start_new_kernel(kernel_name="python3")
    try:
        times = []
        for i, path in enumerate([notebooks[0], *notebooks]):  # the first: torch's first use
            cells = []
            for cell in nbformat.read(path, as_version=4).cells:
                meta = cell.metadata.get("nbgrader", {})
                if cell.cell_type == "code" and not (
                    meta.get("grade") and not meta.get("solution")
                ):
                    cells.append(cell.source)
            run(kernel, "%reset -f\nimport os, tempfile\nos.chdir(tempfile.mkdtemp())")
            begun = time.monotonic()
            for source in cells:
                run(kernel, source)
            if i:
                times.append(time.monotonic() - begun)
            run(kernel, "import matplotlib.pyplot as plt\nplt.close('all')")
    finally:
        kernel.stop_channels()
        manager.shutdown_kernel(now=True)
    wall = time.monotonic() - started
    return {"wall": wall, "count": len(times), "median": statistics.median(times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="submissions (default %(default)s)")
    parser.add_argument(
        "--nbgrader-n", type=int, help="how many of them nbgrader grades (default: all)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="ptgrade batch --jobs")
    parser.add_argument(
        "--alone-n", type=int, default=20, help="graded again with --jobs 1 (default %(default)s)"
    )
    parser.add_argument("--nbgrader-timeout", type=float, default=120)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    nbgrader_n = min(args.nbgrader_n or args.n, args.n)

    scratch = Path(tempfile.mkdtemp(prefix="ptgrade-bench-"))
    try:
        notebooks = generate(scratch / "submitted", args.n)
        print(f"{args.n} submissions in {scratch / 'submitted'} ({os.cpu_count()} CPUs)")
        ptgrade = bench_ptgrade(scratch / "submitted", scratch / "grades", args.jobs)
        print(f"ptgrade batch --jobs {args.jobs}: {ptgrade['wall']:.1f} s for {args.n}")
        alone_n = min(args.alone_n, args.n)
        for notebook in notebooks[:alone_n]:
            shutil.copytree(notebook.parent.parent, scratch / "alone" / notebook.parent.parent.name)
        alone = bench_ptgrade(scratch / "alone", scratch / "grades-alone", 1)
        print(f"ptgrade batch --jobs 1: {alone['wall']:.1f} s for {alone_n}")
        nbgrader = bench_nbgrader(scratch, notebooks[:nbgrader_n], args.nbgrader_timeout)
        scaled = nbgrader["wall"] * args.n / nbgrader_n
        note = "" if nbgrader_n == args.n else f", scaled linearly from {nbgrader_n}"
        print(
            f"nbgrader autograde: {nbgrader['wall']:.1f} s for {nbgrader_n} ({scaled:.0f} s{note})"
        )
        warm = bench_warm_python(notebooks)
        print(f"code alone, warm Python: {warm['wall']:.1f} s for {args.n} (with its start-up)")
        traced = bench_warm_python(notebooks, instrumented=True)
        print(f"code traced on the simulated GPU, warm Python: {traced['wall']:.1f} s for {args.n}")
        forked = bench_warm_python(notebooks, fork=True)
        print(f"code alone, a fork of a warm Python each: {forked['wall']:.1f} s for {args.n}")
        kernel = bench_warm_kernel(notebooks)
        print(f"code alone, one warm Jupyter kernel: {kernel['wall']:.1f} s for {args.n}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)

    print()
    print("per submission (median)")
    print(f"  ptgrade batch --jobs {args.jobs}, in its worker  {ptgrade['median']:7.3f} s")
    print(f"  ptgrade batch --jobs 1, in its worker  {alone['median']:7.3f} s")
    print(f"  nbgrader autograde                    {nbgrader['median']:7.3f} s")
    print(f"  code alone, warm Python               {warm['median']:7.3f} s")
    print(f"  the same, traced on the simulated GPU {traced['median']:7.3f} s")
    print(f"  code alone, a fresh fork each         {forked['median']:7.3f} s")
    print(f"  code alone, one warm Jupyter kernel   {kernel['median']:7.3f} s")
    for name, run in ((f"--jobs {args.jobs}", ptgrade), ("--jobs 1", alone)):
        phases = run["phases"]
        print()
        print(f"where a ptgrade grade's time goes, {name} (medians per submission)")
        print(f"  the cells, run in the sandbox (traced, simulated GPU)  {phases['cells']:7.3f} s")
        rest = phases["sandbox"] - phases["cells"]
        print(f"  the sandbox besides (fork, snapshots, the record)      {rest:7.3f} s")
        print(f"  the checks (pytest, the replayed training)             {phases['checks']:7.3f} s")
        other = phases["total"] - phases["sandbox"] - phases["checks"]
        print(f"  the rest (read the notebook, score, feedback page)     {other:7.3f} s")
    print()
    speedup = scaled / ptgrade["wall"]
    print(f"{args.n} submissions: nbgrader / ptgrade = {speedup:.1f}x (target >= 10)" + note)
    print(
        f"one submission: ptgrade / code alone = {alone['median'] / warm['median']:.1f}x with "
        f"--jobs 1, {ptgrade['median'] / warm['median']:.1f}x with --jobs {args.jobs} "
        "(target <= 2)"
    )
    print(
        f"the instrumentation alone (tracer and simulated GPU, no fresh process, no checks): "
        f"{traced['median'] / warm['median']:.1f}x the code alone"
    )
    print(
        f"a fresh process per submission alone (fork of the warm Python, code bare, exit): "
        f"{forked['median'] / warm['median']:.1f}x the code alone; ptgrade --jobs 1 = "
        f"{alone['median'] / forked['median']:.1f}x that"
    )
    print(
        f"against the code run cell by cell in a warm Jupyter kernel: ptgrade --jobs 1 = "
        f"{alone['median'] / kernel['median']:.1f}x"
    )
    print(f"ptgrade statuses: {', '.join(ptgrade['statuses'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
