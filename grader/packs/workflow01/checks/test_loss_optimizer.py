"""Section `loss_optimizer`: nn.L1Loss and SGD(lr=0.01) over exactly the model's parameters."""

import ast

from grader.check_api import check, expect, parse
from grader.packs.workflow01.state import state_kept


@check("loss_optimizer", "l1_loss")
def test_l1_loss(record):
    loss_fn = record.value("loss_fn", "loss_optimizer")
    found = loss_fn.get("class") or loss_fn.get("name") or loss_fn.get("type") or loss_fn["kind"]
    expect(
        loss_fn["kind"] != "class" or not loss_fn.get("is_module"),
        f"`loss_fn` is the class `nn.{found}` itself, not a loss function: call it, "
        f"`nn.{found}()`.",
        "loss.class_not_instance",
    )
    if loss_fn.get("function"):
        found = f"the function `{loss_fn['function']}`"
    expect(
        loss_fn["kind"] == "module" and found == "L1Loss",
        f"`loss_fn` is {found}; this exercise uses the loss module `nn.L1Loss()`.",
        "loss.not_l1",
    )
    reduction = loss_fn.get("reduction") or "mean"
    expect(
        reduction == "mean",
        f"`loss_fn` uses reduction={reduction!r}; this exercise uses the mean of the errors "
        "(the default: `nn.L1Loss()`).",
        "loss.reduction",
    )


@check("loss_optimizer", "sgd")
def test_sgd(record):
    optimizer = record.value("optimizer", "loss_optimizer")
    found = optimizer.get("class") or optimizer.get("type") or optimizer["kind"]
    expect(
        optimizer["kind"] == "optimizer" and found == "SGD",
        f"`optimizer` is {found}; use `torch.optim.SGD`.",
        "optimizer.not_sgd",
    )


@check("loss_optimizer", "plain_sgd")
def test_plain_sgd(record):
    """Momentum or weight decay train differently, and the replay of the training (which
    checks the loop's result) only follows plain SGD: they are reported here, once."""
    optimizer = record.value("optimizer", "loss_optimizer")
    if optimizer["kind"] != "optimizer":
        return  # the sgd check says so
    extras = sorted(
        f"{name}={group[name]:g}"
        for group in optimizer["param_groups"]
        for name in ("momentum", "weight_decay")
        if isinstance(group.get(name), (int, float)) and group[name]
    )
    expect(
        not extras,
        f"`optimizer` uses {', '.join(dict.fromkeys(extras))}; this exercise uses plain SGD.",
        "optimizer.not_plain",
    )


@check("loss_optimizer", "lr")
def test_learning_rate(record, assignment):
    optimizer = record.value("optimizer", "loss_optimizer")
    expect(
        optimizer["kind"] == "optimizer", "`optimizer` is not an optimizer.", "optimizer.not_sgd"
    )
    rates = {g["lr"] for g in optimizer["param_groups"]}
    expect(
        rates == {assignment.lr},
        f"The learning rate is {', '.join(str(r) for r in sorted(rates))}"
        f"{_default_lr_note(record)}; use lr={assignment.lr}.",
        "optimizer.lr",
    )


@check("loss_optimizer", "model_parameters")
def test_optimizes_the_models_parameters(record, assignment):
    optimizer = record.value("optimizer", "loss_optimizer")
    expect(
        optimizer["kind"] == "optimizer", "`optimizer` is not an optimizer.", "optimizer.not_sgd"
    )
    model = record.module(assignment.model_name, "loss_optimizer")
    wanted = {p["id"] for p in model.parameters}
    found = {pid for g in optimizer["param_groups"] for pid in g["param_ids"]}
    expect(
        found == wanted,
        f"The optimizer updates {len(found & wanted)} of `{assignment.model_name}`'s "
        f"{len(wanted)} parameters (and {len(found - wanted)} others): pass "
        f"`{assignment.model_name}.parameters()`.",
        "optimizer.other_params",
    )
    # Checked where the cell did its work, so that a cell that does nothing earns nothing.
    state_kept(record, assignment, "loss_optimizer")


def _default_lr_note(record) -> str:
    """The note for a cell that makes its optimizer without an `lr` (torch's default applies)."""
    cell = record.stub_cell("loss_optimizer")
    tree = parse(cell["source"]) if cell else None
    for node in ast.walk(tree) if tree is not None else ():
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        given = len(node.args) >= 2 or any(k.arg == "lr" for k in node.keywords)
        if name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad") and not given:
            return ", the optimizer's default: your call gives it no `lr`"
    return ""
