"""The simulated GPU raises what CUDA raises and computes what the CPU computes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import torch
    from torch import nn
    from grader.sandbox.child.simulated_gpu import SimulatedGPU, device_of
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
    print("parameter", device_of(nn.Parameter(torch.randn(1, device="cuda"))))
    print("to_other", device_of(torch.ones(2).to(X_gpu)))
    import io
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, map_location="cuda")  # a CPU-only torch refuses this itself
    print("loaded", device_of(loaded["weight"]), hasattr(loaded, "_metadata"))
    # torch 2.11's Optimizer._cuda_graph_capture_health_check (each Adam step) asks this.
    print("capturing", torch.cuda.is_current_stream_capturing())
    # CUDA takes CPU index tensors; a CPU tensor refuses GPU ones.
    picked = X_gpu[torch.randperm(10)]
    print("index", device_of(picked), device_of(X_gpu[X_gpu.cpu() > 0.5]))
    print("index_gpu", error(lambda: X[torch.arange(3).to("cuda")]))
    logged = [X_gpu.sum(), X_gpu.mean()]  # values read out of GPU tensors: a CPU tensor
    print("listed", device_of(torch.tensor(logged)), device_of(torch.tensor(X_gpu.detach())))
    back = nn.Linear(1, 1).to("cuda")
    back.cpu()  # each parameter swapped for its CPU copy: no GPU tensor meets a CPU one
    print("back", device_of(back.weight), device_of(back(X)), error(lambda: back(X_gpu)))
    # torch.set_default_device("cuda"): tensors made without a device go to the (simulated) GPU.
    plain = torch.ones(2)
    torch.set_default_device("cuda")
    made, layer = torch.randn(2), nn.Linear(1, 1)
    print("default", device_of(made), device_of(layer.weight), torch.get_default_device())
    print("like", device_of(torch.zeros_like(plain)))  # *_like follows its input
    print("default_mixed", error(lambda: made + plain))
    torch.set_default_device("cpu")
    print("default_off", device_of(torch.randn(2)), torch.get_default_device())
    # A GPU's number (`torch.cuda.current_device()`) is that GPU, on a tensor or a model.
    number = torch.cuda.current_device()
    print("ordinal", device_of(plain.to(number)), device_of(nn.Linear(1, 1).to(0).weight),
          device_of(torch.zeros(1, device=0)), device_of(plain.to(0, torch.float64)))
    if hasattr(torch, "accelerator"):  # torch >= 2.6's spelling
        # A notebook cell is told of the GPU; torch's own code (an optimizer's step asks, then
        # uses the accelerator's streams) and any other caller get the real answer.
        cell = "accelerator = torch.accelerator.current_accelerator()\\n"
        cell += "print('accelerator', torch.accelerator.is_available(), "
        cell += "device_of(plain.to(accelerator)), library)"
        library = torch.accelerator.is_available()
        exec(compile(cell, "<ipython-input-7-0123>", "exec"))
    else:
        print("accelerator absent")
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
    assert lines["capturing"] == "False"
    assert lines["parameter"] == "cuda:0"  # nn.Parameter(...) keeps the data's device
    assert lines["to_other"] == "cuda:0"  # .to(other) follows other's device
    assert lines["loaded"] == "cuda:0 True"  # a state_dict keeps its _metadata
    assert lines["listed"] == "cpu cuda:0"  # torch.tensor(a GPU tensor) stays on the GPU
    assert lines["index"] == "cuda:0 cuda:0"
    assert lines["index_gpu"].startswith("indices should be either on cpu or on the same device")
    assert lines["back"].startswith("cpu cpu Expected all tensors to be on the same device")
    assert lines["default"] == "cuda:0 cuda:0 cuda:0"
    assert lines["like"] == "cpu"
    assert lines["default_mixed"].startswith("Expected all tensors to be on the same device")
    assert lines["default_off"] == "cpu cpu"
    assert lines["ordinal"] == "cuda:0 cuda:0 cuda:0 cuda:0"
    assert lines["accelerator"] in ("True cuda:0 False", "absent")


TRACED = textwrap.dedent(
    """
    import torch
    from torch import nn
    from grader.sandbox.child.simulated_gpu import SimulatedGPU, device_of
    from grader.sandbox.child.trace import Tracer
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
    F = torch.nn.functional
    F.mse_loss(model(X), torch.zeros(4, 1).to("cuda")).backward()  # a loss function, not module
    kinds = [e["kind"] for e in tracer.events]
    print("backward", kinds.count("backward"))
    print("losses", " ".join(e["loss_class"] for e in tracer.events if e["kind"] == "loss"))
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
    assert lines["backward"] == "4"  # torch re-enters the wrapper under a torch function mode
    # One event per loss: nn.L1Loss's own call of F.l1_loss is not a second one.
    assert lines["losses"] == "L1Loss L1Loss L1Loss MSELoss"
    assert lines["device"] == "cuda:0"  # recorded where the student's tensor would live
    assert lines["copy"] == "cpu"  # the grader's own copy is a plain CPU tensor


