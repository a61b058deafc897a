"""The loop's steps, corroborated: a chain the grader recomputes from what it holds itself.

The checks of the loop's steps (their order, the update, the test passes, the falling loss) read
the events the student's process reports, and code in that process can write any events. Their
points are given only where those steps are the training of the graded model as the grader
recomputes it: the first step starts from the parameters the grader read before the loop, each
step starts where the one before it left them, each step's gradient is the gradient of the
loss on the data it learned from (data the grader holds), at the parameters its forward saw,
computed by the grader (with the gradients a missing `zero_grad` piles up, and none where a
`zero_grad` came after the backward), each update is the held optimizer's (`optimizer` as the
grader read it: its class, learning rate and settings), each reported loss is the loss those
parameters give, and the last step leaves the parameters the grader reads after the cell.

A trace that does not chain (events written by hand, copied from a run of another model, or a
loop that trains one model while the graded one stays put) keeps back those checks' points, with
one message saying what did not add up. The work is one gradient per recorded backward: linear
in the epochs the record's budgets already bound.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch

from grader.check_api import Mistake
from grader.packs.workflow01.epochs import (
    compares_with,
    loss_labels,
    training_view,
)
from grader.packs.workflow01.model import line_of
from grader.packs.workflow01.outcome import (
    held_optimizer,
    models_before_the_loop,
    training_data,
    untrained,
    wrong_data,
)
from grader.packs.workflow01.reference import (
    REPLAYABLE_LOSSES,
    REPLAYABLE_OPTIMIZERS,
    optimizer_step,
)

HINT = "training.unverified"

# Losses whose gradient jumps where a prediction meets its label: a row whose prediction lands
# on its label within rounding may take either side in the student's float32 and the grader's,
# so a step may differ from the grader's by a few rows' worth of gradient.
SIGN_LOSSES = ("L1Loss", "SmoothL1Loss", "HuberLoss")
ROWS_OF_SLACK = 4


def corroborated(check=None, *, tests: bool = False):
    """A check of the loop's steps whose points need the steps to chain (see the module): run
    as written; where it passes, the chain must hold too (`tests`: and the test losses the loop
    reports must be the model's, for the checks of its test passes)."""
    if check is None:
        return functools.partial(corroborated, tests=tests)

    @functools.wraps(check)
    def judged(*args, **kwargs):
        check(*args, **kwargs)
        record = kwargs["record"]
        broken = chain_break(record, record.assignment, tests=tests)
        if broken is not None:
            raise Mistake(
                f"Your loop's steps do not add up to the training of "
                f"`{record.assignment.model_name}`: {broken} This check counts only steps "
                "that trained the model.",
                HINT,
            )

    return judged


def chain_break(record, assignment, tests: bool = False) -> str | None:
    """What does not add up in the loop's steps (a sentence for the student), or None where the
    steps are the model's training as the grader recomputes it (or there are none to judge:
    the checks say so themselves). `tests`: the test losses it reports too."""

    def compute():
        found: list[str] = []
        return _chain_break(record, assignment, found), (found[0] if found else None)

    steps, test = record.memo(("chain", assignment.id), compute)
    return steps or (test if tests else None)


def _line(values) -> str:
    return f"weight={values[0]:.4f} and bias={values[1]:.4f}"


def _close(a: float, b: float, tolerance: float) -> bool:
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b or (math.isnan(a) and math.isnan(b))
    return abs(a - b) <= tolerance


def _chain_break(record, assignment, tests: list[str]) -> str | None:
    try:
        loop = training_view(record, assignment)
    except Mistake:
        return None  # no loop to judge: the checks say why
    epochs = loop["epochs"]
    if not epochs:
        return None  # no step: every check fails on its own
    name = assignment.model_name
    found = _trained_model(record, assignment, loop)
    if found is None:
        return (
            f"the model your loop calls and steps is not `{name}`, and `{name}` is not the "
            "model the cell leaves."
        )
    trained, end_known = found
    roles = _roles(trained, record)
    if roles is None:
        return None  # not a line of two parameters: the model section says so
    try:
        start_model = untrained(record, assignment, trained)
    except Mistake:  # no model before the loop: the start is not known
        start_model = None
    anchored = start_model is not None and start_model.id == trained.id
    start = _values(start_model, roles) if anchored else None
    end = _values(trained, roles) if end_known else None

    try:
        X, y = training_data(record, assignment)
    except Mistake:
        return None  # no training data before the loop: the split section says so
    whole = (X, y.reshape(X.shape) if y.numel() == X.numel() else y, None)
    held_data = [X, y]
    for key in ("X_test", "y_test"):
        if loop[key] is not None:
            held_data.append(loop[key].detach().double().cpu())
    trusted_pairs = wrong_data(record, assignment, loop) is None
    held = held_optimizer(record, assignment, epochs[0].step)
    reduction = record.raw_value("loss_fn", "loss_optimizer").get("reduction") or "mean"
    if reduction not in ("mean", "sum"):
        reduction = "mean"
    default_loss = _held_loss_class(record)

    batches: dict[tuple[int, int], bool] = {}
    cache: dict[tuple, tuple[float, list[float]]] = {}

    def batch_of(forward, loss):
        """(inputs, labels, the predictions' shape) the grader recomputes a loss on: the loop's
        own where they are data the grader holds, else the whole training data."""
        inputs = (forward or {}).get("input") or {}
        labels = loss_labels(loss) if loss else None
        x = inputs.get("values")
        t = (labels or {}).get("values")
        if x is None or t is None:
            return whole
        # The record shares one copy of an unchanged tensor: each pair is judged once.
        if (id(x), id(t)) not in batches:
            batches[id(x), id(t)] = trusted_pairs or (
                _is_held(x, held_data) and _is_held(t, held_data)
            )
        if not batches[id(x), id(t)]:
            return whole
        return x, t, _predictions_shape(loss, labels)

    def loss_class_of(loss) -> str | None:
        """The loss the grader recomputes: the one the loop computed, else (a class it cannot
        rebuild) `loss_fn` as the grader read it."""
        found = loss["loss_class"] if loss else default_loss
        if found in REPLAYABLE_LOSSES:
            return found
        return default_loss if default_loss in REPLAYABLE_LOSSES else None

    optimizer = None
    if held["class"] in REPLAYABLE_OPTIMIZERS and held["lr"] is not None:
        optimizer = {"class": held["class"], "lr": held["lr"]}
        optimizer.update({k: v for k, v in held["settings"].items() if v is not None})
    lr = abs(float(held["lr"])) if held["lr"] is not None else 0.0
    scale = (float(X.abs().max()) if X.numel() else 1.0, 1.0)
    rows = max(1, X.shape[0] if X.dim() else 1)
    # Parameters of a lower precision (float16) round every value the loop computes.
    kept = epochs[0].step.get("params_before")
    eps = torch.finfo(kept.dtype).eps if kept is not None and kept.dtype.is_floating_point else 0
    loose = max(1e-4, 16 * eps)
    atol, rtol = max(1e-6, 2 * eps), max(1e-5, 2 * eps)

    # Which of (weight, bias) a backward reaches: those that require gradients, of the model
    # the loop calls (an optimizer left with the old model's parameters gets none).
    learns = [False, False]
    for p in trained.parameters:
        if p["id"] in roles:
            learns[roles[p["id"]]] = bool(p.get("requires_grad")) and trained.id == loop["model_id"]
    current = list(start) if start is not None else None
    at_forward = None  # the parameters the last training forward saw
    forward = loss = None  # the last training forward of the model, and its loss
    test_forward = None
    gradient: list[float] | None = None  # what backward has piled up since the last zero_grad
    unknown = not _fresh(record, loop)  # gradients left by an earlier cell: not known
    states = [{}, {}]
    number = 0
    model_id = loop["model_id"]
    for event in loop["events"]:
        kind = event["kind"]
        if kind == "forward" and event["module_id"] == model_id:
            if event["grad_enabled"]:
                forward, loss, at_forward = event, None, current
            else:
                test_forward = event
        elif kind == "loss" and event["grad_enabled"] and forward is not None and loss is None:
            loss = event
            found = _loss_value(
                at_forward, batch_of(forward, loss), loss_class_of(loss), reduction, cache
            )
            if _disagrees(event, found, loose):
                return (
                    f"the training loss in epoch {number + 1} was {_number(event['value'])}, "
                    f"but the parameters your model had then ({_line(at_forward)}) give "
                    f"{found:.4f} on the data it learned from."
                )
        elif kind == "loss" and not event["grad_enabled"] and current is not None:
            if loop["y_test"] is None or not compares_with(event, loop["y_test"]):
                continue
            inputs = ((test_forward or {}).get("input") or {}).get("values")
            if inputs is None or loop["X_test"] is None:
                continue
            side = _test_labels(event, loop["y_test"])
            if side is None:
                continue
            labels = event[side]["values"]
            other = event.get("input" if side == "target" else "target") or {}
            found = _loss_value(
                current,
                (
                    inputs.detach().double().cpu(),
                    labels.detach().double().cpu(),
                    other.get("shape"),
                ),
                loss_class_of(event),
                reduction,
                cache,
            )
            if _disagrees(event, found, loose) and not tests:
                # Only the checks of the test passes depend on it (a `forward` that answers
                # differently on `X_test`): the steps go on being judged.
                tests.append(
                    f"a test loss after step {number} was {_number(event['value'])}, but the "
                    f"parameters your model had then ({_line(current)}) give {found:.4f} on "
                    "the test data."
                )
        elif kind == "zero_grad":
            gradient, unknown = None, False
        elif kind == "backward":
            if at_forward is None and current is None:
                unknown = True  # the first step's start is not known: nor its gradient
                continue
            if loss_class_of(loss) is None:
                # Without a loss it can rebuild, the grader holds nothing the steps must
                # follow: they prove no training.
                shown = (loss or {}).get("loss_class") or default_loss or "its loss"
                return (
                    f"the loss it computes (`{shown}`) is not L1, MSE, SmoothL1 or Huber, so "
                    "its steps cannot be checked against it: train with `nn.L1Loss()`, as "
                    "the exercise asks."
                )
            params = at_forward if at_forward is not None else current
            computed = _gradient(
                params, batch_of(forward, loss), loss_class_of(loss), reduction, cache
            )
            if computed is not None:
                computed = [g if learns[i] else 0.0 for i, g in enumerate(computed)]
            if computed is None:
                unknown = True
            elif gradient is None:
                gradient = computed
            else:
                gradient = [a + b for a, b in zip(gradient, computed)]
        elif kind == "step":
            number += 1
            before = _row(event, "params_before", roles)
            after = _row(event, "params_after", roles)
            if before is None or after is None:
                return f"step {number} of your loop kept no values of the model's parameters."
            if not any(v is not None for v in before):
                if not held["param_ids"] & set(roles):
                    # `optimizer`, as the cells before left it, holds none of the model's
                    # parameters (the loss section says so): its steps leave the model
                    # where it was, which the end of the chain checks.
                    at_forward = None
                    forward = loss = None
                    continue
                return (
                    f"step {number} of your loop does not step `{name}`'s parameters: "
                    "`optimizer` holds other ones."
                )
            before = [
                b if b is not None else (current or [math.nan] * 2)[i] for i, b in enumerate(before)
            ]
            after = [a if a is not None else before[i] for i, a in enumerate(after)]
            if current is not None:
                tolerance = [atol * max(1.0, abs(v)) for v in current]
                if not all(_close(b, c, t) for b, c, t in zip(before, current, tolerance)):
                    where = (
                        f"where step {number - 1} left {_line(current)}"
                        if number > 1
                        else f"where `{name}` stood before the loop ({_line(current)})"
                    )
                    return f"step {number} starts from {_line(before)}, {where}."
            recorded = _row(event, "grads", roles) or [None, None]
            present = _present(event, roles)
            theirs = [g if p else None for g, p in zip(recorded, present)]
            if not unknown:
                mine = gradient or [None, None]
                slack = _slack(loss_class_of(loss), scale, rows, reduction)
                for i in (0, 1):
                    m, t = mine[i] or 0.0, theirs[i] or 0.0
                    if not _close(t, m, slack[i] + loose * abs(m)):
                        return _gradient_break(number, mine, theirs)
            # From here the update is judged on the gradient the step used, which agrees
            # with the grader's (within a few rows, for L1).
            unknown = False
            if optimizer is not None:
                expected = _update(before, theirs, optimizer, states)
                tolerance = [atol + rtol * abs(e) for e in expected]
                if not all(_close(a, e, t) for a, e, t in zip(after, expected, tolerance)):
                    return (
                        f"step {number} moved the parameters from {_line(before)} to "
                        f"{_line(after)}, where `optimizer` (`{held['class']}`, lr={lr:g}) "
                        f"with that gradient moves them to {_line(expected)}."
                    )
            current = after
            at_forward = None
            forward = loss = None
    if end is not None and current is not None and not loop["cut"]:
        tolerance = [atol * max(1.0, abs(v)) for v in current]
        if not all(_close(a, b, t) for a, b, t in zip(current, end, tolerance)):
            return (
                f"after the last step the parameters were {_line(current)}, but the cell leaves "
                f"`{name}` with {_line(end)}."
            )
    return None


def _test_labels(loss: dict, y_test: torch.Tensor) -> str | None:
    """The side of a test loss that holds `y_test`'s values, as the loop passed it."""
    for side in ("target", "input"):
        values = (loss.get(side) or {}).get("values")
        if values is not None and compares_with({side: loss.get(side)}, y_test):
            return side
    return None


def _predictions_shape(loss: dict, labels: dict | None) -> list | None:
    """The shape of the predictions' side of a loss, as the loop passed them."""
    predictions = loss["input"] if labels is loss["target"] else loss["target"]
    return (predictions or {}).get("shape")


def _disagrees(loss: dict, found: float | None, loose: float) -> bool:
    """Whether a loss the loop reports is not the one the grader computes (None: not known)."""
    if found is None:
        return False
    reported = loss["value"] if loss["value"] is not None else math.nan
    return not _close(reported, found, 1e-6 + loose * abs(found))


def _number(value) -> str:
    return "missing" if value is None else f"{value:.4f}"


def _gradient_break(number, mine, theirs) -> str:
    def shown(values):
        return [f"{v:.4f}" if v is not None else "none" for v in values]

    (tw, tb), (mw, mb) = shown(theirs), shown(mine)
    return (
        f"step {number} used the gradients {tw} (weight) and {tb} (bias), but your loss on "
        f"the data it learned from gives {mw} and {mb} at the parameters its forward pass "
        "saw (with what earlier backward passes left, where no `zero_grad()` came between)."
    )


def _trained_model(record, assignment, loop):
    """(model, whether the cell leaves it) for the model the loop steps, as the grader holds
    it: the model the cell leaves; or one the cells before it left, where the cell makes the
    model again after its loop (or before it, after `optimizer` took the old one's
    parameters: its steps step that one). None where the grader holds no such model."""
    stepped = {i for e in loop["events"] if e["kind"] == "step" for i in e["param_ids"]}
    model = loop["model"]
    if not loop["replaced"] and stepped & {p["id"] for p in model.parameters}:
        return model, True
    for before in models_before_the_loop(record, assignment):
        if before.id == loop["model_id"] or stepped & {p["id"] for p in before.parameters}:
            return before, before.id == model.id
    return None


def _roles(model, record) -> dict[int, int] | None:
    """Parameter id -> 0 (the slope) or 1 (the bias), for a model of two one-value parameters
    whose line is their own (else None: the model section says what it computes)."""
    params = [p for p in model.parameters if p.get("values") is not None]
    if len(params) != 2 or any(p["values"].numel() != 1 for p in params):
        return None
    line = line_of(model, record)
    if line is None:
        return None
    values = [float(p["values"].reshape(-1)[0]) for p in params]
    if values == list(line):
        return {params[0]["id"]: 0, params[1]["id"]: 1}
    if values[::-1] == list(line):
        return {params[0]["id"]: 1, params[1]["id"]: 0}
    return None


def _values(model, roles) -> list[float] | None:
    found = [math.nan, math.nan]
    for p in model.parameters:
        if p["id"] in roles and p.get("values") is not None and p["values"].numel() == 1:
            found[roles[p["id"]]] = float(p["values"].reshape(-1)[0])
    return None if any(math.isnan(v) for v in found) else found


def _row(step: dict, key: str, roles) -> list[float | None] | None:
    """(weight, bias) in a step's flat row (None for one the optimizer does not hold); None
    where the row kept no values."""
    flat, shapes, ids = step.get(key), step.get("param_shapes") or [], step["param_ids"]
    sizes = [math.prod(shape) for shape in shapes]
    if flat is None or len(sizes) != len(ids) or sum(sizes) != flat.numel():
        return None
    found: list[float | None] = [None, None]
    offset = 0
    values = flat.detach().double().reshape(-1).tolist()
    for pid, size in zip(ids, sizes):
        if pid in roles and size == 1 and found[roles[pid]] is None:
            found[roles[pid]] = values[offset]
        offset += size
    return found


def _present(step: dict, roles) -> list[bool]:
    present = [False, False]
    for pid, there in zip(step["param_ids"], step.get("grads_present") or []):
        if pid in roles:
            present[roles[pid]] = bool(there)
    return present


def _is_held(values: torch.Tensor, held: list[torch.Tensor]) -> bool:
    """Whether `values` are those of a tensor the grader holds (in any shape)."""
    for tensor in held:
        if tensor.numel() == values.numel() and torch.allclose(
            tensor.reshape(-1), values.detach().double().reshape(-1), atol=1e-7, rtol=0
        ):
            return True
    return False


def _held_loss_class(record) -> str | None:
    data = record.raw_value("loss_fn", "loss_optimizer")
    if data.get("kind") == "module":
        return data.get("class")
    # `loss_fn = F.l1_loss`: the function's name, as the loss module it computes.
    names = {f.__name__: name for name, f in _LOSSES.items()}
    return names.get(data.get("function"))


def _fresh(record, loop) -> bool:
    """No backward into the loop's parameters before the training cell."""
    cell = record.stub_cell("training_loop")["index"]
    params = {p["id"] for p in loop["model"].parameters} | {
        i for e in loop["events"] if e["kind"] == "step" for i in e["param_ids"]
    }
    return not any(
        e.get("cell") is not None
        and e["cell"] < cell
        and (e.get("param_ids") is None or params & set(e["param_ids"]))
        for e in record.events("backward")
    )


_LOSSES = {
    "L1Loss": torch.nn.functional.l1_loss,
    "MSELoss": torch.nn.functional.mse_loss,
    "SmoothL1Loss": torch.nn.functional.smooth_l1_loss,
    "HuberLoss": torch.nn.functional.huber_loss,
}


def _computed(params, batch, loss_class, reduction, cache: dict) -> tuple[float, list[float]]:
    """The loss and its gradient (weight, bias) at `params` on `batch`, worked out once (a
    loss and the backward after it ask for the same)."""
    x, t, shape = batch
    key = (tuple(params), id(x), id(t), tuple(shape or ()), loss_class, reduction)
    if key not in cache:
        w = torch.tensor(params[0], dtype=torch.float32, requires_grad=True)
        b = torch.tensor(params[1], dtype=torch.float32, requires_grad=True)
        predictions = w * x.detach().cpu().float() + b
        if shape is not None and math.prod(shape) == predictions.numel():
            # The predictions as the loop passed them (squeezed, say): broadcast as it did.
            predictions = predictions.reshape(shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's warning about broadcast shapes
            loss = _LOSSES[loss_class](predictions, t.detach().cpu().float(), reduction=reduction)
        w_grad, b_grad = torch.autograd.grad(loss, (w, b))
        cache[key] = (float(loss.detach()), [float(w_grad), float(b_grad)])
    return cache[key]


def _loss_value(params, batch, loss_class, reduction, cache) -> float | None:
    if params is None or loss_class is None:
        return None
    return _computed(params, batch, loss_class, reduction, cache)[0]


def _gradient(params, batch, loss_class, reduction, cache) -> list[float] | None:
    if params is None or loss_class is None:
        return None
    return _computed(params, batch, loss_class, reduction, cache)[1]


def _slack(loss_class, scale, rows, reduction) -> tuple[float, float]:
    """How far a gradient may sit from the grader's: a few rows on the other side of their
    label, for a loss whose gradient jumps there; float rounding otherwise."""
    if loss_class not in SIGN_LOSSES:
        return 1e-5, 1e-5
    share = 2 * ROWS_OF_SLACK / (rows if reduction == "mean" else 1)
    return 1e-5 + share * scale[0], 1e-5 + share * scale[1]


def _update(before, gradient, optimizer, states) -> list[float]:
    step = optimizer_step(optimizer)
    after = []
    for value, grad, state in zip(before, gradient, states):
        p = torch.tensor([value], dtype=torch.float32)
        if grad is not None:
            with torch.no_grad():
                step(p, torch.tensor([grad], dtype=torch.float32), state)
        after.append(float(p))
    return after
