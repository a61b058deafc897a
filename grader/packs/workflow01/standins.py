"""Stand-ins for a section whose cell failed: the contract's names, made by the grader.

When a graded cell fails (or leaves out a name its section defines, or is deleted), the later
sections still need its names. The grader defines them itself, from the assignment's contract and
the student's own earlier values: the right 80/20 split of the student's `X`, a model of the
contract's class with the seeded start, the parameters the grader's own replay reaches for a
failed training cell (set directly: no training runs in the student's process for it, so there is
no work there to observe, alter or claim). No solution code is read or run, so `ptgrade check`
without `solutions/` stands in exactly as the instructor's `ptgrade grade` does.

Each stand-in is source code the grader writes (or, for training, a function of the record so
far that writes it); the session runs it as a stand-in, and its events are filed as such.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from grader.check_api import ModuleValue
from grader.packs.workflow01.assignments import Assignment
from grader.packs.workflow01.model import computes_its_line, fault, line_of
from grader.packs.workflow01.reference import replay_setup
from grader.packs.workflow01.state import (
    MODEL_NEEDED_AFTER,
    STATE_SECTIONS,
    changed_dtype,
    data_undone,
    device_changed,
    model_moved_back,
)

CLASS_NAME = "LinearRegressionModel"  # the class every stub's instructions name

DEVICE_STANDIN = 'device = "cuda" if torch.cuda.is_available() else "cpu"'
_SPLIT_STANDIN = (
    "train_split = int(0.8 * len(X))\n"
    "X_train, y_train = X[:train_split], y[:train_split]\n"
    "X_test, y_test = X[train_split:], y[train_split:]"
)

StandIn = str | Callable[[dict[str, Any]], str]


def standins(assignment: Assignment) -> dict[str, StandIn]:
    """grade_id -> the stand-in for that section's cell."""
    a = assignment
    model, loaded, preds = a.model_name, a.loaded_name, a.loaded_preds_name
    to_device = f"\n{model}.to(device)" if a.device_agnostic else ""
    loaded_to_device = f"\n{loaded}.to(device)" if a.device_agnostic else ""
    reference_model = (
        "from torch import nn\n\n\n"
        f"class {CLASS_NAME}(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"        self.{a.weight_attr} = nn.Parameter(torch.randn(1, dtype=torch.float))\n"
        "        self.bias = nn.Parameter(torch.randn(1, dtype=torch.float))\n\n"
        "    def forward(self, x):\n"
        f"        return self.{a.weight_attr} * x + self.bias\n\n\n"
        f"torch.manual_seed(42)\n{model} = {CLASS_NAME}(){to_device}"
    )
    sources: dict[str, StandIn] = {
        "device": DEVICE_STANDIN,
        "data": (
            f"weight = {a.weight!r}\nbias = {a.bias!r}\n"
            f"X = torch.arange(0, 1, {a.data_step!r}).unsqueeze(dim=1)\n"
            "y = weight * X + bias"
        ),
        "split": _SPLIT_STANDIN,
        "model": lambda record: model_standin(a, record, reference_model),
        "loss_optimizer": (
            "loss_fn = nn.L1Loss()\n"
            f"optimizer = torch.optim.SGD(params={model}.parameters(), lr={a.lr!r})"
        ),
        "training_loop": lambda record: training_standin(a, record),
        "predictions": (
            f"{model}.eval()\nwith torch.inference_mode():\n    y_preds = {model}(X_test)"
        ),
        "save_model": (
            "from pathlib import Path\n"
            'MODEL_PATH = Path("models")\n'
            "MODEL_PATH.mkdir(parents=True, exist_ok=True)\n"
            f'MODEL_NAME = "{a.id}_{model}.pth"\n'
            "MODEL_SAVE_PATH = MODEL_PATH / MODEL_NAME\n"
            f"torch.save(obj={model}.state_dict(), f=MODEL_SAVE_PATH)"
        ),
        "load_model": (
            f"{loaded} = {CLASS_NAME}()\n"
            f"{loaded}.load_state_dict(torch.load(f=MODEL_SAVE_PATH)){loaded_to_device}\n"
            f"{loaded}.eval()\n"
            f"with torch.inference_mode():\n    {preds} = {loaded}(X_test)"
        ),
    }
    return {s.id: sources[s.id] for s in a.sections if s.id in sources}


