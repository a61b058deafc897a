"""Sections `make_numbers` and `total`: 0 to 4, and their sum."""

import torch

from grader.check_api import check, expect, same_values


@check("make_numbers", "values")
def test_numbers_are_0_to_4(record):
    numbers = record.tensor("numbers", "make_numbers")
    expect(
        same_values(numbers.values, torch.arange(5)),
        f"`numbers` holds {numbers.values.tolist()}, not the whole numbers 0 to 4.",
        "numbers.wrong",
    )


@check("total", "sum")
def test_total_is_the_sum_of_the_numbers(record):
    numbers = record.tensor("numbers", "total")
    total = record.tensor("total", "total")
    expect(
        same_values(total.values, numbers.values.sum()),
        f"`total` is {total.values.tolist()}, not the sum of `numbers`.",
        "total.wrong",
    )
