"""The record's format, in one place: each event and value kind, typed, checked on receipt.

The sandbox's child sends the events and values of each cell as the cell ends (runner.py,
trace.py, snapshot.py); the grader keeps only what this module accepts. Whatever the child says,
the grader decides which cell an event belongs to (the cell it just ran) and whether it came from
a stand-in, and it counts the budgets itself: a submission's code, which shares the child's
process with the tracer, can neither file events under another cell nor spend another cell's
budget. Anything malformed is a forged or corrupt answer, and ends the run (session.py).
"""

from __future__ import annotations

import gc
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where a value is read: not before the worker starts
    import torch

RECORD_VERSION = 2

# Per cell: a flood in one cell (a 6000-epoch loop) must not silence the cells after it.
MAX_EVENTS = 20_000
MAX_TENSOR_VALUES = 4096  # larger tensors are kept as shape and place, without their values
# The tensor values the trace keeps in one notebook (the chapter's notebooks keep well under
# 1 MB): past this, events keep their tensors' shape and place but not their values.
MAX_TRACE_BYTES = 64 * 1024 * 1024
MAX_TEXT = 300
MAX_LIST = 2000


class FormatError(ValueError):
    """An event or value that is not of the record's format (forged or corrupt)."""


# -- field types --------------------------------------------------------------------------------
def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError("not an int")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise FormatError("not a bool")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise FormatError("not a string")
    return value[:MAX_TEXT]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FormatError("not a number")
    return float(value)


def _optional(kind):
    def check(value: Any):
        return None if value is None else kind(value)

    return check


def _list_of(kind):
    def check(value: Any) -> list:
        if not isinstance(value, list) or len(value) > MAX_LIST:
            raise FormatError("not a list")
        return [kind(item) for item in value]

    return check


def _shape(value: Any) -> list[int]:
    # A training cell's events hold thousands of shapes: checked inline, not item by item.
    if (
        type(value) is not list
        or len(value) > 16
        or not all(type(n) is int and n >= 0 for n in value)
    ):
        raise FormatError("not a shape")
    return value


def _tensor(value: Any) -> torch.Tensor:
    import torch

    if type(value) is not torch.Tensor:  # decoded by answers.py: a plain tensor, never a subclass
        raise FormatError("not a tensor")
    return value


def _weights_only(value: Any) -> bool | None:
    return None if value is None else _bool(value) if isinstance(value, bool) else None


class Budget:
    """The tensor bytes the grader keeps for one notebook's trace (MAX_TRACE_BYTES)."""

    def __init__(self) -> None:
        self.kept = 0
        self.seen: set[int] = set()  # a tensor shared by many events is counted once

    def keep(self, tensor: torch.Tensor | None) -> torch.Tensor | None:
        if tensor is None:
            return None
        if tensor.numel() > MAX_TENSOR_VALUES:
            return None
        if id(tensor) in self.seen:
            return tensor
        size = tensor.numel() * tensor.element_size()
        if self.kept + size > MAX_TRACE_BYTES:
            return None
        self.kept += size
        self.seen.add(id(tensor))
        return tensor


def _summary(budget: Budget):
    """A tensor as the trace describes it (trace.tensor_summary): its values when kept."""

    def check(value: Any) -> dict | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise FormatError("not a tensor summary")
        shape = _shape(value.get("shape"))
        values = _optional(_tensor)(value.get("values"))
        if values is not None and (
            values.numel() != math.prod(shape) or values.numel() > MAX_TENSOR_VALUES
        ):
            raise FormatError("a tensor's values do not match its shape")
        return {
            "shape": shape,
            "dtype": _text(value.get("dtype")),
            "device": _text(value.get("device")),
            "requires_grad": _bool(value.get("requires_grad")),
            # The decoded tensor itself, not a view (one per event): a value the trace shares
            # between events stays one object, which the checks compare once.
            "values": budget.keep(
                values if values is None or list(values.shape) == shape else values.reshape(shape)
            ),
        }

    return check


def _row(budget: Budget):
    def check(value: Any) -> torch.Tensor | None:
        tensor = _optional(_tensor)(value)
        if tensor is not None and tensor.dim() != 1:
            raise FormatError("a step's values are not one row")
        return budget.keep(tensor)

    return check


def _event_fields(budget: Budget) -> dict[str, dict[str, Any]]:
    """Each event kind's fields and their types (what trace.py emits)."""
    summary, row = _summary(budget), _row(budget)
    return {
        "forward": {
            "module_id": _int,
            "module_class": _text,
            "training": _bool,
            "grad_enabled": _bool,
            "inference": _bool,
            "input": summary,
            "output": summary,
            "output_id": _optional(_int),
            "param_devices": _list_of(_text),
        },
        "loss": {
            "loss_class": _text,
            "module_id": _optional(_int),
            "input": summary,
            "target": summary,
            "value": _optional(_number),
            "param_ids": _optional(_list_of(_int)),
            "arg_ids": _optional(_list_of(_int)),
            "grad_enabled": _bool,
            "inference": _bool,
            "output_requires_grad": _bool,
        },
        "zero_grad": {"owner": _text, "id": _int},
        "backward": {
            "value": _optional(_number),
            "shape": _shape,
            "param_ids": _optional(_list_of(_int)),
        },
        "step": {
            "optimizer_id": _int,
            "optimizer_class": _text,
            "lr": _list_of(_optional(_number)),
            "momentum": _bool,
            "weight_decay": _bool,
            "settings": _settings,
            "param_ids": _list_of(_int),
            "param_shapes": _list_of(_shape),
            "params_before": row,
            "grads_present": _list_of(_bool),
            "grads": row,
            "params_after": row,
        },
        "save": {
            "path": _optional(_text),
            "obj_kind": _text,
            "obj_type": _text,
            "keys": _optional(_list_of(_text)),
        },
        "load": {
            "path": _optional(_text),
            "weights_only": _weights_only,
            "result_id": _int,
            "result_type": _text,
        },
        "load_state_dict": {
            "module_id": _int,
            "module_class": _text,
            "arg_id": _int,
            "arg_type": _text,
        },
        "to": {
            "target": _text,
            "id": _optional(_int),
            "shape": _optional(_shape),
            "args": _list_of(_text),
            "device": _optional(_text),
        },
        "cuda_query": {"result": _bool},
    }


