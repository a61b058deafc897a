"""The recorded submission, as the checks see it: values by section, the trace, the cells' fate."""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from grader.contract import Assignment
from grader.notebook.cell_source import names_made, parse


class Mistake(Exception):
    """A check's finding: a message for the student and a hint id from grader.checking.hints."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def expect(condition: bool, message: str, hint: str) -> None:
    if not condition:
        raise Mistake(message, hint)


def what_it_is(data: dict) -> str:
    """A recorded non-tensor value as the object of a sentence: "None", "the number 0",
    "a Subset"."""
    if data["kind"] == "value":
        value = data.get("value")
        if value is None or isinstance(value, bool):
            return str(value)
        if isinstance(value, float):
            return f"the number {value:g}"
        return f"the string {value!r}"
    if data["kind"] == "device":
        return f"the device {data['value']!r}"
    if data["kind"] == "list":
        return "a list"
    return f"a {data.get('type') or data.get('class') or data.get('name') or data['kind']}"


# What `torch.utils.data` hands back in place of tensors (`random_split`, `TensorDataset`).
DATASET_TYPES = ("Subset", "TensorDataset", "Dataset", "DataLoader")


@dataclass(frozen=True)
class TensorValue:
    name: str
    data: dict

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data["shape"])

    @property
    def dtype(self) -> str:
        return self.data["dtype"]

    @property
    def device(self) -> str:
        return self.data["device"]

    @property
    def requires_grad(self) -> bool:
        return self.data["requires_grad"]

    @property
    def values(self) -> torch.Tensor:
        if self.data.get("values") is None:
            raise Mistake(f"`{self.name}` is too large for the grader to read.", "name.missing")
        return self.data["values"]

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0


@dataclass(frozen=True)
class ModuleValue:
    name: str
    data: dict

    @property
    def id(self) -> int:
        return self.data["id"]

    @property
    def class_name(self) -> str:
        return self.data["class"]

    @property
    def parameters(self) -> list[dict]:
        return self.data["parameters"]

    @property
    def probes(self) -> list[dict]:
        return self.data["probes"]

    @property
    def forward_globals(self) -> list[str]:
        return self.data.get("forward_globals", [])

    def returns_none(self) -> bool:
        return any(p.get("output_type") == "NoneType" for p in self.probes)

    def missing_attribute(self) -> str | None:
        """The attribute `forward` reads but the model lacks (`self.w` for the `self.W` that
        `__init__` made), when the model has parameters of its own."""
        for probe in self.probes:
            found = re.search(
                r"^AttributeError: .* has no attribute '(\w+)'", probe.get("error", "")
            )
            if probe["shape"] == "column" and found and self.parameters:
                return found.group(1)
        return None

    def misspelled(self) -> tuple[str, str] | None:
        """(what the class defines, what it meant) for an `__init__` or `forward` that Python
        and PyTorch never call because of its spelling (`__int__`, `foward`)."""
        methods = self.data.get("methods", [])
        for meant in ("__init__", "forward"):
            if meant in methods:
                continue
            close = difflib.get_close_matches(meant, methods, n=1, cutoff=0.7)
            close = close or [m for m in methods if m.strip("_").lower() == meant.strip("_")]
            if close:
                return close[0], meant
        return None


@dataclass
class SavedFile:
    path: str
    exists: bool
    state_dict: dict[str, torch.Tensor] | None = None
    error: str | None = None
    # The path from the notebook's folder (`Path("models").resolve()` gives an absolute one).
    relative: str | None = None


@dataclass
class Record:
    assignment: Assignment
    raw: dict[str, Any]
    status: str  # how the child ended: "finished", "timeout", "crashed"
    detail: str = ""
    saved_files: dict[str, SavedFile] = field(default_factory=dict)
    not_code: dict[str, str] = field(default_factory=dict)  # graded cells of another type
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def memo(self, key: tuple, compute):
        """compute(), once per record: several checks read the same view of the trace (one
        that raises a Mistake is not kept, so each check that asks gets it)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    # -- cells ----------------------------------------------------------------------------
    @property
    def cells(self) -> list[dict]:
        return self.raw.get("cells", [])

    def uncalled(self, section_id: str, method: str, kind: str = "method") -> str:
        """ " Line N, `optimizer.zero_grad`, names the method without calling it: add `()`."
        where the section's cell names `x.method` without calling it (alone on a line, or as
        a condition: `if torch.cuda.is_available else`), which Python runs without complaint;
        "" otherwise."""
        cell = self.stub_cell(section_id)
        tree = parse(cell.get("source", "")) if cell else None
        if tree is None:
            return ""
        called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        named = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr == method
            and isinstance(node.ctx, ast.Load)
            and id(node) not in called
        ]
        if not named:
            return ""
        node = min(named, key=lambda n: (n.lineno, n.col_offset))
        text = ast.unparse(node)
        return f" Line {node.lineno}, `{text}`, names the {kind} without calling it: add `()`."

    def stub_cell(self, section_id: str) -> dict | None:
        for cell in self.cells:
            if cell.get("role") == "stub" and cell.get("grade_id") == section_id:
                return cell
        return None

    # -- values ---------------------------------------------------------------------------
    def snapshot(self, section_id: str) -> dict[str, dict]:
        return self.raw.get("snapshots", {}).get(section_id, {})

    def raw_value(self, name: str, section_id: str | None = None) -> dict:
        if section_id is not None:
            return self.snapshot(section_id).get(name, {"kind": "missing"})
        return self.raw.get("final", {}).get(name, {"kind": "missing"})

    def value(self, name: str, section_id: str | None = None) -> dict:
        data = self.raw_value(name, section_id)
        if data["kind"] == "missing":
            where = f" after the `{section_id}` cell" if section_id else ""
            raise Mistake(
                f"`{name}` is not defined{where}.{self._made_instead(name, section_id)}",
                "name.missing",
            )
        return data

    def _made_instead(self, name: str, section_id: str | None) -> str:
        """The note for a missing name that the section's cell made under a close spelling
        (`loaded_model` for the walkthrough's `loaded_model_0`); "" otherwise."""
        cell = self.stub_cell(section_id) if section_id else None
        if cell is None:  # the cell never ran (deleted, or Markdown): nothing to compare
            return ""
        made = set(names_made(cell.get("source", "")))
        # Names the instructions ask for are right as they are (`MODEL_PATH` beside the missing
        # `MODEL_SAVE_PATH`, `y_train` beside `X_train`), whether or not the student kept the
        # instruction comments in the cell.
        asked = {n for s in self.assignment.sections for n in (*s.names, *s.asked)}
        asked |= set(re.findall(r"`(\w+)", " ".join(re.findall(r"#.*", cell["source"]))))
        candidates = sorted(made - asked - {name})
        close = [c for c in candidates if c.lower() == name.lower()]
        close = close or difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
        if not close:
            # Say which name is missing, and what the cell did make of the instructions.
            kept = sorted(made & asked - {name})
            also = f" (it makes {', '.join(f'`{n}`' for n in kept)})" if kept else ""
            return f" Your cell never makes it{also}: define `{name}` as the instructions ask."
        return f" Your cell makes `{close[0]}`: give it the name `{name}` the instructions ask for."

    def tensor(self, name: str, section_id: str | None = None) -> TensorValue:
        data = self.value(name, section_id)
        if data["kind"] != "tensor":
            hint = "split.subset" if data.get("type") in DATASET_TYPES else "name.not_tensor"
            if data["kind"] == "value" and data.get("value") is None:
                hint = "name.none"  # what a function without `return` hands back
            raise Mistake(f"`{name}` should be a tensor, but it is {what_it_is(data)}.", hint)
        return TensorValue(name, data)

    def module(self, name: str, section_id: str | None = None) -> ModuleValue:
        data = self.value(name, section_id)
        if data["kind"] != "module":
            # `model_1 = LinearRegressionModel`: the class, not a model made of it.
            made = data["kind"] == "class" and data.get("is_module")
            # `model_1 = model_1.cuda`: the method, named without being called.
            uncalled = "".join(
                self.uncalled(section_id, m) for m in ("cuda", "to", "eval", "train")
            )
            raise Mistake(
                f"`{name}` should be an instance of an `nn.Module` subclass, but it is "
                f"{what_it_is(data)}.{uncalled if section_id else ''}",
                "model.class_not_instance" if made else "model.not_module",
            )
        return ModuleValue(name, data)

    # -- trace ----------------------------------------------------------------------------
    def events(self, kind: str | None = None, cell: int | None = None) -> list[dict]:
        """The student's own events (the grader's reference code is left out)."""
        return [
            e
            for e in self.raw.get("trace", [])
            if not e.get("substituted")
            and (kind is None or e["kind"] == kind)
            and (cell is None or e.get("cell") == cell)
        ]

    def calls_of(self, module_id: int, section_id: str) -> list[dict]:
        """The forward events of one module in a section's cell (its predictions, say)."""
        cell = self.stub_cell(section_id)
        if cell is None:
            return []
        return [
            e for e in self.events("forward", cell=cell["index"]) if e["module_id"] == module_id
        ]

    def trace_cut(self, cell: int) -> bool:
        """Whether the cell emitted more events than the tracer keeps (trace.MAX_EVENTS)."""
        return cell in self.raw.get("trace_truncated", [])

    @property
    def cuda_available(self) -> bool:
        return bool(self.raw.get("cuda_available"))

    @property
    def simulated_gpu(self) -> bool:
        return bool(self.raw.get("simulated_gpu"))

    @property
    def expected_device(self) -> str:
        """What `torch.cuda.is_available()` answered the submission (simulated GPU included)."""
        return "cuda" if self.cuda_available or self.simulated_gpu else "cpu"

    def student_device(self, section_id: str | None = None) -> str | None:
        """The student's own `device`, as "cpu" or "cuda", where it is readable: as the
        section's cell left it (a later cell may change it), else at the notebook's end."""
        value = self.raw_value("device", section_id)
        text = value.get("value") if value.get("kind") in ("value", "device") else None
        return text.split(":")[0] if isinstance(text, str) else None


def same_values(a: torch.Tensor | None, b: torch.Tensor | None, atol: float = 1e-6) -> bool:
    if a is None or b is None or a.shape != b.shape:
        return False
    # nan equals nan here: a blown-up model saved and loaded is still the same model.
    return bool(torch.allclose(a.double(), b.double(), atol=atol, rtol=0, equal_nan=True))
