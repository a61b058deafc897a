"""One submission of a batch, graded in a grading process: a local pool's or a Dask worker's.

Shared by grader/batch/folder.py (the local pool) and grader/batch/cluster.py (the cluster): whatever
happens, a submission comes back as one result dict, never as an exception.
"""

from __future__ import annotations

import gc
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from grader.safe_text import file_name
from grader.sandbox.execution import Limits


@dataclass(frozen=True)
class Job:
    key: str  # the notebook's path relative to the submissions folder, without .ipynb
    student: str
    notebook: Path


def grade_one(notebook: str, limits: Limits) -> dict:
    """Grade one submission in a worker; whatever happens, return a result dict.

    `status` is "graded", "timeout" or "crashed" (the notebook did not finish; still scored on
    what ran), "unusable" (not a notebook of this kit) or "grader_error" (our fault).
    """
    from grader.grading import Options, grade
    from grader.notebook.reading import UnusableNotebook
    from grader.reports import html

    started = time.monotonic()
    try:
        result = grade(notebook, Options(limits=limits))
    except UnusableNotebook as error:
        return unusable(str(error))
    except Exception as error:  # the grader's own fault: record it, keep the batch going
        return grader_error(f"{type(error).__name__}: {error}")
    data = result.to_dict()
    finished = result.execution.get("status") == "finished"
    data["status"] = "graded" if finished else result.execution.get("status", "crashed")
    data["feedback_html"] = html.render(result)
    data["grading_seconds"] = round(time.monotonic() - started, 3)  # in this worker, end to end
    return data


def grade_bytes(name: str, content: bytes, limits: Limits) -> dict:
    """Grade a notebook sent as bytes (a remote worker needs no shared disk)."""
    from grader.sandbox.scratch import make_scratch, sweep

    sweep("ptgrade-batch-")  # a killed Dask worker's
    folder = make_scratch("ptgrade-batch-")
    try:
        stem = Path(name).stem  # it names the assignment, where it is the assignment's
        path = folder / f"{file_name(stem)}.ipynb"
        path.write_bytes(content)
        outcome = grade_one(str(path), limits)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if "notebook" in outcome:
        outcome["notebook"] = name
    return outcome


def unusable(error: str) -> dict:
    return {"status": "unusable", "error": error, "score": 0.0, "max_score": None}


def grader_error(error: str) -> dict:
    # No score: the kit failed, not the student; grades.csv leaves the cell empty.
    return {"status": "grader_error", "error": error, "score": None, "max_score": None}


def warm_up(limits: Limits) -> None:
    """Pay a grading process's fixed costs before its first submission.

    Starts this process's warm worker (Python, torch, IPython), and grades the reference
    solution once so that pytest, the checks, the reference replay and the feedback page's
    reference training run (cached for the process) are loaded and run once here rather than in
    the first student's time.
    """
    from grader.sandbox.execution import start_warm_worker

    start_warm_worker(many=True)  # it imports torch while this process does too
    import torch

    from grader.notebook.reading import find_solutions_dir

    # One of several grading processes side by side (--jobs, or a Dask worker per core): torch's
    # own thread pool would only fight the others for the cores (the checks' tensors are tiny;
    # measured: the checks took 0.067 s a submission with it, 0.018 s without).
    torch.set_num_threads(1)
    solutions = find_solutions_dir()
    notebooks = sorted(solutions.glob("*/*.ipynb")) if solutions is not None else []
    if notebooks:
        grade_one(str(notebooks[0]), limits)
    else:
        from grader.sandbox.execution import warm_worker

        warm_worker()
    # torch, pytest and the checks stay for the process's life: keep them out of the garbage
    # collector's full passes, which otherwise cost a quarter of a second now and then.
    gc.collect()
    gc.freeze()
