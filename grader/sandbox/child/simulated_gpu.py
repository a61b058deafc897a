"""Pretend there is a GPU on a CPU-only grader, so device mistakes fail as they would on CUDA.

Inside the sandbox, `torch.cuda.is_available()` answers True and "cuda" tensors stay on the CPU
with a mark saying where they would be. Every torch operation carries the mark along and raises
PyTorch's own errors where a real GPU would: mixing marked and unmarked tensors ("Expected all
tensors to be on the same device ..."), and `.numpy()` on a marked tensor ("can't convert cuda:0
device type tensor to numpy ..."). Values are computed exactly as on the CPU, so every other
check is unaffected. Used only where the machine has no CUDA.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.overrides import TorchFunctionMode

from grader.notebook.cell_source import is_cell_file

GPU = "cuda:0"
_MARK = "_ptgrade_device"

# Factories that accept device=...: their result is marked instead of placed.
_FACTORIES = (
    "tensor",
    "as_tensor",
    "arange",
    "linspace",
    "randn",
    "rand",
    "randint",
    "randperm",
    "zeros",
    "ones",
    "empty",
    "full",
    "zeros_like",
    "ones_like",
    "randn_like",
    "rand_like",
    "empty_like",
    "full_like",
    "eye",
)


# `torch.set_default_device("cuda")` under the simulation: factories called without a device
# make tensors on the simulated GPU. The real default stays the CPU (the grader's own code in
# the sandbox makes its tensors there).
_DEFAULT_ON_GPU = [False]

# What a tensor on the simulated GPU says about itself (so `device=X.device` follows it).
_GPU_ATTRIBUTES = {"device": torch.device(GPU), "is_cuda": True, "is_cpu": False}


def device_of(tensor: torch.Tensor) -> str:
    """Where the tensor would live: the simulated GPU, or its real device."""
    return getattr(tensor, _MARK, None) or str(tensor.device)


def _on_gpu(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and getattr(value, _MARK, None) == GPU


def _mark(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        try:
            setattr(value, _MARK, GPU)
        except (AttributeError, RuntimeError):  # some internal tensors refuse attributes
            pass
    return value


def _unmark(value: torch.Tensor) -> torch.Tensor:
    if hasattr(value, _MARK):
        try:
            delattr(value, _MARK)
        except AttributeError:
            pass
    return value


def _alias(tensor: torch.Tensor) -> torch.Tensor:
    """A new tensor object over the same data (a real device move returns a new tensor).
    Called inside the mode's handler, where the mode is already switched off."""
    return tensor.view_as(tensor)


def _ordinal(value: Any) -> bool:
    """A bare device number (`.to(0)`, `torch.cuda.current_device()`): on a CUDA machine, that
    GPU; torch on a CPU-only one refuses it ("Cannot access accelerator device ...")."""
    return isinstance(value, int) and not isinstance(value, bool)


def _target_device(args: tuple, kwargs: dict) -> torch.device | None:
    # .to(other_tensor): that tensor's (simulated) device, not the CPU it really is on.
    other = next((a for a in (*args, kwargs.get("other")) if isinstance(a, torch.Tensor)), None)
    if other is not None:
        return torch.device(device_of(other))
    first = args[0] if args else kwargs.get("device")
    if _ordinal(first):
        return torch.device("cuda", first)
    try:
        device, _, _, _ = torch._C._nn._parse_to(*args, **kwargs)
    except Exception:
        return None
    return device


def _same_device_error(devices: set[str]) -> RuntimeError:
    first, second = sorted(devices, reverse=True)[:2]
    return RuntimeError(
        "Expected all tensors to be on the same device, but found at least two devices, "
        f"{first} and {second}!"
    )


class SimulatedGPUMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "__get__" and len(args) == 1:  # an attribute: x.device, p.grad, x.T
            return self._attribute(func, args[0])
        if name == "get_device" and _on_gpu(args[0] if args else None):
            return 0
        if name in ("to", "cuda") and args and isinstance(args[0], torch.Tensor):
            return self._move(func, args, kwargs, name)
        if name == "cpu" and args and isinstance(args[0], torch.Tensor):
            return _unmark(_alias(func(*args, **kwargs)))
        if name in ("numpy", "__array__") and _on_gpu(args[0] if args else None):
            raise TypeError(
                "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy "
                "the tensor to host memory first."
            )
        if name in _FACTORIES and "device" in kwargs and _is_gpu(kwargs["device"]):
            kwargs = dict(kwargs, device="cpu")
            return _mark(func(*args, **kwargs))
        if (
            _DEFAULT_ON_GPU[0]
            and name in _FACTORIES
            and not name.endswith("_like")  # these follow their input, not the default
            and kwargs.get("device") is None
        ):
            return _mark(func(*args, **kwargs))
        if name == "tensor" and kwargs.get("device") is None:
            data = args[0] if args else kwargs.get("data")
            if not isinstance(data, torch.Tensor):
                # `torch.tensor([loss_a, loss_b])` reads the values out of GPU tensors into a
                # new tensor on the default device, the CPU: not a tensor on the GPU.
                return func(*args, **kwargs)
        if name in ("__getitem__", "__setitem__") and len(args) > 1:
            # CUDA takes index tensors from the CPU (`X[torch.randperm(100)]`, `X[mask]`): only
            # the indexed tensor and a value set into it must be on its device.
            tensors = _tensors((args[0], *args[2:]), kwargs)
            if not _on_gpu(args[0]) and any(_on_gpu(t) for t in _tensors(args[1:2], {})):
                raise RuntimeError(
                    "indices should be either on cpu or on the same device as the indexed "
                    "tensor (cpu)"
                )
        else:
            tensors = _tensors(args, kwargs)
        on_gpu = [t for t in tensors if _on_gpu(t)]
        result = func(*args, **kwargs)
        if on_gpu:
            # As on CUDA: a CPU tensor may only join GPU tensors as a 0-dim scalar.
            # copy_ crosses devices on CUDA too (that is how load_state_dict fills a model).
            if name != "copy_" and any(not _on_gpu(t) and t.dim() > 0 for t in tensors):
                raise _same_device_error({GPU, "cpu"})
            if name != "copy_" or _on_gpu(args[0]):
                _mark_all(result)
        return result

    def _attribute(self, func, tensor):
        on_gpu = _on_gpu(tensor)
        attribute = getattr(getattr(func, "__self__", None), "__name__", "")
        if on_gpu and attribute in _GPU_ATTRIBUTES:
            return _GPU_ATTRIBUTES[attribute]
        result = func(tensor)
        if on_gpu:
            _mark_all(result)  # p.grad, x.data, x.T live where x lives
        return result

    def _move(self, func, args, kwargs, name):
        tensor = args[0]
        device = torch.device("cuda") if name == "cuda" else _target_device(args[1:], kwargs)
        if device is None or device.type != "cuda":
            result = func(*args, **kwargs)
            if device is not None and device.type == "cpu":
                result = _unmark(_alias(result) if result is tensor else result)
            elif _on_gpu(tensor):
                _mark(result)  # a dtype-only .to keeps the device
            return result
        rest = [a for a in args[1:] if not _is_gpu(a)]
        kwargs = {k: v for k, v in kwargs.items() if k != "device"}
        if name == "cuda":
            result = tensor
        else:
            result = func(tensor, *rest, **kwargs) if (rest or kwargs) else tensor
        return _mark(_alias(result) if result is tensor else result)


def _tensors(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The tensors among an op's arguments, and inside its list arguments (torch.cat's).
    A plain loop: torch's pytree costs more than most of the ops it would look at."""
    found = []
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(_tensors(value, {}))
    return found


