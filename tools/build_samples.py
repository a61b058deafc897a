"""Builds the bundled sample submissions under samples/ from the corpus (`make samples` grades them)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.submissions.build import build_submission, load_corpus  # noqa: E402

SAMPLES_DIR = ROOT / "samples"

# assignment id -> {student: corpus entry name}
SAMPLES: dict[str, dict[str, str]] = {
    "01_pytorch_workflow_exercises": {
        "ada_correct": "reference",
        "ben_float_split_index": "split_float_index",
        "cleo_no_zero_grad": "training_no_zero_grad",
        "dev_interence_mode_typo": "predictions_interence_mode_typo",
        "eve_whole_model_saved": "save_whole_model",
        "finn_endless_loop": "predictions_infinite_loop",
    },
    "01_pytorch_workflow": {
        "ada_correct": "reference",
        "ben_unindented_if": "training_unindented_if",
    },
}


def sample_path(assignment_id: str, student: str, samples_dir: Path = SAMPLES_DIR) -> Path:
    return samples_dir / assignment_id / f"{student}.ipynb"


def build_samples() -> dict[Path, str]:
    """Each sample's path and the notebook text it should hold."""
    built = {}
    for assignment_id, students in SAMPLES.items():
        corpus = {entry["name"]: entry for entry in load_corpus(assignment_id)}
        for student, entry_name in students.items():
            notebook = build_submission(assignment_id, corpus[entry_name])
            built[sample_path(assignment_id, student)] = nbformat.writes(notebook) + "\n"
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale samples")
    args = parser.parse_args(argv)
    stale = []
    for path, text in build_samples().items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
