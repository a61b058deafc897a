"""Instrument torch inside the sandbox so the grader sees what the student's code did, in order.

Runs in the child process only. Each event is a plain dict (see record.py for the kinds); the
tracer keeps the original functions so it can pause itself while the grader probes a model.
"""

from __future__ import annotations

import functools
import inspect
import os
import types
import weakref
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim import optimizer as optimizer_module

from grader.record.schema import MAX_EVENTS, MAX_LIST, MAX_TENSOR_VALUES, MAX_TRACE_BYTES
from grader.sandbox.child.simulated_gpu import device_of

# The record's budgets are record_format.py's. The grader enforces them on receipt; the child
# keeps to them too, so that a flood is not copied and shipped only to be dropped.
# Loss functions a loop may call directly, and the loss module each computes.
FUNCTIONAL_LOSSES = {
    "l1_loss": "L1Loss",
    "mse_loss": "MSELoss",
    "smooth_l1_loss": "SmoothL1Loss",
    "huber_loss": "HuberLoss",
}


def untracked():
    """Torch calls the grader makes for itself: no simulated GPU (grader/sandbox/child/simulated_gpu.py), whose
    per-operation Python handler would otherwise cost more than the copies themselves."""
    return torch._C.DisableTorchFunction()


def _plain(make):
    """make()'s copy as a plain tensor: past the simulated GPU, and never an inference tensor
    (the replay trains on the copies)."""
    with untracked():
        if torch.is_inference_mode_enabled():
            with torch.inference_mode(False):
                return make()
        return make()


# The tensor's own C functions: a student's Tensor subclass (or a patched `torch.Tensor`) may
# override `detach`, `cpu`, `shape` and the rest in Python to show the grader other values. These
# read the storage itself, and their results are plain tensors.
_BASE = torch._C.TensorBase