def device_type(value: dict | None, gpu: bool) -> str | None:
    """The kind of device ("cpu", "cuda") a snapshot's `device` names, where tensors and models
    can go on this machine; None for anything else ("gpu", "mps" here, None, a number of no
    GPU), which fails every later `.to(device)`."""
    value = value or {}
    found = value.get("value") if value.get("kind") in ("value", "device") else None
    if isinstance(found, float) and found.is_integer() and found >= 0:
        return "cuda" if gpu else None  # `torch.cuda.current_device()`: that GPU
    if not isinstance(found, str):
        return None
    kind = found.split(":")[0].strip()
    return kind if kind == "cpu" or (kind == "cuda" and gpu) else None


def repair(
    assignment: Assignment,
    section_id: str,
    snapshot: dict[str, dict],
    gpu: bool,
    saves: list[dict] | None = None,
    earlier: dict[str, dict[str, dict]] | None = None,
):
    """(names, source) that puts right what a section's cell, which ran, left wrong for the
    sections after it, or None where it left nothing wrong.

    A value that breaks its contract costs its own section (the checks judge the snapshot
    taken before the repair); the later sections run on the repaired value, so one slip is not
    charged again in each of them. Each repair mirrors the check that charges it: the device
    section's `device` (`"gpu"`, nothing PyTorch can place tensors on) and the model section's
    `model_1` left off `device` (`model_1.cuda` without brackets), or not a model at all (the
    source is then None: the section's stand-in), and the save section's file when it holds the
    whole model or its `state_dict` method (`saves`: the cell's save events), which no
    `load_state_dict(torch.load(...))` can read; and the model's dtype, where a cell after the
    model section changed it (`model_1.double()`, `earlier`: the snapshots before), which no new
    instance of the class (the reloaded model) shares; and the data a cell moved back to the
    CPU after an earlier one put it on the GPU."""
    if (
        section_id == "device"
        and assignment.device_agnostic
        and device_type(snapshot.get("device"), gpu) is None
    ):
        return ["device"], DEVICE_STANDIN
    if section_id == "split" and _rows_mismatch(snapshot):
        # `y[train_split:]` for `y_train`: every later cell would pair rows that don't match.
        names = ["train_split", "X_train", "y_train", "X_test", "y_test"]
        return names, _SPLIT_STANDIN + _moved_back(snapshot, names[1:], gpu)
    if section_id == "save_model" and _saved_a_model(snapshot, saves or []):
        return ["MODEL_SAVE_PATH"], _SAVE_STATE_DICT.format(model=assignment.model_name)
    model = snapshot.get(assignment.model_name, {})
    if section_id == "model" and model.get("kind") not in ("module", "missing", None):
        # `model_1 = model_1.cuda` (the method), `model_1 = print(...)`: the section's stand-in.
        return [assignment.model_name], None
    if section_id == "model" and model.get("kind") == "module" and _broken_model(assignment, model):
        # `def foward`, plain tensors for parameters: every later use of the model fails.
        return [assignment.model_name], None
    made = (earlier or {}).get("model", {}).get(assignment.model_name, {})
    dtype = changed_dtype(made, model) if section_id in STATE_SECTIONS else None
    if dtype is not None:
        return [assignment.model_name], f"{assignment.model_name}.to(torch.{dtype})"
    # `X_test = X_test.cpu()` (or `.numpy()`) after the loop: the later cells need the tensor,
    # where it was (back on the GPU only where `device` still names it).
    undone = data_undone(earlier or {}, snapshot) if section_id in STATE_SECTIONS else {}
    on_gpu = device_type(snapshot.get("device"), gpu) == "cuda"
    undone = {n: line for n, line in undone.items() if on_gpu or ".to(device)" not in line}
    if undone:
        return list(undone), "\n".join(undone.values())
    name = assignment.model_name
    moved = on_gpu and model_moved_back(earlier or {}, snapshot, name)
    if section_id in MODEL_NEEDED_AFTER and moved:
        return [name], f"{name}.to(device)"  # `model_1.cpu()` after the loop
    if not assignment.device_agnostic:
        return None
    device = device_type(snapshot.get("device"), gpu)
    made = (earlier or {}).get("device", {}).get("device", {})
    if section_id in STATE_SECTIONS and device_changed(made, snapshot.get("device", {})):
        # `device = "cpu"` after the device cell: the later cells' models leave their data.
        value = made["value"]
        fixed = f"torch.device({value!r})" if made["kind"] == "device" else repr(value)
        return ["device"], f"device = {fixed}"
    if section_id == "model" and model.get("kind") == "module" and device is not None:
        placed = {p.get("device", "").split(":")[0] for p in model.get("parameters", [])}
        if placed - {device}:
            return [assignment.model_name], f"{assignment.model_name}.to(device)"
    return None


