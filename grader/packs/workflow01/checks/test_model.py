"""Section `model`: an nn.Module with two registered parameters and a straight-line forward."""

import torch

from grader.check_api import Mistake, check, expect
from grader.packs.workflow01.epochs import parameter_values, training_forward, training_view
from grader.packs.workflow01.model import device_fault, fault, probe_line
from grader.packs.workflow01.reference import seeded_start


def _model(record, assignment):
    model = record.module(assignment.model_name, "model")
    typo = model.misspelled()
    if typo and typo[1] == "__init__":  # nothing of the model was made: every check says so
        raise Mistake(
            f"`{model.class_name}` defines `{typo[0]}`, not `__init__`, so Python never runs it "
            "and the model has no parameters.",
            "model.init_typo",
        )
    return model


@check("model", "parameters", weight=2)
def test_two_registered_parameters(record, assignment):
    model = _model(record, assignment)
    params = model.parameters
    plain = [t["name"] for t in model.data["plain_tensors"]]
    if len(params) < 2 and plain:
        raise Mistake(
            f"`{model.class_name}` keeps {', '.join(f'`{n}`' for n in plain)} as plain tensors, "
            f"so it has only {len(params)} registered parameter(s).",
            "model.plain_tensor",
        )
    expect(
        len(params) == 2,
        f"`{model.class_name}` has {len(params)} parameters "
        f"({', '.join(p['name'] for p in params) or 'none'}); it needs exactly two.",
        "model.param_count",
    )
    for p in params:
        expect(
            p["shape"] in ([1], [1, 1]),
            f"Parameter `{p['name']}` has shape {tuple(p['shape'])}, expected (1,).",
            "model.param_shape",
        )
        expect(
            p["dtype"] == "float32",
            f"Parameter `{p['name']}` has dtype {p['dtype']}, expected float32.",
            "model.dtype",
        )
        expect(
            p["requires_grad"],
            f"Parameter `{p['name']}` has requires_grad=False, so training can't change it.",
            "model.requires_grad",
        )


@check("model", "forward", weight=2)
def test_forward_is_a_line(record, assignment):
    model = _model(record, assignment)
    typo = model.misspelled()
    if typo:
        raise Mistake(
            f"`{model.class_name}` defines `{typo[0]}`, not `forward`, so calling the model has "
            "nothing to run.",
            "model.no_forward",
        )
    if model.forward_globals:
        names = ", ".join(f"`{n}`" for n in model.forward_globals)
        raise Mistake(
            f"`forward` computes with {names} from your notebook, not with its own input and "
            "parameters.",
            "model.forward_global",
        )
    missing = model.missing_attribute()
    if missing and len(model.parameters) < 2:
        raise Mistake(
            f"`forward` reads `self.{missing}`, which `__init__` never made.", fault(model)
        )
    if missing:
        names = ", ".join(f"`self.{p['name']}`" for p in model.parameters)
        raise Mistake(
            f"`forward` reads `self.{missing}`, but `__init__` made {names}: use the same "
            "names in both.",
            "model.attribute_name",
        )
    probes = model.probes
    for probe in probes:
        if "error" in probe and probe["shape"] == "column":
            raise Mistake(
                f"Calling `{assignment.model_name}` on a column of numbers failed: "
                f"{probe['error']}",
                device_fault(model, probe["error"]) or "model.forward_wrong",
            )
    column = next(p for p in probes if p["shape"] == "column")
    output = column.get("output")
    if output is None and column.get("output_type") == "NoneType":
        raise Mistake("`forward` returns None: it has no `return` line.", "model.forward_no_return")
    expect(output is not None, "`forward` does not return a tensor.", "model.forward_wrong")
    expect(
        tuple(output["shape"]) == tuple(column["input"].shape),
        f"`forward` turned an input of shape {tuple(column['input'].shape)} into "
        f"{tuple(output['shape'])}; it should keep the shape.",
        "model.forward_shape",
    )
    values = [p["values"].flatten() for p in model.parameters if p.get("values") is not None]
    x = column["input"].double()
    out = output["values"].double()
    line = probe_line(model)
    if len(values) != 2 and line is not None and abs(line[1]) > 1e-9:
        return  # a line with a bias: the parameters check reports what is unregistered
    if len(values) == 2:
        for w, b in (values, values[::-1]):
            if torch.allclose(out, w.double() * x + b.double(), atol=1e-5):
                _same_forward_in_training(record, assignment, model)
                return
        for w in values:
            if torch.allclose(out, w.double() * x, atol=1e-5):
                raise Mistake(
                    "`forward` returns `weight * x` without the bias.", "model.forward_no_bias"
                )
    raise Mistake(
        "`forward` does not compute `weight * x + bias` with the model's two parameters.",
        "model.forward_wrong",
    )