OPTIMIZER = textwrap.dedent(
    """
    import torch
    from torch import nn
    from grader.sandbox.child.simulated_gpu import SimulatedGPU, SimulatedGPUMode, device_of
    SimulatedGPU().install()
    handled = []
    original = SimulatedGPUMode.__torch_function__
    def counting(self, func, types, args=(), kwargs=None):
        handled.append(getattr(func, "__name__", ""))
        return original(self, func, types, args, kwargs)
    SimulatedGPUMode.__torch_function__ = counting

    def train(device, momentum):
        torch.manual_seed(0)
        model = nn.Linear(1, 1).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
        X = torch.arange(0, 1, 0.1).unsqueeze(1).to(device)
        for _ in range(5):
            loss = nn.L1Loss()(model(X), 0.7 * X + 0.3)
            optimizer.zero_grad()
            loss.backward()
            del handled[:]
            optimizer.step()
        return model, optimizer, X

    model, optimizer, X = train("cuda", 0.9)
    print("handled", len(handled))
    print("device", device_of(model.weight), device_of(model.weight.grad))
    cpu_model, _, _ = train("cpu", 0.9)
    print("exact", torch.equal(model.weight.cpu(), cpu_model.weight))
    optimizer.zero_grad()
    print("zeroed", model.weight.grad)
    try:
        optimizer.step(lambda: model(X.cpu()).sum())
        print("closure no error")
    except RuntimeError as error:
        print("closure", str(error).split(",")[0])
    """
)


def test_the_optimizers_own_work_skips_the_handler_and_keeps_devices_right():
    run = subprocess.run(
        [sys.executable, "-c", OPTIMIZER], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.strip().splitlines())
    assert lines["handled"] == "0"  # a step: 20-odd torch calls the handler need not see
    assert lines["device"] == "cuda:0 cuda:0"
    assert lines["exact"] == "True"  # momentum buffers and all
    assert lines["zeroed"] == "None"
    # A closure is the student's code: the handler still sees it, and its device mistake.
    assert lines["closure"] == "Expected all tensors to be on the same device"


def _graded(entry_name: str, simulate_gpu: bool = True):
    import tempfile
    from pathlib import Path

    import nbformat

    from grader.grading import Options, grade
    from grader.sandbox.execution import Limits
    from tests.submissions.build import build_submission, load_corpus

    assignment = "01_pytorch_workflow_exercises"
    entry = next(e for e in load_corpus(assignment) if e["name"] == entry_name)
    folder = Path(tempfile.mkdtemp(prefix="ptgrade-gpu-"))
    path = folder / f"{assignment}.ipynb"
    nbformat.write(build_submission(assignment, entry), path)
    limits = Limits(cell_timeout=30, simulate_gpu=simulate_gpu)
    return grade(path, Options(limits=limits, own_notebook=True))


def _skip_on_a_real_gpu() -> None:
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a real GPU grades here: nothing is simulated")


def test_messages_caused_by_the_simulated_gpu_say_so_and_what_fails_on_a_real_one():
    """A mistake that only a GPU shows, found on a CPU-only grader: the message says the
    notebook was graded as if on a GPU, and what a real GPU does with it."""
    _skip_on_a_real_gpu()
    result = _graded("state_model_and_data_left_on_cpu")
    assert result.execution["device"] == "simulated cuda"
    failed = [c for s in result.sections for c in s.failures()]
    assert {c.hint for c in failed} >= {"model.not_on_device", "training.off_device"}
    for check in failed:
        assert "Graded as if on a GPU: this grader has none" in check.message, check.message
        assert "On a real GPU, " in check.message
    mismatch = next(c for c in failed if c.hint == "training.off_device")
    assert "the data and the model would be on different devices" in mismatch.message
    # The tensor that is elsewhere is named: the model was moved (by the grader's repair).
    assert "`X_train` is on cpu" in mismatch.message


def test_other_messages_and_a_cpu_grade_say_nothing_of_a_gpu():
    _skip_on_a_real_gpu()
    on_cpu = _graded("device_model_not_moved", simulate_gpu=False)
    assert on_cpu.execution["device"] == "cpu"
    assert on_cpu.score == on_cpu.max_score  # no GPU, no device mistake to make
    float_split = _graded("split_float_index")
    messages = [c.message for s in float_split.sections for c in s.failures()]
    assert messages and not [m for m in messages if "as if on a GPU" in m]
