"""Rebuild the reference models by running each solution notebook in a real Jupyter kernel.

`python reference_models/regenerate.py` writes `<assignment>.pth` (the learned state_dict) and
`<assignment>.json` (how it was made and what it learned) next to this file.
`python reference_models/regenerate.py --check` rebuilds them in a temporary folder and exits 1,
saying what differs, when the committed files no longer match what the solutions produce.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

from grader.packs.workflow01.assignments import ASSIGNMENTS as CONTRACTS
from grader.packs.workflow01.assignments import Assignment as Contract
from grader.packs.workflow01.reference import TOLERANCE

REFERENCE_DIR = Path(__file__).resolve().parent
REPO_ROOT = REFERENCE_DIR.parent
SOLUTIONS_DIR = REPO_ROOT / "solutions"

SEED = 42
# Same torch, same CPU code path: a rerun must reproduce the committed numbers this closely.
# (Across torch versions the grader's TOLERANCE applies: the end-of-training 2-cycle.)
RERUN_TOLERANCE = 1e-6
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 600


@dataclass(frozen=True)
class Assignment:
    """How one solution notebook makes its data and where it saves its model."""

    name: str
    saved_model: str  # path the notebook saves its state_dict to, relative to its folder
    weight: float
    bias: float
    start: float
    end: float
    step: float
    epochs: int
    lr: float

    @classmethod
    def of(cls, contract: Contract) -> Assignment:
        """From the grader's contract (grader/packs/workflow01/assignments.py), so the numbers live in one place."""
        return cls(
            name=contract.id,
            saved_model=f"models/{contract.id}_{contract.model_name}.pth",
            weight=contract.weight,
            bias=contract.bias,
            start=0,
            end=1,
            step=contract.data_step,
            epochs=contract.epochs,
            lr=contract.lr,
        )

    @property
    def notebook(self) -> str:
        return f"{self.name}.ipynb"

    def data(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """X_train, y_train, X_test, y_test exactly as the notebook makes them."""
        X = torch.arange(self.start, self.end, self.step).unsqueeze(dim=1)
        y = self.weight * X + self.bias
        train_split = int(0.8 * len(X))
        return X[:train_split], y[:train_split], X[train_split:], y[train_split:]


ASSIGNMENTS = {contract.id: Assignment.of(contract) for contract in CONTRACTS.values()}


def kernel_env() -> dict[str, str]:
    """Environment for a kernel running a solution: sandboxed, headless, CPU only."""
    env = dict(os.environ)
    env["PTGRADE_SANDBOX"] = "1"  # the notebook's check cells must not start grading
    env["MPLBACKEND"] = "Agg"
    env["CUDA_VISIBLE_DEVICES"] = ""  # the references are CPU numbers
    return env


def execute_notebook(notebook_path: Path, env: dict[str, str] | None = None):
    """Run a notebook top to bottom in a real kernel, in its own folder; return the executed nb.

    Raises nbclient's CellExecutionError at the first failing cell; the notebook object it
    was working on is attached as `error.executed_notebook`.
    """
    nb = nbformat.read(notebook_path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    try:
        client.execute(env=kernel_env() if env is None else env)
    except Exception as error:
        error.executed_notebook = nb
        raise
    return nb


def run_solution(assignment: Assignment, workdir: Path) -> Path:
    """Copy the solution folder into `workdir`, execute it there, return that folder."""
    folder = workdir / assignment.name
    shutil.copytree(
        SOLUTIONS_DIR / assignment.name, folder, ignore=shutil.ignore_patterns("models")
    )
    executed = execute_notebook(folder / assignment.notebook)
    nbformat.write(executed, folder / assignment.notebook)
    return folder


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True, map_location="cpu")


def _split_keys(state_dict: dict[str, torch.Tensor]) -> tuple[str, str]:
    """(weight key, bias key): `weights` in the chapter, `weight` in the exercises."""
    if set(state_dict) not in ({"weights", "bias"}, {"weight", "bias"}):
        raise ValueError(f"unexpected state_dict keys {sorted(state_dict)}")
    weight_key = "weights" if "weights" in state_dict else "weight"
    return weight_key, "bias"


def l1_losses(assignment: Assignment, state_dict: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Train and test L1 loss of the line the state_dict describes, on the assignment's data."""
    weight_key, bias_key = _split_keys(state_dict)
    w, b = state_dict[weight_key], state_dict[bias_key]
    X_train, y_train, X_test, y_test = assignment.data()
    l1 = torch.nn.L1Loss()
    with torch.inference_mode():
        return l1(w * X_train + b, y_train).item(), l1(w * X_test + b, y_test).item()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_manifest(assignment: Assignment, pth: Path) -> dict:
    state_dict = load_state_dict(pth)
    train_loss, test_loss = l1_losses(assignment, state_dict)
    return {
        "assignment": assignment.name,
        "seed": SEED,
        "epochs": assignment.epochs,
        "lr": assignment.lr,
        "weight": assignment.weight,
        "bias": assignment.bias,
        "data": {"start": assignment.start, "end": assignment.end, "step": assignment.step},
        "torch_version": torch.__version__,
        "parameters": {key: value.item() for key, value in state_dict.items()},
        "final_train_loss": train_loss,
        "final_test_loss": test_loss,
        "sha256": sha256(pth),
        "tolerance": dict(TOLERANCE),
    }


def write_reference(assignment: Assignment, executed_folder: Path, output_dir: Path) -> dict:
    """Write `<assignment>.pth` and `<assignment>.json` into output_dir from an executed run."""
    saved = executed_folder / assignment.saved_model
    if not saved.is_file():
        raise SystemExit(f"error: the {assignment.name} solution did not save {saved}")
    state_dict = load_state_dict(saved)
    output_dir.mkdir(parents=True, exist_ok=True)
    pth = output_dir / f"{assignment.name}.pth"
    torch.save(state_dict, pth)
    manifest = build_manifest(assignment, pth)
    (output_dir / f"{assignment.name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _close(a: float, b: float, tol: float) -> bool:
    return math.isclose(a, b, rel_tol=0.0, abs_tol=tol)


def compare(committed: dict, fresh: dict) -> list[str]:
    """Human-readable differences between a committed manifest and a fresh one."""
    problems = []
    name = committed.get("assignment", "?")
    for key in ("assignment", "seed", "epochs", "lr", "weight", "bias", "data", "tolerance"):
        if committed.get(key) != fresh.get(key):
            problems.append(f"{name}: {key} is {committed.get(key)!r}, expected {fresh[key]!r}")
    same_torch = committed.get("torch_version") == fresh["torch_version"]
    # torch.save output depends only on the state_dict, the file name and the torch version.
    if same_torch and committed.get("sha256") != fresh["sha256"]:
        problems.append(
            f"{name}: sha256 {committed.get('sha256')!r} differs from a rerun's {fresh['sha256']!r}"
        )
    # Another torch may round differently; then only the grading tolerance is meaningful.
    tol = {k: RERUN_TOLERANCE for k in ("weight", "bias")} if same_torch else TOLERANCE
    fresh_params, committed_params = fresh["parameters"], committed.get("parameters", {})
    if set(fresh_params) != set(committed_params):
        problems.append(
            f"{name}: parameters {sorted(committed_params)}, expected {sorted(fresh_params)}"
        )
    for key, value in fresh_params.items():
        if key not in committed_params:
            continue
        limit = tol["bias"] if key == "bias" else tol["weight"]
        if not _close(committed_params[key], value, limit):
            problems.append(
                f"{name}: parameter {key} is {committed_params[key]!r} in the manifest, "
                f"the solution learns {value!r} (allowed difference {limit})"
            )
    for key in ("final_train_loss", "final_test_loss"):
        limit = RERUN_TOLERANCE if same_torch else max(TOLERANCE.values())
        if not isinstance(committed.get(key), float) or not _close(
            committed[key], fresh[key], limit
        ):
            problems.append(
                f"{name}: {key} is {committed.get(key)!r}, expected {fresh[key]!r} "
                f"(allowed difference {limit})"
            )
    return problems


def check_committed_file(assignment: Assignment, reference_dir: Path, manifest: dict) -> list[str]:
    """The committed .pth must be the file the manifest describes."""
    pth = reference_dir / f"{assignment.name}.pth"
    if not pth.is_file():
        return [f"{assignment.name}: {pth} is missing"]
    problems = []
    if sha256(pth) != manifest.get("sha256"):
        problems.append(f"{assignment.name}: sha256 of {pth.name} does not match the manifest")
    described = build_manifest(assignment, pth)
    if described["parameters"] != manifest.get("parameters"):
        problems.append(
            f"{assignment.name}: {pth.name} holds {described['parameters']}, "
            f"the manifest says {manifest.get('parameters')}"
        )
    return problems


def check(reference_dir: Path, executed_root: Path | None) -> list[str]:
    """Compare the committed references with a fresh run (or with already executed folders)."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="ptgrade-reference-") as tmp:
        for assignment in ASSIGNMENTS.values():
            manifest_path = reference_dir / f"{assignment.name}.json"
            if not manifest_path.is_file():
                problems.append(f"{assignment.name}: {manifest_path} is missing")
                continue
            committed = json.loads(manifest_path.read_text())
            problems += check_committed_file(assignment, reference_dir, committed)
            if executed_root is not None:
                folder = executed_root / assignment.name
            else:
                folder = run_solution(assignment, Path(tmp) / "run")
            fresh = write_reference(assignment, folder, Path(tmp) / "out")
            problems += compare(committed, fresh)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="rebuild in a temporary folder and compare with the committed references",
    )
    parser.add_argument(
        "--reference-dir",
        type=Path,
        default=REFERENCE_DIR,
        help="folder holding the references to write or check (default: next to this script)",
    )
    parser.add_argument(
        "--executed-root",
        type=Path,
        help="reuse solution folders already executed under this folder "
        "(<root>/<assignment>/models/...) instead of running the notebooks again",
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.reference_dir, args.executed_root)
        if problems:
            print("Reference models do not match the solutions:", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            print(
                "If the solutions changed on purpose, run `make reference-models` and commit.",
                file=sys.stderr,
            )
            return 1
        print("Reference models match the solutions.")
        return 0
    with tempfile.TemporaryDirectory(prefix="ptgrade-reference-") as tmp:
        for assignment in ASSIGNMENTS.values():
            if args.executed_root is not None:
                folder = args.executed_root / assignment.name
            else:
                folder = run_solution(assignment, Path(tmp))
            manifest = write_reference(assignment, folder, args.reference_dir)
            print(f"wrote {assignment.name}: {manifest['parameters']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
