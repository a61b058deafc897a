"""The kit as users get it: build the wheel, install it into a fresh venv outside the checkout
with the README's own install lines, and grade from empty folders, with bubblewrap and without.

    python tools/smoke_installed.py [--work DIR] [--confinement bwrap] [--confinement none]

Steps (each prints one line; the first failure ends the run with exit 1 and what went wrong):

1. `pip wheel` the checkout; a venv in a temporary folder (not under the checkout).
2. The README's install lines (`<!-- smoke: NAME -->` blocks), as written: the CPU-only torch
   line, the student's `%pip install` run in a real kernel of that venv (with ipykernel and
   nbclient standing in for the student's Jupyter), then the instructor's `[nbgrader]` line.
   Offline, PIP_CONSTRAINT=constraints.txt makes pip take this machine's cached CPU torch, and
   the CPU index of the torch line is dropped: that is the only change made to the lines.
3. For each confinement (bubblewrap; and without it: bwrap hidden from PATH, where grading
   someone else's notebook must be asked for with --isolation/PTGRADE_ISOLATION):
   a student's `ptgrade check` on the solution and on a notebook with a float split index, the
   notebooks' own test cells in a real kernel, CI's `ptgrade grade --format json`, and
   `nbgrader autograde` in a course folder made outside the checkout, whose points must be
   `ptgrade grade`'s; and a kit that cannot grade stops nbgrader with an ERROR, not a 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_pytorch_workflow_exercises"
TORCH_CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"
# A confinement that leaves files visible must be asked for to grade someone else's notebook.
WITHOUT_BWRAP = "none"


class SmokeFailed(Exception):
    pass


def readme_lines(readme: Path = ROOT / "README.md") -> dict[str, str]:
    """The install lines the README shows, by the name of their `<!-- smoke: NAME -->` mark."""
    text = readme.read_text(encoding="utf-8")
    found = re.findall(r"<!-- smoke: ([\w-]+) -->\s*```\w*\n(.*?)\n```", text, re.S)
    return {name: block.strip() for name, block in found}


def offline(line: str) -> str:
    """The README's line as run here: PyTorch's CPU index is not reachable offline, and the
    constraints file (PIP_CONSTRAINT) takes the same CPU build from this machine's cache."""
    return line.replace(TORCH_CPU_INDEX, "").strip()


def log(message: str) -> None:
    print(f"[smoke {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(command, cwd: Path, env: dict, expect: int | None = 0, timeout: float = 900) -> str:
    shell = isinstance(command, str)
    shown = command if shell else " ".join(map(str, command))
    log(f"$ {shown}   (in {cwd})")
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        shell=shell,
        capture_output=True,
        text=True,
        timeout=timeout,
        executable="/bin/bash" if shell else None,
    )
    output = done.stdout + done.stderr
    if expect is not None and done.returncode != expect:
        raise SmokeFailed(f"`{shown}` exited {done.returncode}, expected {expect}:\n{output}")
    return output


def base_env(venv: Path, path_dirs: list[str]) -> dict[str, str]:
    """This process's environment (pip's own settings included) without anything that would
    point the kit at the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PTGRADE_", "PYTHON", "VIRTUAL_ENV", "JPY_", "NBGRADER_"))
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path_dirs])
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_CONSTRAINT"] = str(ROOT / "constraints.txt")
    env["MPLBACKEND"] = "Agg"
    return env


def path_without_bwrap(work: Path) -> list[str]:
    """PATH's folders, with bwrap hidden: a folder of links to everything else in them."""
    shadow = work / "bin-without-bwrap"
    shadow.mkdir(exist_ok=True)
    kept = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or not Path(folder).is_dir():
            continue
        if not (Path(folder) / "bwrap").exists():
            kept.append(folder)
            continue
        for entry in Path(folder).iterdir():
            link = shadow / entry.name
            if entry.name != "bwrap" and not link.exists():
                link.symlink_to(entry)
    return [str(shadow), *kept]


# ---------------------------------------------------------------------------------------------
# Notebooks
# ---------------------------------------------------------------------------------------------


def build_notebooks(into: Path) -> dict[str, Path]:
    """The solution and the float split index, each as a student's assignment notebook."""
    sys.path.insert(0, str(ROOT))
    from tests.submissions.build import build_submission, load_corpus

    entry = next(e for e in load_corpus(ASSIGNMENT) if e["name"] == "split_float_index")
    notebooks = {  # the released notebook, its stubs filled: what a student hands in
        "solution": build_submission(ASSIGNMENT, {"name": "solution", "changes": []}),
        "float_split": build_submission(ASSIGNMENT, entry),
    }
    paths = {}
    for name, notebook in notebooks.items():
        (into / name).mkdir(parents=True)
        paths[name] = into / name / f"{ASSIGNMENT}.ipynb"
        nbformat.write(notebook, paths[name])
    return paths