def _same_forward_in_training(record, assignment, model) -> None:
    """The forward your loop ran computed the same line from the parameters its step saw: a
    `forward` that behaves only while the grader probes it is not a line."""
    if record.stub_cell("training_loop") is None:
        return  # the training cell is missing: the training section says so
    try:
        loop = training_view(record, assignment)
    except Mistake:
        return  # no loop to compare with: the training section says why
    if loop["model_id"] != model.id:
        return
    ids = {p["id"] for p in model.parameters}
    rows: dict[tuple, list] = {}  # input shape -> [(epoch, w, b, x, out)], compared at once
    for number, epoch in enumerate(loop["epochs"]):
        at = training_forward(epoch.events, loop["model_id"])
        step = epoch.step
        if at is None or step is None or set(step["param_ids"]) != ids:
            continue
        forward = epoch.events[at]
        before = parameter_values(step)
        x, out = (forward.get(k) or {} for k in ("input", "output"))
        if before is None or x.get("values") is None or out.get("values") is None:
            continue
        if len(before) != 2 or any(v.numel() != 1 for v in before):
            continue
        x, out = x["values"], out["values"]
        if out.shape != x.shape:
            continue
        rows.setdefault(tuple(x.shape), []).append((number, *before, x, out))
    for entries in rows.values():
        w, b, x, out = (
            torch.stack([e[i].reshape(-1) for e in entries]).double() for i in (1, 2, 3, 4)
        )
        finite = torch.isfinite(torch.cat([w, b, x, out], dim=1)).all(1)
        # float32's rounding, relative to the terms' size (a step that blew up has huge ones)
        same = ((out - (w * x + b)).abs() <= 1e-5 * (1 + (w * x).abs() + b.abs())).all(1)
        same |= ((out - (b * x + w)).abs() <= 1e-5 * (1 + (b * x).abs() + w.abs())).all(1)
        wrong = ~same & finite  # a blown-up step: the training section says so
        if bool(wrong.any()):
            number = entries[int(wrong.nonzero()[0])][0]
            raise Mistake(
                f"`forward` computes `weight * x + bias` when called on its own, but in your "
                f"training loop (epoch {number}) it returned other values for the same "
                f"parameters: make it always return `self.{assignment.weight_attr} * x + "
                "self.bias`.",
                "model.forward_wrong",
            )


@check("model", "seed")
def test_seeded_start(record, assignment):
    model = _model(record, assignment)
    if len(model.parameters) < 2:
        raise Mistake(
            f"`{assignment.model_name}` has {len(model.parameters)} registered parameter(s), so "
            "its seeded start cannot be checked until both are `nn.Parameter`s.",
            "model.plain_tensor" if model.data["plain_tensors"] else "model.param_count",
        )
    values = sorted(float(p["values"].flatten()[0]) for p in model.parameters[:2])

    def starts_at(start) -> bool:
        return len(values) == 2 and all(abs(a - b) < 1e-6 for a, b in zip(values, sorted(start)))

    if any(starts_at(start) for start in seeded_start()):
        return
    shown = "[" + ", ".join(f"{v:.4f}" for v in values) + "]"
    made_with = _initialisers(model.parameters[:2])
    if made_with is not None and set(made_with.values()) == {"randn"}:
        return  # the seeded values in another dtype: the parameters check names the dtype
    if made_with is not None:
        other = [f"`{name}`" for name, how in made_with.items() if how != "randn"]
        how = next(h for h in made_with.values() if h != "randn")
        verb = "is" if len(other) == 1 else "are"
        raise Mistake(
            f"`{assignment.model_name}` starts from {shown}: {' and '.join(other)} {verb} made "
            f"with `torch.{how}` (`torch.{how}`'s values after the seed). The exercise makes both "
            "parameters with `torch.randn` (normal, not uniform).",
            "model.init",
        )
    if any(v in (0.0, 1.0) for v in values):
        raise Mistake(
            f"`{assignment.model_name}` starts from {shown}: a parameter made with "
            "`torch.zeros` or `torch.ones`. The exercise makes both with `torch.randn(1, ...)`.",
            "model.init",
        )
    raise Mistake(
        f"`{assignment.model_name}` starts from {shown}, not from the values "
        "`torch.manual_seed(42)` gives.",
        "model.seed",
    )


DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


def _initialisers(parameters: list[dict]) -> dict[str, str] | None:
    """How each parameter was made after `torch.manual_seed(42)`, in the order `__init__` made
    them: `torch.randn` or `torch.rand`, drawn in float32 or in the parameter's own dtype (and
    kept in it). None when no such start gives the recorded values (the seed is then the
    cause)."""
    recorded = [float(p["values"].flatten()[0]) for p in parameters]
    dtypes = [DTYPES.get(p["dtype"], torch.float32) for p in parameters]
    for kinds in (("randn", "randn"), ("randn", "rand"), ("rand", "randn"), ("rand", "rand")):
        for draw_in_own_dtype in (False, True):
            generator = torch.Generator().manual_seed(42)
            drawn = []
            for kind, dtype in zip(kinds, dtypes):
                draw = getattr(torch, kind)
                value = draw(1, generator=generator, dtype=dtype if draw_in_own_dtype else None)
                drawn.append(float(value.to(dtype)))
            if all(abs(a - b) <= 1e-6 * max(1.0, abs(b)) for a, b in zip(recorded, drawn)):
                return {p["name"]: kind for p, kind in zip(parameters, kinds)}
    return None


@check("model", "registered_tensors", only="01_pytorch_workflow_exercises")
def test_no_plain_tensor_attributes(record, assignment):
    model = _model(record, assignment)
    plain = [t["name"] for t in model.data["plain_tensors"]]
    if len(model.parameters) < 2:
        return  # the parameters check already says which tensors are not registered
    expect(
        not plain,
        f"`{model.class_name}` keeps {', '.join(f'`{n}`' for n in plain)} as a plain tensor "
        "attribute, which `.to(device)` would leave behind.",
        "model.plain_tensor_attr",
    )


@check("model", "on_device", only="01_pytorch_workflow_exercises")
def test_model_on_device(record, assignment):
    model = _model(record, assignment)
    devices = {p["device"].split(":")[0] for p in model.parameters}
    # Judged against the student's own `device`: choosing it is the device section's job.
    expected = record.student_device("model") or record.expected_device
    expect(
        devices <= {expected},
        f"`{assignment.model_name}` is on {', '.join(sorted(devices))}; move it to `device` "
        f"({expected!r}).{record.uncalled('model', 'cuda') or record.uncalled('model', 'to')}",
        "model.not_on_device",
    )
