"""Chapter 01's reading of a cell's error: the value off the device, an earlier cell's fault.

The core (grader/checking/plugin.py) gives a cell's error its message and the catalogue's hint; these
sharpen the hint with what the chapter knows: the tensors and models a device error meets, a
broken model class or `nn.L1Loss` uncalled that every later cell trips over.
"""

from __future__ import annotations

import ast
import re

from grader.check_api import Mistake, Record, names_made, parse
from grader.checking.hints import and_list, section_hint
from grader.packs.workflow01.model import device_fault, fault
from grader.packs.workflow01.state import DATA, device_changed
from grader.record.submission import DATASET_TYPES


def diagnose(
    record: Record, section_id: str, error: dict, message: str, hint: str
) -> tuple[str, str]:
    """(message, hint) for a cell's error, as the core read it, sharpened."""
    if hint == "device.mismatch":
        try:
            elsewhere, hint = _elsewhere(record, section_id, error)
        except Exception:  # an odd record: torch's own message, and the section's hint
            elsewhere = ""
        message += elsewhere
    if hint != "model.requires_grad" or _graph_cut_by_the_loop(record):
        hint = section_hint(hint, section_id, record.assignment)  # hints.toml's [[section_hint]]
    if hint == "load.keys" and _loaded_into_other_class(record, error["evalue"]):
        hint = "load.other_class"
    return message, _earlier_fault(record, section_id, error) or hint


def sharpen(record: Record, section_id: str, hint: str | None) -> str | None:
    """A check's hint, sharpened: None from the model where a `forward` has no `return`."""
    if hint == "name.none":
        return _model_fault(record, section_id) or hint
    return hint


def _elsewhere(record: Record, section_id: str, error: dict) -> tuple[str, str]:
    """(what the message adds, the hint) for a same-device error: the tensors and models on
    the failing line that were off `device` as the cell raised (the grader looked at them
    then), named, with the hint for moving what is actually elsewhere, not what already is
    on the device."""
    from grader.packs.workflow01.standins import misplaced, misplaced_in_cell  # torch: where needed

    snapshot = record.raw.get("at_error", {}).get(section_id)
    cell = record.stub_cell(section_id) or {}
    gpu = record.expected_device == "cuda"
    line, source = error.get("line") or "", cell.get("source", "")
    made, number = record.raw_value("device", "device"), names_made(source).get("device")
    if snapshot and number and device_changed(made, snapshot.get("device", {})):
        where = f" on line {number}"
        return (
            f" (your cell changes `device` from {made['value']!r} to "
            f"{snapshot['device']['value']!r}{where}, so `.to(device)` sends values away from "
            "the model and data the earlier cells put on the old one)",
            "device.changed",
        )
    found = misplaced_in_cell(snapshot, line, source, gpu) if snapshot else []
    if not found:
        return "", "device.mismatch"
    device = snapshot["device"]["value"]
    names = and_list([f"`{n}`" for n in found])
    verb = "is" if len(found) == 1 else "are"
    kinds = {snapshot[n]["kind"] for n in found}
    places = set()
    for name in found:
        value = snapshot[name]
        tensors = value.get("parameters", []) if value["kind"] == "module" else [value]
        places |= {str(t.get("device", "")).split(":")[0] for t in tensors}
    where = and_list(sorted(places - {str(device).split(":")[0]}))
    text = f" ({names} {verb} on {where}, not on `device` ({device!r}))"
    a = record.assignment
    dropped = _dropped_move(record, section_id, found) if kinds == {"tensor"} else ""
    if dropped:
        return text + "." + dropped, "device.to_not_kept"
    if kinds == {"tensor"}:
        hint = "training.off_device" if section_id == "training_loop" else "device.data_not_moved"
        # The hint's example names `X_train`: the fix for the tensors actually left behind,
        # and for the rest of the data left with them, which the next line would meet.
        also = [n for n in misplaced(snapshot, " ".join(DATA), gpu) if n not in found]
        fix = and_list([f"`{n} = {n}.to(device)`" for n in found + also])
        moved = "moves it" if len(found + also) == 1 else "move them"
        others = and_list([f"`{n}`" for n in also])
        too = f"; {others} {'is' if len(also) == 1 else 'are'} off it too" if also else ""
        text = f"{text[:-1]}{too}: {fix} {moved} there)"
    elif found == [a.loaded_name]:
        hint = "load.not_on_device"
    elif found == [a.model_name]:
        hint = "model.not_on_device"
    else:
        hint = "device.mismatch"
    return text, hint