def raw(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` detached, as a plain `torch.Tensor` over the same storage, read without running
    any Python method of its class."""
    with untracked():
        plain = _BASE.detach(tensor)
        if type(plain) is not torch.Tensor:
            plain = _BASE.as_subclass(plain, torch.Tensor)
        return plain


def raw_shape(tensor: torch.Tensor) -> list[int]:
    return list(_BASE.shape.__get__(tensor))


def raw_requires_grad(tensor: torch.Tensor) -> bool:
    return bool(_BASE.requires_grad.__get__(tensor))


def is_tensor(value: Any) -> bool:
    """A real tensor (an object's `__class__` can claim to be one; its type cannot)."""
    return issubclass(type(value), torch.Tensor)


def _copy(tensor: torch.Tensor) -> torch.Tensor:
    """A detached CPU copy, read from the storage (see raw)."""
    return _plain(lambda: _BASE.clone(_BASE.cpu(raw(tensor))))


def tensor_values(tensor: torch.Tensor) -> torch.Tensor | None:
    """A detached CPU copy, or None when too large to keep."""
    if _BASE.numel(tensor) > MAX_TENSOR_VALUES:
        return None
    return _copy(tensor)


class TensorCopies:
    """CPU copies of the student's tensors, one per tensor and value.

    A training loop shows the same few tensors to the tracer again and again (the parameters at
    every forward and step, `X_train` every epoch). Handing back the earlier copy while the values
    are unchanged makes the record hold each distinct value once: the channel sends a shared
    tensor once (channel.py), so shipping the record does not grow with every mention.
    """

    def __init__(self) -> None:
        self._copies: dict[int, tuple[weakref.ref, torch.Tensor]] = {}
        self.copied = 0  # bytes, against MAX_TRACE_BYTES

    def joined(self, tensors: list[torch.Tensor]) -> torch.Tensor | None:
        """One flat CPU copy of all of `tensors`' values, not yet counted against the budget
        (see `counted`); None when they are too many to keep or will not join."""
        if not tensors or sum(_BASE.numel(t) for t in tensors) > MAX_TENSOR_VALUES:
            return None
        try:
            return _plain(lambda: torch.cat([raw(t).reshape(-1).cpu() for t in tensors]))
        except RuntimeError:  # a student's odd tensor subclass
            return None

    def counted(self, copy: torch.Tensor | None) -> torch.Tensor | None:
        """`copy` if the budget has room for it, else None."""
        if copy is None:
            return None
        size = copy.numel() * copy.element_size()
        if self.copied + size > MAX_TRACE_BYTES:
            return None
        self.copied += size
        return copy

    def _new_copy(self, tensor: torch.Tensor) -> torch.Tensor | None:
        return self.counted(_copy(tensor))  # at most MAX_TENSOR_VALUES: copied, then counted

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor | None:
        if _BASE.numel(tensor) > MAX_TENSOR_VALUES:
            return None
        key = id(tensor)
        entry = self._copies.get(key)
        known = entry is not None and entry[0]() is tensor
        if known:
            copy = entry[1]
            with untracked():
                current = raw(tensor)
                # Compared, not trusted to a version counter: `p.data -= ...` bypasses it.
                if (
                    copy.shape == current.shape
                    and copy.dtype == current.dtype
                    and torch.equal(copy, current.cpu())
                ):
                    return copy
        copy = self._new_copy(tensor)
        if copy is None:
            return None
        if known:  # new values in the same tensor (a parameter after a step)
            self._copies[key] = (entry[0], copy)
            return copy
        try:
            reference = weakref.ref(tensor, lambda ref, key=key: self._forget(key, ref))
        except TypeError:  # not weak-referenceable: just don't share its copies
            return copy
        self._copies[key] = (reference, copy)
        return copy

    def _forget(self, key: int, reference: weakref.ref) -> None:
        entry = self._copies.get(key)
        if entry is not None and entry[0] is reference:
            del self._copies[key]


@functools.cache  # a training loop asks a thousand times
def dtype_name(dtype: torch.dtype) -> str:
    """The dtype's name without "torch.": "float32"."""
    return str(dtype).replace("torch.", "")


def tensor_summary(tensor: Any, copy=tensor_values) -> dict[str, Any] | None:
    if not is_tensor(tensor):
        return None
    return {
        "shape": raw_shape(tensor),
        "dtype": dtype_name(_BASE.dtype.__get__(tensor)),
        "device": device_of(tensor),
        "requires_grad": raw_requires_grad(tensor),
        "values": copy(tensor),
    }


class Tracer:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.truncated: set[int | None] = set()  # cells that emitted more than MAX_EVENTS
        self._cell: int | None = None
        self._cell_events = 0
        self.substituted = False  # events from the grader's reference code, not the student's
        self._paused = 0
        self._depth = 0
        self._in_backward = False
        self._originals: list[tuple[Any, str, Any]] = []
        self._hook_handles: list[Any] = []
        self._last_step_after: dict[int, torch.Tensor | None] = {}  # optimizer id -> values
        self.copy = TensorCopies()

    # -- recording ------------------------------------------------------------------------
    @property
    def cell(self) -> int | None:
        return self._cell

    @cell.setter
    def cell(self, index: int | None) -> None:
        """The cell now running (None between cells); each cell has its own MAX_EVENTS."""
        self._cell = index
        self._cell_events = 0

    def emit(self, kind: str, **fields: Any) -> None:
        if self._paused:
            return
        if self._cell_events >= MAX_EVENTS:
            self.truncated.add(self._cell)
            return
        self._cell_events += 1
        fields.update(kind=kind, cell=self._cell, substituted=self.substituted)
        self.events.append(fields)

    @contextmanager
    def paused(self):
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    # -- installing -----------------------------------------------------------------------
    def _patch(self, owner: Any, name: str, make_wrapper) -> None:
        original = getattr(owner, name)
        self._originals.append((owner, name, original))
        wrapper = make_wrapper(original)
        wrapper.__wrapped__ = original
        for attr in ("__name__", "__qualname__", "__doc__"):
            try:
                setattr(wrapper, attr, getattr(original, attr))
            except (AttributeError, TypeError):
                pass
        setattr(owner, name, wrapper)

    def install(self) -> None:
        tracer = self

        def module_call(original):
            def __call__(module, *args, **kwargs):
                if tracer._paused or tracer._depth:
                    return original(module, *args, **kwargs)
                tracer._depth += 1
                try:
                    output = original(module, *args, **kwargs)
                finally:
                    tracer._depth -= 1
                with untracked():
                    tracer._record_call(module, args, kwargs, output)
                return output

            return __call__

        self._patch(nn.Module, "__call__", module_call)

        # `model.forward(x)` runs the model as `model(x)` does, past `__call__`: each class's
        # own `forward` reports a call made from outside `__call__` the same way (inside it,
        # `__call__` has already recorded it).
        inherited = nn.Module.__init_subclass__  # object's, bound: takes no class

        def __init_subclass__(cls, **kwargs):  # every class defined later: the student's model
            inherited(**kwargs)
            if isinstance(vars(cls).get("forward"), types.FunctionType):
                try:
                    tracer._patch(cls, "forward", module_call)
                except Exception:  # a class that refuses it: its calls of `model(x)` are seen
                    pass

        nn.Module.__init_subclass__ = classmethod(__init_subclass__)
        for layer in (nn.Linear, nn.Sequential):  # a model made of torch's own modules
            self._patch(layer, "forward", module_call)

        def functional_loss(class_name):
            def make(original):
                def loss(input, target, *args, **kwargs):
                    # Inside a loss module's own call (nn.L1Loss runs F.l1_loss), or the
                    # grader's: that call is the one recorded.
                    if tracer._paused or tracer._depth:
                        return original(input, target, *args, **kwargs)
                    tracer._depth += 1
                    try:
                        output = original(input, target, *args, **kwargs)
                    finally:
                        tracer._depth -= 1
                    with untracked():
                        tracer._record_loss(class_name, None, [input, target], output)
                    return output

                return loss

            return make

        # `loss_fn = F.l1_loss` trains as nn.L1Loss() does: the loop is judged the same (the
        # loss section reports the function).
        for function, class_name in FUNCTIONAL_LOSSES.items():
            self._patch(nn.functional, function, functional_loss(class_name))

        def optimizer_zero_grad(original):
            def zero_grad(optimizer, *args, **kwargs):
                tracer.emit("zero_grad", owner="optimizer", id=id(optimizer))
                return original(optimizer, *args, **kwargs)

            return zero_grad

        self._patch(Optimizer, "zero_grad", optimizer_zero_grad)

        def module_zero_grad(original):
            def zero_grad(module, *args, **kwargs):
                tracer.emit("zero_grad", owner="module", id=id(module))
                return original(module, *args, **kwargs)

            return zero_grad

        self._patch(nn.Module, "zero_grad", module_zero_grad)

        def tensor_backward(original):
            def backward(tensor, *args, **kwargs):
                # Under a torch function mode (the simulated GPU) torch calls this wrapper a
                # second time from inside the first: one backward, one event.
                if tracer._in_backward:
                    return original(tensor, *args, **kwargs)
                with untracked():
                    value = float(raw(tensor).sum()) if _BASE.numel(tensor) else None
                    params = reached_parameters([tensor])
                tracer.emit("backward", value=value, shape=raw_shape(tensor), param_ids=params)
                tracer._in_backward = True
                try:
                    return original(tensor, *args, **kwargs)
                finally:
                    tracer._in_backward = False

            return backward

        self._patch(torch.Tensor, "backward", tensor_backward)

        def step_pre(optimizer, args, kwargs):
            with untracked():
                record_step_start(optimizer)

        def record_step_start(optimizer):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            before = tracer.copy.joined(params)
            last = tracer._last_step_after.get(id(optimizer))
            if before is not None and last is not None and torch.equal(before, last):
                before = last  # unchanged since the last step: one copy in the record
            elif before is not None:
                before = tracer.copy.counted(before)
            grads = [p.grad for p in params]
            tracer._pending_step = {
                "optimizer_id": id(optimizer),
                "optimizer_class": type(optimizer).__name__,
                "lr": [group.get("lr") for group in optimizer.param_groups],
                "momentum": any(group.get("momentum") for group in optimizer.param_groups),
                "weight_decay": any(group.get("weight_decay") for group in optimizer.param_groups),
                "settings": [group_settings(group) for group in optimizer.param_groups],
                "param_ids": [id(p) for p in params],
                # The values of all the parameters (and their gradients) as one flat row each:
                # a copy or two per step, not one per parameter. See grader/packs/workflow01/epochs.py.
                "param_shapes": [raw_shape(p) for p in params],
                "params_before": before,
                "grads_present": [g is not None for g in grads],
                "grads": tracer.copy.counted(
                    tracer.copy.joined(
                        [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
                    )
                ),
            }

        def step_post(optimizer, args, kwargs):
            with untracked():
                record_step_end(optimizer)

        def record_step_end(optimizer):
            pending = getattr(tracer, "_pending_step", None)
            if pending is None or pending["optimizer_id"] != id(optimizer):
                return
            params = [p for group in optimizer.param_groups for p in group["params"]]
            after = tracer.copy.counted(tracer.copy.joined(params))
            pending["params_after"] = after
            tracer._last_step_after[id(optimizer)] = after
            tracer._pending_step = None
            tracer.emit("step", **pending)

        self._hook_handles.append(optimizer_module.register_optimizer_step_pre_hook(step_pre))
        self._hook_handles.append(optimizer_module.register_optimizer_step_post_hook(step_post))

        def torch_save(original):
            def save(obj, f, *args, **kwargs):
                tracer.emit("save", path=_path_text(f), **_describe_saved(obj))
                return original(obj, f, *args, **kwargs)

            return save

        self._patch(torch, "save", torch_save)

        def torch_load(original):
            def load(f, *args, **kwargs):
                result = original(f, *args, **kwargs)
                tracer.emit(
                    "load",
                    path=_path_text(f),
                    weights_only=kwargs.get("weights_only"),
                    result_id=id(result),
                    result_type=type(result).__name__,
                )
                return result

            return load

        self._patch(torch, "load", torch_load)

        def module_load_state_dict(original):
            def load_state_dict(module, state_dict, *args, **kwargs):
                tracer.emit(
                    "load_state_dict",
                    module_id=id(module),
                    module_class=type(module).__name__,
                    arg_id=id(state_dict),
                    arg_type=type(state_dict).__name__,
                )
                return original(module, state_dict, *args, **kwargs)

            return load_state_dict

        self._patch(nn.Module, "load_state_dict", module_load_state_dict)

        def module_to(original):
            def to(module, *args, **kwargs):
                result = original(module, *args, **kwargs)
                tracer.emit(
                    "to",
                    target="module",
                    id=id(module),
                    args=[str(a) for a in args],
                    device=_module_device(module),
                )
                return result

            return to

        self._patch(nn.Module, "to", module_to)

        def tensor_to(original):
            def to(tensor, *args, **kwargs):
                result = original(tensor, *args, **kwargs)
                if not tracer._depth:
                    tracer.emit(
                        "to",
                        target="tensor",
                        shape=raw_shape(tensor),
                        args=[str(a) for a in args],
                        device=str(getattr(result, "device", "")),
                    )
                return result

            return to

        self._patch(torch.Tensor, "to", tensor_to)

        def device_query(original):
            def query(*args, **kwargs):
                result = original(*args, **kwargs)
                tracer.emit("cuda_query", result=bool(result))
                return result

            return query

        # Asking torch whether there is a GPU, however it is spelled: the device check wants one.
        self._patch(torch.cuda, "is_available", device_query)
        self._patch(torch.cuda, "device_count", device_query)
        if hasattr(torch, "accelerator"):  # torch >= 2.6
            for name in ("is_available", "current_accelerator", "device_count"):
                self._patch(torch.accelerator, name, device_query)

    # -- what a module call means ---------------------------------------------------------
    def _fresh_copy(self, tensor: torch.Tensor) -> torch.Tensor | None:
        """A copy of a tensor made anew each time (a forward's output): nothing to share."""
        if _BASE.numel(tensor) > MAX_TENSOR_VALUES:
            return None
        return self.copy.counted(_copy(tensor))

    def _labels_copy(self, tensor: Any):
        """How a loss argument is copied: predictions (they require grad) without values.
        With gradients off (a test loss) no prediction requires grad: one that does is data
        made to track gradients (`bias = torch.tensor(0.9, requires_grad=True)`), kept whole."""
        predictions = getattr(tensor, "requires_grad", False) and torch.is_grad_enabled()
        return _no_values if predictions else self.copy

    def _record_call(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if self._paused:
            return
        if isinstance(module, nn.modules.loss._Loss):
            inputs = list(args) + list(kwargs.values())
            self._record_loss(type(module).__name__, id(module), inputs, output)
            return
        first = args[0] if args else next(iter(kwargs.values()), None)
        self.emit(
            "forward",
            module_id=id(module),
            module_class=type(module).__name__,
            training=bool(module.training),
            grad_enabled=torch.is_grad_enabled(),
            inference=torch.is_inference_mode_enabled(),
            input=tensor_summary(first, self.copy),
            # A training forward's output values: the grader checks that the forward the loop
            # ran computed the model's line from the parameters its step saw (a forward that
            # behaves only while probed). Other calls keep shape and place only: their values
            # reach the record as the names the cells define.
            output=tensor_summary(
                output, copy=self._fresh_copy if torch.is_grad_enabled() else _no_values
            ),
            output_id=id(output),
            param_devices=_param_devices(module),
        )

    def _record_loss(
        self, loss_class: str, module_id: int | None, inputs: list, output: Any
    ) -> None:
        self.emit(
            "loss",
            loss_class=loss_class,
            module_id=module_id,  # None: a function (`F.l1_loss`), not a loss module
            # The labels' values, on whichever side they are (`loss_fn(y_train, y_pred)`
            # trains the same under L1 or MSE); not the predictions': nothing reads them,
            # and they are new every epoch.
            input=tensor_summary(inputs[0], self._labels_copy(inputs[0])) if inputs else None,
            target=tensor_summary(inputs[1], self._labels_copy(inputs[1]))
            if len(inputs) > 1
            else None,
            value=_scalar(output),
            # Which model's loss it is (a cell may train two): the parameters it reaches, and
            # the tensors compared (a forward's `output_id`, where no graph is kept).
            param_ids=reached_parameters(inputs[:2]),
            arg_ids=[id(value) for value in inputs[:2]],
            grad_enabled=torch.is_grad_enabled(),
            inference=torch.is_inference_mode_enabled(),
            output_requires_grad=bool(getattr(output, "requires_grad", False)),
        )


MAX_GRAPH_NODES = 2000  # a student's deep model: its parameters past this are not listed


def reached_parameters(tensors: list) -> list[int]:
    """The ids of the leaf tensors (a model's parameters) whose gradients backward through
    `tensors` would fill: the model a loss belongs to. Read from autograd's C graph only."""
    found: list[int] = []
    nodes: list = []
    seen: dict[int, Any] = {}  # the nodes kept alive, so that no id is reused
    for tensor in tensors:
        if not is_tensor(tensor) or not raw_requires_grad(tensor):
            continue
        node = _BASE.grad_fn.__get__(tensor)
        if node is None:
            found.append(id(tensor))  # a leaf itself
        else:
            nodes.append(node)
    try:
        while nodes and len(seen) < MAX_GRAPH_NODES:
            node = nodes.pop()
            if id(node) in seen:
                continue
            seen[id(node)] = node
            variable = getattr(node, "variable", None)  # AccumulateGrad: the leaf it fills
            if is_tensor(variable):
                found.append(id(variable))
                continue
            nodes.extend(after for after, _ in node.next_functions if after is not None)
    except Exception:  # a student's own autograd node: what was found so far
        pass
    return sorted(set(found))[:MAX_LIST]


def own_function(function: Any) -> Any:
    """A class's own `forward` as the student wrote it, where the tracer wrapped it."""
    if isinstance(function, types.FunctionType) and function.__module__ == __name__:
        return getattr(function, "__wrapped__", function)
    return function


def group_settings(group: dict) -> dict[str, float | None]:
    """A parameter group's settings that the grader's replay of SGD or Adam needs."""
    betas = group.get("betas") or (None, None)

    def number(value: Any) -> float | None:
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    return {
        "momentum": number(group.get("momentum")),
        "dampening": number(group.get("dampening")),
        "nesterov": number(group.get("nesterov")),
        "weight_decay": number(group.get("weight_decay")),
        "beta1": number(betas[0]) if len(betas) > 1 else None,
        "beta2": number(betas[1]) if len(betas) > 1 else None,
        "eps": number(group.get("eps")),
    }


def _param_devices(module: nn.Module) -> list[str]:
    # A model without submodules (the chapter's) holds its parameters itself: no generator walk.
    params = module._parameters.values() if not module._modules else module.parameters()
    return sorted({device_of(p) for p in params if p is not None})


def _no_values(tensor: torch.Tensor) -> None:
    return None


def _scalar(value: Any) -> float | None:
    if is_tensor(value) and _BASE.numel(value) == 1:
        return float(raw(value).cpu())
    return None


def _path_text(f: Any) -> str | None:
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    return None


def _module_device(module: nn.Module) -> str | None:
    devices = {device_of(p) for p in module.parameters()}
    return devices.pop() if len(devices) == 1 else None


def _describe_saved(obj: Any) -> dict[str, Any]:
    if inspect.ismethod(obj):  # `model.state_dict` without its ()
        return {"obj_kind": "method", "obj_type": obj.__name__, "keys": None}
    if isinstance(obj, nn.Module):
        return {"obj_kind": "module", "obj_type": type(obj).__name__, "keys": None}
    if isinstance(obj, dict):
        tensors = all(isinstance(v, torch.Tensor) for v in obj.values())
        return {
            "obj_kind": "state_dict" if tensors else "dict",
            "obj_type": type(obj).__name__,
            "keys": [str(k) for k in obj.keys()][:50],
        }
    return {"obj_kind": "other", "obj_type": type(obj).__name__, "keys": None}
