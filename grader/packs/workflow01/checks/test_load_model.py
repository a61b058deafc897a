"""Section `load_model`: a new instance filled by load_state_dict(torch.load(file))."""

import re

from grader.check_api import Mistake, check, expect, names_made, same_values
from grader.packs.workflow01.epochs import same_input
from grader.packs.workflow01.model import line_of, no_graph_built


def _loaded(record, assignment):
    return record.module(assignment.loaded_name, "load_model")


def _holds_the_saved_file(record, loaded) -> bool:
    """Whether the reloaded model holds exactly what the save cell wrote: where that is not the
    trained model, the save section fails for it and this cell did its part."""
    path = record.raw_value("MODEL_SAVE_PATH", "save_model").get("value")
    saved = record.saved_files.get(path) if isinstance(path, str) else None
    if saved is None or saved.state_dict is None or not loaded.parameters:
        return False
    return all(
        p["name"] in saved.state_dict
        and same_values(saved.state_dict[p["name"]].flatten(), p["values"].flatten())
        for p in loaded.parameters
    )


@check("load_model", "new_instance")
def test_new_instance_of_the_same_class(record, assignment):
    loaded = _loaded(record, assignment)
    trained = record.module(assignment.model_name, "load_model")
    expect(
        loaded.id != trained.id,
        f"`{assignment.loaded_name}` is `{assignment.model_name}` itself, not a new model.",
        "load.same_object",
    )
    expect(
        loaded.class_name == trained.class_name,
        f"`{assignment.loaded_name}` is a {loaded.class_name}, but the trained model is a "
        f"{trained.class_name}.",
        "load.other_class",
    )


@check("load_model", "load_state_dict", weight=2)
def test_filled_from_the_saved_file(record, assignment):
    loaded = _loaded(record, assignment)
    cell = record.stub_cell("load_model")["index"]
    calls = [e for e in record.events("load_state_dict", cell=cell) if e["module_id"] == loaded.id]
    if not calls:
        raise Mistake(
            f"`{assignment.loaded_name}.load_state_dict(...)` is never called.",
            "load.no_load_state_dict",
        )
    loads = {e["result_id"]: e for e in record.events("load")}
    if not any(call["arg_id"] in loads for call in calls):
        raise Mistake(
            "The state_dict you load does not come from `torch.load` of the saved file.",
            "load.not_from_file",
        )
    if _holds_the_saved_file(record, loaded):
        return
    trained = record.module(assignment.model_name, "load_model")
    for mine, theirs in zip(loaded.parameters, trained.parameters):
        expect(
            same_values(mine["values"].flatten(), theirs["values"].flatten()),
            f"`{assignment.loaded_name}`'s `{mine['name']}` differs from the trained model's.",
            "load.preds_mismatch",
        )


@check("load_model", "same_predictions", weight=2)
def test_predictions_match_exactly(record, assignment):
    preds = record.tensor(assignment.loaded_preds_name, "load_model")
    found = record.raw_value("y_preds", "load_model")
    y_preds = found.get("values") if found["kind"] == "tensor" else None
    if y_preds is not None and preds.shape == tuple(y_preds.shape):
        # y_preds of a model whose dtype a cell changed (`model_1.double()`, which that
        # section charges) differ from a new float32 instance's in their last digits only.
        atol = 0 if found.get("dtype") == preds.dtype else 1e-6
        if same_values(preds.values, y_preds, atol=atol):  # exactly equal, nan to nan
            return
    # Where y_preds itself is wrong or missing (the predictions section says so), judge the
    # reloaded model's output against what y_preds should have been: the trained model on
    # X_test; or, where the reloaded model holds the saved file, that file's model (a file that
    # is not the trained model costs the save section's points, not these).
    loaded = _loaded(record, assignment)
    if _holds_the_saved_file(record, loaded):
        line = line_of(loaded, record)
    else:
        line = line_of(record.module(assignment.model_name, "load_model"), record)
    X_test = record.tensor("X_test", "load_model").values
    expected = None if line is None else (line[0] * X_test.double() + line[1]).float()
    y_preds_wrong = expected is None or not same_values(y_preds, expected, atol=1e-5)
    expect(
        y_preds_wrong and expected is not None and same_values(preds.values, expected, atol=1e-5),
        f"`{assignment.loaded_preds_name}` does not equal `y_preds` exactly.",
        "load.preds_mismatch",
    )


@check("load_model", "from_reloaded_model")
def test_predictions_come_from_the_reloaded_model(record, assignment):
    """The reloaded predictions are the reloaded model's own: it holds the same values as the
    trained model, so only the calls in the cell can tell the two apart."""
    loaded = _loaded(record, assignment)
    preds = record.tensor(assignment.loaded_preds_name, "load_model")
    X_test = record.tensor("X_test", "load_model").values
    cell = record.stub_cell("load_model")
    calls = [
        e
        for e in record.events("forward", cell=cell["index"] if cell else None)
        if e["module_id"] == loaded.id
    ]
    if any(e.get("output_id") == preds.data.get("id") for e in calls):
        return
    expect(
        any(same_input(e["input"], X_test) for e in calls),
        f"`{assignment.loaded_preds_name}` does not come from `{assignment.loaded_name}`: "
        f"{_what_made(cell, assignment)}",
        "load.preds_not_reloaded",
    )


def _what_made(cell, assignment) -> str:
    """What the line that makes the reloaded predictions runs instead of the reloaded model:
    the trained model (named), else that the cell never runs the reloaded one on `X_test`."""
    source = cell.get("source", "") if cell else ""
    line = names_made(source).get(assignment.loaded_preds_name)
    text = source.splitlines()[line - 1].strip() if line else ""
    never = f"the cell never runs `{assignment.loaded_name}` on `X_test`."
    if not text:
        return never
    if re.search(rf"(?<![\w.]){re.escape(assignment.model_name)}\b", text):
        return (
            f"line {line}, `{text}`, predicts with `{assignment.model_name}`, the model you "
            f"trained, not the one you reloaded: write `{assignment.loaded_name}(X_test)`."
        )
    return f"line {line}, `{text}`, makes it, and {never}"


@check("load_model", "on_device", only="01_pytorch_workflow_exercises")
def test_loaded_model_on_device(record, assignment):
    loaded = _loaded(record, assignment)
    devices = {p["device"].split(":")[0] for p in loaded.parameters}
    expect(
        devices <= {record.student_device("load_model") or record.expected_device},
        f"`{assignment.loaded_name}` is on {', '.join(sorted(devices))}; move it to `device`.",
        "load.not_on_device",
    )


@check("load_model", "no_gradient")
def test_reloaded_predictions_carry_no_gradient(record, assignment):
    preds = record.tensor(assignment.loaded_preds_name, "load_model")
    expect(
        not preds.requires_grad,
        f"`{assignment.loaded_preds_name}` carries a gradient (requires_grad=True): predict "
        "inside `with torch.inference_mode():`.",
        "predictions.requires_grad",
    )
    no_graph_built(record, "load_model", _loaded(record, assignment), preds)


@check("load_model", "eval_mode")
def test_reloaded_model_predicts_in_eval_mode(record, assignment):
    calls = record.calls_of(_loaded(record, assignment).id, "load_model")
    if not calls:
        return  # no prediction here: same_predictions says so
    expect(
        not calls[-1]["training"],
        f"`{assignment.loaded_name}` was in train mode when it predicted (a new model starts "
        f"in train mode): call `{assignment.loaded_name}.eval()` first."
        + record.uncalled("load_model", "eval"),
        "predictions.not_eval",
    )
