"""What the tracer records of a model's calls and a loss's graph (run in a child: it patches torch)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CALLS = textwrap.dedent(
    """
    import torch
    from torch import nn
    from grader.sandbox.child.trace import Tracer, own_function
    tracer = Tracer()
    tracer.install()

    class Line(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(1, 1)

        def forward(self, x):
            return self.layer(x)

    model, other = Line(), nn.Linear(1, 1)
    x = torch.ones(4, 1)
    model(x)
    model.forward(x)
    other.forward(x)
    forwards = [e for e in tracer.events if e["kind"] == "forward"]
    print("forwards", len(forwards))
    print("modules", forwards[0]["module_id"] == forwards[1]["module_id"] == id(model))
    print("linear", forwards[2]["module_id"] == id(other))
    print("own", own_function(vars(Line)["forward"]).__module__ != "grader.sandbox.child.trace")

    loss_fn = nn.L1Loss()
    tracer.events.clear()
    loss_fn(model.forward(x), torch.zeros(4, 1)).backward()
    with torch.no_grad():
        loss_fn(other(x), torch.zeros(4, 1))
    mine = sorted(id(p) for p in model.parameters())
    loss, backward, test_loss = [e for e in tracer.events if e["kind"] != "forward"]
    print("loss", loss["param_ids"] == mine, backward["param_ids"] == mine)
    test_forward = tracer.events[-2]
    print("test", test_loss["param_ids"] == [], test_forward["output_id"] in test_loss["arg_ids"])
    """
)


def test_a_forward_called_directly_is_one_forward_pass_and_a_loss_names_its_model():
    run = subprocess.run([sys.executable, "-c", CALLS], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.strip().splitlines())
    # `model(x)` and `model.forward(x)` each once (not the layer inside), and torch's own layer.
    assert lines["forwards"] == "3"
    assert lines["modules"] == "True"
    assert lines["linear"] == "True"
    assert lines["own"] == "True"  # the class's own `forward`, for reading its globals
    # The training loss and its backward reach the model's parameters; a test loss without a
    # graph is known by the forward output it compares.
    assert lines["loss"] == "True True"
    assert lines["test"] == "True True"
