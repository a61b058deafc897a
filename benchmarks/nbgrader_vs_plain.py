"""What the kit costs under nbgrader: the same assignment with the kit's test cells and with
plain hand-written asserts, side by side in one run.

    .venv/bin/python benchmarks/nbgrader_vs_plain.py [--rounds 2] [--validate-rounds 2]
        [--copies 1] [--record]

One scratch course (this repository's nbgrader_config.py) holds two assignments built from
solutions/01_pytorch_workflow_exercises: the kit's own (`assert_section` test cells) and
`plain_asserts`, whose test cells are benchmarks/plain_asserts/asserts.py (same grade ids, same
points). The same six submissions (five bundled samples and one corpus entry; not the endless
loop, whose cell limit would dominate both) go to both, then `nbgrader autograde` runs on each
(plain first, then the kit; the next round in the other order, and so on: a machine's load
weighs on both alike; --copies K hands each submission in K times, under as many students: the
kit's cost a run, its warm-up, is then spread over 6 K notebooks, as over a course's), and
`nbgrader validate` on one notebook in each form (alternated the
same way), and the first `check()` in a live Jupyter kernel, cold and 15 s after the kit's
import. Prints seconds per notebook and kit / plain, wall-clock (the figure to quote) and CPU:
nbgrader's and that of every process below it (its kernels, the kit's warm worker and
sandboxes: this script adopts and reaps those nbgrader never waits for), the figure that a
machine's load moves least. The load average is read before every command.
--record appends the run's figures (date, machine, load, torch, the ratios) to
docs/figures/nbgrader_vs_plain.md, which docs/nbgrader.md links: the figures quoted are the
ones measured. The code under test is this checkout's (PYTHONPATH), whatever the venv has
installed.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.plain_asserts.asserts import TEST_CELLS  # noqa: E402
from tests.submissions.build import build_submission, load_corpus  # noqa: E402

KIT = "01_pytorch_workflow_exercises"
PLAIN = "plain_asserts"
NOTEBOOK = f"{KIT}.ipynb"
SAMPLES = REPO_ROOT / "samples" / KIT
SAMPLE_NAMES = [
    "ada_correct",
    "ben_float_split_index",
    "cleo_no_zero_grad",
    "dev_interence_mode_typo",
    "eve_whole_model_saved",
]
CORPUS_NAME = "valid_tensor_copy_warning"
FIGURES = REPO_ROOT / "docs" / "figures" / "nbgrader_vs_plain.md"
LOADS: list[float] = []  # the 1-minute load average before each measured command


def submissions(copies: int = 1) -> dict[str, nbformat.NotebookNode]:
    """The six submissions by student id; with `copies` K, each K times (ada_correct,
    ada_correct_2, ...)."""
    read = {name: nbformat.read(SAMPLES / f"{name}.ipynb", as_version=4) for name in SAMPLE_NAMES}
    entry = next(e for e in load_corpus(KIT) if e["name"] == CORPUS_NAME)
    read[f"gus_{CORPUS_NAME}"] = build_submission(KIT, entry)
    copied = {f"{name}_{k}": nb for k in range(2, copies + 1) for name, nb in read.items()}
    return read | copied


def with_plain_asserts(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with each `<section>_tests` cell's source replaced by plain asserts."""
    notebook = nbformat.from_dict(notebook)
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        section = grade_id.removesuffix("_tests")
        if grade_id.endswith("_tests") and section in TEST_CELLS:
            cell.source = TEST_CELLS[section]
    return notebook


