"""Section `data`: a straight line y = weight * X + bias."""

import torch

from grader.check_api import check, expect, same_values


@check("data", "weight_bias")
def test_weight_and_bias(record, assignment):
    for name, wanted in (("weight", assignment.weight), ("bias", assignment.bias)):
        data = record.value(name, "data")
        found, tolerance = data.get("value"), 1e-9
        expect(
            not data.get("requires_grad"),
            f"`{name}` tracks gradients (requires_grad=True): the line's true values are plain "
            f"numbers, `{name} = {wanted}`.",
            "data.requires_grad",
        )
        if data["kind"] == "tensor" and data.get("values") is not None:
            # `weight = torch.tensor(0.3)` makes the same line (to float32's precision).
            if data["values"].numel() == 1:
                found, tolerance = float(data["values"].reshape(())), 1e-6
            else:
                found = f"a tensor of shape {tuple(data['shape'])}"
        expect(
            isinstance(found, (float, int)) and abs(found - wanted) < tolerance,
            f"`{name}` is {found if isinstance(found, str) else repr(found)}; this exercise "
            f"uses {wanted}.",
            "data.weight_bias",
        )


@check("data", "X_shape", weight=2)
def test_X_is_a_column_of_enough_points(record, assignment):
    X = record.tensor("X", "data")
    expect(
        len(X.shape) == 2 or len(X.shape) != 1,
        f"`X` has shape {X.shape}, expected ({X.shape[0]}, 1): add `.unsqueeze(dim=1)`.",
        "data.shape_1d",
    )
    expect(
        len(X.shape) == 2 and X.shape[1] == 1,
        f"`X` has shape {X.shape}; it should be one column, shape (N, 1).",
        "data.shape_1d",
    )
    expect(
        X.shape[0] >= assignment.min_points,
        f"`X` has {X.shape[0]} points; make at least {assignment.min_points}.",
        "data.too_few",
    )
    expect(X.dtype == "float32", f"`X` has dtype {X.dtype}, expected float32.", "data.dtype")


@check("data", "y_line")
def test_y_is_the_line(record, assignment):
    X = record.tensor("X", "data")
    y = record.tensor("y", "data")
    expect(
        y.shape == X.shape,
        f"`y` has shape {y.shape} but `X` has {X.shape}: compute `y = weight * X + bias`.",
        "data.not_line",
    )
    expect(
        not y.requires_grad and not X.requires_grad,
        f"`{'y' if y.requires_grad else 'X'}` tracks gradients (requires_grad=True), so every "
        "loss against it would too: make the data from plain numbers.",
        "data.requires_grad",
    )
    line = assignment.weight * X.values.double() + assignment.bias
    expect(
        same_values(y.values, line.to(torch.float64), atol=1e-5),
        f"`y` is not {assignment.weight} * X + {assignment.bias} on every row.",
        "data.not_line",
    )
