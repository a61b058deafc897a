"""Submissions aimed at the grader's own memory and time, built like the corpus's entries.

Their verdicts depend on the record's budgets (the student's process can patch its own tracer's
caps, and the grader decides what of it to keep); what they cost the grader must not. Used by
tests/test_grader_budgets.py and benchmarks/grader_memory.py.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from tests.submissions.build import build_submission

ASSIGNMENT = "01_pytorch_workflow_exercises"
SAVE_HEADER = """from pathlib import Path
import io, zipfile
MODEL_PATH = Path("models")
MODEL_PATH.mkdir(parents=True, exist_ok=True)
MODEL_NAME = "01_pytorch_workflow_exercises_model_1.pth"
MODEL_SAVE_PATH = MODEL_PATH / MODEL_NAME
"""

HOSTILE = {
    # A 0.5 MB file whose storage entry inflates to 512 MiB: torch allocates by the declared size.
    "saved_zip_bomb": [
        {
            "cell": "save_model",
            "source": SAVE_HEADER
            + """buffer = io.BytesIO()
torch.save(model_1.state_dict(), buffer)
with zipfile.ZipFile(buffer) as model, zipfile.ZipFile(MODEL_SAVE_PATH, "w") as bomb:
    for entry in model.infolist():
        if entry.filename.endswith("/data/0"):
            info = zipfile.ZipInfo(entry.filename)
            info.compress_type = zipfile.ZIP_DEFLATED
            with bomb.open(info, "w", force_zip64=True) as out:
                for _ in range(32):
                    out.write(bytes(1 << 24))
        else:
            bomb.writestr(entry, model.read(entry))
""",
        }
    ],
    # 30 000 rows, sent whole by a tracer whose value cap the cell raised in its own process.
    "split_of_30000_rows": [
        {
            "cell": "data",
            "old": "X = torch.arange(0, 1, 0.01)",
            "new": "import grader.sandbox.child.trace as _trace\n_trace.MAX_TENSOR_VALUES = 10**9\n"
            "X = torch.arange(0, 1, 1 / 30_000)",
        }
    ],
    # A million events from one cell, by a tracer whose event cap the cell raised.
    "event_flood": [
        {
            "cell": "predictions",
            "source": """import grader.sandbox.child.trace as _trace
_trace.MAX_EVENTS = 10**9
model_1.eval()
with torch.inference_mode():
    for _ in range(1_000_000):
        y_preds = model_1(X_test)
""",
        }
    ],
}


def write(name: str, folder: Path) -> Path:
    """The hostile submission `name`, written as the assignment's notebook in `folder`."""
    path = folder / f"{ASSIGNMENT}.ipynb"
    nbformat.write(build_submission(ASSIGNMENT, {"name": name, "changes": HOSTILE[name]}), path)
    return path
