"""The record channel's frames: what the child sends is read back exactly, and nothing else is."""

from __future__ import annotations

import json
import pickle
import struct

import pytest
import torch

from grader.sandbox.answers import decode_answer, encode_answer
from grader.sandbox.channel import HEADER


def test_an_answer_comes_back_exactly_with_shared_tensors_shared():
    weight = torch.tensor([[0.5], [-1.25]])
    answer = {
        "seq": 3,
        "events": [{"kind": "forward", "params": [weight, weight]}],
        "values": {
            "X": torch.arange(6, dtype=torch.float64).reshape(2, 3),
            "mask": torch.tensor([True, False]),
            "half": torch.tensor([1.5], dtype=torch.bfloat16),
            "empty": torch.zeros(0, 1),
            "scalar": torch.tensor(7),
            "nan": float("nan"),
            "shape": (2, 1),
            "missing": None,
        },
    }
    back = decode_answer(encode_answer(answer))
    values = back["values"]
    assert back["seq"] == 3
    first, second = back["events"][0]["params"]
    assert torch.equal(first, weight) and first is second  # one copy, as the pickle had it
    assert torch.equal(values["X"], answer["values"]["X"]) and values["X"].dtype == torch.float64
    assert values["mask"].tolist() == [True, False]
    assert values["half"].dtype == torch.bfloat16 and values["half"].item() == 1.5
    assert values["empty"].shape == (0, 1)
    assert values["scalar"].shape == () and values["scalar"].item() == 7
    assert values["nan"] != values["nan"]
    assert values["shape"] == [2, 1] and values["missing"] is None


def _frame(table, answer, blob=b""):
    head, body = json.dumps(table).encode(), json.dumps(answer).encode()
    return HEADER.pack(len(head)) + head + HEADER.pack(len(body)) + body + blob


@pytest.mark.parametrize(
    "table, blob",
    [
        ([["object", [1], 0, 8]], bytes(8)),  # a dtype that is not on the list
        ([["float32", [4], 0, 16]], bytes(8)),  # fewer bytes than the tensor needs
        ([["float32", [2], 0, 12]], bytes(12)),  # a size that is not shape x itemsize
        ([["float32", [-1], 0, 4]], bytes(4)),  # a negative dimension
        ([["float32", [1], "0", 4]], bytes(4)),  # a place that is not a number
    ],
)
def test_a_forged_tensor_entry_is_refused(table, blob):
    with pytest.raises((ValueError, KeyError, TypeError)):
        decode_answer(_frame(table, {"x": {"__tensor__": 0}}, blob))


def test_json_too_large_to_parse_safely_is_refused():
    from grader.sandbox.answers import MAX_JSON

    tiny_lists = b"[" + b"[]," * (MAX_JSON // 3) + b"[]]"  # parsed: ~20x its size in memory
    frame = HEADER.pack(2) + b"[]" + HEADER.pack(len(tiny_lists)) + tiny_lists
    with pytest.raises(ValueError, match="over the limit"):
        decode_answer(frame)


def test_a_pickle_is_never_unpickled(capsys):
    class Boom:
        def __reduce__(self):
            return (print, ("unpickled!",))

    payload = pickle.dumps({"seq": 1, "boom": Boom()})
    with pytest.raises(Exception) as raised:
        decode_answer(struct.pack(">Q", len(payload)) + payload)
    assert not isinstance(raised.value, SystemExit)
    assert "unpickled!" not in capsys.readouterr().out


def test_a_tensor_that_will_not_flatten_is_sent_without_values_and_the_rest_are_kept():
    class Odd(torch.Tensor):  # a student's subclass whose values cannot be read
        def reshape(self, *shape):
            raise RuntimeError("no")

    odd = torch.ones(3).as_subclass(Odd)
    kept = torch.tensor([1.5, 2.5])
    back = decode_answer(encode_answer({"values": [kept, odd, torch.tensor([7.0])]}))
    first, missing, last = back["values"]
    assert torch.equal(first, kept) and torch.equal(last, torch.tensor([7.0]))
    assert missing is None


def test_many_tensors_of_mixed_dtypes_and_shapes_come_back_in_place():
    # The decoder reads each dtype's tensors as one run (one split, not a call per tensor).
    sent = []
    for i in range(300):
        sent += [
            torch.tensor([float(i)]),
            torch.full((2, 3), i, dtype=torch.int64),
            torch.tensor(i % 2 == 0),
            torch.zeros(0, 2),
            torch.tensor([i, -i], dtype=torch.float64),
        ]
    back = decode_answer(encode_answer({"values": sent}))["values"]
    assert len(back) == len(sent)
    for original, copy in zip(sent, back):
        assert copy.dtype == original.dtype and copy.shape == original.shape
        assert torch.equal(copy, original)


def test_overlapping_tensor_entries_are_each_read_alone():
    # A forged table may point two tensors at the same bytes: each still reads its own.
    blob = struct.pack("<3f", 1.0, 2.0, 3.0)
    table = [["float32", [2], 0, 8], ["float32", [2], 4, 8], ["float32", [1], 0, 4]]
    values = {"a": {"__tensor__": 0}, "b": {"__tensor__": 1}, "c": {"__tensor__": 2}}
    back = decode_answer(_frame(table, values, blob))
    assert back["a"].tolist() == [1.0, 2.0]
    assert back["b"].tolist() == [2.0, 3.0]
    assert back["c"].tolist() == [1.0]
