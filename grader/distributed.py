"""Grade a batch on a Dask cluster: one task per submission, its notebook sent as bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from grader.batch import grade_bytes, grader_error, warm_up
from grader.sandbox import Limits

if TYPE_CHECKING:
    from grader.batch import Job


def grade_on_cluster(
    address: str, todo: list[tuple[Job, str]], limits: Limits
) -> Iterator[tuple[Job, dict]]:
    """Yield (job, outcome) as the cluster's workers finish them, in any order.

    Each Dask worker process keeps its own warm worker (grader.sandbox's is per process) and is
    warmed up once before the first task. A task that fails (its worker died, the result could
    not come back) costs only its own submission: it is recorded as a grader_error.
    """
    if not todo:
        return
    from distributed import Client, as_completed

    with Client(address) as client:
        # Run on every worker now; a worker that joins later pays it on its first task.
        client.run(_warm_up_quietly, limits)
        futures = {}
        for job, digest in todo:
            future = client.submit(
                grade_bytes,
                job.notebook.name,
                job.notebook.read_bytes(),
                limits,
                key=f"ptgrade-{digest}-{job.key}",
                pure=False,
                retries=0,
            )
            futures[future] = (job, digest)
        try:
            for future in as_completed(futures):
                job, digest = futures.pop(future)
                try:
                    outcome = future.result()
                except Exception as error:  # KilledWorker, a lost connection, ...
                    outcome = grader_error(f"on the cluster: {type(error).__name__}: {error}")
                outcome["hash"] = digest
                yield job, outcome
        finally:
            if futures:  # interrupted: the cluster is asked to drop what is left
                client.cancel(list(futures))


def _warm_up_quietly(limits: Limits) -> None:
    try:
        warm_up(limits)
    except Exception:  # the first task will report whatever is wrong
        pass
