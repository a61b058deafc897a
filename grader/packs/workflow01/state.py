"""Chapter 01's state between cells: what a later cell changes of a value that the sections
after it need, as its own section charges it and as the grader puts it back for the later ones
(standins.repair): the model's dtype (`model_1.double()`), the data's device
(`X_test = X_test.cpu()` after the loop moved it to the GPU), `device` itself (`device = "cpu"`
after the device cell made it "cuda").
"""

from __future__ import annotations

import re

from grader.check_api import Mistake, Record, names_made
from grader.packs.workflow01.assignments import Assignment

DATA = ("X_train", "y_train", "X_test", "y_test")
# The sections whose cells come after the model's and the device's, where such a change is
# charged to its cell (`state_kept`) and put back for the later ones (standins.repair).
STATE_SECTIONS = ("loss_optimizer", "training_loop", "predictions", "save_model")
# Those after which a later section still runs the model on the data (the predictions): moving
# it to the CPU there strands it; the predictions and save cells may (to save from the CPU).
MODEL_NEEDED_AFTER = ("loss_optimizer", "training_loop")


def state_kept(record: Record, assignment: Assignment, section_id: str) -> None:
    """What a section's cell leaves of the model's dtype, `device` and the data's device is
    what the cells before it made (each rule says why)."""
    dtype_kept(record, assignment.model_name, section_id)
    kept_on_device(record, section_id, assignment.model_name)


def changed_dtype(made: dict, now: dict) -> str | None:
    """The dtype ("float32") the model section's model (`made`, a snapshot's value) had, where
    the same model (`now`) has another one now; None where it kept it or either is no model."""
    if (
        made.get("kind") != "module"
        or now.get("kind") != "module"
        or made.get("id") != now.get("id")
    ):
        return None
    before = {p.get("dtype") for p in made.get("parameters", [])}
    after = {p.get("dtype") for p in now.get("parameters", [])}
    if len(before) != 1 or before == after or not str(next(iter(before))).startswith("float"):
        return None
    return next(iter(before))


# What changes a model's dtype on a line of a cell: `.double()`, `.half()`, `.to(torch.float64)`.
_DTYPE_CHANGE = re.compile(
    r"\.(double|half|bfloat16)\(|\.(to|type)\(.*\b(float64|double|float16|half)\b"
)


def dtype_kept(record: Record, model_name: str, section_id: str) -> None:
    """The model keeps the dtype its own cell gave it through a later section's cell: a
    `model_1.double()` after it changes every result after it, and no new instance of the
    class (the reloaded model) shares it."""
    made = record.raw_value(model_name, "model")
    now = record.raw_value(model_name, section_id)
    before = changed_dtype(made, now)
    if before is None:
        return
    after = sorted({p["dtype"] for p in now["parameters"]})
    source = (record.stub_cell(section_id) or {}).get("source", "")
    lines = [
        (n, text.strip())
        for n, text in enumerate(source.splitlines(), 1)
        if model_name in text and _DTYPE_CHANGE.search(text.split("#")[0])
    ]
    where = f" (line {lines[0][0]}, `{lines[0][1]}`)" if lines else ""
    raise Mistake(
        f"Your cell changes `{model_name}`'s parameters from {before} to "
        f"{', '.join(after)}{where}: keep the model in the dtype your model cell gave "
        "it.",
        "model.dtype_changed",
    )


def data_undone(earlier: dict[str, dict[str, dict]], now: dict[str, dict]) -> dict[str, str]:
    """The data tensors a cell undid, by name, with the line that restores each: those that
    the latest of the `earlier` snapshots (by section id, in the order the cells ran) held as
    tensors and `now` holds as numpy arrays (`X_test = X_test.numpy()`), or held on a GPU and
    `now` holds on the CPU (`X_test = X_test.cpu()`)."""
    if not earlier:
        return {}
    before = list(earlier.values())[-1]
    undone = {}
    for name in DATA:
        was, is_now = before.get(name, {}), now.get(name, {})
        if was.get("kind") != "tensor" or is_now.get("kind") != "tensor":
            continue
        to_device = ".to(device)" if _place(was) == "cuda" else ""
        if is_now.get("numpy") and not was.get("numpy"):
            undone[name] = f"{name} = torch.as_tensor({name}){to_device}"
        elif to_device and _place(is_now) == "cpu":
            undone[name] = f"{name} = {name}{to_device}"
    return undone


