"""An assignment's contract, as the core reads it: its sections, the names each defines, its points."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    id: str  # the stub cell's nbgrader grade_id
    title: str
    names: tuple[str, ...]  # names the stub cell must define (snapshotted after it runs)
    # How the stub's instructions begin: finds the cell when a student's notebook lost its
    # nbgrader tag (a cell deleted and typed again, an editor that drops cell metadata).
    marker: str = ""
    # Other names the instructions ask the cell to make (`MODEL_PATH` beside `MODEL_SAVE_PATH`):
    # right as they are, so never offered as a misspelling of a missing one.
    asked: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assignment:
    """One notebook's contract. A pack may subclass it (kw_only fields) to add its numbers."""

    id: str
    title: str
    sections: tuple[Section, ...]
    default_points: dict[str, float] = field(default_factory=dict)
    # The notebook is written to run on either device: a CPU-only grader runs it on a
    # simulated GPU (grader/sandbox/child/simulated_gpu.py), so a hard-coded device shows.
    device_agnostic: bool = False

    def section(self, section_id: str) -> Section:
        for section in self.sections:
            if section.id == section_id:
                return section
        raise KeyError(section_id)

    @property
    def section_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.sections)

    @property
    def notebook_name(self) -> str:
        return f"{self.id}.ipynb"

    def hint_names(self) -> dict[str, str]:
        """What each placeholder of the pack's hint texts stands for in this notebook
        (`{model}`: `model_0`); none by default."""
        return {}
