"""nbgrader reads a kit test cell's verdict from the kit, never from stray stderr output.

nbgrader gives a grade cell zero points when any output is on stderr (`utils.determine_grade`).
A kit test cell (`assert_section(...)`) writes nothing there, but Jupyter forwards file
descriptor 2 from a thread, so a warning printed late by the student's previous cell can arrive
while the test cell runs. This step turns such output into stdout (still shown in the feedback)
after the notebook ran and before nbgrader reads the grades; the verdict stays the kit's: an
AssertionError (no points), the cell's value (partial credit) or nothing (full points).
nbgrader_config.py puts it into `nbgrader autograde` and `nbgrader validate`.

A kit test cell that failed by the kit's own fault (`GraderError`: the kit could not grade, no
mistake of the student's is the cause) is no verdict: this step stops the notebook with the
reason, which nbgrader logs as an ERROR line, records no grade for it and ends non-zero,
instead of saving the student's 0.
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor, SaveAutoGrades

KIT_CALL = "assert_section("


def is_kit_test_cell(cell) -> bool:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return (
        cell.get("cell_type") == "code" and bool(nbgrader.get("grade")) and KIT_CALL in cell.source
    )


class KitFailed(Exception):
    """The kit could not grade a notebook under nbgrader; the message says why."""


class KitVerdicts(NbGraderPreprocessor):
    """In kit test cells, stderr output becomes stdout, so that only the kit's verdict counts;
    a cell where the kit itself failed stops the notebook with the reason."""

    stop_on_kit_failure = True  # autograde; validate shows the cell's error to the student

    def preprocess_cell(self, cell, resources, cell_index):
        if is_kit_test_cell(cell):
            for output in cell.get("outputs", []):
                failed = (
                    output.get("output_type") == "error" and output.get("ename") == "GraderError"
                )
                if failed and self.stop_on_kit_failure:
                    reason = output.get("evalue") or "no reason was given"
                    where = resources.get("unique_key") or "a notebook"
                    self.log.error("ptgrade could not grade %s: %s", where, reason)
                    raise KitFailed(f"{where}: {reason}")
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


class KitVerdictsInValidate(KitVerdicts):
    stop_on_kit_failure = False


def autograde_steps() -> list:
    """nbgrader's autograde steps with KitVerdicts just before the grades are saved."""
    from nbgrader.converters.autograde import Autograde

    steps = Autograde.class_traits()["autograde_preprocessors"].default()
    at = steps.index(SaveAutoGrades)
    return steps[:at] + [KitVerdicts] + steps[at:]


def validate_steps() -> list:
    """nbgrader's validate steps with KitVerdicts after the notebook ran."""
    from nbgrader.validator import Validator

    return Validator.class_traits()["preprocessors"].default() + [KitVerdictsInValidate]
