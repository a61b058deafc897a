"""An answer from the sandbox as bytes, and back: JSON, then the tensors' raw bytes.

Every tensor in the answer is replaced by {"__tensor__": i}; the tensors follow as one buffer.
Both halves are read without running any of the sender's code (no pickle), against a fixed list
of dtypes with every size checked, and a record's few thousand small tensors cost one JSON parse
and one buffer instead of an unpickle.
"""

from __future__ import annotations

import gc
import json
import math
import struct
from typing import Any

import torch

# The length before each part of an answer: the channel's own frame header (grader/sandbox/channel.py)
# wraps the whole answer and is no business of this format.
SIZE = struct.Struct(">Q")
TENSOR = "__tensor__"
DTYPES = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.float32,
        torch.float64,
        torch.float16,
        torch.bfloat16,
        torch.complex64,
        torch.complex128,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
    )
}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
ALIGN = 16
COMPACT = (",", ":")  # a record's JSON is mostly punctuation: no spaces to write and parse
# Parsed JSON takes ~20 times its size in memory: a forged answer of many tiny lists must not
# take the grader down with it. A real record's JSON is a few MB (20 000 events at most); the
# tensors' raw bytes take only their own size and are bounded by the frame limit alone.
MAX_JSON = 32 * 1024 * 1024


def _encode(value: Any, tensors: dict[int, tuple[int, torch.Tensor]]) -> Any:
    if isinstance(value, torch.Tensor):
        entry = tensors.setdefault(id(value), (len(tensors), value))
        return {TENSOR: entry[0]}
    if isinstance(value, dict):
        return {str(key): _encode(item, tensors) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item, tensors) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:  # the child only sends plain data; never fail on a stray object
        return repr(value)[:300]
    except Exception:
        return "<unprintable>"


def _sendable(tensor: torch.Tensor) -> bool:
    """Whether the tensor has values to send: a dtype on the list, strided, not a meta tensor."""
    return tensor.dtype in NAMES and tensor.layout == torch.strided and not tensor.is_meta


def _joined(members: list[tuple[int, torch.Tensor]]) -> tuple[list, torch.Tensor]:
    """The members' values in one row on the CPU, and the members that are in it: all of them,
    unless one will not flatten (then each is tried alone and those that fail are left out)."""
    with torch.no_grad():
        try:
            return members, torch.cat([tensor.reshape(-1) for _, tensor in members]).cpu()
        except Exception:
            pass
        kept, rows = [], []
        for index, tensor in members:
            try:
                rows.append(tensor.reshape(-1).cpu())
            except Exception:
                continue
            kept.append((index, tensor))
        return kept, torch.cat(rows) if rows else torch.empty(0, dtype=members[0][1].dtype)


def encode_answer(answer: dict[str, Any]) -> bytes:
    """[size][tensor table JSON][size][answer JSON][tensor bytes]."""
    # In the sandbox a simulated GPU (simulated_gpu.py) may handle every tensor call in Python,
    # reading `.shape` and `.dtype` included; and the collector, woken by the thousand small
    # tensors made here, walked the whole record again and again (measured: 0.06 s -> 0.011 s
    # for a 300-epoch training cell without both). Encoding makes no cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with torch._C.DisableTorchFunction():
            return _encode_answer(answer)
    finally:
        if collecting:
            gc.enable()


