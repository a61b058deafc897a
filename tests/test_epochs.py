"""Reading the training loop out of a trace: windows per step, order of the five steps, SGD."""

from __future__ import annotations

import torch

from grader.packs.workflow01.epochs import (
    find_problems,
    own_events,
    parameter_values,
    sgd_mismatches,
    split_epochs,
)

MODEL = 1


def step(before: float, grad: float | None, after: float, lr: float = 0.01) -> dict:
    return {
        "kind": "step",
        "optimizer_class": "SGD",
        "lr": [lr],
        "param_ids": [7],
        "param_shapes": [[1]],
        "params_before": torch.tensor([before]),
        "grads_present": [grad is not None],
        "grads": torch.tensor([0.0 if grad is None else grad]),
        "params_after": torch.tensor([after]),
    }


def forward() -> dict:
    x = torch.arange(4.0).unsqueeze(1)
    return {
        "kind": "forward",
        "module_id": MODEL,
        "training": True,
        "grad_enabled": True,
        "input": {"values": x},
    }


def loss() -> dict:
    return {"kind": "loss", "grad_enabled": True, "target": {"values": torch.ones(4, 1)}}


def other(kind: str) -> dict:
    return {"kind": kind}


def problems(events: list[dict], fresh: bool = False) -> set[str]:
    epochs, tail = split_epochs(events)
    return set(find_problems(epochs, tail, MODEL, None, None, fresh_gradients=fresh).problems)


def test_the_five_steps_in_order_are_clean():
    epoch = [forward(), loss(), other("zero_grad"), other("backward"), step(1, 1, 0.99)]
    assert problems(epoch * 3) == set()


def test_each_misordering_is_named():
    zero_after = [forward(), loss(), other("backward"), other("zero_grad"), step(1, None, 1)]
    step_first = [forward(), loss(), other("zero_grad"), step(1, None, 1), other("backward")]
    no_zero = [forward(), loss(), other("backward"), step(1, 1, 0.99)]
    assert problems(zero_after * 2) == {"training.zero_grad_after_backward"}
    assert problems(step_first * 2) == {"training.step_before_backward"}
    assert problems(no_zero * 2) == {"training.no_zero_grad"}


def test_a_step_that_is_not_param_minus_lr_grad_is_caught():
    good = [forward(), loss(), other("zero_grad"), other("backward"), step(1.0, 2.0, 0.98)]
    forged = [forward(), loss(), other("zero_grad"), other("backward"), step(1.0, 2.0, 0.5)]
    epochs, _ = split_epochs(good + forged + good)
    assert sgd_mismatches(epochs) == 1
    epochs, _ = split_epochs(good * 3)
    assert sgd_mismatches(epochs) == 0


def test_a_model_of_several_parameters_is_checked_and_read_back_per_parameter():
    weight, bias = torch.tensor([[0.5, -1.0]]), torch.tensor([0.25])
    grad = torch.tensor([1.0, 2.0, -4.0])
    before = torch.cat([weight.reshape(-1), bias])
    record = {
        "kind": "step",
        "optimizer_class": "SGD",
        "lr": [0.1],
        "param_shapes": [[1, 2], [1]],
        "params_before": before,
        "grads": grad,
        "params_after": before - 0.1 * grad,
    }
    back = parameter_values(record)
    assert torch.equal(back[0], weight) and torch.equal(back[1], bias)
    bias_only = dict(record, params_after=before - 0.1 * grad * torch.tensor([0.0, 0.0, 1.0]))
    epochs, _ = split_epochs([record, bias_only, record])
    assert sgd_mismatches(epochs) == 1  # the weight did not move in the second step
    assert parameter_values(dict(record, params_before=None)) is None


def test_zeroing_at_the_end_of_each_epoch_is_right_when_the_loop_starts_fresh():
    at_end = [forward(), loss(), other("backward"), step(1.0, 2.0, 0.98), other("zero_grad")]
    assert problems(at_end * 3, fresh=True) == set()
    # A backward before the loop left gradients its first step would add to.
    assert problems(at_end * 3) == {"training.no_zero_grad"}
    never = [forward(), loss(), other("backward"), step(1.0, 2.0, 0.98)]
    assert problems(never * 3, fresh=True) == {"training.no_zero_grad"}


def test_a_second_model_trained_in_the_same_loop_is_not_the_graded_models():
    """Each epoch also trains model 2 (its optimizer 20 holds parameter 8): only model 1's
    forward, loss, zero_grad, backward and step make its epochs."""

    def of(event: dict, **fields) -> dict:
        return {**event, **fields}

    ours = [
        of(forward(), output_id=100),
        of(loss(), param_ids=[7], arg_ids=[100, 101]),
        {"kind": "zero_grad", "owner": "optimizer", "id": 10},
        {"kind": "backward", "param_ids": [7]},
        of(step(1, 1, 0.99), optimizer_id=10),
    ]
    theirs = [
        of(forward(), module_id=2, output_id=200),
        of(loss(), param_ids=[8], arg_ids=[200, 101]),
        {"kind": "zero_grad", "owner": "module", "id": 2},
        {"kind": "backward", "param_ids": [8]},
        of(step(1, 1, 0.99), optimizer_id=20, param_ids=[8]),
    ]
    test = of(forward(), module_id=2, output_id=300, grad_enabled=False, training=False)
    their_test_loss = of(loss(), grad_enabled=False, param_ids=[], arg_ids=[300, 102])
    events = (ours + theirs + [test, their_test_loss]) * 3
    mixed, _ = split_epochs(events)
    assert len(mixed) == 6  # every step read as an epoch
    kept = own_events(events, {7}, MODEL)
    epochs, tail = split_epochs(kept)
    assert len(epochs) == 3
    assert set(find_problems(epochs, tail, MODEL, None, None).problems) == set()
    assert their_test_loss not in kept and test in kept  # another model's call: ignored later
    # An optimizer that holds none of the model's parameters: the loop as it ran is judged.
    assert own_events(events, {9}, MODEL) == events
