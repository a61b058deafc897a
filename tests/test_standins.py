"""Stand-ins come from the contract: a student's check fails the sections the instructor's grade
fails, with or without solutions/, and no stand-in's work counts as the student's."""

from __future__ import annotations

import nbformat
import pytest

from grader.grading import Options, grade
from grader.packs.workflow01.assignments import ASSIGNMENTS
from grader.packs.workflow01.standins import standins
from tests.submissions.build import build_submission, reference_sources

FLOAT_SPLIT = {
    "name": "float_split_index",
    "changes": [
        {
            "cell": "split",
            "old": "train_split = int(0.8 * len(X))",
            "new": "train_split = 0.8 * len(X)",
        }
    ],
}


def failed(result) -> dict[str, set[str]]:
    return {
        s.id: {c.hint for c in s.checks if not c.passed} for s in result.sections if not s.passed
    }


@pytest.mark.parametrize("assignment", ["01_pytorch_workflow_exercises", "01_pytorch_workflow"])
def test_check_without_solutions_fails_the_sections_grade_fails(assignment, tmp_path):
    notebook = tmp_path / f"{assignment}.ipynb"
    nbformat.write(build_submission(assignment, FLOAT_SPLIT), notebook)
    no_solutions = tmp_path / "no-solutions"
    no_solutions.mkdir()
    student = grade(notebook, Options(solutions=str(no_solutions), hidden=False))
    instructor = grade(notebook)
    assert failed(student) == failed(instructor) == {"split": {"split.float_index"}}
    # The later sections ran on the grader's stand-in: the right split of the student's X.
    split = next(s for s in student.sections if s.id == "split")
    assert "graded as if this cell had made `X_train`" in split.note


@pytest.mark.parametrize("assignment", ["01_pytorch_workflow_exercises", "01_pytorch_workflow"])
def test_no_stand_in_is_the_solutions_code(assignment):
    solution = reference_sources(assignment)
    for section_id, standin in standins(ASSIGNMENTS[assignment]).items():
        if isinstance(standin, str) and section_id in solution:
            assert standin.strip() != solution[section_id].strip()
            assert "BEGIN SOLUTION" not in standin


def test_a_failed_training_cell_is_stood_in_for_without_a_training_run(tmp_path):
    """The training stand-in sets the parameters the grader's replay reaches: no optimizer step
    runs in the student's process for it, and the later sections pass on it."""
    assignment = "01_pytorch_workflow_exercises"
    entry = {
        "name": "training_raises",
        "changes": [
            {
                "cell": "training_loop",
                "old": "for epoch in range(epochs):",
                "new": "raise ValueError('stop')\nfor epoch in range(epochs):",
            }
        ],
    }
    notebook = tmp_path / f"{assignment}.ipynb"
    nbformat.write(build_submission(assignment, entry), notebook)
    result = grade(notebook)
    assert set(failed(result)) == {"training_loop"}
    for section_id in ("predictions", "save_model", "load_model"):
        assert result.section(section_id).passed, section_id


def _value(text):
    return {"kind": "value", "value": text}


def test_only_values_no_later_cell_can_use_are_repaired():
    """A usable `device` is the student's, even a hand-written "cpu" on a GPU machine (the
    device section alone says so, and the rest runs on the CPU consistently); a device torch
    cannot place anything on is put right for the later sections."""
    from grader.packs.workflow01.standins import device_type, repair

    exercises = ASSIGNMENTS["01_pytorch_workflow_exercises"]
    assert device_type(_value("cuda:0"), gpu=True) == "cuda"
    assert device_type({"kind": "device", "value": "cpu"}, gpu=True) == "cpu"
    assert device_type(_value(0.0), gpu=True) == "cuda"  # torch.cuda.current_device()
    for unusable in (_value("gpu"), _value(True), _value(None), {"kind": "missing"}):
        assert device_type(unusable, gpu=True) is None
    assert device_type(_value("cuda"), gpu=False) is None  # no GPU at all (--device cpu)
    assert repair(exercises, "device", {"device": _value("cpu")}, gpu=True) is None
    assert repair(exercises, "device", {"device": _value("gpu")}, gpu=True)[0] == ["device"]