def _encode_answer(answer: dict[str, Any]) -> bytes:
    tensors: dict[int, tuple[int, torch.Tensor]] = {}

    def reference(value: Any) -> Any:  # json's C encoder walks; this sees only the leftovers
        if isinstance(value, torch.Tensor):
            return {TENSOR: tensors.setdefault(id(value), (len(tensors), value))[0]}
        return _encode(value, tensors)

    try:
        skeleton = json.dumps(answer, default=reference, separators=COMPACT).encode()
    except (TypeError, ValueError):  # a key json cannot write: the slower walk mends it
        tensors.clear()
        skeleton = json.dumps(_encode(answer, tensors), separators=COMPACT).encode()
    table: list = [None] * len(tensors)
    groups: dict[tuple[torch.dtype, torch.device], list[tuple[int, torch.Tensor]]] = {}
    for index, tensor in tensors.values():
        if _sendable(tensor):
            groups.setdefault((tensor.dtype, tensor.device), []).append((index, tensor))
    blob = bytearray()
    for (dtype, _), members in groups.items():  # one copy per dtype, not one per tensor
        members, joined = _joined(members)
        blob += bytes(-len(blob) % ALIGN)
        offset = len(blob)
        blob += joined.view(torch.uint8).numpy().tobytes()
        name = NAMES[dtype]
        for index, tensor in members:
            size = tensor.numel() * dtype.itemsize
            table[index] = [name, list(tensor.shape), offset, size]
            offset += size
    head = json.dumps(table, separators=COMPACT).encode()
    return b"".join([SIZE.pack(len(head)), head, SIZE.pack(len(skeleton)), skeleton, bytes(blob)])


def _checked_entry(entry: Any, blob: bytearray) -> tuple[torch.dtype, list[int], int, int]:
    """A tensor table entry, validated: (dtype, shape, offset in the blob, number of values)."""
    dtype_name, shape, offset, size = entry
    dtype = DTYPES[dtype_name]
    if not all(isinstance(n, int) and n >= 0 for n in [*shape, offset, size]):
        raise ValueError("a tensor's shape or place is malformed")
    count = math.prod(shape)
    if count * dtype.itemsize != size or offset + size > len(blob):
        raise ValueError("a tensor's size does not match its bytes")
    return dtype, shape, offset, count


def _decode_tensors(table: list, blob: bytearray) -> list[torch.Tensor | None]:
    """The table's tensors, as views of the blob. The encoder lays each dtype's tensors end to
    end, so one `frombuffer` and one `split` per run of them stand in for a call per tensor
    (a 300-epoch record holds over a thousand: 8 ms -> 2 ms)."""
    tensors: list[torch.Tensor | None] = [None] * len(table)
    entries = sorted(
        (offset, index, dtype, shape, count)
        for index, (dtype, shape, offset, count) in (
            (i, _checked_entry(entry, blob)) for i, entry in enumerate(table) if entry is not None
        )
    )
    start = 0
    while start < len(entries):
        offset, _, dtype, _, _ = entries[start]
        end, place = start, offset
        while (  # a run: same dtype, each tensor's bytes right after the one before
            end < len(entries) and entries[end][2] == dtype and entries[end][0] == place
        ):
            place += entries[end][4] * dtype.itemsize
            end += 1
        end = max(end, start + 1)  # overlapping entries (forged): one at a time
        run = entries[start:end]
        total = sum(e[4] for e in run)
        if total == 0:
            values = [torch.empty(0, dtype=dtype) for _ in run]
        else:
            whole = torch.frombuffer(blob, dtype=dtype, count=total, offset=offset)
            values = whole.split([e[4] for e in run])
        for (_, index, _, shape, _), value in zip(run, values):
            tensors[index] = value if len(shape) == 1 else value.reshape(shape)
        start = end
    return tensors


def decode_answer(payload: bytes) -> Any:
    """The answer; its thousands of small dicts hold no cycles, so the collector waits."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _decode_answer(payload)
    finally:
        if collecting:
            gc.enable()


def _decode_answer(payload: bytes) -> Any:
    view = memoryview(payload)
    (table_size,) = SIZE.unpack_from(view)
    table_end = SIZE.size + table_size
    (answer_size,) = SIZE.unpack_from(view, table_end)
    answer_start = table_end + SIZE.size
    if table_size > MAX_JSON or answer_size > MAX_JSON:
        raise ValueError("an answer's JSON is over the limit")
    blob = bytearray(view[answer_start + answer_size :])
    tensors = _decode_tensors(json.loads(bytes(view[SIZE.size : table_end])), blob)

    def tensor_or_dict(value: dict) -> Any:  # json calls it on every object, innermost first
        if len(value) == 1 and TENSOR in value:
            return tensors[value[TENSOR]]
        return value

    answer = bytes(view[answer_start : answer_start + answer_size])
    return json.loads(answer, object_hook=tensor_or_dict)
