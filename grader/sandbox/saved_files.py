"""Read the models a notebook saved, apart from the grader: in a capped child of the warm worker.

A saved file is the student's bytes: a zip whose entries inflate to gigabytes, a pickle that
builds a huge object or declares a storage of billions of values, a tensor of a billion values
that is a view of one. `torch.load(..., weights_only=True)` runs none of its code, but it would
still spend the grader's own memory and time. So the file is opened in a child forked from the
warm worker, inside the same confinement and uid as the notebook's code, under its own memory
limit and a deadline; what comes back is a state_dict of at most MAX_SAVED_VALUES values, over
the record channel (JSON and raw numbers, no pickle), or one line saying why not. This module is
the grader's half; the child's is grader/sandbox/child/saved_reader.py.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from grader.record.submission import SavedFile
from grader.sandbox.channel import ChannelError, receive_answer
from grader.sandbox.child.saved_reader import MAX_SAVED_BYTES

READER_MEMORY_MB = 512  # what the reading child may allocate beyond the warm worker's own
READ_SECONDS = 10.0  # for all the files of one notebook


def read_saved_files(
    workdir: Path, paths: set[str], deadline: float | None = None
) -> dict[str, SavedFile]:
    """Each path the notebook named (relative to its folder `workdir`, or absolute inside it)
    as the grader sees it: missing, outside the folder, unreadable (why), or its state_dict."""
    deadline = deadline if deadline is not None else time.monotonic() + READ_SECONDS
    root = os.path.realpath(workdir)
    found: dict[str, SavedFile] = {}
    inside: dict[str, str] = {}  # path as named -> path from the notebook's folder
    for path_text in sorted(paths):
        # realpath, not Path.resolve: a link loop the student made must not raise here.
        real = os.path.realpath(os.path.join(root, path_text))
        if os.path.commonpath([root, real]) != root:
            error = "the path points outside the notebook's folder"
            found[path_text] = SavedFile(path_text, exists=False, error=error)
        else:
            inside[path_text] = os.path.relpath(real, root)
    if inside:
        answers = _read_apart(workdir, sorted(set(inside.values())), deadline)
        for path_text, relative in inside.items():
            found[path_text] = _saved_file(path_text, relative, answers.get(relative))
    return found


def _saved_file(path_text: str, relative: str, answer: Any) -> SavedFile:
    if not isinstance(answer, dict):
        answer = {"exists": True, "error": "the grader could not read it in time"}
    relative_posix = Path(relative).as_posix()
    if not answer.get("exists"):
        return SavedFile(path_text, exists=False, relative=relative_posix)
    state_dict = answer.get("state_dict")
    if isinstance(state_dict, dict) and all(_is_tensor(v) for v in state_dict.values()):
        return SavedFile(path_text, exists=True, state_dict=state_dict, relative=relative_posix)
    error = str(answer.get("error") or "the grader could not read it")[:300]
    return SavedFile(path_text, exists=True, error=error, relative=relative_posix)


def _is_tensor(value: Any) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def _read_apart(workdir: Path, relatives: list[str], deadline: float) -> dict[str, Any]:
    """{path from the notebook's folder: what the reading child answered}; {} where it did not
    answer in time or at all."""
    from grader.sandbox.execution import warm_worker
    from grader.sandbox.limits import process_limit

    pool = warm_worker()
    uid = pool.isolation.sandbox_uid
    request = {
        "task": "read_saved",
        "paths": relatives,
        "workdir": str(workdir),
        "home": str(workdir.parent / "home"),
        "memory_mb": READER_MEMORY_MB,
        "cpu": True,
        "uid": uid,
        "nproc": process_limit(uid),
    }
    ours, theirs = socket.socketpair()
    answer: Any = None
    try:
        pool.worker.start(request, theirs)
        theirs.close()
        answer = receive_answer(ours, deadline, limit=MAX_SAVED_BYTES + (1 << 20))
    except (ChannelError, RuntimeError, OSError):
        pass  # no child, or it died (out of memory, say) or ran out of time: each file says so
    finally:
        ours.close()
        theirs.close()
        pool.worker.finish(kill=answer is None, timeout=max(1.0, deadline - time.monotonic()))
    files = answer.get("files") if isinstance(answer, dict) else None
    return files if isinstance(files, dict) else {}