# The later cells load a state_dict from a file of the grader's, beside the student's: their own
# file stays as they saved it, for the save section's checks, which read it after the run.
_SAVE_STATE_DICT = (
    'MODEL_SAVE_PATH = type(MODEL_SAVE_PATH)(str(MODEL_SAVE_PATH) + ".state_dict.pth")\n'
    "torch.save(obj={model}.state_dict(), f=MODEL_SAVE_PATH)"
)


def _saved_a_model(snapshot: dict[str, dict], saves: list[dict]) -> bool:
    """Whether the save cell saved the model object or its method and no state_dict, to a
    `MODEL_SAVE_PATH` the repair can write beside."""
    path = snapshot.get("MODEL_SAVE_PATH", {})
    kinds = {event.get("obj_kind") for event in saves}
    return (
        path.get("kind") in ("path", "value")
        and isinstance(path.get("value"), str)
        and bool(path["value"])
        and "state_dict" not in kinds
        and bool(kinds & {"module", "method"})
    )


def _rows_mismatch(snapshot: dict[str, dict]) -> bool:
    """Whether the split left `X_train` and `y_train` (or `X_test` and `y_test`) with different
    numbers of rows: tensors all four, so the split's own stand-in can take their place."""
    values = [snapshot.get(n, {}) for n in ("X_train", "y_train", "X_test", "y_test")]
    if any(v.get("kind") != "tensor" or not v.get("shape") for v in values):
        return False
    rows = [v["shape"][0] for v in values]
    return rows[0] != rows[1] or rows[2] != rows[3]


def _moved_back(snapshot: dict[str, dict], names: list[str], gpu: bool) -> str:
    """The lines that put the split's tensors back on `device` where the student's cell had
    moved them there (the stand-in slices `X` and `y`, which stay where they were made)."""
    device = device_type(snapshot.get("device"), gpu)
    on_device = [
        n
        for n in names
        if device not in (None, "cpu")
        and str(snapshot.get(n, {}).get("device", "")).split(":")[0] == device
    ]
    return "".join(f"\n{n} = {n}.to(device)" for n in on_device)


def misplaced(snapshot: dict[str, dict], line: str, gpu: bool) -> list[str]:
    """The names on `line` (a cell's failing line) that the snapshot, taken as the cell
    raised a same-device error, finds off `device`: the tensors and models actually elsewhere,
    in the line's order. [] where `device` itself is unusable or nothing is off it."""
    device = device_type(snapshot.get("device"), gpu)
    if device is None:
        return []
    found = []
    for name in dict.fromkeys(re.findall(r"\b[A-Za-z_]\w*\b", line or "")):
        value = snapshot.get(name) or {}
        if value.get("kind") == "tensor":
            places = {str(value.get("device", "")).split(":")[0]}
        elif value.get("kind") == "module":
            places = {str(p.get("device", "")).split(":")[0] for p in value.get("parameters", [])}
        else:
            continue
        if places - {device}:
            found.append(name)
    return found


def misplaced_in_cell(snapshot: dict[str, dict], line: str, source: str, gpu: bool) -> list[str]:
    """`misplaced` on the failing line; where it names none (the line is inside a `forward`
    the cell itself defines), on the whole cell, less the data `X` and `y`, which no section
    asks to move."""
    found = misplaced(snapshot, line, gpu)
    if found:
        return found
    return [n for n in misplaced(snapshot, source, gpu) if n not in ("X", "y")]


def moves(snapshot: dict[str, dict], names: list[str]) -> str:
    """The lines that move `names` (tensors and models of the snapshot) to `device`."""
    return "".join(
        f"{n}.to(device)\n" if snapshot[n].get("kind") == "module" else f"{n} = {n}.to(device)\n"
        for n in names
    )


