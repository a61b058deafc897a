"""Section `training_loop`: the five steps every epoch, real SGD steps, regular test passes."""

import math
import re

import pytest

from grader.check_api import Mistake, appends_to, assigned_lines, check, expect, names_made
from grader.packs.workflow01.chain import corroborated
from grader.packs.workflow01.epochs import (
    compares_with,
    loss_shapes,
    plain_sgd,
    same_input,
    sgd_mismatches,
    training_forward,
    training_view,
)
from grader.packs.workflow01.outcome import judge_training, loop_findings, wrong_data
from grader.packs.workflow01.state import state_kept

ORDER = (
    "training.no_forward",
    "training.forward_not_called",
    "training.test_data",
    "training.no_loss",
    "training.loss_shapes",
    "training.no_backward",
    "training.step_before_backward",
    "training.no_zero_grad",
    "training.zero_grad_after_backward",
    "training.not_train_mode",
)

DESCRIPTIONS = {
    "training.no_forward": "there is no forward pass of the model on the training data",
    "training.forward_not_called": "the model itself is never called (`model(X_train)`), "
    "though the loss is computed from its parameters",
    "training.test_data": "the model learns from the test data",
    "training.no_loss": "no loss is computed with `loss_fn`",
    "training.loss_shapes": "`loss_fn` compares predictions of shape {0} with labels of shape "
    "{1}, which PyTorch broadcasts instead of pairing them",
    "training.no_backward": "`loss.backward()` is never called",
    "training.step_before_backward": "`optimizer.step()` runs before `loss.backward()`",
    "training.no_zero_grad": "`optimizer.zero_grad()` is not called",
    "training.zero_grad_after_backward": "`optimizer.zero_grad()` runs after `loss.backward()`",
    "training.not_train_mode": "the model is not in train mode (`model.train()`)",
}


@pytest.fixture
def loop(record, assignment):
    return training_view(record, assignment)


@check("training_loop", "epochs")
@corroborated
def test_one_step_per_epoch(loop, assignment, record):
    steps = len(loop["epochs"])
    if not steps:
        raise Mistake(_never_steps(record), "training.no_step")
    if loop["cut"]:
        # The trace kept only the loop's start (trace.MAX_EVENTS): a count already past the
        # exercise's is wrong; one up to it proves nothing (the rest went unrecorded).
        expect(
            steps <= assignment.epochs,
            f"Your loop made at least {steps} optimizer steps; the exercise asks for "
            f"{assignment.epochs} epochs with one step each.",
            "training.epochs",
        )
        return
    expect(
        steps == assignment.epochs,
        f"Your loop made {steps} optimizer steps; the exercise asks for {assignment.epochs} "
        "epochs with one step each.",
        "training.epochs",
    )


# The method a hint says is never called, for the note on a call missing its parentheses.
CALLED = {
    "training.no_zero_grad": "zero_grad",
    "training.no_backward": "backward",
    "training.not_train_mode": "train",
    "training.no_step": "step",
    "training.test_not_eval": "eval",
}


def _never_steps(record) -> str:
    """Worked out only when it is so (it reads the cell's source)."""
    return "Your loop never calls `optimizer.step()`." + record.uncalled("training_loop", "step")


@check("training_loop", "five_steps", weight=3)
@corroborated
def test_five_steps_in_order(loop, record):
    if not loop["epochs"]:
        raise Mistake(_never_steps(record), "training.no_step")
    findings = loop_findings(record, loop)
    for hint in ORDER:
        if findings.problems[hint]:
            count, total = findings.problems[hint], len(loop["epochs"])
            note = record.uncalled("training_loop", CALLED[hint]) if hint in CALLED else ""
            shapes = [_shape(s) for s in findings.shapes or ()]
            raise Mistake(
                f"In {count} of {total} epochs {DESCRIPTIONS[hint].format(*shapes)} "
                f"(first in epoch {findings.examples[hint]}).{note}",
                hint,
            )