def test_only_a_saved_model_object_is_repaired_for_the_load():
    """The whole model (or its `state_dict` method) saved: the later cells load a state_dict of
    the grader's, beside the student's file; a state_dict saved, even with other things, is the
    student's to load as it is."""
    from grader.packs.workflow01.standins import repair

    exercises = ASSIGNMENTS["01_pytorch_workflow_exercises"]
    snapshot = {"MODEL_SAVE_PATH": {"kind": "path", "value": "models/x.pth"}}
    module = [{"obj_kind": "module"}]
    names, source = repair(exercises, "save_model", snapshot, False, module)
    assert names == ["MODEL_SAVE_PATH"]
    assert "model_1.state_dict()" in source and '".state_dict.pth"' in source
    assert repair(exercises, "save_model", snapshot, False, [{"obj_kind": "method"}])
    both = module + [{"obj_kind": "state_dict"}]
    assert repair(exercises, "save_model", snapshot, False, both) is None
    assert repair(exercises, "save_model", snapshot, False, []) is None
    no_path = {"MODEL_SAVE_PATH": {"kind": "missing"}}
    assert repair(exercises, "save_model", no_path, False, module) is None


def test_the_model_is_moved_only_where_it_is_off_the_students_device():
    from grader.packs.workflow01.standins import repair

    exercises = ASSIGNMENTS["01_pytorch_workflow_exercises"]

    def model(*places):
        return {"kind": "module", "parameters": [{"device": p} for p in places]}

    on_gpu = {"device": _value("cuda"), "model_1": model("cuda:0", "cuda:0")}
    assert repair(exercises, "model", on_gpu, gpu=True) is None
    on_cpu_by_choice = {"device": _value("cpu"), "model_1": model("cpu", "cpu")}
    assert repair(exercises, "model", on_cpu_by_choice, gpu=True) is None
    left_behind = {"device": _value("cuda"), "model_1": model("cpu", "cpu")}
    assert repair(exercises, "model", left_behind, gpu=True) == (["model_1"], "model_1.to(device)")
    # The walkthrough is not device-agnostic: its model stays where the student made it.
    walkthrough = ASSIGNMENTS["01_pytorch_workflow"]
    left = {"device": _value("cuda"), "model_0": model("cpu", "cpu")}
    assert repair(walkthrough, "model", left, gpu=True) is None
    # A model cell that left the class itself: the section's stand-in (source None).
    the_class = {"model_0": {"kind": "class", "name": "LinearRegressionModel", "is_module": True}}
    assert repair(walkthrough, "model", the_class, gpu=False) == (["model_0"], None)


def test_a_device_error_finds_the_value_that_is_elsewhere():
    from grader.packs.workflow01.standins import misplaced_in_cell

    snapshot = {
        "device": _value("cuda"),
        "X": {"kind": "tensor", "device": "cpu"},
        "X_test": {"kind": "tensor", "device": "cpu"},
        "loaded_model": {"kind": "module", "parameters": [{"device": "cuda:0"}]},
    }
    line = "loaded_model_preds = loaded_model(X_test)"
    assert misplaced_in_cell(snapshot, line, line, gpu=True) == ["X_test"]
    # The line inside a `forward` the cell defines names none: the cell's names, less X and y.
    source = "plt.plot(X)\nprint(loaded_model(X_test))"
    assert misplaced_in_cell(snapshot, "return self.w * x", source, gpu=True) == ["X_test"]
    # An unusable `device`: nothing is "off" it.
    snapshot["device"] = _value("gpu")
    assert misplaced_in_cell(snapshot, line, line, gpu=True) == []