def model_moved_back(earlier: dict[str, dict[str, dict]], now: dict[str, dict], name: str) -> bool:
    """Whether the model `name`, all on a GPU in the latest of the `earlier` snapshots, is the
    same model all on the CPU `now`: a cell moved it back (`model_1.cpu()` after training)."""
    if not earlier:
        return False
    was, is_now = list(earlier.values())[-1].get(name, {}), now.get(name, {})
    if was.get("kind") != "module" or is_now.get("kind") != "module":
        return False
    places = [{_place(p) for p in v.get("parameters", [])} for v in (was, is_now)]
    return was.get("id") == is_now.get("id") and places == [{"cuda"}, {"cpu"}]


def _place(value: dict) -> str:
    return str(value.get("device", "cpu")).split(":")[0]


# What moves a tensor to the CPU, or makes it a numpy array, on a line that rebinds it.
_UNDOES = re.compile(r"=.*(\.cpu\(|\.to\(\s*['\"]cpu|\.numpy\(|np\.array\(|np\.asarray\()")


def device_changed(made: dict, now: dict) -> bool:
    """Whether `device` as the device cell made it (`made`, a snapshot's value: a string or a
    torch.device) names another kind of device now: a later cell changed it."""
    places = [
        str(v.get("value")).split(":")[0] if v.get("kind") in ("value", "device") else None
        for v in (made, now)
    ]
    # Only a usable device changed for another: one the device section put right ("gpu") is not.
    return set(places) <= {"cpu", "cuda"} and places[0] != places[1]


def changed_here(earlier: dict[str, dict[str, dict]], made: dict, now: dict) -> bool:
    """Whether `device` (`made` by the device cell) is changed in `now`, and was still as made
    in the latest of the `earlier` snapshots: the cell between them changed it, not one before
    that raised (that one failed already; the grader puts `device` back after the next)."""
    previous = list(earlier.values())[-1].get("device", {}) if earlier else made
    return device_changed(made, now) and not device_changed(made, previous)


def kept_on_device(record: Record, section_id: str, model_name: str) -> None:
    """`device`, and the data on it, stay as they are through a section's cell: a cell that
    changes `device` (`device = "cpu"` to plot) sends the later cells' models elsewhere than
    their data; one that moves the data back to the CPU leaves every later cell to meet it
    there, beside the model on the GPU."""
    snapshots = record.raw.get("snapshots", {})
    ids = list(snapshots)
    if section_id not in ids:
        return
    earlier = {s: snapshots[s] for s in ids[: ids.index(section_id)]}
    made, now = record.raw_value("device", "device"), record.raw_value("device", section_id)
    if changed_here(earlier, made, now):
        source = (record.stub_cell(section_id) or {}).get("source", "")
        line = names_made(source).get("device")
        text = source.splitlines()[line - 1].strip() if line else ""
        where = f" (line {line}, `{text}`)" if line else ""
        raise Mistake(
            f"Your cell changes `device` from {made['value']!r} to {now['value']!r}{where}: "
            "the cells after it would put their models on the new device while the data "
            "stays on the old one.",
            "device.changed",
        )
    now = snapshots[section_id]
    source = (record.stub_cell(section_id) or {}).get("source", "")
    if section_id in MODEL_NEEDED_AFTER and model_moved_back(earlier, now, model_name):
        lines = [
            (n, text.strip())
            for n, text in enumerate(source.splitlines(), 1)
            if model_name in text and re.search(r"\.cpu\(|\.to\(\s*['\"]cpu", text)
        ]
        where = f" (line {lines[0][0]}, `{lines[0][1]}`)" if lines else ""
        raise Mistake(
            f"Your cell moves `{model_name}` from `device` back to the CPU{where}: the cells "
            "after it meet it there, beside the data on the GPU.",
            "device.model_moved_back",
        )
    undone = data_undone(earlier, now)
    if not undone:
        return
    lines = [
        (n, text.strip())
        for n, text in enumerate(source.splitlines(), 1)
        if any(name in text.split("=")[0] for name in undone) and _UNDOES.search(text)
    ]
    where = f" (line {lines[0][0]}, `{lines[0][1]}`)" if lines else ""
    arrays = [n for n in undone if now[n].get("numpy")]
    shown = ", ".join(f"`{n}`" for n in arrays or undone)
    if arrays:
        raise Mistake(
            f"Your cell turns {shown} into "
            f"{'a numpy array' if len(arrays) == 1 else 'numpy arrays'}{where}: the cells "
            "after it need the tensors (the reloaded model predicts on `X_test`). Give an array "
            "its own name, or convert the tensor inside the call that needs it.",
            "state.data_numpy",
        )
    raise Mistake(
        f"Your cell moves {shown} from `device` back to the CPU{where}: the cells after it meet "
        "them there, beside the model on the GPU.",
        "device.data_moved_back",
    )
