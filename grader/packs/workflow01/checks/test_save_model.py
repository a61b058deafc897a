"""Section `save_model`: a state_dict under models/, loadable with weights_only=True."""

from pathlib import PurePath

from grader.check_api import Mistake, check, expect, same_values
from grader.packs.workflow01.state import state_kept


def _saved(record):
    path = record.value("MODEL_SAVE_PATH", "save_model")
    expect(
        path["kind"] in ("path", "value") and isinstance(path.get("value"), str),
        '`MODEL_SAVE_PATH` should be a path like `Path("models") / MODEL_NAME`.',
        "save.path",
    )
    return path["value"], record.saved_files.get(path["value"])


@check("save_model", "under_models")
def test_path_under_models(record):
    path, saved = _saved(record)
    # An absolute path into the notebook's own folder counts from there.
    path = saved.relative if saved is not None and saved.relative else path
    expect(
        PurePath(path).parts[:1] == ("models",) and len(PurePath(path).parts) >= 2,
        f"`MODEL_SAVE_PATH` is {path!r}; save under the `models/` folder.",
        "save.path",
    )


@check("save_model", "file_name")
def test_file_name_is_the_one_asked_for(record, assignment):
    path, saved = _saved(record)
    path = saved.relative if saved is not None and saved.relative else path
    # The folder is under_models' to judge: here only the file's own name counts.
    name = PurePath(path).name
    expected = f"models/{assignment.save_name}"
    expect(
        name == assignment.save_name,
        f"`MODEL_SAVE_PATH` is {path!r}, but the cell asks for {expected!r}: set "
        f'`MODEL_NAME = "{assignment.save_name}"`.',
        "save.file_name",
    )


@check("save_model", "state_dict", weight=2)
def test_file_holds_the_trained_state_dict(record, assignment):
    path, saved = _saved(record)
    if saved is None or not saved.exists:
        raise Mistake(f"There is no file at {path!r}.", "save.file_missing")
    if saved.state_dict is None:
        cell = record.stub_cell("save_model")["index"]
        saves = record.events("save", cell=cell)
        method = next((e["obj_type"] for e in saves if e["obj_kind"] == "method"), None)
        if method is not None:
            raise Mistake(
                f"You saved the method `{assignment.model_name}.{method}` itself (no `()`), "
                "which takes the whole model with it; call it: "
                f"`torch.save(obj={assignment.model_name}.{method}(), f=MODEL_SAVE_PATH)`.",
                "save.method_saved",
            )
        if any(e["obj_kind"] == "module" for e in saves):
            raise Mistake(
                "You saved the whole model object; save `model.state_dict()` instead.",
                "save.whole_model",
            )
        if saved.error and saved.error.startswith("it holds"):
            raise Mistake(
                f"The file at {path!r} is not a state_dict: {saved.error}.", "save.not_state_dict"
            )
        raise Mistake(
            f"The file at {path!r} does not load with `weights_only=True` ({saved.error}).",
            "save.pickle_protocol" if "pickle protocol" in saved.error else "save.unsafe_file",
        )
    model = record.module(assignment.model_name, "save_model")
    keys = [p["name"] for p in model.parameters]
    expect(
        sorted(saved.state_dict) == sorted(model.data["state_dict_keys"]),
        f"The saved keys are {sorted(saved.state_dict)}; `{assignment.model_name}` has "
        f"{sorted(model.data['state_dict_keys'])}.",
        "save.not_state_dict",
    )
    for name, param in zip(keys, model.parameters):
        expect(
            same_values(saved.state_dict[name].flatten(), param["values"].flatten()),
            f"The saved `{name}` is not the trained value: save after training.",
            "save.not_trained",
        )
    # Checked where the cell did its work, so that a cell that does nothing earns nothing.
    state_kept(record, assignment, "save_model")