def _dropped_move(record: Record, section_id: str, names: list[str]) -> str:
    """Where a graded cell up to this section moves one of `names` without keeping the
    result (`X_train.to(device)` alone on a line: a tensor's `.to` returns a moved copy), the
    sentence that names the line; "" where none does."""
    order = list(record.assignment.section_ids)
    for earlier in order[: order.index(section_id) + 1] if section_id in order else ():
        cell = record.stub_cell(earlier)
        tree = parse(cell.get("source", "")) if cell else None
        for node in ast.walk(tree) if tree is not None else ():
            call = node.value if isinstance(node, ast.Expr) else None
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr in ("to", "cuda")
                and isinstance(call.func.value, ast.Name)
                and call.func.value.id in names
            ):
                name, where = call.func.value.id, f"line {node.lineno}"
                if earlier != section_id:
                    where += f" of your `{earlier}` cell"
                return (
                    f" {where[0].upper()}{where[1:]}, `{ast.unparse(call)}`, makes a moved copy "
                    f"and drops it: write `{name} = {ast.unparse(call)}`."
                )
    return ""


def _earlier_fault(record: Record, section_id: str, error: dict) -> str | None:
    """The hint for an earlier cell's mistake that breaks every later use of what it made,
    whatever a later cell's error says: the fix is in that earlier cell.

    A broken model class (misspelled `__init__` or `forward`, a `forward` that reads the
    notebook's `X`, returns None or reads an attribute `__init__` never made, tensors that
    `.to(device)` leaves behind), or `loss_fn = nn.L1Loss` (the class: calling it with the
    predictions fails in a way that names neither), or labels that track gradients (made from a
    `weight` with `requires_grad=True`: the second backward finds their graph freed), or a
    split into datasets (`random_split`) where tensors were asked for."""
    fault = _model_fault(record, section_id, error)
    if fault:
        return fault
    if _comes_after(record, section_id, "split"):
        labels = record.raw_value("y_train", "split")
        if labels.get("kind") == "tensor" and labels.get("requires_grad"):
            return "data.requires_grad"  # its graph is freed by the first backward
        # `random_split` gave Subsets: `.to(device)` and the model's `*` fail on them.
        split = record.assignment.section("split").names
        if any(record.raw_value(name, "split").get("type") in DATASET_TYPES for name in split):
            return "split.subset"
    if _comes_after(record, section_id, "loss_optimizer"):
        loss_fn = record.raw_value("loss_fn", "loss_optimizer")
        if loss_fn.get("kind") == "class" and loss_fn.get("is_module"):
            return "loss.class_not_instance"
    return None


def _model_fault(record: Record, section_id: str, error: dict | None = None) -> str | None:
    """The hint for the model class's fault, in a section after the model's. Only a sharper
    hint: where working it out fails, the verdict keeps its own."""
    if not _comes_after(record, section_id, "model"):
        return None
    try:
        model = record.module(record.assignment.model_name, "model")
        return fault(model) or (device_fault(model, error["evalue"]) if error else None)
    except Exception:  # no model after the model cell (a Mistake), or an odd record
        return None


def _comes_after(record: Record, section_id: str, earlier: str) -> bool:
    order = list(record.assignment.section_ids)
    return (
        earlier in order and section_id in order and order.index(section_id) > order.index(earlier)
    )


def _loaded_into_other_class(record: Record, error: str) -> bool:
    """Whether the state_dict was loaded into another class than the trained model's (an
    `nn.Linear` trained, a `LinearRegressionModel` made to load it): its keys cannot match.
    torch's error names the class it loaded into; the cell's own model may be gone (a cell
    that fails is replaced by the reference's)."""
    assignment = record.assignment
    named = re.search(r"loading state_dict for (\w+)", error)
    try:
        trained = record.module(assignment.model_name, "load_model").class_name
        if named:
            return trained != named.group(1)
        return trained != record.module(assignment.loaded_name, "load_model").class_name
    except Mistake:
        return False


def _graph_cut_by_the_loop(record: Record) -> bool:
    """Whether every parameter of the model needed a gradient (so a backward with no graph is
    the loop's doing: `.detach()`, `inference_mode`), rather than the model's."""
    try:
        parameters = record.module(record.assignment.model_name, "model").parameters
    except Mistake:
        return True
    return all(p["requires_grad"] for p in parameters)
