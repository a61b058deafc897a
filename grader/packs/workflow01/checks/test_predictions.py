"""Section `predictions`: y_preds is the trained model on X_test, without gradient tracking."""

import math

from grader.check_api import Mistake, check, expect, names_made, same_values
from grader.packs.workflow01.model import line_of, no_graph_built
from grader.packs.workflow01.state import state_kept


@check("predictions", "shape")
def test_shape_matches_y_test(record):
    y_preds = record.tensor("y_preds", "predictions")
    y_test = record.tensor("y_test", "predictions")
    if y_preds.shape != y_test.shape and math.prod(y_preds.shape) == math.prod(y_test.shape):
        raise Mistake(
            f"`y_preds` has shape {y_preds.shape}, but `y_test` has {y_test.shape}: as many "
            "predictions, in another shape.",
            "predictions.reshaped",
        )
    expect(
        y_preds.shape == y_test.shape,
        f"`y_preds` has shape {y_preds.shape}, but `y_test` has {y_test.shape}.",
        "predictions.shape",
    )


@check("predictions", "no_gradient")
def test_no_gradient(record, assignment):
    y_preds = record.tensor("y_preds", "predictions")
    expect(
        not y_preds.requires_grad,
        "`y_preds` carries a gradient (requires_grad=True): predict inside "
        "`with torch.inference_mode():`.",
        "predictions.requires_grad",
    )
    model = record.module(assignment.model_name, "predictions")
    no_graph_built(record, "predictions", model, y_preds)


@check("predictions", "from_model", weight=2)
def test_equals_the_trained_model_on_X_test(record, assignment):
    y_preds = record.tensor("y_preds", "predictions").values
    X_test = record.tensor("X_test", "predictions").values
    model = record.module(assignment.model_name, "predictions")
    line = line_of(model, record)
    if line is None:
        return  # forward is not a line: the model section already says so
    _not_replaced(record, assignment, model, line)
    weight, bias = line
    expected = (weight * X_test.double() + bias).float()
    if y_preds is not None and y_preds.shape != expected.shape:
        if y_preds.numel() == expected.numel():  # reshaped: the shape check says so
            y_preds = y_preds.reshape(expected.shape)
    expect(
        same_values(y_preds, expected, atol=1e-5),
        f"`y_preds` is not `{assignment.model_name}(X_test)` for your trained model."
        + _left_by_an_earlier_cell(record),
        "predictions.not_model",
    )
    # Checked where the cell did its work, so that a cell that does nothing earns nothing.
    state_kept(record, assignment, "predictions")


def _left_by_an_earlier_cell(record) -> str:
    """The note for predictions this cell stored under another name: the `y_preds` checked is
    an earlier cell's (the training loop's last test pass, say)."""
    source = (record.stub_cell("predictions") or {}).get("source", "")
    made = names_made(source)
    if "y_preds" in made:
        return ""
    others = [f"`{name}`" for name in made if name not in ("X_test", "y_test")]
    kept = f" (it makes {', '.join(others)})" if others else ""
    return (
        f" Your cell never assigns `y_preds`{kept}, so the `y_preds` checked is the one an "
        "earlier cell left: store this cell's predictions in `y_preds`."
    )


@check("predictions", "eval_mode")
def test_predicted_in_eval_mode(record, assignment):
    model = record.module(assignment.model_name, "predictions")
    calls = record.calls_of(model.id, "predictions")
    if not calls:
        return  # y_preds made elsewhere: from_model judges whether they are right
    expect(
        not calls[-1]["training"],
        f"`{assignment.model_name}` was in train mode when it made `y_preds`: call "
        f"`{assignment.model_name}.eval()` before predicting."
        + record.uncalled("predictions", "eval"),
        "predictions.not_eval",
    )


def _not_replaced(record, assignment, model, line) -> None:
    """The model that predicts is the one the loop trained (or holds its values)."""
    try:
        trained = record.module(assignment.model_name, "training_loop")
    except Mistake:
        return  # no trained model to compare with: the training section says why
    trained_line = line_of(trained, record)
    if model.id == trained.id or trained_line is None:
        return
    if any(abs(a - b) > 1e-5 for a, b in zip(line, trained_line)):
        raise Mistake(
            f"`{assignment.model_name}` here is a new model, not the one your loop trained "
            f"(weight {line[0]:.4f} and bias {line[1]:.4f} instead of {trained_line[0]:.4f} and "
            f"{trained_line[1]:.4f}), so `y_preds` are an untrained model's.",
            "predictions.model_replaced",
        )
