"""`ptgrade batch --scheduler`: the same grades from a real Dask cluster on loopback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from grader.batch import folder as batch
from grader.sandbox.execution import Limits
from tests.test_batch import verdicts

distributed = pytest.importorskip("distributed")

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "samples"
NOTEBOOKS = [
    "01_pytorch_workflow_exercises/ada_correct.ipynb",
    "01_pytorch_workflow_exercises/ben_float_split_index.ipynb",
    "01_pytorch_workflow_exercises/cleo_no_zero_grad.ipynb",
    "01_pytorch_workflow/ben_unindented_if.ipynb",
]


@contextmanager
def local_cluster(workers: int):
    """A real Dask cluster on loopback: worker processes of one thread, as the README says."""
    import dask

    # A task that kills its worker is given up at once, not retried on three more workers.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # a free port: two clusters may be up at once
        ) as cluster,
    ):
        yield cluster


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2) as cluster:
        yield cluster


@pytest.fixture
def course(tmp_path) -> Path:
    for name in NOTEBOOKS:
        target = tmp_path / "submitted" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / name, target)
    return tmp_path / "submitted"


def test_cluster_gives_the_local_results(cluster, course, tmp_path):
    cluster_output, local_output = tmp_path / "cluster", tmp_path / "local"
    command = [sys.executable, "-m", "grader.cli", "batch", str(course), "--timeout", "60"]
    on_cluster = subprocess.run(
        [*command, "--output", str(cluster_output), "--scheduler", cluster.scheduler_address],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert on_cluster.returncode == 0, on_cluster.stderr
    local = subprocess.run(
        [*command, "--output", str(local_output), "--jobs", "2"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert local.returncode == 0, local.stderr

    def read(output: Path) -> dict[str, dict]:
        import json

        return {p.stem: json.loads(p.read_text()) for p in (output / "results").glob("*.json")}

    found, expected = read(cluster_output), read(local_output)
    assert len(found) == len(NOTEBOOKS)
    assert {k: verdicts(r) for k, r in found.items()} == {
        k: verdicts(r) for k, r in expected.items()
    }
    assert all(r["status"] == "graded" for r in found.values())
    # The notebook travelled as bytes: the result names it, not a worker's scratch copy.
    assert found["01_pytorch_workflow_exercises__ada_correct"]["notebook"] == "ada_correct.ipynb"
    assert (cluster_output / "feedback" / "01_pytorch_workflow__ben_unindented_if.html").is_file()
    assert (cluster_output / "grades.csv").read_text() == (local_output / "grades.csv").read_text()


def test_a_failed_task_costs_only_its_submission(cluster, course, monkeypatch):
    """A task whose worker process dies is recorded as a grader_error; the others are graded."""
    from grader.batch import cluster as on_cluster

    monkeypatch.setattr(on_cluster, "grade_bytes", dies_on_ben)
    todo = [(job, "digest") for job in batch.discover(course)]
    found = {
        job.key: outcome
        for job, outcome in on_cluster.grade_on_cluster(cluster.scheduler_address, todo, Limits())
    }
    statuses = {key: outcome["status"] for key, outcome in found.items()}
    assert statuses == {
        "01_pytorch_workflow_exercises/ada_correct": "graded",
        "01_pytorch_workflow_exercises/ben_float_split_index": "grader_error",
        "01_pytorch_workflow_exercises/cleo_no_zero_grad": "graded",
        "01_pytorch_workflow/ben_unindented_if": "grader_error",
    }
    error = found["01_pytorch_workflow_exercises/ben_float_split_index"]["error"]
    assert error.startswith("on the cluster: ")


def test_a_submission_lost_with_another_ones_worker_is_graded_again_alone(course, monkeypatch):
    """On one worker, ben's task kills it while cleo's waits in its queue (and ada's result may
    not have left it): those are not ben's fault. Each failed task is graded again alone, so
    only the submissions that kill their worker by themselves are lost."""
    from grader.batch import cluster as on_cluster

    monkeypatch.setattr(on_cluster, "grade_bytes", dies_on_ben_after_a_while)
    todo = [(job, "digest") for job in batch.discover(course)]
    with local_cluster(1) as cluster:
        found = {
            job.key: outcome["status"]
            for job, outcome in on_cluster.grade_on_cluster(
                cluster.scheduler_address, todo, Limits()
            )
        }
    assert found == {
        "01_pytorch_workflow_exercises/ada_correct": "graded",
        "01_pytorch_workflow_exercises/ben_float_split_index": "grader_error",
        "01_pytorch_workflow_exercises/cleo_no_zero_grad": "graded",
        "01_pytorch_workflow/ben_unindented_if": "grader_error",
    }


def dies_on_ben_after_a_while(name: str, content: bytes, limits: Limits) -> dict:
    """Like dies_on_ben, once the scheduler has queued the next task on the same worker."""
    import time

    if name.startswith("ben"):
        time.sleep(1)
    return dies_on_ben(name, content, limits)


def dies_on_ben(name: str, content: bytes, limits: Limits) -> dict:
    """Stands in for grade_bytes on the workers: the worker process dies on ben's notebooks."""
    import os

    if name.startswith("ben"):
        os._exit(3)
    return {"status": "graded", "score": 1.0, "max_score": 1.0}