def environment(course: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PTGRADE_GRADEBOOK_URL"] = f"sqlite:///{course / 'gradebook.db'}"
    env["MPLBACKEND"] = "Agg"
    for name in ("PTGRADE_SANDBOX", "PTGRADE_SOLUTIONS", "PTGRADE_NOTEBOOK", "NBGRADER_EXECUTION"):
        env.pop(name, None)
    return env


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> None:
    """Make this process the reaper of whatever nbgrader leaves behind. RUSAGE_CHILDREN counts
    a process once it is waited for, and only through parents that waited: the kit's warm
    worker (about 3 CPU seconds under validate) sits below bubblewrap, which dies with the
    thread that started it and never waits for it, so its CPU went uncounted (validate's
    CPU ratio read 1.3 for what was 1.9). Orphans now come to this process (Linux 3.4+)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def reap_orphans(timeout: float = 30.0) -> None:
    """Wait for every orphan adopted from the command that just ended (a warm worker killed
    with nbgrader dies within milliseconds), so that its CPU is counted with that command."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # none left
            return
        if pid == 0:
            if time.monotonic() > deadline:
                print(f"some process outlived its nbgrader command by {timeout:g} s")
                return
            time.sleep(0.01)


def nbgrader(course: Path, *args: str, cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of nbgrader and all it started: its kernels, the kit's
    worker and sandboxes, orphans included; on a machine shared with other work, the steadier
    measure)."""
    LOADS.append(os.getloadavg()[0])
    reap_orphans()
    cpu = _children_cpu()
    started = time.monotonic()
    done = subprocess.run(
        ["nbgrader", *args],
        cwd=cwd or course,
        env=environment(course),
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    reap_orphans()
    if done.returncode != 0:
        raise SystemExit(
            f"nbgrader {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-3000:]}"
        )
    return seconds, _children_cpu() - cpu


def build_course(scratch: Path, notebooks: dict[str, nbformat.NotebookNode]) -> Path:
    course = scratch / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", course)
    shutil.copytree(
        REPO_ROOT / "solutions" / KIT,
        course / "solutions" / KIT,
        ignore=shutil.ignore_patterns("models", "__pycache__", ".ipynb_checkpoints"),
    )
    if (REPO_ROOT / "solutions" / "checks").is_dir():
        shutil.copytree(
            REPO_ROOT / "solutions" / "checks",
            course / "solutions" / "checks",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    source = nbformat.read(REPO_ROOT / "solutions" / KIT / NOTEBOOK, as_version=4)
    (course / "solutions" / PLAIN).mkdir()
    nbformat.write(with_plain_asserts(source), course / "solutions" / PLAIN / NOTEBOOK)
    for assignment in (KIT, PLAIN):
        nbgrader(course, "generate_assignment", assignment, "--force")  # (a gradebook entry)
        for student, notebook in notebooks.items():
            folder = course / "submitted" / student / assignment
            folder.mkdir(parents=True)
            nbformat.write(notebook, folder / NOTEBOOK)
    return course


def recorded_scores(course: Path, assignment: str, students) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {s: gradebook.find_submission(assignment, s).score for s in students}


LIVE_CHECK = """
import time
started = time.monotonic()
check("split", notebook={path!r})
print(f"FIRST-CHECK {{time.monotonic() - started:.3f}}")
"""


def first_check_in_a_live_kernel(notebook: Path, head_start: float) -> float:
    """Seconds the first `check()` takes in a fresh Jupyter kernel, `head_start` seconds after
    the kit was imported there (0: imported and called at once, a cold start)."""
    from jupyter_client.manager import start_new_kernel

    outputs: list[str] = []

    def run(code: str) -> None:
        kernel.execute_interactive(
            code,
            timeout=300,
            output_hook=lambda m: outputs.append(m.get("content", {}).get("text", "")),
        )

    os.environ["MPLBACKEND"] = "Agg"
    manager, kernel = start_new_kernel(kernel_name="python3", cwd=str(notebook.parent))
    try:
        run(f"import sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\nimport torch")
        run("from grader import check")
        time.sleep(head_start)  # the student reads, types, runs their cells
        run(LIVE_CHECK.format(path=str(notebook)))
    finally:
        kernel.stop_channels()
        manager.shutdown_kernel(now=True)
    line = next(o for o in "".join(outputs).splitlines() if o.startswith("FIRST-CHECK"))
    return float(line.split()[1])


def ratios(runs: dict[str, list[tuple[float, float]]], i: int) -> tuple[float, float, float]:
    """kit / plain of the best runs, and the lowest and highest of the pairs run back to back
    (the spread); i: 0 wall, 1 CPU."""
    pairs = [k[i] / p[i] for k, p in zip(runs[KIT], runs[PLAIN])]
    best = min(r[i] for r in runs[KIT]) / min(r[i] for r in runs[PLAIN])
    return best, min(pairs), max(pairs)


def torch_version() -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "?"


def commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "?"


FIGURES_HEAD = """\
# nbgrader: the kit against plain asserts, as measured

Written by `benchmarks/nbgrader_vs_plain.py --record` (one row a run, appended; never edited
by hand). Same course, same six submissions, kit and plain alternated. Seconds are wall-clock,
best of the run's rounds; a ratio is kit / plain of those bests, and in parentheses the lowest
and highest of the pairs run back to back. CPU: seconds of nbgrader and every process below
it, best of the rounds (the last column; in rows before it, the CPU ratio left out the kit's
warm worker, which nbgrader never waits for: about 3 s of validate's kit run). The load average
(1 minute) was read before every nbgrader command: lowest to highest. Notebooks: how many
autograde graded in one run (six submissions, each handed in K times with --copies K; rows
without the column: 6). The issue's target is kit / plain <= 1.2.

| run (UTC) | code | machine | load | torch | autograde, s a notebook: kit / plain | ratio | validate, s: kit / plain | ratio | CPU ratio: autograde, validate | first `check()`, s: cold, warm | CPU s: autograde a notebook, kit / plain; validate, kit / plain | notebooks |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
"""


def record(row: list[str]) -> None:
    """Append `row` to the figures file's table, under the heading as this script writes it."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    old = FIGURES.read_text().splitlines() if FIGURES.exists() else []
    rows = [line for line in old if line.startswith("| 2")]  # a run's row starts with its date
    rows.append("| " + " | ".join(row) + " |")
    FIGURES.write_text(FIGURES_HEAD + "\n".join(rows) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=2, help="autograde rounds, order swapped (%(default)s)"
    )
    parser.add_argument(
        "--validate-rounds", type=int, default=2, help="validate rounds (default %(default)s)"
    )
    parser.add_argument(
        "--copies",
        type=int,
        default=1,
        help="hand each submission in this many times, under as many students (%(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--record",
        action="store_true",
        help=f"append the figures to {FIGURES.relative_to(REPO_ROOT)}",
    )
    parser.add_argument(
        "--label", help="what the row names as the code measured (default: git describe)"
    )
    args = parser.parse_args(argv)
    if shutil.which("nbgrader", path=environment(Path(".")).get("PATH")) is None:
        print("nbgrader is not installed (pip install -e '.[nbgrader]')", file=sys.stderr)
        return 2

    adopt_orphans()
    scratch = Path(tempfile.mkdtemp(prefix="ptgrade-nbplain-"))
    when = datetime.now(timezone.utc)
    machine = f"{platform.node()}, {os.cpu_count()} CPUs"
    print(
        f"{when:%Y-%m-%d %H:%M} UTC, {machine}, load {os.getloadavg()[0]:.1f}; course in {scratch}"
    )
    # (wall, CPU) seconds a notebook, per run
    autograde: dict[str, list[tuple[float, float]]] = {KIT: [], PLAIN: []}
    validate: dict[str, list[tuple[float, float]]] = {KIT: [], PLAIN: []}
    try:
        notebooks = submissions(max(1, args.copies))
        course = build_course(scratch, notebooks)
        LOADS.clear()
        n = len(notebooks)
        for round_ in range(args.rounds):
            order = (PLAIN, KIT) if round_ % 2 == 0 else (KIT, PLAIN)
            for assignment in order:
                extra = ["--force"] if round_ else []
                wall, cpu = nbgrader(course, "autograde", assignment, "--create", *extra)
                autograde[assignment].append((wall / n, cpu / n))
                print(
                    f"autograde {assignment:30s} {wall:6.1f} s ({wall / n:5.2f} s a notebook), "
                    f"CPU {cpu / n:5.2f} s a notebook, load {LOADS[-1]:.1f}"
                )
        scores = {a: recorded_scores(course, a, notebooks) for a in (KIT, PLAIN)}

        forms = {KIT: notebooks["ada_correct"], PLAIN: with_plain_asserts(notebooks["ada_correct"])}
        for assignment, notebook in forms.items():
            folder = scratch / "validate" / assignment
            folder.mkdir(parents=True)
            nbformat.write(notebook, folder / NOTEBOOK)
        for round_ in range(args.validate_rounds):
            for assignment in reversed(forms) if round_ % 2 == 0 else forms:
                # From the course folder: nbgrader reads the course's nbgrader_config.py there.
                path = scratch / "validate" / assignment / NOTEBOOK
                wall, cpu = nbgrader(course, "validate", str(path))
                validate[assignment].append((wall, cpu))
                print(
                    f"validate  {assignment:30s} {wall:6.1f} s, CPU {cpu:5.1f} s, load {LOADS[-1]:.1f}"
                )
        live = scratch / "live" / NOTEBOOK
        live.parent.mkdir()
        nbformat.write(notebooks["ada_correct"], live)
        first_checks = {s: first_check_in_a_live_kernel(live, s) for s in (0.0, 15.0)}
        for head_start, seconds in first_checks.items():
            print(
                f"first check() in a live kernel, {head_start:g} s after the kit's import: "
                f"{seconds:.2f} s"
            )
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    LOADS.append(os.getloadavg()[0])

    print()
    print("scores recorded by nbgrader (kit | plain):")
    for student in notebooks:
        print(f"  {student:36s} {scores[KIT][student]:6.2f} | {scores[PLAIN][student]:6.2f}")
    print()
    cells = {}
    for name, runs, unit in (
        ("autograde", autograde, "s a notebook"),
        ("validate", validate, "s, one notebook"),
    ):
        kit = [min(r[i] for r in runs[KIT]) for i in (0, 1)]
        plain = [min(r[i] for r in runs[PLAIN]) for i in (0, 1)]
        wall, low, high = ratios(runs, 0)
        cpu = ratios(runs, 1)[0]
        print(
            f"{name}, best of {len(runs[KIT])}: wall {unit}: kit {kit[0]:.2f}, plain "
            f"{plain[0]:.2f}; CPU: kit {kit[1]:.2f}, plain {plain[1]:.2f}"
        )
        print(
            f"{name} kit / plain = {wall:.2f} wall (pairs {low:.2f} to {high:.2f}), "
            f"{cpu:.2f} CPU (target <= 1.2)"
        )
        cells[name] = (
            f"{kit[0]:.2f} / {plain[0]:.2f}",
            f"**{wall:.2f}** ({low:.2f}-{high:.2f})",
            cpu,
            f"{kit[1]:.2f} / {plain[1]:.2f}",
        )
    print(f"load average before each command: {min(LOADS):.1f} to {max(LOADS):.1f}")
    if args.record:
        record(
            [
                f"{when:%Y-%m-%d %H:%M}",
                args.label or commit(),
                machine,
                f"{min(LOADS):.1f}-{max(LOADS):.1f}",
                torch_version(),
                *cells["autograde"][:2],
                *cells["validate"][:2],
                f"{cells['autograde'][2]:.2f}, {cells['validate'][2]:.2f}",
                f"{first_checks[0.0]:.1f}, {first_checks[15.0]:.1f}",
                f"{cells['autograde'][3]}; {cells['validate'][3]}",
                str(len(notebooks)),
            ]
        )
        print(f"recorded in {FIGURES.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