@check("training_loop", "sgd_steps")
@corroborated
def test_each_step_is_sgd(loop, record):
    if not loop["epochs"]:  # nothing to judge is a failure, never a pass
        raise Mistake(_never_steps(record), "training.no_step")
    if not plain_sgd(loop["epochs"][0].step):
        return  # another optimizer: loss_optimizer already says so; its steps aren't SGD's
    wrong = sgd_mismatches(loop["epochs"])
    expect(
        wrong == 0,
        f"{wrong} steps changed the parameters differently from `param - lr * grad`.",
        "training.wrong_update",
    )


@check("training_loop", "training_data")
@corroborated
def test_learns_from_the_training_data(loop, record, assignment):
    if not loop["epochs"]:
        raise Mistake(_never_steps(record), "training.no_step")
    found = wrong_data(record, assignment, loop)
    if found is None:
        return
    hint, number = found
    what = {
        "training.test_data": "the model learns from the test data",
        "training.wrong_labels": "the loss compares the predictions with labels that are not "
        "`y_train`'s",
        "training.wrong_data": "the model is run on inputs that are not `X_train`'s rows",
    }[hint]
    raise Mistake(f"From epoch {number} on, {what}.", hint)


@check("training_loop", "learned", weight=2)
def test_the_model_learned_what_the_replay_learns(record, assignment):
    """The outcome, judged by the grader: the final parameters are those its own replay of
    your setup reaches from your starting values on `X_train` and `y_train`."""
    judge_training(record, assignment)
    # Checked where the cell did its work, so that a cell that does nothing earns nothing.
    state_kept(record, assignment, "training_loop")


@check("training_loop", "loss_decreases")
@corroborated
def test_loss_goes_down(loop, record, assignment):
    steps_the_model = {p["id"] for p in loop["model"].parameters}
    stepped = set(loop["epochs"][0].step["param_ids"]) if loop["epochs"] else set()
    # (A model made again after the loop is not the one its optimizer held: judged anyway.)
    if stepped and not loop["replaced"] and not steps_the_model & stepped:
        _optimizer_made_for_the_old_model(record, assignment, stepped)
        return  # the optimizer holds another model's parameters: loss_optimizer says so
    losses = [e["value"] for e in loop["events"] if e["kind"] == "loss" and e["grad_enabled"]]
    losses = [v for v in losses if v is not None]
    expect(len(losses) >= 2, "No training loss was computed.", "training.no_loss")
    _loss_is_a_number(loop, losses)
    expect(
        losses[-1] < losses[0],
        f"The training loss went from {losses[0]:.4f} to {losses[-1]:.4f}; it should go down.",
        "training.loss_not_decreasing",
    )


