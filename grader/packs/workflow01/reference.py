"""Reference values computed by the grader itself, never taken from the student's process."""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache

import torch
from torch import nn

# End-of-training two-state oscillation (see reference_models/*.json): how far a correct
# run's final parameters may sit from the replayed reference.
TOLERANCE = {"weight": 0.004, "bias": 0.011}


# Losses the replay can rebuild from their class name alone (default arguments).
REPLAYABLE_LOSSES = ("L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss")


@lru_cache(maxsize=1)
def seeded_start() -> list[tuple[float, float]]:
    """(weight, bias) a model starts with after torch.manual_seed(42): randn-based or nn.Linear."""
    generator_state = torch.get_rng_state()
    try:
        torch.manual_seed(42)
        randn = (float(torch.randn(1)), float(torch.randn(1)))
        torch.manual_seed(42)
        linear = nn.Linear(1, 1)
        linear_start = (float(linear.weight.detach()), float(linear.bias.detach()))
    finally:
        torch.set_rng_state(generator_state)
    return [randn, linear_start]


_REPLAYS: OrderedDict[tuple, list[tuple[float, float]]] = OrderedDict()
MAX_REPLAYS = 64


def replay_training(
    weight: float,
    bias: float,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    steps: int,
    lr: float,
    trainable: tuple[bool, bool] = (True, True),
    loss_class: str = "L1Loss",
) -> list[tuple[float, float]]:
    """The chapter's loop (L1 loss, SGD) from the given start; the parameters after each step.

    Remembered by its inputs: most of a course starts from the same seed with the same data and
    learning rate, and the replay costs as much as the student's own training."""
    x = X_train.detach().float().cpu().contiguous()
    y = y_train.detach().float().cpu().contiguous()
    if y.shape != x.shape and y.numel() == x.numel():
        # Labels the student squeezed along with the predictions (both (80,)) pair up with
        # them: the correct training pairs each prediction with its label, never broadcasts.
        y = y.reshape(x.shape)
    key = (weight, bias, tuple(x.shape), x.numpy().tobytes(), tuple(y.shape), y.numpy().tobytes())
    key += (steps, lr, tuple(trainable), loss_class)
    if key in _REPLAYS:
        _REPLAYS.move_to_end(key)
        return list(_REPLAYS[key])
    history = _replay(weight, bias, x, y, steps, lr, trainable, loss_class)
    _REPLAYS[key] = history
    if len(_REPLAYS) > MAX_REPLAYS:
        _REPLAYS.popitem(last=False)
    return list(history)


def sgd_step(params: list[torch.Tensor], lr: float) -> None:
    """One step of `torch.optim.SGD(params, lr)` without momentum, then its `zero_grad()`:
    `p.add_(p.grad, alpha=-lr)` is the very operation SGD runs on CPU tensors, so the values
    are the same to the bit (tests/test_reference.py). The grader's own training runs use this
    rather than torch.optim, whose first step imports torch._dynamo (0.9 s) in every grading
    process; the student's code runs on the real torch.optim, in the sandbox."""
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)
            p.grad = None


def _replay(weight, bias, x, y, steps, lr, trainable, loss_class) -> list[tuple[float, float]]:
    w = torch.tensor([weight], dtype=torch.float32, requires_grad=True)
    b = torch.tensor([bias], dtype=torch.float32, requires_grad=True)
    stepped = [p for p, train in zip((w, b), trainable) if train]
    loss_fn = getattr(nn, loss_class)()
    history = []
    for _ in range(steps):
        loss = loss_fn(w * x + b, y)
        loss.backward()
        sgd_step(stepped, lr)
        w.grad = b.grad = None  # a frozen parameter's gradient is never used
        history.append((float(w.detach()), float(b.detach())))
    return history


# -- the grader's replay of a student's own training setup (grader/packs/workflow01/outcome.py) --------------------
REPLAYABLE_OPTIMIZERS = ("SGD", "Adam", "AdamW")


