"""Chapter 01's model, a straight line: its weight and bias read off a recorded model
(grader.check_api.ModuleValue), and the hints for a model class that breaks every use of it.

The core records any `nn.Module` alike (its parameters, and its outputs on the probes drawn by
probes.py); which parameter is the slope, and what a line is, is this chapter's knowledge.
"""

from __future__ import annotations

import torch

from grader.check_api import Mistake, ModuleValue, Record, names_made
from grader.packs.workflow01.epochs import same_input


def _same_line(a, b) -> bool:
    return all(abs(x - y) <= 1e-5 * max(1.0, abs(x)) for x, y in zip(a, b))


def line_of(model: ModuleValue, record: Record | None = None) -> tuple[float, float] | None:
    """(weight, bias) of the model, as the grader judges its predictions and training.

    Where the class, as the model section of `record` found it, computes the line of its two
    parameters (the probes agree with them), the values are the parameters' own, read from
    storage: a `forward` that later answers the grader's probes differently from everyone else
    (or is swapped for another model's) cannot move the line the grader judges; the probes only
    say which parameter is the slope. Where the class computes something else (no bias, a
    global), that mistake costs the model section, and the line is read off the probes as the
    model really computes it, so that it is not charged again. Without a record, the class is
    taken to compute its line."""
    probed = probe_line(model)
    params = parameter_values(model)
    if params is None or (record is not None and probes_trusted(record)):
        return probed
    first, second = params
    if probed is not None:
        for order in ((first, second), (second, first)):
            if _same_line(order, probed):
                return order
    names = [p["name"].rsplit(".", 1)[-1].lower() for p in model.parameters]
    if "bias" in names[0] and "bias" not in names[1]:
        return second, first
    return first, second


def parameter_values(model: ModuleValue) -> tuple[float, float] | None:
    """The values of the model's two one-value parameters, in their order."""
    params = [p for p in model.parameters if p.get("values") is not None]
    if len(params) != 2 or any(p["values"].numel() != 1 for p in params):
        return None
    first, second = (float(p["values"].reshape(-1)[0]) for p in params)
    return first, second


def computes_its_line(model: ModuleValue) -> bool:
    """Whether the probes show the line of the model's own two parameters."""
    probed, params = probe_line(model), parameter_values(model)
    if probed is None or params is None:
        return False
    return _same_line(params, probed) or _same_line(params[::-1], probed)


def probe_line(model: ModuleValue) -> tuple[float, float] | None:
    """(weight, bias) read off the probes, when forward computes a straight line."""
    for probe in model.probes:
        if probe["shape"] != "column" or not probe.get("output"):
            continue
        x = probe["input"].flatten()
        out = probe["output"]["values"]
        if out is None or out.numel() != x.numel():
            return None
        out, x = out.flatten().double(), x.double()
        # The grader draws the inputs anew for every snapshot (probes.probe_inputs): the
        # slope is read between the two farthest apart, where float32's rounding of the
        # outputs moves it least (two close ones read it up to 1e-5 off, and a replay from
        # a start that far off can end elsewhere).
        low, high = int(x.argmin()), int(x.argmax())
        if float(x[high] - x[low]) == 0:
            return None
        weight = float((out[high] - out[low]) / (x[high] - x[low]))
        bias = float(out[low] - weight * x[low])
        if torch.allclose(out, weight * x + bias, atol=1e-5):
            return weight, bias
    return None


def probes_trusted(record: Record) -> bool:
    """Whether the model, as the model section found it, computes something other than the
    line of its parameters (then the probes say what it computes; see `line_of`)."""

    def compute() -> bool:
        name = getattr(record.assignment, "model_name", None)
        if name is None:  # an assignment with no trained line: the parameters as they are
            return False
        cell = record.stub_cell("model") or {}
        # A model the grader put right for the later sections (a `forward` that reads
        # the notebook's `X`): they use its class, which the next snapshot holds.
        repaired = name in (cell.get("repaired") or {}).get("names", [])
        data = {} if repaired else record.raw_value(name, "model")
        if data.get("kind") != "module":
            data = record.raw_value(name, "loss_optimizer")
        if data.get("kind") != "module":
            return True
        return not computes_its_line(ModuleValue(name, data))

    return record.memo(("class_line",), compute)


def fault(model: ModuleValue) -> str | None:
    """The hint for a class that breaks every use of the model, if it is broken so."""
    typo = model.misspelled()
    if typo:
        return "model.init_typo" if typo[1] == "__init__" else "model.no_forward"
    if model.forward_globals:
        return "model.forward_global"
    if model.returns_none():
        return "model.forward_no_return"
    if not model.parameters and model.data["plain_tensors"]:
        return "model.plain_tensor"  # nothing to train: the optimizer refuses it
    if model.missing_attribute():
        # Both parameters made under other names, or one never made at all.
        return "model.attribute_name" if len(model.parameters) >= 2 else "model.param_count"
    return None


def device_fault(model: ModuleValue, error: str) -> str | None:
    """A same-device error that the model itself explains, as the hint that says so: its
    plain tensor attributes (they stay behind on `.to(device)`), or a `forward` that fails
    so even on an input on the model's own device (it makes a CPU tensor of its own)."""
    if "on the same device" not in error:
        return None
    if model.data["plain_tensors"]:
        return "model.plain_tensor" if len(model.parameters) < 2 else "model.plain_tensor_attr"
    if any("on the same device" in p.get("error", "") for p in model.probes):
        return "model.forward_device"
    return None


def prediction_call(record: Record, section_id: str, model: ModuleValue, preds) -> dict | None:
    """The forward event of `model` in a section's cell that made `preds` (a TensorValue): the
    call whose output it is, else the last call on `X_test` (`.detach()`, `.cpu()` made a new
    tensor of its output), else the cell's last call of the model; None where it never ran."""
    calls = record.calls_of(model.id, section_id)
    made = [e for e in calls if e.get("output_id") == preds.data.get("id")]
    if made:
        return made[-1]
    try:
        X_test = record.tensor("X_test", section_id).values
    except Mistake:  # no X_test to match: the split section says why
        X_test = None
    on_test = [e for e in calls if X_test is not None and same_input(e["input"], X_test)]
    return (on_test or calls or [None])[-1]


def no_graph_built(record: Record, section_id: str, model: ModuleValue, preds) -> None:
    """The model made the predictions with gradient tracking off: a `.detach()` (or parameters
    set to requires_grad=False) after a forward that tracked gradients leaves a tensor without
    one, but the model built a graph for it, which the chapter's inference mode is there to
    avoid."""
    call = prediction_call(record, section_id, model, preds)
    if call is None or not call["grad_enabled"]:
        return
    line = names_made((record.stub_cell(section_id) or {}).get("source", "")).get(preds.name)
    where = f" (line {line})" if line else ""
    raise Mistake(
        f"`{preds.name}`{where} was made by `{model.name}` with gradient tracking on: it "
        "carries no gradient only because it was cut from the graph after the forward pass "
        "(`.detach()`, `.data`) or the parameters were frozen. Make the prediction inside "
        "`with torch.inference_mode():`.",
        "predictions.grad_tracked",
    )
