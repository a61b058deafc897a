"""In the reading child of grader/sandbox/saved_files.py: open each saved file with torch's safe loader.

The child is forked by grader/sandbox/warm.py, already under its memory limit, its deadline and the
notebook's uid, in the notebook's folder. It answers once, over the record channel, with each
file's state_dict (at most MAX_SAVED_VALUES values) or one line saying why not.
"""

from __future__ import annotations

import re
import socket
import warnings
import zipfile
from pathlib import Path
from typing import Any

from grader.sandbox.channel import send_answer

MAX_SAVED_BYTES = 64 * 1024 * 1024  # on disk, and once unzipped (this chapter's: under 2 kB)
MAX_SAVED_VALUES = 1 << 22  # numbers in all the state_dict's tensors (this chapter's: 2)


def serve(channel: socket.socket, request: dict) -> None:
    """Read each requested file and answer them all at once."""
    send_answer(channel, {"files": {path: read_one(Path(path)) for path in request["paths"]}})


def read_one(path: Path) -> dict[str, Any]:
    """{"exists": False}, or {"exists": True} with the "state_dict" or the "error"."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return {"exists": False}
    except OSError as error:
        return {"exists": True, "error": f"it cannot be read ({error.strerror})"}
    if not path.is_file():
        return {"exists": True, "error": "it is not a regular file"}
    megabytes = MAX_SAVED_BYTES // 2**20
    if info.st_size > MAX_SAVED_BYTES:
        return {"exists": True, "error": f"it is over {megabytes} MB, more than a model's"}
    if _unzipped_size(path) > MAX_SAVED_BYTES:
        return {"exists": True, "error": f"its contents unzip to over {megabytes} MB"}
    try:
        loaded = _load(path)
    except MemoryError:
        return {"exists": True, "error": "it takes more memory to open than a model's"}
    except Exception as error:  # the pickle may be anything: never execute it, just report
        return {"exists": True, "error": load_error(error)}
    return _state_dict_answer(loaded)


def _unzipped_size(path: Path) -> int:
    """The sizes torch.save's zip declares for its entries (torch allocates by them); 0 for a
    file that is not a zip (the legacy format)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return 0


def _load(path: Path) -> Any:
    import torch

    with warnings.catch_warnings():  # torch's own about the file: the verdict says it
        warnings.simplefilter("ignore")
        return torch.load(path, weights_only=True, map_location="cpu")


def _state_dict_answer(loaded: Any) -> dict[str, Any]:
    import torch

    from grader.sandbox.answers import NAMES

    if not isinstance(loaded, dict) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        return {"exists": True, "error": f"it holds a {type(loaded).__name__}"}
    values = sum(tensor.numel() for tensor in loaded.values())
    if values > MAX_SAVED_VALUES:  # a view of a few numbers can claim billions
        return {"exists": True, "error": f"its tensors hold {values} numbers, more than a model's"}
    state_dict = {}
    for name, tensor in loaded.items():
        if tensor.dtype not in NAMES or tensor.layout != torch.strided:
            return {"exists": True, "error": f"its `{name}` is a {tensor.dtype} tensor"}
        state_dict[str(name)] = tensor.detach().contiguous().clone()
    return {"exists": True, "state_dict": state_dict}


def load_error(error: Exception) -> str:
    """Why torch.load refused a file, in one line (the pickle's code is never run)."""
    text = str(error)
    protocol = re.search(r"Unsupported operand (\d+)", text)
    if "Weights only load failed" in text and protocol:
        # torch.save(..., pickle_protocol=4): opcodes torch's safe loader does not read.
        return (
            f"it was written with a newer pickle protocol (opcode {protocol.group(1)}) than "
            "`weights_only=True` reads: save without `pickle_protocol=...`"
        )
    if "Weights only load failed" in text:
        found = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"global '([\w.]+)'", text)
        what = f"`{found.group(1)}`" if found else "an object"
        return f"its pickle calls {what}, not only tensors; the grader never runs a file's code"
    return f"{type(error).__name__}: {text[:300]}"
