"""Hidden checks: run by `ptgrade grade` where solutions/ is present, never shipped to students."""

import pytest

from grader.epochs import (
    has_predictions,
    loss_labels,
    parameter_values,
    plain_sgd,
    training_view,
)
from grader.plugin import check
from grader.record import Mistake, expect
from grader.reference import REPLAYABLE_LOSSES, TOLERANCE, replay_training


@pytest.fixture
def loop(record, assignment):
    return training_view(record, assignment)


@check("training_loop", "final_parameters", weight=2, hidden=True)
def test_final_parameters_match_the_replay(loop, record, assignment):
    epochs = loop["epochs"]
    expect(epochs, "Your loop never calls `optimizer.step()`.", "training.no_step")
    expect(
        not loop["replaced"],
        f"`{assignment.model_name}` after this cell is not the model your loop trained: the "
        f"cell makes a new `{assignment.model_name}` after training it.",
        "training.model_replaced",
    )
    if loop["cut"]:
        return  # the trace kept only the loop's start: its end is unknown (epochs says so)
    start_model = _untrained(record, assignment, loop["model"])
    start_line, final_line = start_model.line(), loop["model"].line()
    if start_line is None or final_line is None:
        return  # forward is not a line: the model section already says so
    first = epochs[0]
    forward = next((e for e in first.events if e["kind"] == "forward" and e["grad_enabled"]), None)
    loss = next((e for e in first.events if e["kind"] == "loss" and e["grad_enabled"]), None)
    labels = loss_labels(loss)
    if forward is None and loss is not None and has_predictions(loss):
        raise Mistake(
            "The grader replays your training from the calls of your model it sees, and found "
            f"none: the loss was computed without calling `{assignment.model_name}(X_train)`.",
            "training.forward_not_called",
        )
    if loss is None:
        return  # nothing to replay against: the loop's own checks say no loss was computed
    if (
        forward is None
        or forward["input"]["values"] is None
        or not labels
        or labels["values"] is None
    ):
        raise Mistake(
            "The grader could not find the training data your loop used.", "training.no_forward"
        )
    X_train, y_train = forward["input"]["values"], labels["values"]
    if len(epochs) > assignment.epochs and _rows(X_train) < _rows_of(record, "X_train"):
        return  # mini-batches: a replay of whole-data steps says nothing (epochs says so)
    reduction = record.raw_value("loss_fn", "loss_optimizer").get("reduction")
    if (
        not plain_sgd(first.step)
        or loss["loss_class"] not in REPLAYABLE_LOSSES
        or reduction not in (None, "mean")
    ):
        return  # not replayable: the loss_optimizer section already reports the choice
    lr = first.step["lr"][0]
    # Replay with the student's own setup: a parameter their optimizer never steps stays put.
    stepped = [
        float(v.flatten()[0])
        for v, has_grad in zip(parameter_values(first.step) or [], first.step["grads_present"])
        if has_grad and v.numel()
    ]
    # The probes give the line only to float32 rounding (weight = f(1) - f(0) can be off by an
    # ulp); the first step holds the exact starting values of the parameters it stepped.
    starts = [_stepped_value(v, stepped) for v in start_line]
    trainable = tuple(s is not None for s in starts)
    start = [v if s is None else s for v, s in zip(start_line, starts)]
    weight, bias = replay_training(
        *start, X_train, y_train, len(epochs), lr, trainable, loss["loss_class"]
    )[-1]
    found_weight, found_bias = final_line
    expect(
        abs(found_weight - weight) <= TOLERANCE["weight"] + 1e-6
        and abs(found_bias - bias) <= TOLERANCE["bias"] + 1e-6,
        f"After training, weight={found_weight:.4f} and bias={found_bias:.4f}; "
        f"{len(epochs)} correct steps from your starting values reach "
        f"weight={weight:.4f} and bias={bias:.4f}.",
        "training.final_params",
    )


def _untrained(record, assignment, trained):
    """The trained model as it stood before the loop: after the last section before it that
    held that same model (one made again in the loss cell is the one trained), else after the
    model section (or the loss section's, when the model cell left the model out)."""
    sections = list(assignment.section_ids)
    for section_id in reversed(sections[: sections.index("training_loop")]):
        try:
            model = record.module(assignment.model_name, section_id)
        except Mistake:
            continue
        if model.id == trained.id:
            return model
    try:
        return record.module(assignment.model_name, "model")
    except Mistake:
        return record.module(assignment.model_name, "loss_optimizer")


def _rows(tensor) -> int:
    return tensor.shape[0] if tensor.dim() else 1


def _rows_of(record, name: str) -> int:
    try:
        return record.tensor(name, "training_loop").shape[0]
    except (Mistake, IndexError):
        return 0


def _stepped_value(value: float, stepped: list[float]) -> float | None:
    """The stepped parameter's exact value that `value` (read off the probes) is, if any."""
    closest = min(stepped, key=lambda s: abs(value - s), default=None)
    if closest is not None and abs(value - closest) <= 1e-5 * max(1.0, abs(value)):
        return closest
    return None
