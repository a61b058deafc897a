"""The record channel between the grader and a submission's process: length-prefixed frames.

The grader sends JSON requests (run this cell, snapshot these names); the child answers each
with one frame of JSON and raw tensor bytes (below), which the grader reads without unpickling
anything. Nothing else travels between them: no file the student's code could overwrite holds
the record.
"""

from __future__ import annotations

import gc
import json
import math
import socket
import struct
import time
from typing import Any

import torch

HEADER = struct.Struct(">Q")
MAX_FRAME = 512 * 1024 * 1024  # a frame past this is a hostile one, not a big record


class ChannelError(Exception):
    """The other side broke the protocol (or went away)."""


class ChannelTimeout(ChannelError):
    """No answer within the time allowed."""


def send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(HEADER.pack(len(payload)) + payload)


def _receive_exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks, missing = [], size
    while missing:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelTimeout("no answer in time")
            sock.settimeout(remaining)
        try:
            chunk = sock.recv(min(missing, 1 << 20))
        except TimeoutError:
            raise ChannelTimeout("no answer in time") from None
        except OSError as error:
            raise ChannelError(f"the channel failed ({error})") from None
        if not chunk:
            raise ChannelError("the process closed the channel")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def receive_frame(sock: socket.socket, deadline: float | None = None) -> bytes:
    (size,) = HEADER.unpack(_receive_exactly(sock, HEADER.size, deadline))
    if size > MAX_FRAME:
        raise ChannelError(f"a frame of {size} bytes is over the limit")
    return _receive_exactly(sock, size, deadline)


def send_request(sock: socket.socket, request: dict[str, Any]) -> None:
    send_frame(sock, json.dumps(request).encode())


def receive_request(sock: socket.socket) -> dict[str, Any]:
    return json.loads(receive_frame(sock))


# An answer is JSON with every tensor replaced by {"__tensor__": i}, followed by the tensors'
# raw bytes. Both halves are read without running any of the sender's code (no pickle), and a
# record's few thousand small tensors cost one JSON parse and one buffer instead of an unpickle.
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
ALIGN = 16


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


def _flat(tensor: torch.Tensor) -> torch.Tensor | None:
    """The tensor's values in a row, on the CPU; None for what has no values to send."""
    if str(tensor.dtype).removeprefix("torch.") not in DTYPES or tensor.layout != torch.strided:
        return None
    try:
        with torch._C.DisableTorchFunction():  # no simulated GPU (simulated_gpu.py) here
            return tensor.detach().cpu().reshape(-1)
    except Exception:  # e.g. a meta tensor
        return None


def encode_answer(answer: dict[str, Any]) -> bytes:
    """[size][tensor table JSON][size][answer JSON][tensor bytes]."""
    tensors: dict[int, tuple[int, torch.Tensor]] = {}

    def reference(value: Any) -> Any:  # json's C encoder walks; this sees only the leftovers
        if isinstance(value, torch.Tensor):
            return {TENSOR: tensors.setdefault(id(value), (len(tensors), value))[0]}
        return _encode(value, tensors)

    try:
        skeleton = json.dumps(answer, default=reference).encode()
    except (TypeError, ValueError):  # a key json cannot write: the slower walk mends it
        tensors.clear()
        skeleton = json.dumps(_encode(answer, tensors)).encode()
    table: list = [None] * len(tensors)
    by_dtype: dict[torch.dtype, list[tuple[int, torch.Tensor, torch.Tensor]]] = {}
    for index, tensor in tensors.values():
        flat = _flat(tensor)
        if flat is not None:
            by_dtype.setdefault(flat.dtype, []).append((index, tensor, flat))
    blob = bytearray()
    for dtype, members in by_dtype.items():  # one copy per dtype, not one per tensor
        blob += bytes(-len(blob) % ALIGN)
        offset = len(blob)
        with torch._C.DisableTorchFunction():
            joined = torch.cat([flat for _, _, flat in members])
            blob += joined.view(torch.uint8).numpy().tobytes()
        name = str(dtype).removeprefix("torch.")
        for index, tensor, flat in members:
            size = flat.numel() * dtype.itemsize
            table[index] = [name, list(tensor.shape), offset, size]
            offset += size
    head = json.dumps(table).encode()
    return b"".join(
        [HEADER.pack(len(head)), head, HEADER.pack(len(skeleton)), skeleton, bytes(blob)]
    )


def _decode_tensor(entry: Any, blob: bytearray) -> torch.Tensor | None:
    if entry is None:
        return None
    dtype_name, shape, offset, size = entry
    dtype = DTYPES[dtype_name]
    if not all(isinstance(n, int) and n >= 0 for n in [*shape, offset, size]):
        raise ValueError("a tensor's shape or place is malformed")
    count = math.prod(shape)
    if count * dtype.itemsize != size or offset + size > len(blob):
        raise ValueError("a tensor's size does not match its bytes")
    if count == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(blob, dtype=dtype, count=count, offset=offset).reshape(shape)


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
    (table_size,) = HEADER.unpack_from(view)
    table_end = HEADER.size + table_size
    (answer_size,) = HEADER.unpack_from(view, table_end)
    answer_start = table_end + HEADER.size
    blob = bytearray(view[answer_start + answer_size :])
    tensors = [
        _decode_tensor(entry, blob) for entry in json.loads(bytes(view[HEADER.size : table_end]))
    ]

    def tensor_or_dict(value: dict) -> Any:  # json calls it on every object, innermost first
        if len(value) == 1 and TENSOR in value:
            return tensors[value[TENSOR]]
        return value

    answer = bytes(view[answer_start : answer_start + answer_size])
    return json.loads(answer, object_hook=tensor_or_dict)


def send_answer(sock: socket.socket, answer: dict[str, Any]) -> None:
    send_frame(sock, encode_answer(answer))


def receive_answer(sock: socket.socket, deadline: float | None) -> dict[str, Any]:
    payload = receive_frame(sock, deadline)
    try:
        answer = decode_answer(payload)
    except Exception as error:  # forged or corrupt: only JSON and raw numbers were read
        raise ChannelError(f"an answer could not be read ({type(error).__name__})") from None
    if not isinstance(answer, dict):
        raise ChannelError("an answer is not a dict")
    return answer
