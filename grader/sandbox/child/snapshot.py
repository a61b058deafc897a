"""Describe the student's values as plain data (tensors copied to the CPU), inside the sandbox."""

from __future__ import annotations

import dis
import numbers
import os
import types
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from grader.safe_text import error_text, type_name
from grader.sandbox.child.simulated_gpu import device_of
from grader.sandbox.child.trace import (
    Tracer,
    dtype_name,
    group_settings,
    is_tensor,
    own_function,
    raw,
    raw_requires_grad,
    raw_shape,
    tensor_values,
    untracked,
)

MAX_ITEMS = 2000
MAX_REPR = 300

MISSING = {"kind": "missing"}


MAX_DEPTH = 4  # lists in lists: the record's format reads no deeper (record_format.check_value)


def describe(
    value: Any,
    tracer: Tracer,
    probe_inputs: list[list[float]] | None = None,
    depth: int = 0,
    room: int = MAX_ITEMS,
) -> dict:
    """One value of the student's namespace as plain data and tensors (what channel.py sends).
    Lists in lists are read to MAX_DEPTH and `room` items in all, never as deep or as wide as
    the student's code makes them (a list that holds itself, under a raised recursion limit)."""
    # By type, never isinstance: an object's `__class__` can claim to be a tensor or a module.
    if is_tensor(value):
        return describe_tensor(value, tracer.copy)
    if issubclass(type(value), nn.Module):
        return describe_module(value, tracer, probe_inputs or [])
    if issubclass(type(value), Optimizer):
        return describe_optimizer(value)
    if isinstance(value, torch.device):
        return {"kind": "device", "value": str(value)}
    if value is None or isinstance(value, bool):
        return {"kind": "value", "value": None if value is None else bool(value)}
    if isinstance(value, str):
        return {"kind": "value", "value": str(value)[:MAX_REPR]}
    if isinstance(value, numbers.Number):
        try:
            return {"kind": "value", "value": float(value)}
        except (TypeError, ValueError):
            return _describe_object(value)
    if isinstance(value, os.PathLike):
        return {"kind": "path", "value": os.fspath(value)}
    if isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            return {
                "kind": "object",
                "type": type_name(value),
                "function": None,
                "repr": "(lists nested too deep to show)",
                "plain_tensors": [],
                "callable": False,
            }
        kept = list(value[: max(1, room)])
        inner = max(1, room // max(1, len(kept)))
        items = [describe(v, tracer, depth=depth + 1, room=inner) for v in kept]
        return {"kind": "list", "items": items, "length": len(value)}  # all, not just those kept
    if type(value).__module__ == "numpy":
        try:
            return describe_tensor(torch.as_tensor(value)) | {"numpy": True}
        except (TypeError, ValueError, RuntimeError):
            return _describe_object(value)
    if isinstance(value, type):
        return {"kind": "class", "name": value.__name__, "is_module": issubclass(value, nn.Module)}
    return _describe_object(value)


def describe_tensor(tensor: torch.Tensor, copy=tensor_values) -> dict:
    """`copy` makes the values' CPU copy (the tracer's shares copies of unchanged tensors).
    Read past the simulated GPU's handler: the grader's own look at a tensor."""
    with untracked():
        return _describe_tensor(tensor, copy)


def _describe_tensor(tensor: torch.Tensor, copy) -> dict:
    """Read with the tensor's own C functions (trace.raw): no Python method of a student's
    Tensor subclass runs, so what the grader sees is what the storage holds."""
    base = torch._C.TensorBase
    grad_fn = base.grad_fn.__get__(tensor)
    return {
        "kind": "tensor",
        "id": id(tensor),
        "shape": raw_shape(tensor),
        "dtype": dtype_name(base.dtype.__get__(tensor)),
        "device": device_of(tensor),
        "requires_grad": raw_requires_grad(tensor),
        "is_parameter": issubclass(type(tensor), nn.Parameter),
        "grad_fn": type(grad_fn).__name__ if grad_fn is not None else None,
        "is_inference": bool(base.is_inference(tensor)),
        "values": copy(tensor),
    }


def _registered(module: nn.Module, kind: str, prefix: str = "", seen=None) -> list:
    """(name, tensor) of a module's registered parameters or buffers, read from nn.Module's own
    dicts: a student's class may override `parameters()`, `named_parameters()` or
    `state_dict()` to show the grader other tensors."""
    seen = set() if seen is None else seen
    if id(module) in seen or len(seen) > 1000:
        return []
    seen.add(id(module))
    found = []
    own = object.__getattribute__(module, kind)
    for name, tensor in dict.items(own) if isinstance(own, dict) else ():
        if tensor is not None and is_tensor(tensor):
            found.append((prefix + str(name), tensor))
    children = object.__getattribute__(module, "_modules")
    for name, child in dict.items(children) if isinstance(children, dict) else ():
        if child is not None and issubclass(type(child), nn.Module):
            found += _registered(child, kind, f"{prefix}{name}.", seen)
    unique, ids = [], set()
    for name, tensor in found:  # a shared parameter is listed once, as torch lists it
        if id(tensor) not in ids:
            ids.add(id(tensor))
            unique.append((name, tensor))
    return unique


def describe_module(module: nn.Module, tracer: Tracer, probe_inputs: list[list[float]]) -> dict:
    parameters = _registered(module, "_parameters")
    buffers = _registered(module, "_buffers")
    registered = {id(p) for _, p in parameters} | {id(b) for _, b in buffers}
    attributes = object.__getattribute__(module, "__dict__")
    plain = [
        {"name": name, **_short_tensor(value)}
        for name, value in dict.items(attributes)
        if is_tensor(value) and id(value) not in registered
    ]
    return {
        "kind": "module",
        "id": id(module),
        "class": type(module).__name__,
        "bases": [cls.__name__ for cls in type(module).__mro__[1:]],
        "training": bool(attributes.get("training", True)),
        "parameters": [
            {"name": name, "id": id(p), **describe_tensor(p, tracer.copy)} for name, p in parameters
        ],
        "buffers": [{"name": name, **_short_tensor(b)} for name, b in buffers],
        "plain_tensors": plain,
        # What `state_dict()` holds, worked out as torch does (not by calling the student's).
        "state_dict_keys": [name for name, _ in parameters] + _persistent(module, buffers),
        # A loss module's "mean" or "sum" (nn.L1Loss(reduction="sum") trains differently).
        "reduction": module.reduction
        if isinstance(getattr(module, "reduction", None), str)
        else None,
        "probes": probe_forward(module, tracer, probe_inputs),
        # Misspelled `__init__` or `forward` (`__int__`, `foward`) are found by these names.
        "methods": _own_methods(type(module)),
        "forward_globals": _notebook_globals(type(module)),
    }


def _torch_class(cls: type) -> bool:
    return str(getattr(cls, "__module__", "")).startswith("torch.")


def _own_methods(cls: type) -> list[str]:
    """The functions the student's classes define (up to nn.Module, whose methods are not)."""
    names: list[str] = []
    for klass in cls.__mro__:
        if _torch_class(klass):
            break
        # `def __init(self)` in a class body is stored name-mangled, `_Model__init`.
        mangled = f"_{str(getattr(klass, '__name__', '')).lstrip('_')}__"
        names += [
            n[len(mangled) - 2 :] if n.startswith(mangled) else n
            for n, v in vars(klass).items()
            if isinstance(v, types.FunctionType)
        ]
    return names[:MAX_ITEMS]


def _notebook_globals(cls: type) -> list[str]:
    """The notebook's tensors and numbers that the class's own `forward` reads as globals
    (`X` for its `x`, the data cell's `weight` for `self.weight`)."""
    forward = own_function(vars(cls).get("forward"))
    if _torch_class(cls) or not isinstance(forward, types.FunctionType):
        return []  # torch's own modules (nn.Linear, a loss module) are not the student's
    names = {
        i.argval for i in dis.get_instructions(forward) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    }

    def data(value: Any) -> bool:
        number = isinstance(value, numbers.Number) and not isinstance(value, bool)
        return number or isinstance(value, torch.Tensor)

    return sorted(n for n in names if data(forward.__globals__.get(n)))[:MAX_ITEMS]


def probe_forward(module: nn.Module, tracer: Tracer, probe_inputs: list[list[float]]) -> list[dict]:
    """Call forward on inputs the grader picked, without touching the trace or the RNG."""
    devices = {device_of(p) for _, p in _registered(module, "_parameters")}
    device = devices.pop() if len(devices) == 1 else "cpu"  # a simulated GPU is "cuda:0"
    probes = []
    cpu_rng = torch.get_rng_state()
    with tracer.paused(), torch.no_grad():
        for values in probe_inputs:
            for shape in ("column", "flat"):
                x = torch.tensor(values, dtype=torch.float32).to(device)
                if shape == "column":
                    x = x.unsqueeze(dim=1)
                probe: dict[str, Any] = {"shape": shape, "input": x.cpu()}
                try:
                    output = module(x)
                    probe["output"] = describe_tensor(output) if is_tensor(output) else None
                    probe["output_type"] = type(output).__name__
                except Exception as error:  # the student's forward: any error is a finding
                    probe["error"] = f"{type_name(error)}: {error_text(error, MAX_REPR)}"[:MAX_REPR]
                probes.append(probe)
    torch.set_rng_state(cpu_rng)
    return probes


def describe_optimizer(optimizer: Optimizer) -> dict:
    """Its class and each group's settings, read from the instance's own `param_groups` (a
    student's class may make `param_groups` a property showing the grader other settings).
    The grader replays the training with these, never with what the trace says."""
    own = object.__getattribute__(optimizer, "__dict__")
    found = dict.get(own, "param_groups") if isinstance(own, dict) else None
    groups = []
    for group in list.__iter__(found) if isinstance(found, list) else ():
        if not isinstance(group, dict):
            continue
        params = dict.get(group, "params")
        groups.append(
            {
                "lr": _plain_number(dict.get(group, "lr")),
                "momentum": _plain_number(dict.get(group, "momentum")),
                "weight_decay": _plain_number(dict.get(group, "weight_decay")),
                "settings": group_settings(dict(dict.items(group))),
                "param_ids": [id(p) for p in params] if isinstance(params, list) else [],
            }
        )
        if len(groups) >= 16:
            break
    return {
        "kind": "optimizer",
        "id": id(optimizer),
        "class": type(optimizer).__name__,
        "param_groups": groups,
    }


def _plain_number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _persistent(module: nn.Module, buffers: list) -> list[str]:
    """The names of the buffers a state_dict holds (not those registered persistent=False)."""
    names = []
    for name, _ in buffers:
        owner, _, leaf = name.rpartition(".")
        holder = module
        for part in owner.split(".") if owner else ():
            holder = dict.get(object.__getattribute__(holder, "_modules"), part, holder)
        skipped = getattr(holder, "_non_persistent_buffers_set", set())
        if leaf not in skipped:
            names.append(name)
    return names


def _short_tensor(tensor: torch.Tensor) -> dict:
    return {
        "shape": raw_shape(tensor),
        "device": str(raw(tensor).device),
        "requires_grad": raw_requires_grad(tensor),
    }


def _describe_object(value: Any) -> dict:
    try:
        text = repr(value)[:MAX_REPR]
    except Exception:  # a student's __repr__ may raise anything
        text = "<unprintable>"
    attrs = {}
    try:
        attrs = vars(value)
    except TypeError:
        pass
    return {
        "kind": "object",
        "type": type(value).__name__,
        # A function's own name (`loss_fn = F.l1_loss`); None for other objects.
        "function": value.__name__ if isinstance(value, types.FunctionType) else None,
        "repr": text,
        "plain_tensors": [
            {"name": k, **_short_tensor(v)} for k, v in attrs.items() if is_tensor(v)
        ],
        "callable": callable(value),
    }
