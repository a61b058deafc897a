"""Checks unit-tested on hand-made records (grader/record/builders.py): no sandbox, no notebook.

Each check is shown on a record it must pass and on one it must fail with its hint, so a check
that stopped looking (or a builder that stopped writing the record's format) fails here."""

import pytest
import torch
from torch import nn

from grader.packs.workflow01.checks import test_data, test_loss_optimizer, test_model, test_split
from grader.packs.workflow01.model import line_of, parameter_values, probe_line, probes_trusted
from grader.record.builders import RecordBuilder
from grader.record.schema import FormatError
from grader.record.submission import Mistake

EXERCISES = "01_pytorch_workflow_exercises"


def fails_with(hint: str, check, *args) -> str:
    with pytest.raises(Mistake) as raised:
        check(*args)
    assert raised.value.hint == hint, raised.value
    return str(raised.value)


def line(x: torch.Tensor) -> torch.Tensor:
    return 0.3 * x + 0.9


def data_record(X: torch.Tensor, weight=0.3, bias=0.9):
    return (
        RecordBuilder(EXERCISES)
        .cell("data")
        .values("data", X=X, y=weight * X + bias, weight=weight, bias=bias)
        .build()
    )


def test_the_data_checks_pass_a_column_and_name_a_1d_X():
    X = torch.arange(0, 1, 0.01)
    column = data_record(X.unsqueeze(dim=1))
    test_data.test_X_is_a_column_of_enough_points(column, column.assignment)
    test_data.test_weight_and_bias(column, column.assignment)

    flat = data_record(X)
    message = fails_with(
        "data.shape_1d", test_data.test_X_is_a_column_of_enough_points, flat, flat.assignment
    )
    assert "unsqueeze(dim=1)" in message

    steep = data_record(X.unsqueeze(dim=1), weight=0.7)
    fails_with("data.weight_bias", test_data.test_weight_and_bias, steep, steep.assignment)


def split_record(n_train: int):
    X = torch.arange(0, 1, 0.01).unsqueeze(dim=1)
    y = line(X)
    parts = {"X_train": X[:n_train], "y_train": y[:n_train], "X_test": X[n_train:]}
    return (
        RecordBuilder(EXERCISES)
        .cell("split")
        .values("split", X=X, y=y, **parts, y_test=y[n_train:])
        .build()
    )


def test_the_split_checks_pass_80_20_and_fail_a_half_split():
    right = split_record(80)
    test_split.test_80_20_sizes(right)
    test_split.test_every_row_in_exactly_one_set(right)
    test_split.test_pairs_stay_aligned(right)
    half = split_record(50)
    fails_with("split.proportion", test_split.test_80_20_sizes, half)


def loss_optimizer_record(loss_fn, optimizer):
    return (
        RecordBuilder(EXERCISES)
        .cell("loss_optimizer")
        .values("loss_optimizer", loss_fn=loss_fn, optimizer=optimizer)
        .build()
    )


def test_the_loss_and_optimizer_checks_read_classes_and_settings():
    parameters = [nn.Parameter(torch.zeros(1))]
    right = loss_optimizer_record(nn.L1Loss(), torch.optim.SGD(parameters, lr=0.01))
    test_loss_optimizer.test_l1_loss(right)
    test_loss_optimizer.test_sgd(right)
    test_loss_optimizer.test_learning_rate(right, right.assignment)

    mse = loss_optimizer_record(nn.MSELoss(), torch.optim.SGD(parameters, lr=0.01))
    assert "MSELoss" in fails_with("loss.not_l1", test_loss_optimizer.test_l1_loss, mse)
    adam = loss_optimizer_record(nn.L1Loss(), torch.optim.Adam(parameters, lr=0.01))
    fails_with("optimizer.not_sgd", test_loss_optimizer.test_sgd, adam)
    fast = loss_optimizer_record(nn.L1Loss(), torch.optim.SGD(parameters, lr=0.1))
    fails_with("optimizer.lr", test_loss_optimizer.test_learning_rate, fast, fast.assignment)


class Line(nn.Module):
    def __init__(self, plain: bool = False) -> None:
        super().__init__()
        torch.manual_seed(42)
        weight, bias = torch.randn(1), torch.randn(1)
        if plain:  # the slip: tensors that nn.Module does not register
            self.weights, self.bias = weight.requires_grad_(), bias.requires_grad_()
        else:
            self.weights, self.bias = nn.Parameter(weight), nn.Parameter(bias)

    def forward(self, x):
        return self.weights * x + self.bias


def model_record(model: nn.Module):
    return RecordBuilder(EXERCISES).cell("model").values("model", model_1=model).build()


def test_the_model_checks_count_registered_parameters():
    right = model_record(Line())
    test_model.test_two_registered_parameters(right, right.assignment)
    test_model.test_forward_is_a_line(right, right.assignment)
    plain = model_record(Line(plain=True))
    message = fails_with(
        "model.plain_tensor", test_model.test_two_registered_parameters, plain, plain.assignment
    )
    assert "`weights`" in message


def test_a_missing_name_is_the_checks_mistake_not_an_error():
    record = RecordBuilder(EXERCISES).cell("data").values("data", weight=0.3, bias=0.9).build()
    fails_with("name.missing", test_data.test_X_is_a_column_of_enough_points, record, None)


def test_the_builder_refuses_what_the_grader_would_refuse_from_a_child():
    builder = RecordBuilder(EXERCISES).cell("training_loop")
    with pytest.raises(FormatError):
        builder.event("training_loop", "step", optimizer_id="not a number").build()
    with pytest.raises(FormatError):
        builder.raw_values("training_loop", loss_fn={"kind": "no such kind"})


X_GLOBAL = torch.arange(0, 1, 0.01).unsqueeze(dim=1)


class ReadsGlobalX(Line):
    def forward(self, x):
        return self.weights * X_GLOBAL + self.bias  # the slip: the notebook's X, not x


def test_a_repaired_model_is_judged_on_its_parameters_not_the_probes():
    """A model cell whose `forward` reads the notebook's `X`, put right by the grader: the
    model the later cells use computes its line, so its line is its parameters' exact values
    (read off the probes, drawn anew each run, it moved by float32's rounding from run to run,
    and a replay from that start could end elsewhere)."""
    builder = RecordBuilder(EXERCISES).cell("model").cell("loss_optimizer")
    builder.values("model", model_1=ReadsGlobalX()).values("loss_optimizer", model_1=Line())
    # Not repaired: the class the student wrote computes something else, and the probes speak.
    assert probes_trusted(builder.build())
    record = builder.build()
    record.stub_cell("model")["repaired"] = {"names": ["model_1"], "status": "ok"}
    model = record.module("model_1", "loss_optimizer")
    assert line_of(model, record) == parameter_values(model)


def test_the_probes_read_the_slope_between_their_farthest_inputs():
    """Two probes 0.01 apart read the slope of float32 outputs near 1 up to 1e-5 off."""
    x = torch.tensor([[0.01], [0.02], [-2.0], [1.99], [0.5]])
    weight, bias = 0.3366903, 0.9010599
    output = {"values": (torch.tensor(weight) * x + torch.tensor(bias)).float()}
    probe = {"shape": "column", "input": x, "output": output}
    from grader.record.submission import ModuleValue

    found = probe_line(ModuleValue("model_1", {"probes": [probe]}))
    assert abs(found[0] - weight) < 1e-6 and abs(found[1] - bias) < 1e-6, found
