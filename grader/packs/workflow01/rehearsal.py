"""What the sandbox's warm worker rehearses once, before it forks (Pack.rehearsal).

Every child would otherwise pay the first-use costs (lazy imports, dispatch and font caches,
IPython's compiler and display hook) of what every notebook of the chapter does: a straight line
trained with L1Loss and SGD, saved and loaded, plotted. The worker runs REHEARSAL through the
shell the children inherit, then empties its namespace (grader/sandbox/child/runner.py).

The worker imports this module before any student code runs, inside the sandbox: it must import
nothing (tests/test_import_rules.py), and REHEARSAL is the grader's own code.
"""

REHEARSAL = (
    """
import io
import matplotlib.pyplot as plt
import torch
from torch import nn

class Line(nn.Module):
    def __init__(self):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(1, dtype=torch.float), requires_grad=True)
        self.bias = nn.Parameter(torch.randn(1, dtype=torch.float), requires_grad=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weights * x + self.bias

X = torch.arange(0, 1, 0.02).unsqueeze(dim=1)
y = 0.7 * X + 0.3
for model in (Line(), nn.Linear(1, 1)):
    loss_fn = nn.L1Loss()
    optimizer = torch.optim.SGD(params=model.parameters(), lr=0.01)
    for epoch in range(2):
        model.train()
        loss = loss_fn(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.inference_mode():
            test_loss = loss_fn(model(X), y.type(torch.float))
    buffer = io.BytesIO()
    torch.save(obj=model.state_dict(), f=buffer)
    buffer.seek(0)
    model.load_state_dict(torch.load(f=buffer))
    model.to("cpu")
    print(f"{epoch} {loss:.3f} {test_loss}", model.state_dict(), file=io.StringIO())
plt.figure(figsize=(10, 7))
plt.scatter(X, y, c="b", s=4, label="Training data")
plt.plot(X, y, label="Loss")
plt.title("Rehearsal")
plt.xlabel("x")
plt.legend(prop={"size": 14})
"""
    + "\nepoch, X.shape"
)  # a cell that ends in an expression: the display hook's first use