@check("training_loop", "test_passes", weight=2)
@corroborated(tests=True)
def test_regular_test_passes(loop, assignment, record):
    epochs, model_id, X_test = loop["epochs"], loop["model_id"], loop["X_test"]
    # A loop that trains on the test data (or a split whose test rows are its training rows)
    # feeds X_test to its training forward: that is not a test pass.
    found = [(e.events, training_forward(e.events, model_id)) for e in epochs]
    training = {id(events[at]) for events, at in found if at is not None}
    positions, test_forwards, steps = [], [], 0
    for event in loop["events"]:
        if event["kind"] == "step":
            steps += 1
        elif (
            event["kind"] == "forward"
            and event["module_id"] == model_id
            and id(event) not in training
            and same_input(event["input"], X_test)
        ):
            positions.append(steps)
            test_forwards.append(event)
    if not positions:
        _tests_on_training_data(loop, training, record, assignment)
    expect(
        bool(positions),
        f"Your loop never runs the model on `X_test`: test it every {assignment.test_every} "
        "epochs.",
        "training.no_test_pass",
    )
    if any(e["training"] for e in test_forwards):
        raise Mistake(
            "The test pass runs with the model in train mode: call `model.eval()` first."
            + record.uncalled("training_loop", "eval"),
            "training.test_not_eval",
        )
    expect(
        all(not e["grad_enabled"] for e in test_forwards),
        "The test pass tracks gradients: run it inside `with torch.inference_mode():`.",
        "training.test_grad",
    )
    if _test_loss_data(loop):
        made = names_made(record.stub_cell("training_loop").get("source", "")).get("test_loss")
        where = f" (line {made})" if made else ""
        raise Mistake(
            f"Your test loss{where} never compares anything with `y_test`: it is computed on "
            "the training predictions and labels, so it measures the training loss again. "
            "Compute it from the test pass, `loss_fn(test_pred, y_test)`.",
            "training.test_loss_data",
        )
    gaps = [b - a for a, b in zip([0] + positions, positions + [len(epochs)])]
    # Mini-batches (a DataLoader): several steps an epoch; the gaps are counted in epochs.
    if len(epochs) > assignment.epochs and len(epochs) % assignment.epochs == 0:
        gaps = [gap / (len(epochs) // assignment.epochs) for gap in gaps]
    expect(
        max(gaps) <= assignment.test_every,
        f"The longest stretch without a test pass is {max(gaps):g} epochs; test at least every "
        f"{assignment.test_every} epochs.",
        "training.no_test_pass",
    )
    for event in loop["events"]:
        if event["kind"] == "loss" and not event["grad_enabled"]:
            shapes = loss_shapes(event)
            expect(
                shapes is None,
                "Your test loss compares predictions of shape {} with labels of shape {}, "
                "which PyTorch broadcasts instead of pairing them: the test loss you print is "
                "wrong.".format(*map(_shape, shapes or ((), ()))),
                "training.loss_shapes",
            )


@check("training_loop", "loss_history", only="01_pytorch_workflow")
@corroborated(tests=True)
def test_loss_history_lists(record, assignment):
    loop = _loop_or_none(record, assignment)
    # One entry every `test_every` epochs of the loop as it ran: a loop of another length is
    # the epochs check's to charge, not this one's too.
    run, every = _epochs_run(record, assignment, loop), assignment.test_every
    wanted = list(range(0, run, every))
    # Epochs counted from 1 (`for epoch in range(1, epochs + 1)`) log 10, 20, ..., 100: the
    # same curve, every `test_every` epochs of the same loop.
    from_one = list(range(every, run + 1, every))
    epoch_count = record.value("epoch_count", "training_loop")
    items = epoch_count.get("items", [])
    found = [_logged_value(item) for item in items]
    length = epoch_count.get("length", len(items))
    expect(
        epoch_count["kind"] == "list"
        and length == len(wanted)
        and any(found == [float(e) for e in w[: len(found)]] for w in (wanted, from_one)),
        f"`epoch_count` is {_short(found, length)}; expected {_short(wanted)}.",
        "training.loss_history",
    )
    source = record.stub_cell("training_loop").get("source", "")
    for name in ("train_loss_values", "test_loss_values"):
        values = record.value(name, "training_loop")
        items = values.get("items", [])
        length = values.get("length", len(items))
        numeric = all(
            i["kind"] == "value"
            or (i["kind"] == "tensor" and i["shape"] in ([], [1]) and not i["requires_grad"])
            for i in items
        )
        expect(
            values["kind"] == "list" and length == len(wanted) and numeric,
            f"`{name}` should hold {len(wanted)} plain loss values (no gradient), one per "
            f"logged epoch{_what_the_line_appends(source, name, items)}: append "
            "`loss.detach().numpy()` or `loss.item()`.",
            "training.loss_history",
        )
    if loop is not None:
        _lists_hold_their_own_losses(record, loop, source)


def _loop_or_none(record, assignment):
    try:
        return training_view(record, assignment)
    except Mistake:  # no loop to compare with: the other checks say why
        return None


def _epochs_run(record, assignment, loop) -> int:
    """How many epochs the loop ran: its own `epochs` where the steps agree with it (one step
    an epoch, a whole number of mini-batches, or a loop the trace kept only the start of),
    else the steps it made."""
    if loop is None or not loop["epochs"]:
        return assignment.epochs
    steps = len(loop["epochs"])
    declared = record.raw_value("epochs", "training_loop").get("value")
    if isinstance(declared, float) and declared.is_integer() and declared > 0:
        declared = int(declared)
        if steps % declared == 0 or (loop["cut"] and steps <= declared * 10_000):
            return declared
    return steps


def _what_the_line_appends(source: str, name: str, items: list[dict]) -> str:
    """`, but line 58, `train_loss_values.append(loss)`, appends ...`: the student's own line."""
    appended = appends_to(source, name)
    if appended is None:
        return ""
    line, code = appended
    tracked = any(i["kind"] == "tensor" and i.get("requires_grad") for i in items)
    if not tracked:
        return f" (line {line}, `{code}`, appends to it)"
    return (
        f", but line {line}, `{code}`, appends the loss tensor itself, which still tracks "
        "gradients (the loss-curve plot cannot draw it)"
    )


def _tests_on_training_data(loop, training: set[int], record, assignment) -> None:
    """A test pass (gradients off, not the training forward) that runs the model on
    `X_train`: the student tests, on the wrong data, so "never tests" would not help them."""
    try:
        X_train = record.tensor("X_train", "training_loop").values
    except Mistake:  # not a tensor: the split section says why
        return
    if X_train is None or loop["test_is_train"]:
        return
    for event in loop["events"]:
        if (
            event["kind"] == "forward"
            and event["module_id"] == loop["model_id"]
            and id(event) not in training
            and not event["grad_enabled"]
            and same_input(event["input"], X_train)
        ):
            raise Mistake(
                "Your test pass runs the model on `X_train`, the training data, so its loss "
                "measures the training loss again: run it on `X_test` and compare with "
                f"`y_test`, every {assignment.test_every} epochs.",
                "training.test_loss_data",
            )


def _test_loss_data(loop) -> bool:
    """Whether the loop computes a test loss (gradients off) but never compares anything with
    `y_test`: the training predictions against `y_train`, computed again."""
    if loop["test_is_train"]:
        return False  # the split section says why
    losses = [e for e in loop["events"] if e["kind"] == "loss"]
    if any(compares_with(e, loop["y_test"]) for e in losses):
        return False
    # No test loss at all: test_passes' forward and mode checks speak.
    return any(not e["grad_enabled"] for e in losses)


def _lists_hold_their_own_losses(record, loop, source: str) -> None:
    """Each list holds the losses its name says, those the loop computed: the test list the
    test pass's, the train list the training step's (a swap, `loss` appended twice, or the
    epoch numbers appended draw the wrong curves)."""
    if loop["test_is_train"] or _test_loss_data(loop):
        return  # the two kinds of loss can't be told apart: the split (or test pass) says why
    if loop_findings(record, loop).problems["training.test_data"]:
        return  # its training loss is a test loss too: the five steps' check says why
    y_test = loop["y_test"]
    test, train = [], []
    for event in loop["events"]:
        if event["kind"] == "loss" and event["value"] is not None:
            on_test = compares_with(event, y_test)
            (test if on_test else train).append(event["value"])
    expected = {
        "train_loss_values": ("training", "loss"),
        "test_loss_values": ("test", "test_loss"),
    }
    # A loop the trace kept only the start of: the entries of its unrecorded epochs are
    # unknown, and only those of the recorded ones are judged.
    epochs = record.value("epoch_count", "training_loop").get("items", [])
    recorded = len(loop["epochs"])
    for name, (kind, variable) in expected.items():
        own, other = (train, test) if kind == "training" else (test, train)
        items = record.value(name, "training_loop").get("items", [])
        for at, item in enumerate(items):
            value = _logged_value(item)
            if value is None or _among(value, own):
                continue
            epoch = _logged_value(epochs[at]) if at < len(epochs) else None
            if loop["cut"] and (epoch is None or epoch >= recorded - 1):
                continue
            other_kind = "test" if kind == "training" else "training"
            if _among(value, other):
                _overwritten(source, name, variable, other_kind)
                raise Mistake(
                    f"`{name}` holds the {other_kind} loss of the logged epochs: append "
                    f"`{variable}.detach().numpy()` to it.",
                    "training.loss_history",
                )
            appended = appends_to(source, name)
            where = f" (line {appended[0]}, `{appended[1]}`)" if appended else ""
            shown = [_logged_value(i) for i in items]
            raise Mistake(
                f"`{name}` holds {_short(shown)}, which are not the {kind} losses your loop "
                f"computed{where}: append `{variable}.detach().numpy()` to it.",
                "training.loss_history",
            )


def _overwritten(source: str, name: str, variable: str, other_kind: str) -> None:
    """A list that holds the other kind of loss though its line appends the right variable:
    the other pass stores its loss in that variable too (`loss = loss_fn(test_pred, y_test)`
    in the test pass), so when the line runs the variable holds the other loss."""
    appended = appends_to(source, name)
    if appended is None or not re.search(rf"\b{variable}\b", appended[1]):
        return
    other_data = "y_test" if other_kind == "test" else "y_train"
    lines = source.splitlines()
    for number in sorted(assigned_lines(source, variable)):
        code = lines[number - 1].strip()
        if other_data in code:
            own = "test_loss" if other_kind == "test" else "loss"
            raise Mistake(
                f"`{name}` holds the {other_kind} loss of the logged epochs: line "
                f"{appended[0]}, `{appended[1]}`, appends `{variable}`, but line {number}, "
                f"`{code}`, stores the {other_kind} loss in `{variable}` too, so by then it "
                f"holds that one. Give the {other_kind} loss its own name, `{own}`.",
                "training.loss_overwritten",
            )


def _logged_value(item: dict) -> float | None:
    if item["kind"] == "value" and isinstance(item.get("value"), float):
        return item["value"]
    values = item.get("values") if item["kind"] == "tensor" else None
    return float(values.flatten()[0]) if values is not None and values.numel() == 1 else None


def _among(value: float, losses: list[float]) -> bool:
    return any(math.isclose(value, loss, rel_tol=1e-6, abs_tol=1e-9) for loss in losses)


def _optimizer_made_for_the_old_model(record, assignment, stepped: set) -> None:
    """The model made again in the training cell, after `optimizer` took the parameters of
    the one before it: the loop trains the new model and steps the old one."""
    name = assignment.model_name
    try:
        before = {p["id"] for p in record.module(name, "loss_optimizer").parameters}
    except Mistake:
        return
    if before & stepped:
        raise Mistake(
            f"Your loop trains a `{name}` made again in this cell, but `optimizer` still holds "
            f"the parameters of the `{name}` it was made with: its steps never change the model "
            "you train.",
            "training.optimizer_stale",
        )


def _loss_is_a_number(loop, losses: list[float]) -> None:
    """A nan loss never goes down: say where it came from (no rows, or blown up)."""
    broken = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    if broken is None:
        return
    if broken > 0:
        raise Mistake(
            f"The training loss was {losses[0]:.4f} at first and {losses[broken]} from "
            f"training step {broken + 1} on: the parameters blew up.",
            "training.loss_nan",
        )
    first = next(e for e in loop["events"] if e["kind"] == "loss" and e["grad_enabled"])
    shapes = [(first.get(side) or {}).get("shape") for side in ("input", "target")]
    empty = next((s for s in shapes if s is not None and 0 in s), None)
    why = (
        f": `loss_fn` compares tensors of shape {_shape(empty)}, with no values in them"
        if empty is not None
        else ""
    )
    raise Mistake(
        f"The training loss is {losses[0]} from the first epoch{why}.", "training.loss_nan"
    )


def _shape(shape: list) -> str:
    """A shape as PyTorch prints one: (80,), (80, 1)."""
    return f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(map(str, shape))})"


def _short(values: list, length: int | None = None) -> str:
    """A list as a student would write it (0, not 0.0), its middle elided when long. `length`:
    the list's own length, where only its first entries were kept (snapshot.MAX_ITEMS)."""
    length = len(values) if length is None else length
    shown = [f"{v:g}" if isinstance(v, (int, float)) else repr(v) for v in values]
    if length > 12:
        tail = shown[-2:] if length == len(values) else []
        shown = [*shown[:5], "...", *tail]
        return f"[{', '.join(shown)}] ({length} entries)"
    return f"[{', '.join(shown)}]"
