"""Chapter 01's pictures for the feedback page: the data with the true line, and the loss."""

from __future__ import annotations

import functools

from grader.packs.workflow01.assignments import Assignment
from grader.reports.svg import Series, chart


def pictures(figures: dict, assignment: Assignment | None) -> list[tuple[str, str | None, str]]:
    """(title, SVG or None, what to say without data) for each picture of the page."""
    return [
        (
            "Your data and predictions",
            data_picture(figures, assignment),
            "No data: the training and test sets were not recorded.",
        ),
        (
            "Training loss",
            loss_picture(figures, assignment),
            "No data: no training loss was recorded.",
        ),
    ]


def _pairs(figures: dict, xs: str, ys: str) -> tuple[list, list] | None:
    x, y = figures.get(xs), figures.get(ys)
    if not x or not y or len(x) != len(y):
        return None
    return x, y


def data_picture(figures: dict, assignment: Assignment | None) -> str | None:
    """The data, the predictions and the true line as an SVG chart; None without data."""
    train = _pairs(figures, "X_train", "y_train")
    test = _pairs(figures, "X_test", "y_test")
    preds = _pairs(figures, "X_test", "y_preds")
    if train is None and test is None:
        return None
    series = []
    if train is not None:
        series.append(Series("Training data", "blue", *train))
    if test is not None:
        series.append(Series("Testing data", "green", *test))
    if preds is not None:
        series.append(Series("Your predictions", "red", *preds))
    xs = [x for s in series for x, _ in s.points()]
    if assignment is not None and xs:
        ends = [min(xs), max(xs)]
        line = [assignment.weight * x + assignment.bias for x in ends]
        label = f"y = {assignment.weight:g}·x + {assignment.bias:g}"
        series.append(Series(label, "grey", ends, line, line=True))
    return chart(series, "X", "y", "Your data and predictions")


def reference_losses(assignment: Assignment) -> tuple[float, ...]:
    """The L1 loss before each SGD step of a correct run from the seeded start."""
    a = assignment  # an Assignment is not hashable (it holds a dict): cache on what the run uses
    return _reference_losses(a.weight, a.bias, a.data_step, a.lr, a.epochs)


@functools.lru_cache(maxsize=8)  # a training run per page would cost more than the page
def _reference_losses(
    weight: float, bias: float, data_step: float, lr: float, epochs: int
) -> tuple[float, ...]:
    import torch  # lazy: only the HTML report needs it

    from grader.packs.workflow01.reference import sgd_step

    generator = torch.Generator().manual_seed(42)  # same draws as torch.manual_seed(42)
    w = torch.randn(1, generator=generator).requires_grad_()
    b = torch.randn(1, generator=generator).requires_grad_()
    X = torch.arange(0, 1, data_step).unsqueeze(1)
    y = weight * X + bias
    split = int(0.8 * len(X))
    X_train, y_train = X[:split], y[:split]
    losses = []
    for _ in range(epochs):
        loss = torch.nn.functional.l1_loss(w * X_train + b, y_train)
        losses.append(float(loss.detach()))
        loss.backward()
        sgd_step([w, b], lr)
    return tuple(losses)


def loss_picture(figures: dict, assignment: Assignment | None) -> str | None:
    """The student's training loss per step against a correct run's; None without data."""
    train_loss = figures.get("train_loss")
    if not train_loss:
        return None
    series = []
    if assignment is not None:
        reference = reference_losses(assignment)
        series.append(Series("Reference run", "grey", range(len(reference)), reference, line=True))
    steps = range(len(train_loss))
    series.append(Series("Your training loss", "red", steps, train_loss, line=True))
    return chart(series, "Step (epoch)", "L1 loss", "Training loss")
