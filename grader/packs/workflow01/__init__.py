"""Chapter 01, "PyTorch Workflow": a straight line trained with SGD, as a pack (docs/packs.md).

The hooks import torch only when called: the registry reads this module before the sandbox's
worker starts.
"""

from __future__ import annotations

from pathlib import Path

from grader.packs import Pack
from grader.packs.workflow01.assignments import DATA_NAMES, EXERCISES, WALKTHROUGH
from grader.packs.workflow01.feedback import ON_A_GPU, figure_data
from grader.packs.workflow01.figures import pictures
from grader.packs.workflow01.probes import probe_inputs
from grader.packs.workflow01.rehearsal import REHEARSAL

HERE = Path(__file__).resolve().parent


def _standins(assignment):
    from grader.packs.workflow01.standins import standins

    return standins(assignment)


def _repair(assignment, section_id, snapshot, gpu, saves, earlier=None):
    from grader.packs.workflow01.standins import repair

    return repair(assignment, section_id, snapshot, gpu, saves, earlier)


def _misplaced(snapshot, line, source, gpu):
    from grader.packs.workflow01.standins import misplaced_in_cell

    return misplaced_in_cell(snapshot, line, source, gpu)


def _moves(snapshot, names):
    from grader.packs.workflow01.standins import moves

    return moves(snapshot, names)


def _diagnose(record, section_id, error, message, hint):
    from grader.packs.workflow01.diagnosis import diagnose

    return diagnose(record, section_id, error, message, hint)


def _sharpen(record, section_id, hint):
    from grader.packs.workflow01.diagnosis import sharpen

    return sharpen(record, section_id, hint)


PACK = Pack(
    id="workflow01",
    assignments=(EXERCISES, WALKTHROUGH),
    checks_dir=HERE / "checks",
    default=EXERCISES.id,
    hints=HERE / "hints.toml",
    rehearsal=REHEARSAL,
    snapshot_names=DATA_NAMES,
    standins=_standins,
    repair=_repair,
    misplaced=_misplaced,
    moves=_moves,
    probe_inputs=probe_inputs,
    device_name="device",
    saved_file_names=("MODEL_SAVE_PATH",),
    gpu_notes=ON_A_GPU,
    diagnose=_diagnose,
    sharpen=_sharpen,
    figure_data=figure_data,
    pictures=pictures,
)
