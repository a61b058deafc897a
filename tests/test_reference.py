"""The grader's own training runs step exactly as torch.optim.SGD does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from grader.packs.workflow01.reference import _replay

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "01_pytorch_workflow_exercises"


def _with_torch_optim(weight, bias, x, y, steps, lr, trainable, loss_class):
    w = nn.Parameter(torch.tensor([weight]))
    b = nn.Parameter(torch.tensor([bias]))
    stepped = [p for p, train in zip((w, b), trainable) if train]
    optimizer = torch.optim.SGD(stepped, lr=lr)
    loss_fn = getattr(nn, loss_class)()
    history = []
    for _ in range(steps):
        loss = loss_fn(w * x + b, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append((float(w.detach()), float(b.detach())))
    return history


@pytest.mark.parametrize("loss_class", ["L1Loss", "MSELoss", "HuberLoss"])
@pytest.mark.parametrize("trainable", [(True, True), (True, False), (False, True)])
def test_the_replay_equals_torch_optim_sgd_to_the_bit(loss_class, trainable):
    x = torch.arange(0, 1, 0.02).unsqueeze(1)[:40]
    y = 0.7 * x + 0.3
    start = (0.3367, 0.1288)
    ours = _replay(*start, x, y, 200, 0.01, trainable, loss_class)
    theirs = _with_torch_optim(*start, x, y, 200, 0.01, trainable, loss_class)
    assert ours == theirs  # floats compared exactly: the same operations in the same order


def test_grading_a_submission_does_not_import_torch_dynamo():
    # torch.optim's first step imports torch._dynamo, about a second of every grading process.
    probe = (
        "import sys\n"
        "from grader.grading import grade\n"
        "from grader.reports import html\n"
        f"result = grade({str(SAMPLE / 'ada_correct.ipynb')!r})\n"
        "html.render(result)\n"
        "print(result.score, 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["20.0", "False"]
