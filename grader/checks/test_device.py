"""Section `device`: device-agnostic code."""

from grader.plugin import check
from grader.record import Mistake, expect, what_it_is


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
    expect(
        found.split(":")[0] == expected,
        f"`device` is {found!r}, but on this machine it should be {expected!r}.",
        "device.wrong",
    )


@check("device", "asks_torch")
def test_device_asks_torch_cuda_is_available(record):
    cell = record.stub_cell("device")["index"]
    if not record.events("cuda_query", cell=cell):
        named = record.uncalled("device", "is_available", kind="function")
        start = "Your cell" if named else "`device` is set by hand: your cell"
        raise Mistake(
            f"{start} never calls `torch.cuda.is_available()`.{named}", "device.hardcoded"
        )
