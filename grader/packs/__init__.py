"""Assignment packs: all the core knows of a chapter, looked up here (docs/packs.md).

A pack is one folder: its assignments' contracts, its pytest checks, its hint catalogue, and
optional hooks. The core grades any notebook through these alone; a hook a pack leaves out
means "nothing of that kind" (no stand-ins, no saved files to read, no figures ...).

The packs are the built-in ones (chapter 01), those installed under the entry-point group
`ptgrade.packs`, those named in the environment variable PTGRADE_PACKS (`module:attribute`,
comma-separated), and those handed to `register` (tests).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.contract import Assignment, Section
from grader.settings import environment_variable

__all__ = [
    "Assignment",
    "Pack",
    "Section",
    "all_assignments",
    "all_packs",
    "default_assignment",
    "pack_for",
    "register",
    "unregister",
]

# A stand-in: source code the grader runs in place of a failed section's cell, or a function of
# the record so far (the session's dict) that writes it.
StandIn = str | Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Pack:
    """What the core looks up about a chapter. Every hook is optional."""

    id: str
    assignments: tuple[Assignment, ...]
    checks_dir: Path  # the pytest checks (test_*.py) and their pytest.ini
    # The assignment an instructor's command means when it names none (`ptgrade ci-workflow`,
    # the bundles, the course's next steps): one of `assignments`' ids.
    default: str | None = None
    hints: Path | None = (
        None  # the pack's hints.toml, merged over the core's grader/checking/hints.toml
    )

    # -- in the sandbox's warm worker (grader/sandbox/child/runner.py) ----------------------------
    # Source code the worker runs once, before it forks for any notebook, so that each child
    # does not pay the first-use costs of what the pack's notebooks do (its names are dropped).
    # The grader's own code: it runs before any student code, inside the sandbox.
    rehearsal: str | None = None

    # -- in the sandbox's session (grader/sandbox/session.py, grader/sandbox/execution.py) ---------------------
    # Names every snapshot holds besides the sections' own (the data every check may read).
    snapshot_names: tuple[str, ...] = ()
    # assignment -> {section id: stand-in} for a failed section's cell (grader/grading.py).
    standins: Callable[[Assignment], Mapping[str, StandIn]] | None = None
    # (assignment, section id, snapshot, gpu, saves, earlier) -> (source, names) that puts
    # right the values a cell left wrong while its section still ran, or None (`earlier`: the
    # snapshots of the sections before, by section id).
    repair: Callable[..., tuple[str, list[str]] | None] | None = None
    # (snapshot, failing line, cell source, gpu) -> the names off the device on that line;
    # and (snapshot, names) -> the source that moves them (a device error's repair).
    misplaced: Callable[[dict, str, str, bool], list[str]] | None = None
    moves: Callable[[dict, list[str]], str] | None = None
    # () -> the inputs the sandbox probes each snapshot's models with (fresh every time).
    probe_inputs: Callable[[], list] | None = None
    # The name a notebook gives the device it picks (`device = "cuda" if ... else "cpu"`): on a
    # GPU machine, the cell that makes it runs once more as without one (its `else` judged
    # too, the value kept as the record's "without_gpu"), and a later given cell's complaint
    # about tensors on the GPU is not laid at that cell's door.
    device_name: str | None = None

    # -- after the run (grader/grading.py, grader/checking/plugin.py) -------------------------------
    # Names whose values are paths of files the notebook saved: the grader reads those files.
    saved_file_names: tuple[str, ...] = ()
    # hint id -> what a real GPU does with that mistake (a simulated GPU made it show).
    gpu_notes: Mapping[str, str] = field(default_factory=dict)
    # (record, section id, error, message, hint) -> (message, hint) for a cell's error, sharpened
    # with what the pack knows (an earlier cell's fault, the tensors off the device); it applies
    # the catalogue's [[section_hint]] itself. Without it the core applies them.
    diagnose: Callable[[Any, str, dict, str, str], tuple[str, str]] | None = None
    # (record, section id, hint) -> the hint of a check's Mistake, sharpened likewise.
    sharpen: Callable[[Any, str, str | None], str | None] | None = None
    # (record) -> the data the feedback's pictures draw.
    figure_data: Callable[[Any], dict] | None = None
    # (that data, assignment) -> [(title, SVG or None, what to say without data)]: the
    # feedback page's pictures (grader/reports/html.py; grader/reports/svg.py draws charts).
    pictures: Callable[[dict, Any], list[tuple[str, str | None, str]]] | None = None

    def assignment(self, assignment_id: str) -> Assignment:
        for assignment in self.assignments:
            if assignment.id == assignment_id:
                return assignment
        raise KeyError(assignment_id)


_REGISTERED: dict[str, Pack] = {}  # register(): packs a test (or a host program) adds


def register(pack: Pack) -> None:
    """Add `pack` to those the core looks up (replacing one of the same id)."""
    _REGISTERED[pack.id] = pack


def unregister(pack_id: str) -> None:
    _REGISTERED.pop(pack_id, None)


# The packs that come with the kit, named the way an entry point names one: loaded by name, like
# any other pack, so the core's modules never import a pack's (tests/test_import_rules.py).
BUILTIN = ("grader.packs.workflow01:PACK",)


@functools.cache
def _builtin() -> tuple[Pack, ...]:
    return tuple(_load(target) for target in BUILTIN)


def _load(target: str) -> Pack:
    """`module:attribute` -> the Pack there (or what calling it returns)."""
    module, _, attribute = target.strip().partition(":")
    found = getattr(importlib.import_module(module), attribute or "PACK")
    return found() if callable(found) and not isinstance(found, Pack) else found


@functools.cache
def _installed() -> tuple[Pack, ...]:
    from importlib.metadata import entry_points

    return tuple(_load(point.value) for point in entry_points(group="ptgrade.packs"))


@functools.cache
def _from_environment(value: str) -> tuple[Pack, ...]:
    return tuple(_load(target) for target in value.split(",") if target.strip())


def all_packs() -> tuple[Pack, ...]:
    """Every pack the core knows, built-in first; a later pack of the same id replaces one."""
    found: dict[str, Pack] = {}
    named = _from_environment(environment_variable("packs") or "")
    for pack in (*_builtin(), *_installed(), *named, *_REGISTERED.values()):
        found[pack.id] = pack
    return tuple(found.values())


def all_assignments() -> dict[str, Assignment]:
    """Every pack's assignments by id."""
    return {a.id: a for pack in all_packs() for a in pack.assignments}


def pack_for(assignment: str | Assignment) -> Pack:
    """The pack an assignment (or its id) belongs to. Raises KeyError for an unknown one."""
    wanted = assignment if isinstance(assignment, str) else assignment.id
    for pack in reversed(all_packs()):
        if any(a.id == wanted for a in pack.assignments):
            return pack
    raise KeyError(wanted)


class NoDefaultAssignment(ValueError):
    """No assignment, or more than one, is the default: the message says which to name."""


def default_assignment() -> str:
    """The assignment a command means when it names none: the only one there is, else the one
    default of the packs (Pack.default). Raises NoDefaultAssignment where that is not one."""
    found = all_assignments()
    if len(found) == 1:
        return next(iter(found))
    named = {pack.default for pack in all_packs() if pack.default in found}
    if len(named) == 1:
        return named.pop()
    choices = ", ".join(found) or "none: no pack is registered"
    raise NoDefaultAssignment(f"name the assignment (--assignment): one of {choices}")
