"""nbgrader reads a kit test cell's verdict from the kit, never from stray stderr output.

nbgrader gives a grade cell zero points when any output is on stderr (`utils.determine_grade`).
A kit test cell (`assert_section(...)`) writes nothing there, but Jupyter forwards file
descriptor 2 from a thread, so a warning printed late by the student's previous cell can arrive
while the test cell runs. This step turns such output into stdout (still shown in the feedback)
after the notebook ran and before nbgrader reads the grades; the verdict stays the kit's: an
AssertionError (no points), the cell's value (partial credit) or nothing (full points).
nbgrader_config.py puts it into `nbgrader autograde` and `nbgrader validate`.
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor, SaveAutoGrades

KIT_CALL = "assert_section("


def is_kit_test_cell(cell) -> bool:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return (
        cell.get("cell_type") == "code" and bool(nbgrader.get("grade")) and KIT_CALL in cell.source
    )


class KitVerdicts(NbGraderPreprocessor):
    """In kit test cells, stderr output becomes stdout, so that only the kit's verdict counts."""

    def preprocess_cell(self, cell, resources, cell_index):
        if is_kit_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


def autograde_steps() -> list:
    """nbgrader's autograde steps with KitVerdicts just before the grades are saved."""
    from nbgrader.converters.autograde import Autograde

    steps = Autograde.class_traits()["autograde_preprocessors"].default()
    at = steps.index(SaveAutoGrades)
    return steps[:at] + [KitVerdicts] + steps[at:]


def validate_steps() -> list:
    """nbgrader's validate steps with KitVerdicts after the notebook ran."""
    from nbgrader.validator import Validator

    return Validator.class_traits()["preprocessors"].default() + [KitVerdicts]
