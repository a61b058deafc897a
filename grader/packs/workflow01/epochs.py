"""Read the training loop out of the trace: one window of events per optimizer step."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import torch

from grader.check_api import same_values


@dataclass
class Epoch:
    events: list[dict] = field(default_factory=list)  # up to and including its step

    @property
    def step(self) -> dict | None:
        return self.events[-1] if self.events and self.events[-1]["kind"] == "step" else None


def training_view(record, assignment) -> dict:
    """The training cell's epochs, the trained model, and the test data as the loop saw it
    (worked out once per record; the checks read it, none changes it)."""
    return record.memo(("training_view", assignment.id), lambda: _training_view(record, assignment))


def _training_view(record, assignment) -> dict:
    cell = record.stub_cell("training_loop")["index"]
    model = record.module(assignment.model_name, "training_loop")
    everything = record.events(cell=cell)
    trained = Counter(
        e["module_id"] for e in everything if e["kind"] == "forward" and e["grad_enabled"]
    )
    # A cell that makes the model again after its loop: the loop is judged on the model it
    # trained, and only the final parameters (not that model's) fail.
    replaced = bool(trained) and model.id not in trained
    model_id = trained.most_common(1)[0][0] if replaced else model.id
    events = own_events(everything, {p["id"] for p in model.parameters}, model_id)
    epochs, tail = split_epochs(events)
    return {
        "epochs": epochs,
        "cut": record.trace_cut(cell),  # the loop ran on past what the trace kept
        "tail": tail,
        "events": events,
        "model": model,  # the model as the cell left it
        "model_id": model_id,  # the one trained
        "replaced": replaced,
        "X_test": record.tensor("X_test", "training_loop").values,
        "y_test": record.tensor("y_test", "training_loop").values,
        # A split whose test set is its training set: training on it is not the loop's fault.
        "test_is_train": _same_data(record, "X_test", "X_train"),
    }


def own_events(events: list[dict], params: set[int], model_id: int) -> list[dict]:
    """The events of the graded model's training, where the cell trains other models too (a
    second model, its own optimizer): the steps of the optimizers that hold the model's
    parameters, and no zero_grad, loss or backward of another model's. Where no optimizer
    steps the model (it holds another model's parameters), every event is the loop's."""
    steps = [e for e in events if e["kind"] == "step"]
    ours = {e["optimizer_id"] for e in steps if params & set(e["param_ids"])}
    if not ours:
        return events
    theirs = {e["optimizer_id"] for e in steps} - ours
    params = params | {i for e in steps if e["optimizer_id"] in ours for i in e["param_ids"]}
    others = {e["module_id"] for e in events if e["kind"] == "forward"} - {model_id}
    stepped = {i for e in steps for i in e["param_ids"]}  # every optimizer's parameters
    outputs: dict[int, bool] = {}  # a forward's output id -> whether the model made it
    kept = []
    for event in events:
        kind = event["kind"]
        if kind == "forward":
            outputs[event["output_id"]] = event["module_id"] == model_id
        elif kind == "step" and event["optimizer_id"] in theirs:
            continue
        elif kind == "zero_grad" and event["id"] in (
            theirs if event["owner"] == "optimizer" else others
        ):
            continue
        elif kind in ("loss", "backward") and not _ours(event, params, stepped, outputs):
            continue
        kept.append(event)
    return kept


def _ours(event: dict, params: set[int], stepped: set[int], outputs: dict[int, bool]) -> bool:
    """Whether a loss or backward belongs to the graded model: its graph reaches the model's
    parameters, or (no graph of any optimizer's parameters: a test loss) it compares no other
    model's output. A graph that reaches only tensors no optimizer steps (data made with
    `requires_grad=True`, its labels' graph) names no model."""
    reached = set(event.get("param_ids") or ()) & stepped
    if reached:
        return bool(params & reached)
    made = [outputs.get(i) for i in event.get("arg_ids") or ()]
    return not (False in made and True not in made)


def _same_data(record, a: str, b: str) -> bool:
    first = record.raw_value(a, "training_loop").get("values")
    second = record.raw_value(b, "training_loop").get("values")
    return first is not None and second is not None and same_values(first, second, atol=0)


def loss_labels(loss: dict | None) -> dict | None:
    """The labels side of a loss event: its target, or its input where the student swapped
    them (`loss_fn(y_train, y_pred)`, which L1 and MSE train on exactly the same)."""
    if loss is None:
        return None
    target, given = loss.get("target"), loss.get("input")
    # With gradients off no prediction requires grad: labels that do are data made to track
    # gradients, not predictions.
    swapped = loss.get("grad_enabled", True) and target and target.get("requires_grad")
    if swapped and given and not given.get("requires_grad"):
        return given
    return target


def compares_with(loss: dict, values: torch.Tensor | None) -> bool:
    """Whether either side of a loss is `values`, in any shape: a test loss's predictions and
    labels both carry no gradient, so nothing tells which side is which (`loss_fn(y_test,
    test_pred)` is the same L1 or MSE loss as `loss_fn(test_pred, y_test)`), and both may be
    squeezed (`y_test.squeeze()` holds y_test's values)."""
    if values is None:
        return False
    for side in ("input", "target"):
        found = (loss.get(side) or {}).get("values")
        if found is not None and found.numel() == values.numel():
            if same_input({"values": found.reshape(values.shape)}, values):
                return True
    return False


def has_predictions(loss: dict) -> bool:
    """Whether one side of the loss needs gradients (predictions computed from parameters)."""
    return any((loss.get(side) or {}).get("requires_grad") for side in ("input", "target"))


def plain_sgd(step: dict) -> bool:
    """SGD whose step is `param - lr * grad` (what the replay and the update check assume)."""
    plain = not step.get("momentum") and not step.get("weight_decay")
    return step["optimizer_class"] == "SGD" and plain


def same_input(summary: dict | None, values: torch.Tensor | None) -> bool:
    if not summary or summary.get("values") is None or values is None:
        return False
    found = summary["values"]
    return found.shape == values.shape and bool(
        torch.allclose(found.double(), values.double(), atol=1e-7, rtol=0)
    )


def split_epochs(events: list[dict]) -> tuple[list[Epoch], list[dict]]:
    """Windows that each end with a step, and the events after the last step."""
    epochs, current = [], Epoch()
    for event in events:
        current.events.append(event)
        if event["kind"] == "step":
            epochs.append(current)
            current = Epoch()
    return epochs, current.events


def training_forward(events: list[dict], model_id: int) -> int | None:
    """Where in an epoch's window the training forward is: the last call of the model with
    gradients on before the backward (a test pass run with gradients on, without
    inference_mode, ends the previous window with a forward too), else the first."""
    forwards = [
        i
        for i, e in enumerate(events)
        if e["kind"] == "forward" and e["module_id"] == model_id and e["grad_enabled"]
    ]
    if not forwards:
        return None
    backward_at = next((i for i, e in enumerate(events) if e["kind"] == "backward"), len(events))
    before = [i for i in forwards if i < backward_at]
    return before[-1] if before else forwards[0]


@dataclass
class LoopFindings:
    problems: Counter  # hint id -> number of epochs showing it
    examples: dict[str, int]  # hint id -> first epoch (0-based) showing it
    shapes: tuple[list, list] | None = None  # the first loss's (predictions, labels) that differ


def loss_shapes(loss: dict) -> tuple[list, list] | None:
    """The shapes of a loss's predictions and labels when they differ (L1Loss and MSELoss
    broadcast them, with only a warning), else None."""
    labels = loss_labels(loss)
    predictions = loss.get("input") if labels is loss.get("target") else loss.get("target")
    if not labels or not predictions:
        return None
    if predictions.get("shape") == labels.get("shape"):
        return None
    return predictions.get("shape"), labels.get("shape")


def find_problems(
    epochs: list[Epoch],
    tail: list[dict],
    model_id: int,
    X_test: torch.Tensor | None,
    y_test: torch.Tensor | None,
    fresh_gradients: bool = False,
) -> LoopFindings:
    """Check the five steps and their order in every epoch of the student's loop.

    `fresh_gradients`: no backward ran before the loop, so the first epoch needs no
    `zero_grad()` (a loop that zeroes at the end of each epoch is right)."""
    problems: Counter = Counter()
    examples: dict[str, int] = {}
    first_shapes = None

    def found(hint: str, number: int) -> None:
        problems[hint] += 1
        examples.setdefault(hint, number)

    any_backward = any(e["kind"] == "backward" for ep in epochs for e in ep.events) or any(
        e["kind"] == "backward" for e in tail
    )
    for number, epoch in enumerate(epochs):
        events = epoch.events
        position = {}
        for i, event in enumerate(events):
            if event["kind"] in ("backward", "zero_grad"):
                position.setdefault(event["kind"], i)
        at = training_forward(events, model_id)
        if at is not None:
            position["forward"] = at
            position["loss_event"] = next(
                (
                    e
                    for e in events[position["forward"] + 1 :]
                    if e["kind"] == "loss" and e["grad_enabled"]
                ),
                None,
            )
        if "forward" not in position:
            # Predictions that need gradients without a call of the model (`model(x)` or
            # `model.forward(x)`, both traced): the formula written out by hand.
            by_hand = any(
                e["kind"] == "loss" and e["grad_enabled"] and has_predictions(e) for e in events
            )
            found("training.forward_not_called" if by_hand else "training.no_forward", number)
            continue
        forward = events[position["forward"]]
        loss = position.get("loss_event")
        on_test = same_input(forward["input"], X_test) or (
            loss is not None and same_input(loss_labels(loss), y_test)
        )
        if on_test:
            found("training.test_data", number)
        if not forward["training"]:
            found("training.not_train_mode", number)
        if loss is None:
            found("training.no_loss", number)
        elif (shapes := loss_shapes(loss)) is not None:
            found("training.loss_shapes", number)
            first_shapes = first_shapes or shapes
        backward = position.get("backward")
        if not any_backward:
            found("training.no_backward", number)
        elif backward is None or backward < position["forward"]:
            # The backward this step needed came after it (or before this epoch's forward).
            found("training.step_before_backward", number)
        if "zero_grad" not in position:
            if not (number == 0 and fresh_gradients):
                found("training.no_zero_grad", number)
        elif backward is not None and position["forward"] < backward < position["zero_grad"]:
            found("training.zero_grad_after_backward", number)
    return LoopFindings(problems, examples, first_shapes)


def parameter_values(step: dict, key: str = "params_before") -> list[torch.Tensor] | None:
    """A step's `params_before`, `params_after` or `grads` one tensor per parameter, shaped like
    it (the trace keeps each as one flat row); None where the trace kept no values."""
    flat, shapes = step.get(key), step.get("param_shapes") or []
    sizes = [math.prod(shape) for shape in shapes]
    if flat is None or sum(sizes) != flat.numel():
        return None
    return [part.reshape(shape) for part, shape in zip(flat.split(sizes), shapes)]


def sgd_mismatches(epochs: list[Epoch]) -> int:
    """Steps whose update is not `param - lr * grad` for the recorded gradient (a parameter
    without one counts as a zero gradient)."""
    by_size: dict[int, list] = {}  # row length -> [(epoch number, before, grad, after, lr)]
    wrong: set[int] = set()
    for number, epoch in enumerate(epochs):
        step = epoch.step
        if step is None or not step["lr"] or step["lr"][0] is None:
            continue
        before, grad, after = step["params_before"], step["grads"], step["params_after"]
        if before is None or after is None or grad is None:
            continue  # values not kept (a large model, or the trace's budget spent)
        if not before.shape == grad.shape == after.shape:
            wrong.add(number)  # the optimizer's parameters changed during its step
            continue
        by_size.setdefault(before.numel(), []).append((number, before, grad, after, step["lr"][0]))
    for entries in by_size.values():  # one comparison over all the steps, not one per step
        # float16 parameters round each step to about 3 digits: judged to their own precision
        # (the model check names the dtype; the update itself is right).
        dtype = entries[0][1].dtype
        eps = torch.finfo(dtype).eps if dtype.is_floating_point else 0.0
        before, grad, after = (torch.stack([e[i] for e in entries]).double() for i in (1, 2, 3))
        lr = torch.tensor([e[4] for e in entries], dtype=torch.float64).unsqueeze(1)
        close = torch.isclose(
            before - lr * grad, after, atol=max(1e-6, 2 * eps), rtol=max(1e-5, 2 * eps)
        ).all(1)
        # A step through inf or nan cannot be checked (the loss check says it blew up).
        finite = torch.isfinite(torch.cat([before, grad, after], dim=1)).all(1)
        close |= ~finite
        wrong |= {e[0] for e, ok in zip(entries, close) if not ok}
    return len(wrong)
