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

import nbformat
from nbgrader.preprocessors import (
    ClearHiddenTests,
    NbGraderPreprocessor,
    OverwriteCells,
    SaveAutoGrades,
)

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


class QuietOverwriteCells(OverwriteCells):
    """nbgrader's OverwriteCells, without its checksum warning for every test cell of every
    submission that is merely the released cell: the source's cell holds the hidden checks,
    which the release drops, so nbgrader would warn nine times a notebook about nothing. A test
    cell the student really edited is still named (and put back from the source, as before)."""

    def preprocess_cell(self, cell, resources, cell_index):
        self._submitted = cell.source
        return super().preprocess_cell(cell, resources, cell_index)

    def report_change(self, name, attr, old, new) -> None:
        if attr == "checksum":
            source = self.gradebook.find_source_cell(name, self.notebook_id, self.assignment_id)
            released = nbformat.v4.new_code_cell(source.source)
            ClearHiddenTests()._remove_hidden_test_region(released)
            if released.source == self._submitted:
                return  # as released: only the hidden checks differ
            self.log.warning("Test cell %s was edited: it is put back from the source", name)
            return
        super().report_change(name, attr, old, new)


def autograde_steps() -> list:
    """nbgrader's autograde steps with KitVerdicts just before the grades are saved."""
    from nbgrader.converters.autograde import Autograde

    steps = Autograde.class_traits()["autograde_preprocessors"].default()
    at = steps.index(SaveAutoGrades)
    return steps[:at] + [KitVerdicts] + steps[at:]


def sanitize_steps() -> list:
    """nbgrader's sanitize steps (before autograde) with QuietOverwriteCells for its own."""
    from nbgrader.converters.autograde import Autograde

    steps = Autograde.class_traits()["sanitize_preprocessors"].default()
    return [QuietOverwriteCells if step is OverwriteCells else step for step in steps]


def validate_steps() -> list:
    """nbgrader's validate steps with KitVerdicts after the notebook ran."""
    from nbgrader.validator import Validator

    return Validator.class_traits()["preprocessors"].default() + [KitVerdictsInValidate]


def configure(c) -> None:
    """The kit's nbgrader settings, for this repository's nbgrader_config.py and a course's
    (`ptgrade init-course`): call after the course's root and source folder are set."""
    import math
    import os

    from grader.inline import seconds_from_env

    # Models saved by running a solution notebook must not be released with it.
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "models"]

    # The test cells call the kit (`assert_section`), which grades the saved notebook apart, in
    # the kernel nbgrader starts (that kernel inherits this process's environment). Hidden
    # checks and points come from this course's source folder, unless $PTGRADE_SOLUTIONS says.
    os.environ.setdefault(
        "PTGRADE_SOLUTIONS",
        os.path.join(c.CourseDirectory.root, c.CourseDirectory.source_directory),
    )

    # One pair of time limits for the student's code, in nbgrader's kernel as in the kit's
    # sandbox: $PTGRADE_CELL_TIMEOUT seconds a cell (ptgrade's --cell-timeout) and
    # $PTGRADE_TIMEOUT seconds the notebook (--timeout). The first test cell grades the whole
    # notebook, so a test cell gets the notebook's time and a minute for the kit to start.
    cell_limit = seconds_from_env("PTGRADE_CELL_TIMEOUT", 60)
    notebook_limit = seconds_from_env("PTGRADE_TIMEOUT", 300)

    def cell_timeout(cell) -> int:
        seconds = notebook_limit + 60 if KIT_CALL in cell.source else cell_limit
        return max(1, math.ceil(seconds))

    c.Execute.timeout_func = cell_timeout

    # A deleted test cell is put back, so that the kit still grades its section.
    c.OverwriteCells.add_missing_cells = True

    # Only the kit's verdict counts in its test cells: stray stderr there (a late warning from
    # the student's previous cell) does not zero them.
    c.Autograde.autograde_preprocessors = autograde_steps()
    c.Autograde.sanitize_preprocessors = sanitize_steps()
    c.Validator.preprocessors = validate_steps()
