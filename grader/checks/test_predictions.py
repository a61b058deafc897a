"""Section `predictions`: y_preds is the trained model on X_test, without gradient tracking."""

import torch

from grader.plugin import check
from grader.record import expect, same_values
from grader.reference import manifest


@check("predictions", "shape")
def test_shape_matches_y_test(record):
    y_preds = record.tensor("y_preds", "predictions")
    y_test = record.tensor("y_test", "predictions")
    expect(
        y_preds.shape == y_test.shape,
        f"`y_preds` has shape {y_preds.shape}, but `y_test` has {y_test.shape}.",
        "predictions.shape",
    )


@check("predictions", "no_gradient")
def test_no_gradient(record):
    y_preds = record.tensor("y_preds", "predictions")
    expect(
        not y_preds.requires_grad,
        "`y_preds` carries a gradient (requires_grad=True): predict inside "
        "`with torch.inference_mode():`.",
        "predictions.requires_grad",
    )


@check("predictions", "from_model", weight=2)
def test_equals_the_trained_model_on_X_test(record, assignment):
    y_preds = record.tensor("y_preds", "predictions").values
    X_test = record.tensor("X_test", "predictions").values
    line = record.module(assignment.model_name, "predictions").line()
    if line is None:
        return  # forward is not a line: the model section already says so
    weight, bias = line
    expected = (weight * X_test.double() + bias).float()
    expect(
        same_values(y_preds, expected, atol=1e-5),
        f"`y_preds` is not `{assignment.model_name}(X_test)` for your trained model.",
        "predictions.not_model",
    )


@check("predictions", "near_reference", hidden=True)
def test_close_to_the_reference(record, assignment):
    """Only where the student's data match the reference's: otherwise upstream already lost."""
    reference = manifest(assignment.id)
    X_test = record.tensor("X_test", "predictions").values
    y_preds = record.tensor("y_preds", "predictions").values
    X = torch.arange(0, 1, assignment.data_step).unsqueeze(dim=1)
    expected_X = X[int(0.8 * len(X)) :]
    if reference is None or X_test.numel() != expected_X.numel():
        return
    if not same_values(X_test, expected_X, atol=1e-6):
        return
    weight, bias = (float(v) for v in list(reference["parameters"].values())[:2])
    expected = weight * X_test.double() + bias
    expect(
        same_values(y_preds, expected, atol=0.02),
        "Your predictions are far from the reference model's predictions on the same data.",
        "predictions.far_from_reference",
    )
