"""The training's verdict from the grader's own evidence: the data, the start, the replay.

The trace says what the student's loop did, and a mistake found there explains a failure; it
never proves a success, since the student's code shares its process with the tracer. Here the
grader judges the outcome: the loop's inputs and labels are pairs of the `X_train` and `y_train`
the cells before it made (snapshotted), and the model's final parameters are those the grader's
own replay of the student's setup (start, loss, optimizer, learning rate, steps) reaches on that
data, read from the parameters themselves.
"""

from __future__ import annotations

import torch

from grader.check_api import Mistake
from grader.packs.workflow01.epochs import (
    loss_labels,
    parameter_values,
    training_forward,
    training_view,
)
from grader.packs.workflow01.model import line_of
from grader.packs.workflow01.reference import (
    REPLAYABLE_LOSSES,
    REPLAYABLE_OPTIMIZERS,
    TOLERANCE,
    replay_setup,
)


def training_data(record, assignment) -> tuple[torch.Tensor, torch.Tensor]:
    """`X_train` and `y_train` as the cells before the training cell left them (the training
    cell may move them to the device; it cannot make them other data)."""
    sections = list(assignment.section_ids)
    before = sections[: sections.index("training_loop")]
    for section_id in reversed(before):
        try:
            X = record.tensor("X_train", section_id).values
            y = record.tensor("y_train", section_id).values
        except Mistake:
            continue
        return X.detach().double().cpu(), y.detach().double().cpu()
    raise Mistake(
        "`X_train` and `y_train` are not defined before the training loop.", "name.missing"
    )


def _pairs(X: torch.Tensor, y: torch.Tensor) -> set[tuple[float, float]] | None:
    if X.numel() != y.numel():
        return None
    rows = torch.stack([X.reshape(-1), y.reshape(-1)], dim=1).float().tolist()
    return {(round(a, 5), round(b, 5)) for a, b in rows}


def wrong_data(record, assignment, loop) -> tuple[str, int] | None:
    """(hint, first epoch) where a training step learned from anything but pairs of the
    training data: its labels are not `y_train`'s (`X_train`, or labels made from the
    predictions), or its inputs are not `X_train`'s rows. None when every step's are."""
    return record.memo(("wrong_data", assignment.id), lambda: _wrong_data(record, assignment, loop))


def _wrong_data(record, assignment, loop) -> tuple[str, int] | None:
    X, y = training_data(record, assignment)
    known = _pairs(X, y)
    if known is None:
        return None  # X_train and y_train differ in length: the split section says so
    test = None
    if not loop["test_is_train"] and loop["X_test"] is not None and loop["y_test"] is not None:
        test = _pairs(loop["X_test"].double().cpu(), loop["y_test"].double().cpu())
    seen: set[tuple[int, int]] = set()
    for number, epoch in enumerate(loop["epochs"]):
        at = training_forward(epoch.events, loop["model_id"])
        if at is None:
            continue  # no forward: the loop's own checks say so
        loss = next(
            (e for e in epoch.events[at + 1 :] if e["kind"] == "loss" and e["grad_enabled"]),
            None,
        )
        inputs = epoch.events[at]["input"]
        labels = loss_labels(loss)
        if not inputs or inputs["values"] is None or not labels or labels["values"] is None:
            continue
        # The trace shares one copy of a tensor whose values did not change (X_train, y_train
        # every epoch): each distinct pair of copies is compared once.
        key = (id(inputs["values"]), id(labels["values"]))
        if key in seen:
            continue
        seen.add(key)
        pairs = _pairs(inputs["values"].double(), labels["values"].double())
        if pairs is not None and test and pairs <= test and not pairs <= known:
            return "training.test_data", number
        if pairs is None or not pairs <= known:
            xs = {a for a, _ in known}
            inputs_known = {round(v, 5) for v in inputs["values"].float().reshape(-1).tolist()}
            hint = "training.wrong_labels" if inputs_known <= xs else "training.wrong_data"
            return hint, number
    return None


def models_before_the_loop(record, assignment):
    """The graded model as each section before the training loop left it, the latest first
    (those where it was a model)."""
    sections = list(assignment.section_ids)
    for section_id in reversed(sections[: sections.index("training_loop")]):
        try:
            yield record.module(assignment.model_name, section_id)
        except Mistake:
            continue


