"""Chapter 01's state between cells: what a later cell changes of a value that the sections
after it need, as its own section charges it and as the grader puts it back for the later ones
(standins.repair): the model's dtype (`model_1.double()`), the data's device
(`X_test = X_test.cpu()` after the loop moved it to the GPU).
"""

from __future__ import annotations

import re

from grader.check_api import Mistake, Record

DATA = ("X_train", "y_train", "X_test", "y_test")


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


def moved_off_device(earlier: dict[str, dict[str, dict]], now: dict[str, dict]) -> list[str]:
    """The data tensors that the latest of the `earlier` snapshots (by section id, in the
    order the cells ran) held on a GPU and `now` holds on the CPU: a cell moved them back."""
    if not earlier:
        return []
    before = list(earlier.values())[-1]
    return [
        name
        for name in DATA
        if before.get(name, {}).get("kind") == "tensor"
        and now.get(name, {}).get("kind") == "tensor"
        and _place(before[name]) == "cuda"
        and _place(now[name]) == "cpu"
    ]


def _place(value: dict) -> str:
    return str(value.get("device", "cpu")).split(":")[0]


# What moves a tensor to the CPU on a line that rebinds it.
_TO_CPU = re.compile(r"=.*(\.cpu\(|\.to\(\s*['\"]cpu)")


def data_kept_on_device(record: Record, section_id: str) -> None:
    """The data stays on `device` through a section's cell once an earlier cell put it there:
    a cell that moves it back to the CPU (to plot it, say) leaves every later cell to meet it
    there, beside the model on the GPU."""
    snapshots = record.raw.get("snapshots", {})
    ids = list(snapshots)
    if section_id not in ids:
        return
    earlier = {s: snapshots[s] for s in ids[: ids.index(section_id)]}
    moved = moved_off_device(earlier, snapshots[section_id])
    if not moved:
        return
    source = (record.stub_cell(section_id) or {}).get("source", "")
    lines = [
        (n, text.strip())
        for n, text in enumerate(source.splitlines(), 1)
        if any(name in text.split("=")[0] for name in moved) and _TO_CPU.search(text)
    ]
    where = f" (line {lines[0][0]}, `{lines[0][1]}`)" if lines else ""
    shown = ", ".join(f"`{n}`" for n in moved)
    raise Mistake(
        f"Your cell moves {shown} from `device` back to the CPU{where}: the cells after it meet "
        "them there, beside the model on the GPU.",
        "device.data_moved_back",
    )