SETTINGS = ("momentum", "dampening", "nesterov", "weight_decay", "beta1", "beta2", "eps")


def _settings(value: Any) -> list[dict[str, float | None]]:
    """Each parameter group's optimizer settings the grader's replay needs (SGD, Adam)."""
    groups = _list_of(lambda g: g if isinstance(g, dict) else {})(value)
    return [
        {name: _optional(_number)(group.get(name)) for name in SETTINGS} for group in groups[:16]
    ]


class EventReader:
    """Takes the events of each answer, as the grader keeps them: checked, filed under the cell
    the grader ran, within the budgets."""

    def __init__(self) -> None:
        self.budget = Budget()
        self.counts: dict[int | None, int] = {}
        self.truncated: set[int] = set()
        self._fields = _event_fields(self.budget)

    def read(self, events: Any, cell: int | None, substituted: bool) -> list[dict]:
        # The events are thousands of small dicts without cycles: the collector, woken by them,
        # would walk the whole record again and again (as in answers.decode_answer).
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._read(events, cell, substituted)
        finally:
            if collecting:
                gc.enable()

    def _read(self, events: Any, cell: int | None, substituted: bool) -> list[dict]:
        if not isinstance(events, list):
            raise FormatError("the trace is not a list")
        kept = []
        for event in events:
            if not isinstance(event, dict) or event.get("kind") not in self._fields:
                raise FormatError("an event of no known kind")
            if self.counts.get(cell, 0) >= MAX_EVENTS:
                if cell is not None:
                    self.truncated.add(cell)
                continue
            fields = self._fields[event["kind"]]
            checked = {"kind": event["kind"], "cell": cell, "substituted": substituted}
            for name, kind in fields.items():
                checked[name] = kind(event.get(name))
            self.counts[cell] = self.counts.get(cell, 0) + 1
            kept.append(checked)
        return kept


# -- values (snapshot.py) -------------------------------------------------------------------------
VALUE_KINDS = (
    "missing",
    "unreadable",
    "tensor",
    "module",
    "optimizer",
    "device",
    "value",
    "path",
    "list",
    "class",
    "object",
)


def check_value(value: Any, depth: int = 0) -> dict:
    """One snapshotted value, checked: its kind is known, and each tensor in it holds as many
    values as its shape says (the checks read these without asking again)."""
    import torch

    if not isinstance(value, dict) or value.get("kind") not in VALUE_KINDS or depth > 4:
        raise FormatError("a value of no known kind")
    kind = value["kind"]
    if kind == "tensor":
        _check_tensor_value(value)
    elif kind == "module":
        for key in ("parameters", "buffers", "plain_tensors", "probes", "state_dict_keys"):
            if not isinstance(value.get(key), list):
                raise FormatError("a module without its lists")
        for parameter in value["parameters"]:
            _check_tensor_value(parameter)
            _int(parameter.get("id"))
        for probe in value["probes"]:
            if not isinstance(probe, dict) or not isinstance(probe.get("input"), torch.Tensor):
                raise FormatError("a malformed probe")
            if probe.get("output") is not None:
                _check_tensor_value(probe["output"])
        _int(value.get("id"))
        _text(value.get("class"))
    elif kind == "list":
        items = value.get("items")
        if not isinstance(items, list):
            raise FormatError("a list without items")
        for item in items:
            check_value(item, depth + 1)
    elif kind == "optimizer":
        groups = value.get("param_groups")
        if not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("param_ids"), list) for g in groups
        ):
            raise FormatError("a malformed optimizer")
        # The replay trains with these settings: numbers or None, whatever the child sent.
        for group in groups:
            group["lr"] = _optional(_number)(group.get("lr"))
            group["settings"] = _settings([group.get("settings")])[0]
            group["param_ids"] = [i for i in group["param_ids"][:MAX_LIST] if type(i) is int]
        value["id"] = _optional(_int)(value.get("id"))
    return value


def _check_tensor_value(value: Any) -> None:
    import torch

    if not isinstance(value, dict):
        raise FormatError("not a tensor value")
    shape = _shape(value.get("shape"))
    _text(value.get("dtype"))
    _text(value.get("device"))
    _bool(value.get("requires_grad"))
    values = value.get("values")
    if values is not None and (
        type(values) is not torch.Tensor or values.numel() != math.prod(shape)
    ):
        raise FormatError("a tensor's values do not match its shape")
