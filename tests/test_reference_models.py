"""reference_models/: the committed references are what the solutions learn."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "reference_models" / "regenerate.py"
ASSIGNMENTS = ("01_pytorch_workflow", "01_pytorch_workflow_exercises")

# The spec's numbers (torch 2.13 CPU), to catch a manifest regenerated from a wrong solution.
SPEC = {
    "01_pytorch_workflow": {
        "weights": 0.57844043,
        "bias": 0.35130987,
        "final_test_loss": 0.0568781,
    },
    "01_pytorch_workflow_exercises": {
        "weight": 0.30668804,
        "bias": 0.90105999,
        "final_train_loss": 0.0037018,
        "final_test_loss": 0.0070458,
    },
}


@pytest.fixture
def executed_root(notebook_runs) -> Path:
    for assignment in ASSIGNMENTS:
        run = notebook_runs.solution(assignment)
        assert run.error is None, f"solutions/{assignment} failed: {run.error}"
    return notebook_runs.solutions_root


def copy_references(tmp_path: Path) -> Path:
    target = tmp_path / "reference_models"
    target.mkdir()
    for assignment in ASSIGNMENTS:
        for suffix in (".json", ".pth"):
            shutil.copy(REPO_ROOT / "reference_models" / f"{assignment}{suffix}", target)
    return target


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_manifest_matches_the_spec(reference_manifests, assignment):
    manifest = reference_manifests[assignment]
    assert manifest["assignment"] == assignment
    assert manifest["seed"] == 42 and manifest["lr"] == 0.01
    assert manifest["tolerance"] == {"weight": 0.004, "bias": 0.011}
    for key, expected in SPEC[assignment].items():
        # Learned parameters live under "parameters"; top-level weight/bias made the data.
        found = manifest[key] if key.startswith("final_") else manifest["parameters"][key]
        assert found == pytest.approx(expected, abs=5e-8), key


@pytest.mark.slow
def test_check_passes_on_the_committed_references(executed_root):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--executed-root", str(executed_root)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Reference models match the solutions." in result.stdout


@pytest.mark.slow
def test_check_fails_on_a_wrong_parameter(regenerate, executed_root, tmp_path, capsys):
    references = copy_references(tmp_path)
    manifest_path = references / "01_pytorch_workflow_exercises.json"
    manifest = json.loads(manifest_path.read_text())
    # +0.001 is inside the grading tolerance, still wrong on the torch the references were made
    # with; on another torch (a GPU machine's, say) only the grading tolerance applies.
    same_torch = manifest.get("torch_version") == torch.__version__
    manifest["parameters"]["bias"] += 0.001 if same_torch else 0.1
    manifest_path.write_text(json.dumps(manifest))
    argv = ["--check", "--reference-dir", str(references), "--executed-root", str(executed_root)]
    assert regenerate.main(argv) == 1
    err = capsys.readouterr().err
    assert "Reference models do not match the solutions:" in err
    assert "01_pytorch_workflow_exercises: parameter bias" in err
    assert "make reference-models" in err


@pytest.mark.slow
def test_check_fails_when_the_pth_is_not_the_manifests(regenerate, executed_root, tmp_path, capsys):
    references = copy_references(tmp_path)
    shutil.copy(
        references / "01_pytorch_workflow.pth", references / "01_pytorch_workflow_exercises.pth"
    )
    argv = ["--check", "--reference-dir", str(references), "--executed-root", str(executed_root)]
    assert regenerate.main(argv) == 1
    err = capsys.readouterr().err
    assert "01_pytorch_workflow_exercises: sha256" in err


@pytest.mark.slow
def test_check_runs_the_solutions_itself(tmp_path):
    # Without --executed-root the check executes both solution notebooks from scratch.
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
