"""Grade a batch on a Dask cluster: one task per submission, its notebook sent as bytes."""

from __future__ import annotations

from collections.abc import Iterator

from grader.batch.task import Job, grade_bytes, grader_error, unusable, warm_up
from grader.safe_text import printable
from grader.sandbox.execution import Limits


class ClusterUnreachable(Exception):
    """The Dask scheduler could not be reached: nothing was sent to the cluster."""


def grade_on_cluster(
    address: str, todo: list[tuple[Job, str]], limits: Limits
) -> Iterator[tuple[Job, dict]]:
    """Yield (job, outcome) as the cluster's workers finish them, in any order.

    Each Dask worker process keeps its own warm worker (grader.sandbox.execution's is per process) and is
    warmed up once before the first task. A task that fails (its worker died, the result could
    not come back) may only have been queued on, or have left its result on, a worker that
    another submission killed: each failed one is graded again alone, and only one that fails
    by itself too is recorded as a grader_error (as `batch.grade_locally` does).
    """
    if not todo:
        return
    from distributed import Client, as_completed

    try:
        client = Client(address)
    except (OSError, ValueError) as error:  # no scheduler there, or not an address
        raise ClusterUnreachable(f"cannot reach the Dask scheduler at {address}: {error}") from None
    with client:
        # Run on every worker now; a worker that joins later pays it on its first task.
        client.run(_warm_up_quietly, limits)
        futures, unreadable = {}, []
        for job, digest in todo:
            try:
                future = _submit(client, job, limits, f"ptgrade-{digest}-{job.key}")
            except OSError as error:  # gone or unreadable since the batch hashed it
                why = f"{printable(job.key)}.ipynb: cannot be read ({error.strerror or error})"
                unreadable.append((job, unusable(why)))
                continue
            futures[future] = (job, digest)
        yield from unreadable
        failed = []
        try:
            for future in as_completed(futures):
                job, digest = futures.pop(future)
                try:
                    outcome = future.result()
                except Exception:  # KilledWorker, a lost connection, ...
                    failed.append((job, digest))
                    continue
                outcome["hash"] = digest
                yield job, outcome
            for job, digest in failed:
                future = None
                try:
                    future = _submit(client, job, limits, f"ptgrade-{digest}-{job.key}-alone")
                    futures[future] = (job, digest)
                    outcome = future.result()
                except Exception as error:
                    outcome = grader_error(f"on the cluster: {type(error).__name__}: {error}")
                futures.pop(future, None)
                outcome["hash"] = digest
                yield job, outcome
        finally:
            if futures:  # interrupted: the cluster is asked to drop what is left
                client.cancel(list(futures))


def _submit(client, job: Job, limits: Limits, key: str):
    return client.submit(
        grade_bytes,
        job.notebook.name,
        job.notebook.read_bytes(),
        limits,
        key=key,
        pure=False,
        retries=0,
    )


def _warm_up_quietly(limits: Limits) -> None:
    try:
        warm_up(limits)
    except Exception:  # the first task will report whatever is wrong
        pass
