"""Shared fixtures for the test suite."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
from filelock import FileLock

# A test pack's checks are graded by the kit on a record (tests/test_tiny_pack.py), never
# collected as the suite's own tests: they need the record the grader feeds them.
collect_ignore_glob = ["packs/*"]

REPO_ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# Notebooks, released exercises and reference models (solutions/, exercises/, reference_models/)
#
# Each notebook is executed once per test run, even under pytest-xdist: the first worker that
# needs it runs it under a file lock in the run's shared temp folder, the others read the result.
# ---------------------------------------------------------------------------------------------

ASSIGNMENTS = ("01_pytorch_workflow", "01_pytorch_workflow_exercises")

# Appended to a solution before it runs: prints what the tests need from the kernel's globals.
PROBE_MARK = "PTGRADE-PROBE "
PROBES = {
    "01_pytorch_workflow": """
import json as _json
print("PTGRADE-PROBE " + _json.dumps({
    "epoch_count": epoch_count,
    "train_loss_values": [float(v) for v in train_loss_values],
    "test_loss_values": [float(v) for v in test_loss_values],
    "state_dict": {k: v.item() for k, v in model_0.state_dict().items()},
    "reloaded_predictions_equal": bool((y_preds == loaded_model_preds).all()),
}))
""",
    "01_pytorch_workflow_exercises": """
import json as _json
print("PTGRADE-PROBE " + _json.dumps({
    "X_shape": list(X.shape),
    "split_sizes": [len(X_train), len(y_train), len(X_test), len(y_test)],
    "state_dict": {k: v.item() for k, v in model_1.state_dict().items()},
    "reloaded_predictions_equal": bool((y_preds == loaded_model_preds).all()),
}))
""",
}


def load_script(path: Path) -> ModuleType:
    """Import a repository script (not a package module) by its path."""
    name = "ptgrade_script_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class ExecutedNotebook:
    """A notebook run top to bottom in a real kernel, in its own copy of the assignment folder."""

    folder: Path
    notebook: nbformat.NotebookNode
    error: str | None  # exception name of the cell that stopped the run; None if it finished

    def cell(self, grade_id: str) -> nbformat.NotebookNode:
        for cell in self.notebook.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
                return cell
        raise KeyError(grade_id)

    def stdout(self, grade_id: str) -> str:
        outputs = self.cell(grade_id).get("outputs", [])
        return "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")

    def failed_cell_index(self) -> int | None:
        for index, cell in enumerate(self.notebook.cells):
            if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                return index
        return None

    def probe(self) -> dict:
        """What the probe cell appended to a solution printed (see PROBES)."""
        text = "".join(o.get("text", "") for o in self.notebook.cells[-1].get("outputs", []))
        for line in text.splitlines():
            if line.startswith(PROBE_MARK):
                return json.loads(line[len(PROBE_MARK) :])
        raise AssertionError(f"the probe cell printed no result: {text!r}")


class NotebookRuns:
    """Runs solutions/ and exercises/ notebooks on demand, once per test run."""

    def __init__(self, shared_dir: Path, regenerate: ModuleType) -> None:
        self.shared_dir = shared_dir
        self.regenerate = regenerate

    @property
    def solutions_root(self) -> Path:
        """Folder holding `<assignment>/` for each executed solution (with its models/)."""
        return self.shared_dir / "solutions"

    def solution(self, assignment: str) -> ExecutedNotebook:
        return self._run("solutions", assignment, probe=PROBES[assignment])

    def exercise(self, assignment: str) -> ExecutedNotebook:
        return self._run("exercises", assignment, probe=None)

    def _run(self, kind: str, assignment: str, probe: str | None) -> ExecutedNotebook:
        folder = self.shared_dir / kind / assignment
        executed_path = folder / f"{assignment}.executed.ipynb"
        result_path = folder / "result.json"
        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.shared_dir / f"{kind}-{assignment}.lock")):
            if not result_path.exists():
                shutil.rmtree(folder, ignore_errors=True)
                shutil.copytree(
                    REPO_ROOT / kind / assignment, folder, ignore=shutil.ignore_patterns("models")
                )
                notebook_path = folder / f"{assignment}.ipynb"
                if probe is not None:
                    nb = nbformat.read(notebook_path, as_version=4)
                    nb.cells.append(nbformat.v4.new_code_cell(probe.strip(), id="ptgrade-probe"))
                    nbformat.write(nb, notebook_path)
                try:
                    executed = self.regenerate.execute_notebook(notebook_path)
                    error = None
                except Exception as exc:  # CellExecutionError, or the kernel died
                    executed = getattr(exc, "executed_notebook", None)
                    if executed is None:
                        raise
                    error = getattr(exc, "ename", type(exc).__name__)
                nbformat.write(executed, executed_path)
                result_path.write_text(json.dumps({"error": error}))
        error = json.loads(result_path.read_text())["error"]
        return ExecutedNotebook(folder, nbformat.read(executed_path, as_version=4), error)


@pytest.fixture(scope="session")
def regenerate() -> ModuleType:
    """reference_models/regenerate.py, imported."""
    return load_script(REPO_ROOT / "reference_models" / "regenerate.py")


@pytest.fixture(scope="session")
def release_exercises() -> ModuleType:
    """tools/release_exercises.py, imported."""
    return load_script(REPO_ROOT / "tools" / "release_exercises.py")


@pytest.fixture(scope="session")
def notebook_runs(request, tmp_path_factory, regenerate) -> NotebookRuns:
    # Under xdist every worker has its own basetemp; their parent is shared by the run.
    base = tmp_path_factory.getbasetemp()
    is_xdist_worker = hasattr(request.config, "workerinput")
    shared = (base.parent if is_xdist_worker else base) / "ptgrade-notebooks"
    shared.mkdir(exist_ok=True)
    return NotebookRuns(shared, regenerate)


@pytest.fixture(scope="session")
def reference_manifests() -> dict[str, dict]:
    """The committed reference_models/<assignment>.json, by assignment."""
    return {
        name: json.loads((REPO_ROOT / "reference_models" / f"{name}.json").read_text())
        for name in ASSIGNMENTS
    }


# ---------------------------------------------------------------------------------------------
# End of the notebooks / exercises / reference models block.
# ---------------------------------------------------------------------------------------------