def test_a_dtype_changed_after_the_model_section_is_put_back():
    """`model_1.double()` in a later cell is put back to the dtype the model cell gave the same
    model; a model cell's own dtype (charged by the model section, shared by every instance of
    the class, the reloaded one too) and a new model made later are left as they are."""
    from grader.packs.workflow01.standins import repair

    exercises = ASSIGNMENTS["01_pytorch_workflow_exercises"]

    def model(dtype, id=7):
        parameters = [{"dtype": dtype, "device": "cpu"} for _ in range(2)]
        return {"kind": "module", "id": id, "parameters": parameters}

    device = {"device": _value("cpu")}
    earlier = {"model": {**device, "model_1": model("float32")}}
    doubled = {**device, "model_1": model("float64")}
    names, source = repair(exercises, "training_loop", doubled, False, [], earlier)
    assert (names, source) == (["model_1"], "model_1.to(torch.float32)")
    kept = {**device, "model_1": model("float32")}
    assert repair(exercises, "training_loop", kept, False, [], earlier) is None
    assert repair(exercises, "model", doubled, False, [], {}) is None
    new_model = {**device, "model_1": model("float64", id=8)}
    assert repair(exercises, "predictions", new_model, False, [], earlier) is None


def test_data_moved_back_to_the_cpu_after_the_loop_is_put_back_on_the_gpu():
    """`X_test = X_test.cpu()` after the loop put the data on the GPU: the later cells get it
    back on `device`; data that never went to the GPU, or a notebook on the CPU, is left."""
    from grader.packs.workflow01.standins import repair

    exercises = ASSIGNMENTS["01_pytorch_workflow_exercises"]

    def data(place):
        return {n: {"kind": "tensor", "device": place} for n in ("X_test", "y_test")}

    on_gpu = {"device": _value("cuda"), **data("cuda:0")}
    back = {"device": _value("cuda"), **data("cpu")}
    names, source = repair(exercises, "predictions", back, True, [], {"training_loop": on_gpu})
    assert names == ["X_test", "y_test"]
    assert source == "X_test = X_test.to(device)\ny_test = y_test.to(device)"
    never_moved = {"training_loop": {"device": _value("cuda"), **data("cpu")}}
    assert repair(exercises, "predictions", back, True, [], never_moved) is None
    on_cpu = {"device": _value("cpu"), **data("cpu")}
    assert repair(exercises, "predictions", on_cpu, True, [], {"training_loop": on_gpu}) is None


def test_a_device_changed_after_the_device_cell_is_put_back():
    """`device = "cpu"` in the predictions cell is put back to the device cell's "cuda" for the
    later cells; a device the device section itself put right ("gpu") is not a change."""
    from grader.packs.workflow01.standins import repair

    exercises = ASSIGNMENTS["01_pytorch_workflow_exercises"]
    earlier = {"device": {"device": _value("cuda")}}
    changed = {"device": _value("cpu")}
    assert repair(exercises, "predictions", changed, True, [], earlier) == (
        ["device"],
        "device = 'cuda'",
    )
    assert repair(exercises, "predictions", {"device": _value("cuda")}, True, [], earlier) is None
    unusable = {"device": {"device": _value("gpu")}}
    assert repair(exercises, "predictions", {"device": _value("cuda")}, True, [], unusable) is None


def test_data_made_a_numpy_array_after_the_loop_is_made_a_tensor_again():
    """`X_test = X_test.numpy()` in a later cell: the later cells get the tensor back, on the
    GPU where it was there."""
    from grader.packs.workflow01.standins import repair

    walkthrough = ASSIGNMENTS["01_pytorch_workflow"]
    tensor = {"X_test": {"kind": "tensor", "device": "cpu"}}
    array = {"X_test": {"kind": "tensor", "device": "cpu", "numpy": True}}
    assert repair(walkthrough, "predictions", array, False, [], {"training_loop": tensor}) == (
        ["X_test"],
        "X_test = torch.as_tensor(X_test)",
    )
    exercises = ASSIGNMENTS["01_pytorch_workflow_exercises"]
    on_gpu = {"device": _value("cuda"), "X_test": {"kind": "tensor", "device": "cuda:0"}}
    now = {"device": _value("cuda"), **array}
    names, source = repair(exercises, "predictions", now, True, [], {"training_loop": on_gpu})
    assert source == "X_test = torch.as_tensor(X_test).to(device)"
