"""The simulated GPU raises what CUDA raises and computes what the CPU computes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import torch
    from torch import nn
    from grader.simulated_gpu import SimulatedGPU, device_of
    SimulatedGPU().install()

    def error(action):
        try:
            action()
        except (RuntimeError, TypeError) as e:
            return str(e).split(".")[0]
        return "no error"

    assert torch.cuda.is_available()
    X = torch.arange(0, 1, 0.1).unsqueeze(1)
    X_gpu = X.to("cuda")
    print("moved", device_of(X_gpu), device_of(X))           # a move makes a new tensor
    X.to("cuda")                                               # not kept: X stays behind
    print("unkept", device_of(X))
    model = nn.Linear(1, 1)
    model.to("cuda")
    print("model", device_of(model.weight))
    print("mixed", error(lambda: model(X)))
    print("same", device_of(model(X_gpu)))
    print("scalar", device_of(X_gpu * torch.tensor(2.0)))     # 0-dim CPU tensors may join
    print("numpy", error(lambda: X_gpu.numpy()))
    print("cpu", device_of(X_gpu.cpu()), X_gpu.cpu().numpy().shape)
    print("values", torch.equal(model(X_gpu), model(X_gpu.cpu().to("cuda"))))
    fresh = nn.Linear(1, 1)
    fresh.load_state_dict(model.state_dict())                 # copy_ crosses devices
    print("load", device_of(fresh.weight))
    print("cat", error(lambda: torch.cat([X_gpu, X])))        # tensors inside a list count
    print("stack", device_of(torch.stack([X_gpu, X_gpu])[0]))
    print("says", X_gpu.device, X_gpu.is_cuda, X.device, X.is_cuda)
    print("follows", device_of(X_gpu + torch.zeros(10, 1, device=X_gpu.device)))
    """
)


def test_device_mistakes_raise_as_on_cuda_and_values_stay_exact():
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.strip().splitlines())
    assert lines["moved"] == "cuda:0 cpu"
    assert lines["unkept"] == "cpu"
    assert lines["model"] == "cuda:0"
    assert lines["mixed"].startswith("Expected all tensors to be on the same device")
    assert lines["same"] == "cuda:0"
    assert lines["scalar"] == "cuda:0"
    assert lines["numpy"] == "can't convert cuda:0 device type tensor to numpy"
    assert lines["cpu"] == "cpu (10, 1)"
    assert lines["values"] == "True"
    assert lines["load"] == "cpu"
    assert lines["cat"].startswith("Expected all tensors to be on the same device")
    assert lines["stack"] == "cuda:0"
    assert lines["says"] == "cuda:0 True cpu False"  # `device=X.device` must follow X
    assert lines["follows"] == "cuda:0"


TRACED = textwrap.dedent(
    """
    import torch
    from torch import nn
    from grader.simulated_gpu import SimulatedGPU, device_of
    from grader.trace import Tracer
    SimulatedGPU().install()
    tracer = Tracer()
    tracer.install()
    model = nn.Linear(1, 1).to("cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    X = torch.ones(4, 1).to("cuda")
    for _ in range(3):
        loss = nn.L1Loss()(model(X), torch.zeros(4, 1).to("cuda"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    kinds = [e["kind"] for e in tracer.events]
    print("backward", kinds.count("backward"))
    forward = next(e for e in tracer.events if e["kind"] == "forward")
    print("device", forward["input"]["device"])
    print("copy", device_of(forward["input"]["values"]))
    """
)


def test_the_tracer_sees_the_simulated_gpu_once_per_call():
    run = subprocess.run(
        [sys.executable, "-c", TRACED], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.strip().splitlines())
    assert lines["backward"] == "3"  # torch re-enters the wrapper under a torch function mode
    assert lines["device"] == "cuda:0"  # recorded where the student's tensor would live
    assert lines["copy"] == "cpu"  # the grader's own copy is a plain CPU tensor
