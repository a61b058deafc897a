"""The record channel between the grader and a submission's process: length-prefixed frames.

The grader sends JSON requests (run this cell, snapshot these names); the child answers each
with one frame of JSON and raw tensor bytes (grader/sandbox/answers.py), which the grader reads without
unpickling anything. Nothing else travels between them: no file the student's code could
overwrite holds the record.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

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


def receive_frame(
    sock: socket.socket, deadline: float | None = None, limit: int = MAX_FRAME
) -> bytes:
    (size,) = HEADER.unpack(_receive_exactly(sock, HEADER.size, deadline))
    if size > limit:
        raise ChannelError(f"a frame of {size} bytes is over the limit")
    return _receive_exactly(sock, size, deadline)


def send_request(sock: socket.socket, request: dict[str, Any]) -> None:
    send_frame(sock, json.dumps(request).encode())


def receive_request(sock: socket.socket) -> dict[str, Any]:
    return json.loads(receive_frame(sock))


def send_answer(sock: socket.socket, answer: dict[str, Any]) -> None:
    from grader.sandbox.answers import encode_answer  # torch: only once an answer is sent

    send_frame(sock, encode_answer(answer))


def receive_answer(
    sock: socket.socket, deadline: float | None, limit: int = MAX_FRAME
) -> dict[str, Any]:
    from grader.sandbox.answers import decode_answer

    payload = receive_frame(sock, deadline, limit)
    try:
        answer = decode_answer(payload)
    except Exception as error:  # forged or corrupt: only JSON and raw numbers were read
        raise ChannelError(f"an answer could not be read ({type(error).__name__})") from None
    if not isinstance(answer, dict):
        raise ChannelError("an answer is not a dict")
    return answer