def untrained(record, assignment, trained):
    """The trained model as it stood before the loop: after the last section before it that
    held that same model, else after the model section (or the loss section's)."""
    for model in models_before_the_loop(record, assignment):
        if model.id == trained.id:
            return model
    try:
        return record.module(assignment.model_name, "model")
    except Mistake:
        return record.module(assignment.model_name, "loss_optimizer")


def replayed(record, assignment) -> dict | None:
    """The grader's replay of the student's training: {"start", "final", "reached", "steps"};
    None where the model is not a line of two parameters (the model section says so)."""
    return record.memo(("replayed", assignment.id), lambda: _replayed(record, assignment))


def _replayed(record, assignment) -> dict | None:
    loop = training_view(record, assignment)
    epochs = loop["epochs"]
    if not epochs:
        raise Mistake("Your loop never calls `optimizer.step()`.", "training.no_step")
    if loop["replaced"]:
        raise Mistake(
            f"`{assignment.model_name}` after this cell is not the model your loop trained: "
            f"the cell makes a new `{assignment.model_name}` after training it.",
            "training.model_replaced",
        )
    trained = loop["model"]
    start_model = untrained(record, assignment, trained)
    start, final = line_of(start_model, record), line_of(trained, record)
    if start is None or final is None:
        return None
    first = epochs[0].step
    held = held_optimizer(record, assignment, first)
    loss_event = next(
        (e for ep in epochs for e in ep.events if e["kind"] == "loss" and e["grad_enabled"]),
        None,
    )
    loss_class = loss_event["loss_class"] if loss_event else "L1Loss"
    reduction = record.raw_value("loss_fn", "loss_optimizer").get("reduction") or "mean"
    settings = held["settings"]
    if (
        held["class"] not in REPLAYABLE_OPTIMIZERS
        or loss_class not in REPLAYABLE_LOSSES
        or reduction not in ("mean", "sum")
        or held["lr"] is None
    ):
        raise Mistake(
            f"Your loop trains with `{held['class']}` and `{loss_class}`, which "
            "cannot be checked against the exercise: train with `torch.optim.SGD(..., "
            "lr=0.01)` and `nn.L1Loss()`, as it asks.",
            "training.final_params",
        )
    optimizer = {"class": held["class"], "lr": held["lr"]}
    optimizer.update({k: v for k, v in settings.items() if v is not None})
    trainable = _trainable(first, start)
    X, y = training_data(record, assignment)
    steps = len(epochs)  # a cut trace: the steps it recorded
    batches = _batches(record, assignment, loop, X, y, steps)
    reached = replay_setup(start, batches, optimizer, loss_class, reduction, trainable)
    first_step = replay_setup(start, batches[:1], optimizer, loss_class, reduction, trainable)
    last = _last(epochs, start, final)
    return {
        "start": start,
        "final": final,
        "reached": reached,
        # A setup whose first step leaves the line as it was trains nothing (a step can only
        # stay put with no gradient to follow or no learning rate).
        # (nan, from no training rows, is not judged here.)
        "moves": any(not abs(a - b) <= 1e-7 for a, b in zip(first_step, start)),
        # Whether it should: the optimizer, as the grader holds it, steps the trained model's
        # parameters and they require gradients (else the loss section says what it steps),
        # and there are training rows to learn from (else the split section says so).
        "should_move": X.numel() > 0
        and any(
            p["id"] in held["param_ids"] and p.get("requires_grad") for p in trained.parameters
        ),
        "steps": steps,
        "last": last,
        "cut": loop["cut"],
    }


def held_optimizer(record, assignment, step: dict) -> dict:
    """{"class", "lr", "settings"} of the optimizer the loop stepped, as the grader's snapshots
    hold it: as the cells before the loop left it (a learning rate changed inside the loop is
    not replayed), or as the training cell made it. The trace's own account of the step is
    the student's process speaking (code can write any step there), so it is used only where
    no snapshot holds an optimizer at all."""
    sections = list(assignment.section_ids)
    order = [*reversed(sections[: sections.index("training_loop")]), "training_loop"]
    found = [
        value
        for section_id in order
        for value in record.snapshot(section_id).values()
        if value.get("kind") == "optimizer" and value.get("param_groups")
    ]
    same = [value for value in found if value.get("id") == step["optimizer_id"]]
    if same or found:
        chosen = (same or found)[0]
        group = chosen["param_groups"][0]
        return {
            "class": chosen.get("class"),
            "lr": group.get("lr"),
            "settings": group["settings"],
            "param_ids": {i for g in chosen["param_groups"] for i in g["param_ids"]},
        }
    lr = step["lr"][0] if step["lr"] else None
    return {
        "class": step["optimizer_class"],
        "lr": lr,
        "settings": (step.get("settings") or [{}])[0],
        "param_ids": set(step["param_ids"]),
    }


