"""The hint catalogue: every id a check can report exists, and every hint is reachable."""

from __future__ import annotations

import re
from pathlib import Path

from grader.checking.hints import (
    ERROR_PATTERNS,
    HINTS,
    SECTION_HINTS,
    hint_for_error,
    hint_text,
    plain_error,
)
from grader.packs.workflow01.assignments import ASSIGNMENTS

REPO = Path(__file__).resolve().parent.parent
SOURCES = [
    *sorted((REPO / "grader").rglob("*.py")),
    *sorted((REPO / "solutions" / "checks").rglob("*.py")),
]


def _hint_ids_in_code() -> set[str]:
    found = set()
    for path in SOURCES:
        found |= set(re.findall(r'"([a-z]+\.[a-z_0-9]+)"', path.read_text()))
    # What grader/checking/hints.toml reports: the hints of the errors, and a section's own hint for one.
    found |= {entry.hint for entry in ERROR_PATTERNS} | set(SECTION_HINTS.values())
    return {h for h in found if h.split(".")[0] in {i.split(".")[0] for i in HINTS}}


def test_every_hint_id_used_by_the_grader_is_in_the_catalogue():
    unknown = {h for h in _hint_ids_in_code() if h not in HINTS and not h.endswith(("py", "ipynb"))}
    assert not unknown, f"hint ids used but not catalogued: {sorted(unknown)}"


def test_every_catalogued_hint_is_used_somewhere():
    unused = set(HINTS) - _hint_ids_in_code() - {"name.missing"}
    assert not unused, f"hints nothing can report: {sorted(unused)}"


def test_errors_students_really_hit_get_their_specific_hint():
    cases = {
        ("NameError", "name 'stop' is not defined"): "data.stop_typo",
        ("AttributeError", "module 'torch' has no attribute 'L1Loss'"): "loss.torch_l1loss",
        ("AttributeError", "'LinearRegressionModel' object has no attribute 'Parameters'"): (
            "optimizer.parameters_typo"
        ),
        ("AttributeError", "module 'torch' has no attribute 'interence_mode'"): (
            "predictions.inference_mode_typo"
        ),
        ("TypeError", "slice indices must be integers or None or have an __index__ method"): (
            "split.float_index"
        ),
        ("IndentationError", "expected an indented block after 'if' statement on line 3"): (
            "cell.indentation"
        ),
        ("AttributeError", "cannot assign parameters before Module.__init__() call"): (
            "model.no_super_init"
        ),
        (
            "RuntimeError",
            "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!",
        ): ("device.mismatch"),
        ("TypeError", "'type' object does not support the context manager protocol"): (
            "cell.context_not_called"
        ),
        ("NotImplementedError", 'Module [M] is missing the required "forward" function'): (
            "model.no_forward"
        ),
        ("NotImplementedError", ""): "cell.not_implemented",
        ("RuntimeError", "Trying to backward through the graph a second time (or ..."): (
            "training.graph_reused"
        ),
        ("TypeError", "'str' object cannot be interpreted as an integer"): "cell.float_count",
        ("TypeError", 'can only concatenate str (not "Tensor") to str'): "cell.str_concat",
        ("ZeroDivisionError", "division by zero"): "cell.raised",
    }
    for (ename, evalue), hint in cases.items():
        assert hint_for_error(ename, evalue) == hint, (ename, evalue)


def test_hints_quote_each_assignments_own_names():
    walkthrough = ASSIGNMENTS["01_pytorch_workflow"]
    exercises = ASSIGNMENTS["01_pytorch_workflow_exercises"]
    for hint_id in HINTS:  # the catalogue is written in the exercises notebook's names
        assert hint_text(hint_id, exercises) == hint_text(hint_id)
    assert "`self.weights * x + self.bias`" in hint_text("model.forward_no_bias", walkthrough)
    assert "`loaded_model_0 = LinearRegressionModel()`" in hint_text(
        "load.same_object", walkthrough
    )
    assert "`loaded_model_0.load_state_dict(" in hint_text("load.no_load_state_dict", walkthrough)
    assert "`model_0.to(device)`" in hint_text("model.not_on_device", walkthrough)


def test_torchs_words_a_beginner_cannot_act_on_are_rewritten():
    """torch's list of device types and its allowlisting advice name the student's value and
    what to write instead; any other message stays torch's, on one line."""
    devices = (
        "Expected one of cpu, cuda, ipu, xpu, mkldnn, opengl, opencl, ideep, hip, ve, fpga, "
        "maia, xla, lazy, vulkan, mps, meta, hpu, mtia, privateuseone device type at start of "
        "device string: gpu"
    )
    assert plain_error("RuntimeError", devices) == (
        '"gpu" is not a device PyTorch knows: write "cuda" for the GPU, or "cpu"'
    )
    assert '"cuda0"' in plain_error("RuntimeError", "Invalid device string: 'cuda0'")
    refused = (
        "Weights only load failed. This file can still be loaded [...] WeightsUnpickler error: "
        "Unsupported global: GLOBAL __main__.LinearRegressionModel was not an allowed global"
    )
    text = plain_error("UnpicklingError", refused)
    assert "`__main__.LinearRegressionModel`" in text and "add_safe_globals" not in text
    keys = 'Error(s) in loading state_dict for M:\n\tMissing key(s) in state_dict: "weight". '
    assert plain_error("RuntimeError", keys) == (
        'Error(s) in loading state_dict for M: Missing key(s) in state_dict: "weight".'
    )
    assert plain_error("ValueError", "x and y must be the same size") == (
        "x and y must be the same size"
    )
    # The hints still match torch's own words.
    assert hint_for_error("RuntimeError", devices) == "device.unknown"
