"""Section `device`: device-agnostic code."""

from grader.check_api import Mistake, check, expect, what_it_is


@check("device", "value")
def test_device_matches_the_machine(record):
    device = record.value("device", "device")
    found = device.get("value")
    expect(
        device["kind"] in ("value", "device") and isinstance(found, str),
        f'`device` should be the string "cpu" or "cuda", but it is {what_it_is(device)}.',
        "device.wrong",
    )
    expected = record.expected_device
    # Another accelerator where there is no GPU (`else "mps"`): the fallback is the slip.
    other_gpu = expected == "cpu" and found.split(":")[0] in OTHER_ACCELERATORS
    known = _known(found)
    expect(
        found.split(":")[0] == expected,
        f"`device` is {found!r}, but on this machine it should be {expected!r}."
        + ("" if known else " PyTorch knows no device by that name."),
        "device.fallback" if other_gpu else ("device.wrong" if known else "device.unknown"),
    )


def _known(device: str) -> bool:
    """Whether PyTorch reads `device` as a device at all (`"gpu"` it does not)."""
    import torch

    try:
        torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


# Devices PyTorch knows that a machine without CUDA does not have: a fallback that is not "cpu".
OTHER_ACCELERATORS = ("mps", "xpu", "hip", "xla", "mtia", "hpu")


@check("device", "asks_torch")
def test_device_asks_torch_cuda_is_available(record):
    cell = record.stub_cell("device")["index"]
    if not record.events("cuda_query", cell=cell):
        named = record.uncalled("device", "is_available", kind="function")
        start = "Your cell" if named else "`device` is set by hand: your cell"
        raise Mistake(
            f"{start} never calls `torch.cuda.is_available()`.{named}", "device.hardcoded"
        )


@check("device", "fallback")
def test_device_falls_back_to_the_cpu(record):
    """The cell's `else` branch, which a machine with a GPU never runs: the grader runs the
    cell once more with torch saying there is no GPU (grader/sandbox/child/runner.py, _without_gpu)."""
    found = record.raw.get("without_gpu", {}).get("device")
    cell = record.stub_cell("device")["index"]
    device = record.raw_value("device", "device")
    right = str(device.get("value", "")).split(":")[0] == record.expected_device
    if found is None or not right or not record.events("cuda_query", cell=cell):
        return  # no second run (no GPU here: `value` saw this branch), or the others speak
    if found["kind"] == "error":
        raise Mistake(
            f"On a machine without a GPU your cell raises {found['error']}; there `device` "
            'should be "cpu".',
            "device.fallback",
        )
    value = found.get("value")
    expect(
        found["kind"] in ("value", "device")
        and isinstance(value, str)
        and value.split(":")[0] == "cpu",
        f"On a machine without a GPU your cell sets `device` to {value!r} "
        f'({what_it_is(found)}); there it should be "cpu".'
        if not isinstance(value, str)
        else f"On a machine without a GPU your cell sets `device` to {value!r}; there it "
        'should be "cpu".',
        "device.fallback",
    )