def model_standin(assignment: Assignment, record: dict[str, Any], reference: str) -> str:
    """The model cell's names. Where the cell raised after it made a model of a class of the
    student's own that is fine (it computes the line of its two parameters: the cell failed on
    a later line, a print or a plot), that model is kept, moved to `device` where the exercise
    asks for it: the saved file then holds the student's own keys, which their load cell's
    instance of their class can load. Otherwise the contract's class and seeded start."""
    value = record.get("at_error", {}).get("model", {}).get(assignment.model_name, {})
    if value.get("kind") == "module" and _fine_model(assignment, value):
        move = f"{assignment.model_name}.to(device)" if assignment.device_agnostic else ""
        return move or "pass"
    return reference


def _broken_model(assignment: Assignment, value: dict) -> bool:
    """Whether a snapshot's model has a fault that breaks every use of it (the model checks
    charge it): a misspelled `forward`, no parameters to train, a forward that returns None."""
    try:
        return fault(ModuleValue(assignment.model_name, value)) is not None
    except Exception:  # a value the checks would find malformed: theirs to charge
        return False


def _fine_model(assignment: Assignment, value: dict) -> bool:
    """Whether a snapshot's model computes the line of its two float parameters, both
    trainable. What the child sent was checked for its form, not its sense: anything odd is
    not fine (the contract's model stands in)."""
    try:
        model = ModuleValue(assignment.model_name, value)
        params = model.parameters
        fine = fault(model) is None and computes_its_line(model) and len(params) == 2
        return fine and all(p.get("requires_grad") and p.get("dtype") == "float32" for p in params)
    except Exception:  # a value the checks would find malformed: the contract's model
        return False


def training_standin(assignment: Assignment, record: dict[str, Any]) -> str:
    """The training cell's names, with the model's parameters set to what the grader's replay
    of the exercise's training (L1, SGD at the contract's lr, its epochs) reaches from the
    model's current values on the student's `X_train` and `y_train`."""
    a = assignment
    lines = ["torch.manual_seed(42)", f"epochs = globals().get('epochs', {a.epochs})"]
    if a.device_agnostic:
        lines += [f"{n} = {n}.to(device)" for n in ("X_train", "y_train", "X_test", "y_test")]
    if a.loss_history:
        # The lists the student's loop filled before it stopped stay theirs (their section is
        # judged on them, the same whether or not the loop ended in time); missing ones are made.
        lines += [
            f"{n} = globals().get({n!r}, [])"
            for n in ("train_loss_values", "test_loss_values", "epoch_count")
        ]
    values = _latest(record, (a.model_name, "X_train", "y_train"))
    trained = _replayed_parameters(a, values) if values else None
    if trained is None:
        return "\n".join(lines + [f"{a.model_name}.eval()"])  # nothing the grader can train
    lines.append("with torch.no_grad():")
    lines.append(f"    _standin = dict({a.model_name}.named_parameters())")
    for name, value in trained:
        lines.append(f"    _standin[{name!r}].fill_(float.fromhex({value.hex()!r}))")
    lines += ["del _standin", f"{a.model_name}.eval()"]
    return "\n".join(lines)


def _latest(record: dict[str, Any], names: tuple[str, ...]) -> dict[str, dict] | None:
    """The values of `names` in the latest snapshot that holds them all."""
    for snapshot in reversed(list(record.get("snapshots", {}).values())):
        found = {name: snapshot.get(name, {}) for name in names}
        if all(v.get("kind") not in (None, "missing", "unreadable") for v in found.values()):
            return found
    return None


def _replayed_parameters(assignment: Assignment, values: dict[str, dict]):
    model, X, y = (values[n] for n in (assignment.model_name, "X_train", "y_train"))
    if model.get("kind") != "module" or X.get("kind") != "tensor" or y.get("kind") != "tensor":
        return None
    line = line_of(ModuleValue(assignment.model_name, model))
    params = model["parameters"]
    if line is None or len(params) != 2 or X.get("values") is None or y.get("values") is None:
        return None
    x, labels = X["values"].float(), y["values"].float()
    if x.numel() != labels.numel() or x.numel() == 0:
        return None
    labels = labels.reshape(x.shape)
    optimizer = {"class": "SGD", "lr": assignment.lr}
    weight, bias = replay_setup(line, [(x, labels)] * assignment.epochs, optimizer)
    first = float(params[0]["values"].reshape(-1)[0])
    slope_first = first == line[0]
    reached = (weight, bias) if slope_first else (bias, weight)
    return [(p["name"], float(v)) for p, v in zip(params, reached)]