EXECUTE = """
import json, sys
import nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, timeout=600, allow_errors=True, kernel_name="python3").execute()
failed = {}
for cell in notebook.cells:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            failed[grade_id or cell.source[:40]] = output["ename"] + ": " + output["evalue"][:300]
print("EXECUTED " + json.dumps(failed))
"""


def execute_in_kernel(notebook: Path, python: Path, env: dict) -> dict[str, str]:
    """Run the notebook in a real kernel of the venv (what `Run All` does); the cells that
    raised, by grade_id."""
    output = run([python, "-c", EXECUTE, notebook.name], notebook.parent, env)
    line = next(x for x in output.splitlines() if x.startswith("EXECUTED "))
    return json.loads(line.removeprefix("EXECUTED "))


def failed_in_text(report: str) -> set[str]:
    """The sections `ptgrade check` prints as FAIL."""
    return {m.group(1) for m in re.finditer(r"^\S.*?\s(\w+)\s+[\d.]+/[\d.]+\s+FAIL$", report, re.M)}


def failed_in_json(result: dict) -> set[str]:
    return {s["id"] for s in result["sections"] if s["score"] < s["max_score"]}


# ---------------------------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------------------------


def install(work: Path, wheel: Path) -> tuple[Path, dict]:
    lines = readme_lines()
    for needed in ("student", "torch-cpu", "instructor"):
        if needed not in lines:
            raise SmokeFailed(f"README.md has no `<!-- smoke: {needed} -->` install line")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv], work, dict(os.environ))
    env = base_env(venv, os.environ.get("PATH", "").split(os.pathsep))
    home = work / "downloads"  # where the student put the kit's file, beside the notebook
    home.mkdir()
    shutil.copy(wheel, home)
    if wheel.name not in lines["student"]:
        raise SmokeFailed(f"README's student line does not install {wheel.name}")
    run(offline(lines["torch-cpu"]), home, env)
    version = [
        venv / "bin/python",
        "-c",
        "import importlib.metadata as m; print(m.version('torch'))",
    ]
    torch_before = run(version, home, env)
    # The student's Jupyter (ipykernel, nbclient), then the README's line in a notebook cell.
    run("pip install -q ipykernel nbclient", home, env)
    cell = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(lines["student"])])
    nbformat.write(cell, home / "install.ipynb")
    failed = execute_in_kernel(home / "install.ipynb", venv / "bin/python", env)
    if failed:
        raise SmokeFailed(f"`{lines['student']}` in a notebook cell failed: {failed}")
    torch_after = run(version, home, env)
    if torch_after.split()[-1] != torch_before.split()[-1]:
        raise SmokeFailed(f"the kit replaced torch {torch_before.split()[-1]} by {torch_after}")
    log(f"the kit kept torch {torch_after.split()[-1]}")
    run(lines["instructor"], home, env)
    where = run([venv / "bin/python", "-c", "import grader; print(grader.__file__)"], work, env)
    if str(ROOT) in where or str(venv) not in where:
        raise SmokeFailed(f"the kit imported from {where.strip()}, not from the venv")
    return venv, env


def student_and_ci(work: Path, venv: Path, env: dict, course: Path, ask: list[str]):
    paths = build_notebooks(work / "students")
    solution, float_split = paths["solution"], paths["float_split"]

    report = run(["ptgrade", "check", solution.name], solution.parent, env)
    if "Score: 20 / 20" not in report:
        raise SmokeFailed(f"`ptgrade check` on the solution did not give 20/20:\n{report}")
    report = run(["ptgrade", "check", float_split.name], float_split.parent, env, expect=1)
    check_failed = failed_in_text(report)
    if "split" not in check_failed:
        raise SmokeFailed(f"`ptgrade check` did not fail the float split:\n{report}")

    grade = [*ask, "--solutions", str(course / "solutions"), "--format", "json"]
    result = json.loads(run(["ptgrade", "grade", solution.name, *grade], solution.parent, env))
    if result["score"] != result["max_score"]:
        raise SmokeFailed(f"`ptgrade grade` gave the solution {result['score']}")
    if result["execution"].get("hidden_checks") is not True:
        raise SmokeFailed("`ptgrade grade --solutions` did not say the hidden checks ran")
    output = float_split.parent / "report.json"
    run(["ptgrade", "grade", float_split.name, *grade, "--output", output], output.parent, env)
    float_result = json.loads(output.read_text())
    grade_failed = failed_in_json(float_result)
    if grade_failed != {"split"}:
        raise SmokeFailed(f"`ptgrade grade` failed {sorted(grade_failed)}, expected only split")
    if check_failed != grade_failed:
        raise SmokeFailed(
            f"`ptgrade check` fails {sorted(check_failed)} where `ptgrade grade` fails "
            f"{sorted(grade_failed)}"
        )

    # The notebooks' own test cells, in a real kernel, as `Run All` runs them.
    failed = execute_in_kernel(solution, venv / "bin/python", env)
    if failed:
        raise SmokeFailed(f"the solution's test cells failed in a kernel: {failed}")
    failed = execute_in_kernel(float_split, venv / "bin/python", env)
    tests_failed = {g.removesuffix("_tests") for g in failed if g.endswith("_tests")}
    if "split" not in tests_failed or not failed.get("split_tests", "").startswith("Assertion"):
        raise SmokeFailed(f"the float split's test cells in a kernel: {failed}")
    if tests_failed != check_failed:
        raise SmokeFailed(f"test cells failed {sorted(tests_failed)}, check {check_failed}")
    return {"solution": solution, "float_split": float_split, "float_score": float_result["score"]}