def _positions(step: dict, start) -> list[int | None]:
    """For weight and bias, where in the step's rows the parameter that holds it is (None: no
    parameter the optimizer holds starts with that value, as a bias that `forward` never uses)."""
    before = parameter_values(step) or []
    values = [float(v.reshape(-1)[0]) if v.numel() == 1 else None for v in before]
    found: list[int | None] = []
    for value in start:
        at = next(
            (
                i
                for i, v in enumerate(values)
                if v is not None and i not in found and abs(v - value) <= 1e-6 * max(1.0, abs(v))
            ),
            None,
        )
        found.append(at)
    return found


def _trainable(step: dict, start) -> tuple[bool, bool]:
    """Which of (weight, bias) the student's optimizer steps: those it holds that got a
    gradient (a parameter it never steps stays put in the replay too)."""
    present = step["grads_present"]
    return tuple(at is not None and bool(present[at]) for at in _positions(step, start))


def _last(epochs, start, final) -> tuple[float, float] | None:
    """(weight, bias) as the loop's last step left them (a value no parameter holds: as found)."""
    first, last = epochs[0].step, epochs[-1].step
    after = parameter_values(last, "params_after")
    if after is None or last["param_ids"] != first["param_ids"]:
        return None
    return tuple(
        float(after[at].reshape(-1)[0]) if at is not None and after[at].numel() == 1 else value
        for at, value in zip(_positions(first, start), final)
    )


def _batches(record, assignment, loop, X, y, steps):
    """The data each replayed step learns from: the loop's own batches where they are pairs of
    the training data (mini-batches, a shuffled order), else the whole training data."""
    whole = (X.float(), y.float().reshape(X.shape) if y.numel() == X.numel() else y.float())
    if loop["cut"] or wrong_data(record, assignment, loop) is not None:
        return [whole] * steps
    batches: list = []
    made: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
    for epoch in loop["epochs"]:
        at = training_forward(epoch.events, loop["model_id"])
        loss = (
            next(
                (e for e in epoch.events[at + 1 :] if e["kind"] == "loss" and e["grad_enabled"]),
                None,
            )
            if at is not None
            else None
        )
        inputs, labels = (epoch.events[at]["input"] if at is not None else None), loss_labels(loss)
        if inputs and labels and inputs["values"] is not None and labels["values"] is not None:
            key = (id(inputs["values"]), id(labels["values"]))
            if key not in made:  # one tensor per distinct batch (shared copies: see wrong_data)
                x = inputs["values"].float()
                made[key] = (x, labels["values"].float().reshape(x.shape))
            batches.append(made[key])
        else:
            batches.append(whole)
    return batches