def _mark_all(value: Any) -> None:
    if isinstance(value, torch.Tensor):
        _mark(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _mark_all(item)


def _is_gpu(device: Any) -> bool:
    if _ordinal(device):
        return True
    if isinstance(device, (str, torch.device)):
        try:
            return torch.device(device).type == "cuda"
        except RuntimeError:
            return False
    return False


def _module_move(original, name: str):
    def move(module: nn.Module, *args, **kwargs):
        device = (
            torch.device("cuda")
            if name == "cuda"
            else (torch.device("cpu") if name == "cpu" else _target_device(args, kwargs))
        )
        if device is not None and device.type == "cuda":
            rest = [a for a in args if not _is_gpu(a)]
            kwargs = {k: v for k, v in kwargs.items() if k != "device"}
            if name == "to" and (rest or kwargs):
                original(module, *rest, **kwargs)  # the dtype part of .to(device, dtype)
            for tensor in list(module.parameters()) + list(module.buffers()):
                _mark(tensor)
            return module
        if device is not None and device.type == "cpu":
            # Each parameter is swapped for its CPU copy (`param.data = ...`), which the handler
            # would take for a GPU tensor meeting a CPU one; the data are on the CPU already.
            with torch._C.DisableTorchFunction():
                result = original(module, *args, **kwargs)
            for tensor in list(module.parameters()) + list(module.buffers()):
                _unmark(tensor)
            return result
        return original(module, *args, **kwargs)

    return move


def _default_device_setter(original_set):
    """`torch.set_default_device(device)`: "cuda" switches the simulation's default on (see
    _DEFAULT_ON_GPU) and clears any real default; anything else switches it off."""

    def set_default_device(device):
        _DEFAULT_ON_GPU[0] = _is_gpu(device)
        return original_set(None if _DEFAULT_ON_GPU[0] else device)

    return set_default_device


def _default_device_getter(original_get):
    def get_default_device() -> torch.device:
        return torch.device(GPU) if _DEFAULT_ON_GPU[0] else original_get()

    return get_default_device


def _parameter_keeps_its_device(original_new):
    """`nn.Parameter(torch.randn(1, device=device))`: a Parameter is a new tensor object over
    the same data, so the mark must be carried over by hand."""

    def new(cls, data=None, requires_grad=True):
        parameter = original_new(cls, data, requires_grad)
        return _mark(parameter) if _on_gpu(data) else parameter

    # Python names the function in its errors (`nn.Parameter(x, dtype=...)`): torch's own name.
    new.__name__, new.__qualname__ = "__new__", "Parameter.__new__"
    return staticmethod(new)


def _load_onto_simulated_gpu(original_load):
    """`torch.load(path, map_location=device)`: loaded on the CPU, then moved the way `.to`
    moves (a CPU-only torch refuses to deserialise onto CUDA)."""

    def load(*args, **kwargs):
        in_args = len(args) > 1
        map_location = args[1] if in_args else kwargs.get("map_location")
        if not _is_gpu(map_location):
            return original_load(*args, **kwargs)
        if in_args:
            args = (args[0], "cpu", *args[2:])
        else:
            kwargs = dict(kwargs, map_location="cpu")
        return _onto_gpu(original_load(*args, **kwargs))

    return load


def _onto_gpu(value: Any) -> Any:
    """Tensors and modules, inside dicts (a state_dict, in place: it keeps its _metadata) and
    lists, moved to the simulated GPU."""
    if isinstance(value, (torch.Tensor, nn.Module)):
        return value.to(GPU)
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _onto_gpu(item)
    elif isinstance(value, list):
        value[:] = [_onto_gpu(item) for item in value]
    elif isinstance(value, tuple):
        return tuple(_onto_gpu(item) for item in value)
    return value


def _without_handler(function, takes_closure: bool = False):
    """`function` run with the simulation's handler switched off.

    An optimizer's own bookkeeping (reading every `p.grad`, profiler ranges, `no_grad`, the
    foreach update) is four fifths of the torch calls a training loop makes, and all of it acts
    in place on tensors already where the model is, so marks stay right without the handler.
    A closure passed to `step` is the student's code: with one, the handler stays on."""

    @functools.wraps(function)
    def quiet(owner, *args, **kwargs):
        closure = (args[0] if args else kwargs.get("closure")) if takes_closure else None
        if closure is not None:
            return function(owner, *args, **kwargs)
        with torch._C.DisableTorchFunction():
            return function(owner, *args, **kwargs)

    return quiet


def _optimizer_classes(base: type = Optimizer) -> list[type]:
    found = [base]
    for subclass in base.__subclasses__():
        found.extend(_optimizer_classes(subclass))
    return found


_GRADER = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _answer_the_cells(owner: Any, name: str, answer: Any) -> None:
    """`owner.name(...)` answers `answer` to the notebook's own code only. torch's optimizers
    ask `torch.accelerator` too, and then use the accelerator's streams, which a CPU-only
    torch refuses: they get the real answer."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def answered(*args, **kwargs):
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(_GRADER):
            frame = frame.f_back  # the tracer's wrapper around this one
        if frame is not None and is_cell_file(frame.f_code.co_filename):
            return answer
        return original(*args, **kwargs)

    setattr(owner, name, answered)


def _quiet_optimizers() -> None:
    for cls in _optimizer_classes():
        if "step" in cls.__dict__ and cls is not Optimizer:
            step = cls.__dict__["step"]
            if not getattr(step, "hooked", False):  # torch adds the step hooks (the tracer's)
                step = Optimizer.profile_hook_step(step)
            cls.step = _without_handler(step, takes_closure=True)
            cls.step.hooked = True
    Optimizer.zero_grad = _without_handler(Optimizer.zero_grad)
    nn.Module.zero_grad = _without_handler(nn.Module.zero_grad)


@dataclass(frozen=True)
class _Properties:
    name: str = "simulated GPU (ptgrade, CPU-only grader)"
    major: int = 8
    minor: int = 0
    total_memory: int = 16 << 30
    multi_processor_count: int = 1


_PROPERTIES = _Properties()


class _DeviceContext:
    """`with torch.cuda.device(0):` on the one simulated GPU: nothing to switch."""

    def __init__(self, device: Any) -> None:
        self.idx = 0

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: Any) -> bool:
        return False


class SimulatedGPU:
    """Installs the simulation for the rest of the process (the sandbox child only)."""

    def install(self) -> None:
        torch.cuda.is_available = lambda: True
        torch.cuda.device_count = lambda: 1
        torch.cuda.current_device = lambda: 0
        torch.cuda.get_device_name = lambda device=None: "simulated GPU (ptgrade, CPU-only grader)"
        torch.cuda.synchronize = lambda device=None: None
        # What notebooks print about "the GPU" (Colab cells often do): plausible answers.
        torch.cuda.get_device_properties = lambda device=None: _PROPERTIES
        torch.cuda.get_device_capability = lambda device=None: (_PROPERTIES.major, 0)
        torch.cuda.mem_get_info = lambda device=None: (_PROPERTIES.total_memory,) * 2
        torch.cuda.device = _DeviceContext
        torch.cuda.set_device = lambda device: None
        # A simulated GPU never captures a CUDA graph. torch <= 2.12's Adam (and others) ask
        # before each step once `is_available()` says True; the real query needs CUDA.
        torch.cuda.is_current_stream_capturing = lambda: False
        if hasattr(torch, "accelerator"):  # torch >= 2.6: the device-agnostic spelling
            _answer_the_cells(torch.accelerator, "is_available", True)
            _answer_the_cells(torch.accelerator, "current_accelerator", torch.device("cuda"))
            _answer_the_cells(torch.accelerator, "device_count", 1)
        for name in ("to", "cuda", "cpu"):
            setattr(nn.Module, name, _module_move(getattr(nn.Module, name), name))
        nn.Parameter.__new__ = _parameter_keeps_its_device(nn.Parameter.__new__)
        torch.load = _load_onto_simulated_gpu(torch.load)
        torch.set_default_device = _default_device_setter(torch.set_default_device)
        if hasattr(torch, "get_default_device"):  # torch >= 2.3
            torch.get_default_device = _default_device_getter(torch.get_default_device)
        _quiet_optimizers()
        self.mode = SimulatedGPUMode()
        self.mode.__enter__()
