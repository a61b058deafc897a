"""Chapter 01's feedback: what a real GPU does with a mistake, and the pictures' data."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grader.check_api import Record


# Mistakes that show only where there is a GPU (hint id: what a real GPU does with them). On a
# CPU-only grader they show because the simulated GPU (grader/sandbox/child/simulated_gpu.py) made them, and
# a message that does not say so reads as a fault of the student's own machine.
ON_A_GPU = {
    "device.wrong": "your code would run on the CPU where `torch.cuda.is_available()` is True",
    "device.mismatch": "PyTorch raises this error where a tensor on the GPU meets one on the CPU",
    "model.plain_tensor_attr": "the plain tensor stays on the CPU when the model moves to the "
    "GPU, and the forward pass raises a device error",
    "predictions.cpu": "`.numpy()` (and matplotlib) raise this error on a tensor on the GPU",
    "model.forward_device": "the tensor `forward` makes stays on the CPU and meets the GPU's",
    "model.not_on_device": "the model would stay on the CPU while the data is on the GPU",
    "training.off_device": "the data and the model would be on different devices",
    "load.not_on_device": "the reloaded model would stay on the CPU while the data is on the GPU",
    "device.data_not_moved": "the data left on the CPU meets the model on the GPU",
    "device.to_not_kept": "the data left on the CPU meets the model on the GPU",
}


def figure_data(record: Record) -> dict:
    """What the feedback pictures need: the data, the predictions and the loss curve."""
    data: dict = {}
    for name in ("X_train", "y_train", "X_test", "y_test", "y_preds"):
        value = record.raw.get("final", {}).get(name, {})
        if value.get("kind") == "tensor" and value.get("values") is not None:
            data[name] = value["values"].flatten().tolist()
    cell = record.stub_cell("training_loop")
    if cell is not None:
        data["train_loss"] = [
            e["value"] for e in record.events("loss", cell=cell["index"]) if e["grad_enabled"]
        ]
    return data