def make_course(work: Path) -> Path:
    course = work / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(
        ROOT / "solutions",
        course / "solutions",
        ignore=shutil.ignore_patterns("models", "__pycache__", ".ipynb_checkpoints"),
    )
    return course


def nbgrader_course(
    course: Path, env: dict, submissions: dict, isolation: str | None, try_broken: bool
) -> None:
    env = dict(env, PTGRADE_GRADEBOOK_URL=f"sqlite:///{course / 'gradebook.db'}")
    if isolation:
        env["PTGRADE_ISOLATION"] = isolation
    run(["nbgrader", "generate_assignment", ASSIGNMENT, "--force"], course, env)
    students = {"ada": submissions["solution"], "bo": submissions["float_split"]}
    for student, notebook in students.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        shutil.copy(notebook, folder / f"{ASSIGNMENT}.ipynb")
    run(["nbgrader", "autograde", ASSIGNMENT], course, env)
    run(["nbgrader", "export", "--to", "grades.csv"], course, env)
    with open(course / "grades.csv", newline="") as handle:
        scores = {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(handle)}
    expected = {"ada": 20.0, "bo": submissions["float_score"]}
    if scores != expected:
        raise SmokeFailed(f"nbgrader recorded {scores}, `ptgrade grade` gives {expected}")
    log(f"nbgrader recorded {scores}, as `ptgrade grade`")

    if not try_broken:
        return
    # A kit that cannot grade (here: a confinement that does not exist) is an ERROR with its
    # reason and a failed command, never a 0 in the gradebook.
    broken = dict(env, PTGRADE_ISOLATION="no-such-confinement")
    said = run(
        ["nbgrader", "autograde", ASSIGNMENT, "--student", "ada", "--force"],
        course,
        broken,
        expect=None,
    )
    if "ERROR" not in said or "no-such-confinement" not in said:
        raise SmokeFailed(f"a kit that cannot grade was not an ERROR with its reason:\n{said}")


def smoke(work: Path, confinements: list[str]) -> None:
    work.mkdir(parents=True, exist_ok=True)
    if ROOT in work.resolve().parents:
        raise SmokeFailed(f"{work} is inside the checkout; the kit must be tried outside it")
    dist = work / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-q", "-w", dist],
        work,
        dict(os.environ),
    )
    wheel = next(dist.glob("ptgrade-*.whl"))
    venv, env = install(work, wheel)
    for number, confinement in enumerate(confinements):
        log(f"--- {confinement} ---")
        here = work / confinement
        here.mkdir()
        if confinement == "bwrap":
            if shutil.which("bwrap") is None:
                raise SmokeFailed("bwrap is not installed: `apt-get install bubblewrap`")
            conf_env, ask, isolation = env, [], None
        else:  # bwrap hidden; grading another's notebook asks for the weaker confinement
            conf_env = base_env(venv, path_without_bwrap(work))
            conf_env.pop("PTGRADE_ISOLATION", None)
            ask, isolation = ["--isolation", confinement], confinement
        course = make_course(here)
        submissions = student_and_ci(here, venv, conf_env, course, ask)
        result = json.loads(
            run(
                ["ptgrade", "grade", submissions["solution"].name, *ask, "--format", "json"],
                submissions["solution"].parent,
                conf_env,
            )
        )
        kind = result["execution"]["confinement"]["kind"]
        if kind != confinement:
            raise SmokeFailed(f"graded under {kind}, expected {confinement}")
        nbgrader_course(course, conf_env, submissions, isolation, try_broken=number == 0)
    log("all passed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder to work in (default: a temporary one)")
    parser.add_argument(
        "--confinement",
        action="append",
        choices=("bwrap", "none", "unshare"),
        help="run with this confinement (repeatable; default: bwrap, then none without bwrap)",
    )
    args = parser.parse_args(argv)
    confinements = args.confinement or ["bwrap", WITHOUT_BWRAP]
    started = time.monotonic()
    try:
        if args.work:
            smoke(args.work, confinements)
        else:
            with tempfile.TemporaryDirectory(prefix="ptgrade-smoke-") as work:
                smoke(Path(work), confinements)
    except SmokeFailed as error:
        print(f"smoke_installed: FAILED: {error}", file=sys.stderr)
        return 1
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
