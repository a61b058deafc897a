"""`ptgrade batch`: nothing lost when interrupted, one bad submission costs only its own result."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from grader.batch import folder as batch
from grader.sandbox.execution import Limits

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "samples" / "01_pytorch_workflow_exercises"
# Small enough to keep the suite fast, large enough for a loaded CI machine.
LIMITS = ["--timeout", "8", "--memory-mb", "2048"]


def with_code(name: str, section: str, code: str, folder: Path) -> None:
    """The correct sample with `code` put at the top of one graded cell."""
    notebook = nbformat.read(SAMPLES / "ada_correct.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == section:
            cell.source = code + "\n" + cell.source
    nbformat.write(notebook, folder / f"{name}.ipynb")


def make_course(folder: Path, pathological: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ada_correct", "ben_float_split_index", "cleo_no_zero_grad"):
        shutil.copy(SAMPLES / f"{name}.ipynb", folder)
    if pathological:
        with_code("hank_hangs", "predictions", "while True:\n    pass", folder)
        with_code("cody_crashes", "predictions", "import os\nos._exit(1)", folder)
        with_code("mo_memory_hog", "predictions", "hog = bytearray(8 * 1024**3)", folder)
    return folder


def ptgrade_batch(submissions: Path, output: Path, *extra: str, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "grader.cli", "batch", str(submissions)]
    command += ["--output", str(output), *LIMITS, *extra]
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def results(output: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in (output / "results").glob("*.json")}


def verdicts(result: dict) -> dict:
    """What a student is told: the status, the score, and each section's score and hints."""
    return {
        "status": result["status"],
        "score": result["score"],
        "sections": {
            s["id"]: (s["score"], sorted(c["hint"] or "" for c in s["checks"] if not c["passed"]))
            for s in result.get("sections", [])
        },
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    base = tmp_path_factory.mktemp("course")
    course = make_course(base / "submitted")
    output = base / "grades"
    code, out, err = finish(ptgrade_batch(course, output, "--jobs", "2"))
    assert code == 0, err
    return course, results(output)


def test_a_bad_submission_costs_only_its_own_result(uninterrupted):
    _, found = uninterrupted
    assert {k: (r["status"], r["score"]) for k, r in found.items()} == {
        "ada_correct": ("graded", 20.0),
        "ben_float_split_index": ("graded", 18.0),
        "cleo_no_zero_grad": ("graded", 17.31),
        "hank_hangs": ("timeout", 15.0),
        "cody_crashes": ("crashed", 15.0),
        "mo_memory_hog": ("graded", 18.0),
    }
    assert "more than 8 s" in found["hank_hangs"]["execution"]["detail"]
    assert "exited with status 1" in found["cody_crashes"]["execution"]["detail"]
    hog = {s["id"]: s for s in found["mo_memory_hog"]["sections"]}["predictions"]
    assert "MemoryError" in " ".join(c["message"] for c in hog["checks"])
    # Where the time went: the cells ran inside the sandbox's time, all of it inside the grade's.
    # Without a GPU the device-agnostic assignment runs on the simulated one.
    gpu = "cuda" if torch.cuda.is_available() else "simulated cuda"
    assert found["ada_correct"]["execution"]["device"] == gpu
    timings = found["ada_correct"]["execution"]["timings"]
    assert 0 < timings["cells"] < timings["sandbox"]
    assert timings["sandbox"] + timings["checks"] < found["ada_correct"]["grading_seconds"]


def test_summary_lists_every_status(uninterrupted):
    output = uninterrupted[0].parent / "grades"
    csv = (output / "grades.csv").read_text()
    assert "hank_hangs,hank_hangs,01_pytorch_workflow_exercises,timeout,15.0," in csv
    assert "cody_crashes,cody_crashes,01_pytorch_workflow_exercises,crashed," in csv
    assert "<td>timeout</td>" in (output / "summary.html").read_text()


def test_interrupted_batch_resumes_to_the_same_results(uninterrupted, tmp_path):
    course, expected = uninterrupted
    output = tmp_path / "grades"
    process = ptgrade_batch(course, output, "--jobs", "1")
    deadline = time.monotonic() + 120
    while not list((output / "results").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    code, out, err = finish(process)
    assert code == 130
    assert "Traceback" not in err
    kept = results(output)
    assert 1 <= len(kept) < len(expected), err
    assert f"ptgrade: interrupted: {len(kept)} of 6 results are saved in" in err
    assert "run the same command again to grade the other" in err
    assert not list((output / "results").glob("*.tmp"))

    code, out, err = finish(ptgrade_batch(course, output, "--jobs", "2"))
    assert code == 0, err
    assert f"{len(kept)} of 6 already graded and unchanged: skipped" in err
    assert err.count("| ") == 6 - len(kept)  # one progress line per submission graded now
    final = results(output)
    assert {k: verdicts(r) for k, r in final.items()} == {
        k: verdicts(r) for k, r in expected.items()
    }


def test_sigterm_is_an_interruption_too(tmp_path):
    course = make_course(tmp_path / "submitted", pathological=False)
    output = tmp_path / "grades"
    process = ptgrade_batch(course, output, "--jobs", "1")
    deadline = time.monotonic() + 120
    while not list((output / "results").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    code, out, err = finish(process)
    assert code == 130 and "Traceback" not in err
    assert "ptgrade: interrupted:" in err


def test_a_changed_submission_is_graded_again(tmp_path):
    course = make_course(tmp_path / "submitted", pathological=False)
    output = tmp_path / "grades"
    assert finish(ptgrade_batch(course, output, "--jobs", "2"))[0] == 0
    shutil.copy(SAMPLES / "ada_correct.ipynb", course / "ben_float_split_index.ipynb")
    code, out, err = finish(ptgrade_batch(course, output, "--jobs", "2"))
    assert code == 0, err
    assert "2 of 3 already graded and unchanged: skipped" in err
    assert results(output)["ben_float_split_index"]["score"] == 20.0


def dies_on_ben(notebook: str, limits: Limits) -> dict:
    """A grade function whose process dies on one submission (run in the pool's processes)."""
    if "ben" in Path(notebook).name:
        os._exit(3)
    return {"status": "graded", "score": 1.0, "max_score": 1.0}


def test_a_dying_grading_process_costs_only_its_submission(tmp_path):
    course = make_course(tmp_path / "submitted", pathological=False)
    todo = [(job, "digest") for job in batch.discover(course)]
    found = {
        job.student: outcome["status"]
        for job, outcome in batch.grade_locally(todo, Limits(), 2, grade=dies_on_ben, warm=False)
    }
    assert found == {
        "ada_correct": "graded",
        "ben_float_split_index": "grader_error",
        "cleo_no_zero_grad": "graded",
    }


def test_only_the_assignments_own_notebook_is_graded_in_an_nbgrader_folder(tmp_path):
    assignment = "01_pytorch_workflow_exercises"
    kept = tmp_path / "submitted" / "ana" / assignment
    renamed = tmp_path / "submitted" / "bo" / assignment
    for folder in (kept, renamed):
        folder.mkdir(parents=True)
    shutil.copy(SAMPLES / "ada_correct.ipynb", kept / f"{assignment}.ipynb")
    shutil.copy(SAMPLES / "ben_float_split_index.ipynb", kept / "Untitled.ipynb")  # a spare
    shutil.copy(SAMPLES / "ada_correct.ipynb", renamed / f"Copy of {assignment}.ipynb")
    keys = [job.key for job in batch.discover(tmp_path / "submitted")]
    # Bo has no notebook of the assignment's name: the one he has is his submission.
    assert keys == [f"ana/{assignment}/{assignment}", f"bo/{assignment}/Copy of {assignment}"]
    code, out, err = finish(ptgrade_batch(tmp_path / "submitted", tmp_path / "grades"))
    assert code == 0
    spare = f"ana/{assignment}/Untitled.ipynb"
    assert f"1 other notebook in assignment folders that hold the assignment's own: {spare}" in err
    assert sorted(p.name for p in (tmp_path / "grades" / "results").iterdir()) == [
        f"ana__{assignment}__{assignment}.json",
        f"bo__{assignment}__Copy of {assignment}.json",
    ]


# ---------------------------------------------------------------------------------------------
# Any file name, links, storage errors: the batch goes on and grades.csv is written
# ---------------------------------------------------------------------------------------------

ASSIGNMENT = "01_pytorch_workflow_exercises"
LONG = "b" * 240  # with its student and assignment folders, 274 characters as one file name
UNDECODABLE = os.fsdecode(b"caf\xff")  # not UTF-8: Python holds it with a lone surrogate


@pytest.fixture(scope="module")
def awkward(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("awkward")
    course = base / "submitted"
    (course / "long" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SAMPLES / "ada_correct.ipynb", course / "ada_correct.ipynb")
    shutil.copy(SAMPLES / "cleo_no_zero_grad.ipynb", course / "long" / ASSIGNMENT / f"{LONG}.ipynb")
    shutil.copy(SAMPLES / "ben_float_split_index.ipynb", course / f"{UNDECODABLE}.ipynb")
    # Eve's notebook is a link to the instructor's solution; Finn's folder links to Ada's.
    (course / "eve").mkdir()
    solution = REPO_ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    (course / "eve" / f"{ASSIGNMENT}.ipynb").symlink_to(solution)
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(SAMPLES / "ada_correct.ipynb", elsewhere / "finn.ipynb")
    (course / "finn").symlink_to(elsewhere)
    os.mkfifo(course / "gus.ipynb")  # reading it would wait for a writer forever
    # Ada's result cannot be stored: a folder stands where its file is written.
    output = base / "grades"
    (output / "results" / "ada_correct.json.tmp").mkdir(parents=True)
    code, out, err = finish(ptgrade_batch(course, output, "--jobs", "1"), timeout=600)
    return output, subprocess.CompletedProcess([], code, out, err)


def test_a_storage_error_costs_only_that_result(awkward):
    output, run = awkward
    assert run.returncode == 2, run.stderr
    assert "ptgrade: 1 result could not be stored" in run.stderr
    assert "ada_correct (Is a directory); grades.csv holds every score" in run.stderr
    rows = (output / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 4  # the header, Ada, the long name and the undecodable one
    assert rows[1].startswith("ada_correct,ada_correct,01_pytorch_workflow_exercises,graded,20.0")


def test_any_file_name_gets_its_result(awkward):
    output, run = awkward
    stored = {
        json.loads(p.read_text())["submission"]: p.name for p in (output / "results").glob("*.json")
    }
    assert set(stored) == {f"long/{ASSIGNMENT}/{LONG}", "caf\\udcff"}
    assert all(len(name.encode()) < 200 for name in stored.values())
    csv = (output / "grades.csv").read_text(encoding="utf-8")
    assert f"long,long/{ASSIGNMENT}/{LONG},{ASSIGNMENT},graded,17.31" in csv
    assert f"caf\\udcff,caf\\udcff,{ASSIGNMENT},graded,18.0" in csv
    assert "caf\\udcff" in run.stdout


def test_every_summary_names_the_confinement(awkward):
    output, run = awkward
    ran_under = run.stdout.splitlines()[0]
    assert ran_under.startswith("ran under: ") and ran_under.endswith(" (3)")
    kind = ran_under.removeprefix("ran under: ").removesuffix(" (3)")
    rows = list(csv.reader((output / "grades.csv").open(encoding="utf-8")))
    assert rows[0][-1] == "confinement"
    assert [row[-1] for row in rows[1:]] == [kind] * 3
    assert f"<p>Ran under: {kind} (3)</p>" in (output / "summary.html").read_text()


def test_links_and_other_files_are_listed_not_graded(awkward):
    output, run = awkward
    assert (
        "ptgrade: not graded, not being notebook files: "
        f"eve/{ASSIGNMENT}.ipynb (a symbolic link), finn (a symbolic link), "
        "gus.ipynb (not a regular file)"
    ) in run.stderr
    assert "eve" not in (output / "grades.csv").read_text(encoding="utf-8")


def test_a_rerun_grades_only_what_was_not_stored(awkward):
    output, first = awkward
    (output / "results" / "ada_correct.json.tmp").rmdir()
    course = output.parent / "submitted"
    code, out, err = finish(ptgrade_batch(course, output, "--jobs", "1"), timeout=600)
    assert code == 0, err
    assert "2 of 3 already graded and unchanged: skipped" in err
    assert json.loads((output / "results" / "ada_correct.json").read_text())["score"] == 20.0