def replay_setup(
    start: tuple[float, float],
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    optimizer: dict,
    loss_class: str = "L1Loss",
    reduction: str = "mean",
    trainable: tuple[bool, bool] = (True, True),
) -> tuple[float, float]:
    """(weight, bias) after one step on each of `batches` (inputs and labels), from `start`, with
    the student's optimizer (`{"class", "lr", ...settings}`: SGD with momentum, dampening,
    nesterov and weight decay; Adam; AdamW) and loss. The operations are torch.optim's, in the
    same order, in float32; remembered by its inputs (a course's submissions mostly share them).
    """
    key = (tuple(start), loss_class, reduction, tuple(trainable), tuple(sorted(optimizer.items())))
    # The batches by content, each distinct one once (a full-batch loop repeats one 300 times).
    distinct: dict[tuple[int, int], int] = {}
    contents = []
    for x, y in batches:
        if (id(x), id(y)) not in distinct:
            distinct[id(x), id(y)] = len(contents)
            contents.append((tuple(x.shape), x.numpy().tobytes(), y.numpy().tobytes()))
    key += (tuple(contents), tuple(distinct[id(x), id(y)] for x, y in batches))
    if key in _SETUPS:
        _SETUPS.move_to_end(key)
        return _SETUPS[key]
    final = _replay_setup(start, batches, optimizer, loss_class, reduction, trainable)
    _SETUPS[key] = final
    if len(_SETUPS) > MAX_REPLAYS:
        _SETUPS.popitem(last=False)
    return final


_SETUPS: OrderedDict[tuple, tuple[float, float]] = OrderedDict()


def _replay_setup(start, batches, optimizer, loss_class, reduction, trainable):
    w = torch.tensor([start[0]], dtype=torch.float32, requires_grad=True)
    b = torch.tensor([start[1]], dtype=torch.float32, requires_grad=True)
    params = [p for p, train in zip((w, b), trainable) if train]
    loss_fn = getattr(nn, loss_class)(reduction=reduction)
    step = optimizer_step(optimizer)
    state: dict[int, dict] = {id(p): {} for p in params}
    for x, y in batches:
        loss = loss_fn(w * x + b, y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    step(p, p.grad, state[id(p)])
        w.grad = b.grad = None
    return float(w.detach()), float(b.detach())


def optimizer_step(optimizer: dict):
    lr = float(optimizer["lr"])
    weight_decay = float(optimizer.get("weight_decay") or 0.0)
    if optimizer["class"] == "SGD":
        momentum = float(optimizer.get("momentum") or 0.0)
        dampening = float(optimizer.get("dampening") or 0.0)
        nesterov = bool(optimizer.get("nesterov"))

        def sgd(p, grad, state):
            if weight_decay:
                grad = grad.add(p, alpha=weight_decay)
            if momentum:
                buffer = state.get("momentum")
                if buffer is None:
                    buffer = state["momentum"] = grad.clone()
                else:
                    buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
                grad = grad.add(buffer, alpha=momentum) if nesterov else buffer
            p.add_(grad, alpha=-lr)

        return sgd
    beta1 = float(optimizer.get("beta1") or 0.9)
    beta2 = float(optimizer.get("beta2") or 0.999)
    eps = float(optimizer.get("eps") or 1e-8)
    decoupled = optimizer["class"] == "AdamW"

    def adam(p, grad, state):
        if not state:
            state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
        state["step"] += 1
        if weight_decay and decoupled:
            p.mul_(1 - lr * weight_decay)
        elif weight_decay:
            grad = grad.add(p, alpha=weight_decay)
        state["m"].lerp_(grad, 1 - beta1)
        state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        correction1 = 1 - beta1 ** state["step"]
        correction2 = 1 - beta2 ** state["step"]
        denominator = (state["v"].sqrt() / correction2**0.5).add_(eps)
        p.addcdiv_(state["m"], denominator, value=-lr / correction1)

    return adam
