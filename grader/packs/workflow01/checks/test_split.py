"""Section `split`: 80 % train / 20 % test, disjoint, covering, pairs aligned (any row order)."""

import torch

from grader.check_api import Mistake, check, expect

NAMES = ("X_train", "y_train", "X_test", "y_test")


def _parts(record):
    parts = {name: record.tensor(name, "split") for name in NAMES}
    for name, part in parts.items():
        whole = record.tensor(name[0], "split")
        # `X[:, :train_split]` cuts the columns: (100, 1) and (100, 0), every row in both.
        if len(whole.shape) == len(part.shape) > 1 and part.shape[1:] != whole.shape[1:]:
            raise Mistake(
                f"`{name}` has shape {tuple(part.shape)} but `{name[0]}` has "
                f"{tuple(whole.shape)}: the split should cut rows and keep the columns.",
                "split.columns",
            )
    return parts


def _rows(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(tensor.shape[0], -1).double() if tensor.dim() else tensor.reshape(1, 1)


TOLERANCE = 1e-6


def _match_rows(part: torch.Tensor, whole: torch.Tensor) -> torch.Tensor:
    """For each row of `part`, the index of the equal row of `whole` (-1 if none).

    By sorting, never by pairwise distances: the work grows as n log n with the student's rows
    (torch.cdist's grew with their square: 30 000 rows took 5.9 GB and 27 s in the grader)."""
    if part.shape[0] == 0:
        return torch.empty(0, dtype=torch.long)
    if part.shape[1:] != whole.shape[1:] or whole.shape[0] == 0:
        return torch.full((part.shape[0],), -1)
    part_rows, whole_rows = _rows(part), _rows(whole)
    if whole_rows.shape[1] != 1:
        return _equal_rows(part_rows, whole_rows)
    # One column (this chapter's X): the first row of `whole` within TOLERANCE of each value.
    values, order = torch.sort(whole_rows[:, 0], stable=True)
    wanted = part_rows[:, 0]
    at = torch.searchsorted(values, wanted - TOLERANCE).clamp(max=len(values) - 1)
    close = (values[at] - wanted).abs() <= TOLERANCE  # nan is close to nothing
    return torch.where(close, order[at], -1)


def _equal_rows(part_rows: torch.Tensor, whole_rows: torch.Tensor) -> torch.Tensor:
    """Rows of several columns: the first exactly equal row of `whole` (-1 if none)."""
    count = len(whole_rows)
    _, group = torch.unique(torch.cat([whole_rows, part_rows]), dim=0, return_inverse=True)
    first = torch.full((int(group.max()) + 1,), count)
    first.scatter_reduce_(0, group[:count], torch.arange(count), reduce="amin")
    found = first[group[count:]]
    return torch.where(found < count, found, -1)


@check("split", "sizes")
def test_80_20_sizes(record):
    X = record.tensor("X", "split")
    parts = _parts(record)
    n = len(X)
    n_train, n_test = len(parts["X_train"]), len(parts["X_test"])
    expect(
        len(parts["y_train"]) == n_train and len(parts["y_test"]) == n_test,
        f"`X_train` has {n_train} rows but `y_train` has {len(parts['y_train'])} "
        f"(and `X_test` {n_test}, `y_test` {len(parts['y_test'])}): split X and y alike.",
        "split.misaligned",
    )
    expect(
        abs(n_train - 0.8 * n) < 1 and n_train + n_test == n,
        f"The split has {n_train} training and {n_test} test rows out of {n}; expected "
        f"{int(0.8 * n)} and {n - int(0.8 * n)} (80 % / 20 %).",
        "split.proportion",
    )


@check("split", "disjoint_cover")
def test_every_row_in_exactly_one_set(record):
    X = record.tensor("X", "split").values
    parts = _parts(record)
    train = _match_rows(parts["X_train"].values, X)
    test = _match_rows(parts["X_test"].values, X)
    expect(
        bool((train >= 0).all()) and bool((test >= 0).all()),
        "Some rows of `X_train` or `X_test` are not rows of `X`.",
        "split.overlap",
    )
    used = torch.cat([train, test])
    overlap = len(set(train.tolist()) & set(test.tolist()))
    expect(
        overlap == 0, f"{overlap} rows are in both the training and the test set.", "split.overlap"
    )
    missing = len(X) - len(set(used.tolist()))
    expect(missing == 0, f"{missing} rows of `X` are in neither set.", "split.overlap")


@check("split", "aligned")
def test_pairs_stay_aligned(record):
    X = record.tensor("X", "split").values
    y = record.tensor("y", "split").values
    parts = _parts(record)
    for x_name, y_name in (("X_train", "y_train"), ("X_test", "y_test")):
        x_part, y_part = parts[x_name].values, parts[y_name].values
        rows = _match_rows(x_part, X)
        if bool((rows < 0).any()) or len(y_part) != len(rows):
            raise Mistake(f"`{x_name}` and `{y_name}` don't line up.", "split.misaligned")
        expected = y[rows]
        expect(
            expected.shape == y_part.shape
            and torch.allclose(expected.double(), y_part.double(), atol=1e-6),
            f"The rows of `{y_name}` don't belong to the rows of `{x_name}`: split X and y "
            "with the same index.",
            "split.misaligned",
        )


@check("split", "order", only="01_pytorch_workflow")
def test_first_samples_for_training(record, assignment):
    """The walkthrough asks for the first `train_split` samples, in order (the exercises allow a
    shuffle, and say so)."""
    X = record.tensor("X", "split").values
    parts = _parts(record)
    n_train = len(parts["X_train"])
    train = _match_rows(parts["X_train"].values, X)
    test = _match_rows(parts["X_test"].values, X)
    if bool((train < 0).any()) or bool((test < 0).any()):
        return  # rows that are not X's: disjoint_cover says so
    in_order = torch.equal(train, torch.arange(n_train)) and torch.equal(
        test, torch.arange(n_train, n_train + len(test))
    )
    expect(
        in_order or sorted(torch.cat([train, test]).tolist()) != list(range(len(X))),
        f"`X_train` is not the first {n_train} rows of `X` in order (and `X_test` the rest): "
        "the walkthrough asks for the first `train_split` samples, `X[:train_split]`, not a "
        "shuffled or reordered split.",
        "split.order",
    )
