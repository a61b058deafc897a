"""The solution notebooks run in a real kernel and learn the reference model; exercises stop at
their first stub."""

from __future__ import annotations

import math
import re

import pytest
import torch

pytestmark = pytest.mark.slow

ASSIGNMENTS = ("01_pytorch_workflow", "01_pytorch_workflow_exercises")

MODEL_VARIABLE = {"01_pytorch_workflow": "model_0", "01_pytorch_workflow_exercises": "model_1"}
FIRST_STUB = {"01_pytorch_workflow": "split", "01_pytorch_workflow_exercises": "device"}
# Reruns on the same CPU code path agree far more closely than this.
SAME_RUN = 1e-6


def _assert_matches_manifest(values: dict[str, float], manifest: dict, where: str) -> None:
    expected = manifest["parameters"]
    assert set(values) == set(expected), (
        f"{where} has keys {sorted(values)}, not {sorted(expected)}"
    )
    for key, value in values.items():
        assert math.isclose(value, expected[key], abs_tol=SAME_RUN), (
            f"{where}: {key} is {value!r}, the reference manifest says {expected[key]!r}"
        )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_runs_top_to_bottom(notebook_runs, assignment):
    run = notebook_runs.solution(assignment)
    index = run.failed_cell_index()
    assert run.error is None, (
        f"solutions/{assignment} stopped with {run.error} in cell {index}:\n"
        f"{run.notebook.cells[index].source if index is not None else ''}"
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_kernel_state_matches_reference(notebook_runs, reference_manifests, assignment):
    probe = notebook_runs.solution(assignment).probe()
    _assert_matches_manifest(
        probe["state_dict"], reference_manifests[assignment], MODEL_VARIABLE[assignment]
    )
    assert probe["reloaded_predictions_equal"], "the reloaded model predicts differently"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_saved_model_matches_reference(
    notebook_runs, reference_manifests, regenerate, assignment
):
    run = notebook_runs.solution(assignment)
    saved = run.folder / regenerate.ASSIGNMENTS[assignment].saved_model
    state_dict = torch.load(saved, weights_only=True)
    values = {key: tensor.item() for key, tensor in state_dict.items()}
    _assert_matches_manifest(values, reference_manifests[assignment], saved.name)


def test_exercises_solution_prints_fifteen_epoch_lines(notebook_runs):
    printed = notebook_runs.solution("01_pytorch_workflow_exercises").stdout("training_loop")
    lines = printed.splitlines()
    pattern = re.compile(r"Epoch: (\d+) \| Train loss: \d+\.\d{3} \| Test loss: \d+\.\d{3}")
    assert all(pattern.fullmatch(line) for line in lines), printed
    assert [int(pattern.fullmatch(line).group(1)) for line in lines] == list(range(0, 300, 20))
    # Rounded values of the reference table (spec section 3).
    assert lines[0] == "Epoch: 0 | Train loss: 0.757 | Test loss: 0.725"
    assert lines[-1] == "Epoch: 280 | Train loss: 0.004 | Test loss: 0.006"


def test_exercises_solution_data_shapes(notebook_runs):
    probe = notebook_runs.solution("01_pytorch_workflow_exercises").probe()
    assert probe["X_shape"] == [100, 1]
    assert probe["split_sizes"] == [80, 80, 20, 20]


def test_walkthrough_records_every_tenth_epoch(notebook_runs):
    probe = notebook_runs.solution("01_pytorch_workflow").probe()
    assert probe["epoch_count"] == list(range(0, 100, 10))
    # The chapter's full-precision printout, reproduced exactly on CPU (spec section 1).
    chapter = {
        0: (0.31288138031959534, 0.48106518387794495),
        9: (0.02788739837706089, 0.06473556160926819),
    }
    for index, (train, test) in chapter.items():
        assert math.isclose(probe["train_loss_values"][index], train, abs_tol=1e-7)
        assert math.isclose(probe["test_loss_values"][index], test, abs_tol=1e-7)


def test_walkthrough_prints_one_line_per_record(notebook_runs):
    printed = notebook_runs.solution("01_pytorch_workflow").stdout("training_loop").splitlines()
    assert [line.split(" |")[0] for line in printed] == [f"Epoch: {e}" for e in range(0, 100, 10)]
    assert printed[0] == (
        "Epoch: 0 | MAE Train Loss: 0.31288138031959534 | MAE Test Loss: 0.48106518387794495 "
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercise_stops_at_first_stub(notebook_runs, assignment):
    run = notebook_runs.exercise(assignment)
    cells = run.notebook.cells
    first_stub = next(
        i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("solution")
    )
    assert cells[first_stub].metadata.nbgrader.grade_id == FIRST_STUB[assignment]
    assert run.error == "NotImplementedError", f"exercises/{assignment} stopped with {run.error}"
    assert run.failed_cell_index() == first_stub
    for cell in cells[:first_stub]:
        if cell.cell_type == "code":
            assert cell.execution_count is not None, f"cell {cell.id} did not run"
            assert not any(o.output_type == "error" for o in cell.outputs), cell.id
    for cell in cells[first_stub + 1 :]:
        if cell.cell_type == "code":
            assert cell.execution_count is None, f"cell {cell.id} ran after the stub failed"