def judge_training(record, assignment) -> None:
    """Raise the Mistake that says why the training did not reach what the grader's replay
    reaches, if it did not."""
    outcome = replayed(record, assignment)
    if outcome is None:
        return  # the model is not a line of two parameters: the model section says so
    (found_w, found_b), (w, b) = outcome["final"], outcome["reached"]
    if outcome["cut"]:
        _judge_cut_training(record, assignment, outcome)
        return
    start_w, start_b = outcome["start"]
    if outcome["should_move"] and not outcome["moves"]:
        # Nothing to learn from: a replay that stays put proves no training, whatever the
        # trace claims (steps without gradients, a learning rate of zero).
        explained = _explanation(record, assignment)
        if explained is not None:
            raise Mistake(
                f"Your loop's {outcome['steps']} steps leave weight={found_w:.4f} and "
                f"bias={found_b:.4f} where they started: {explained[1]}.",
                explained[0],
            )
        raise Mistake(
            f"Your loop's {outcome['steps']} steps of `optimizer` as the cells before it set "
            f"it up leave weight={start_w:.4f} and bias={start_b:.4f} where they started: the "
            "model learns nothing. Train with `torch.optim.SGD(..., lr=0.01)` over the "
            "model's parameters, and call `loss.backward()` before `optimizer.step()`.",
            "training.final_params",
        )
    if (
        abs(found_w - w) <= TOLERANCE["weight"] + 1e-6
        and abs(found_b - b) <= TOLERANCE["bias"] + 1e-6
    ):
        return
    explained = _explanation(record, assignment)
    if explained is not None:
        hint, what = explained
        raise Mistake(
            f"After training, weight={found_w:.4f} and bias={found_b:.4f}, where "
            f"{outcome['steps']} steps of your setup on `X_train` and `y_train` reach "
            f"weight={w:.4f} and bias={b:.4f}: {what}.",
            hint,
        )
    last = outcome["last"]
    if last is not None and (abs(last[0] - found_w) > 1e-6 or abs(last[1] - found_b) > 1e-6):
        raise Mistake(
            f"After your loop's last step the parameters were weight={last[0]:.4f} and "
            f"bias={last[1]:.4f}, but the cell leaves weight={found_w:.4f} and "
            f"bias={found_b:.4f}: something changed them after training.",
            "training.overwritten",
        )
    raise Mistake(
        f"After training, weight={found_w:.4f} and bias={found_b:.4f}; {outcome['steps']} "
        f"steps of your setup from your starting values on `X_train` and `y_train` reach "
        f"weight={w:.4f} and bias={b:.4f}.",
        "training.final_params",
    )


def _judge_cut_training(record, assignment, outcome) -> None:
    """A loop past the trace's budget: its end is unknown (the epochs check says so), and near
    its end L1 training oscillates, so the trained line is not held to one replayed point: it
    must have learned, fitting the training data at least twice as well as the student's
    starting line. A flood of calls made to hide the loop does not hide a line that never
    learned."""
    X, y = training_data(record, assignment)
    y = y.reshape(X.shape) if y.numel() == X.numel() else y

    def error(line) -> float:
        return float((line[0] * X + line[1] - y).abs().mean())

    found, start = error(outcome["final"]), error(outcome["start"])
    if found <= 0.5 * start:
        return
    found_w, found_b = outcome["final"]
    raise Mistake(
        f"Your loop ran far longer than the exercise needs, yet the line it ended with "
        f"(weight={found_w:.4f}, bias={found_b:.4f}) misses the training data by {found:.4f} "
        f"on average, more than half of your starting line's {start:.4f}: it barely learned. "
        "Check the five steps in each epoch.",
        "training.final_params",
    )


def loop_findings(record, loop):
    """What the trace shows of the five steps in each epoch of the training loop (epochs.py)."""
    from grader.packs.workflow01.epochs import find_problems

    cell = record.stub_cell("training_loop")["index"]
    # The parameters the loop trains: the model's, and those its optimizer steps.
    params = {p["id"] for p in loop["model"].parameters} | {
        i for e in loop["events"] if e["kind"] == "step" for i in e["param_ids"]
    }
    return find_problems(
        loop["epochs"],
        loop["tail"],
        loop["model_id"],
        None if loop["test_is_train"] else loop["X_test"],
        None if loop["test_is_train"] else loop["y_test"],
        # No backward into these parameters before the loop (another model's, in an earlier
        # cell, leaves them none): its first epoch has no gradients to zero.
        fresh_gradients=not any(
            e.get("cell") is not None
            and e["cell"] < cell
            and (e.get("param_ids") is None or params & set(e["param_ids"]))
            for e in record.events("backward")
        ),
    )


def _explanation(record, assignment) -> tuple[str, str] | None:
    """(hint, why) for a training that did not reach the replay's parameters, where the trace
    names the mistake (its data, or one of the five steps); None otherwise."""
    loop = training_view(record, assignment)
    found = wrong_data(record, assignment, loop)
    if found is not None:
        return found[0], "the loop did not learn from `X_train` and `y_train`"
    findings = loop_findings(record, loop)
    for hint, count in findings.problems.most_common():
        if count:
            return hint, "the five steps of each epoch explain why (see the loop's checks)"
    return None
