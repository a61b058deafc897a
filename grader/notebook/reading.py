"""Read a submitted notebook: which assignment it is, and each code cell's role and section."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import nbformat

from grader.contract import Assignment, Section
from grader.notebook import shape as notebook_shape
from grader.notebook.cell_source import code_lines, names_made
from grader.packs import all_assignments
from grader.safe_text import one_line, printable
from grader.settings import environment_variable


class UnusableNotebook(Exception):
    """The input cannot be graded at all; the message says why, in one line."""


@dataclass(frozen=True)
class Cell:
    index: int
    source: str
    role: str  # "stub" (graded, the student's code), "test" (autograder cell) or "given"
    grade_id: str | None = None


@dataclass
class Submission:
    path: Path
    assignment: Assignment
    cells: list[Cell]
    notes: list[str] = field(default_factory=list)  # problems found while reading
    # Graded cells turned into another type (a Markdown cell never runs): grade_id -> type.
    not_code: dict[str, str] = field(default_factory=dict)

    @property
    def stub_ids(self) -> list[str]:
        return [c.grade_id for c in self.cells if c.role == "stub" and c.grade_id]


def _role(metadata: dict) -> tuple[str, str | None]:
    nbgrader = metadata.get("nbgrader") or {}
    grade_id = nbgrader.get("grade_id")
    if nbgrader.get("solution"):
        return "stub", grade_id
    if nbgrader.get("grade"):
        return "test", grade_id
    return "given", grade_id


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at `path`, upgraded to nbformat 4; UnusableNotebook (one line) for anything
    that is not a readable notebook of the shape the grader expects (grader/notebook/shape.py)."""
    shown = printable(str(path), newlines=False)
    try:
        data = _read_regular_file(path)
    except FileNotFoundError:
        raise UnusableNotebook(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise UnusableNotebook(
            f"{shown}: is a folder, not a notebook (`ptgrade batch FOLDER --output DIR` grades "
            "a folder of submissions)"
        ) from None
    except OSError as error:
        raise UnusableNotebook(f"{shown}: cannot be read ({error.strerror or error})") from None
    try:
        raw = notebook_shape.parse(data)
    except notebook_shape.Malformed as error:
        raise UnusableNotebook(f"{shown}: {error}") from None
    try:  # what nbformat.reads does, from the JSON already parsed and checked, with v3
        # upgraded; nbformat's schema validation is left out: it only logs, and its complaints
        # (an output's odd field) are not the grader's concern.
        major, minor = nbformat.reader.get_version(raw)
        notebook = nbformat.convert(nbformat.versions[major].to_notebook_json(raw, minor=minor), 4)
    except Exception as error:  # nbformat raises several types for malformed notebooks
        reason = one_line(f"{type(error).__name__}: {error}", 200)
        raise UnusableNotebook(f"{shown}: not a readable Jupyter notebook ({reason})") from None
    problem = notebook_shape.cells_problem(notebook.get("cells"))
    if problem:  # an nbformat 3 notebook, as nbformat upgraded it
        raise UnusableNotebook(f"{shown}: not a valid notebook: {problem}")
    return notebook


def _read_regular_file(path: Path) -> bytes:
    """The file's bytes, read only if it is a regular file of a notebook's size (a FIFO would
    block the read forever; /dev/zero would never end)."""
    found = path.stat()
    if stat.S_ISDIR(found.st_mode):
        raise IsADirectoryError(str(path))
    if not stat.S_ISREG(found.st_mode):
        raise OSError(0, "not a regular file")
    if found.st_size > notebook_shape.MAX_NOTEBOOK_BYTES:
        raise OSError(0, f"the file is over {notebook_shape.MAX_NOTEBOOK_BYTES // 2**20} MB")
    with open(path, "rb") as handle:
        return handle.read(notebook_shape.MAX_NOTEBOOK_BYTES + 1)


STUB_RAISE = ("raise NotImplementedError()", "raise NotImplementedError")


def _without_trailing_raise(cell: Cell) -> tuple[Cell, str | None]:
    """A graded cell whose code is written but still ends with the stub's `raise
    NotImplementedError()`: the cell without that line, and a note. nbgrader grades such a cell
    by the tests after it, which see everything the code defined; so does the kit."""
    lines = cell.source.splitlines()
    code = [i for i, line in enumerate(lines) if code_lines(line)]
    if len(code) < 2 or code_lines(lines[code[-1]])[0] not in STUB_RAISE:
        return cell, None
    kept = lines[: code[-1]] + lines[code[-1] + 1 :]
    note = (
        f"graded cell {cell.grade_id!r} still ends with the stub's `raise NotImplementedError()` "
        f"(line {code[-1] + 1}), which stops it with an error in Jupyter: graded without that "
        "line; delete it"
    )
    return Cell(cell.index, "\n".join(kept), cell.role, cell.grade_id), note


def _adopt_code_below(cells: list[Cell], assignment: Assignment) -> list[str]:
    """A graded cell left as the stub, its code written in new cells right below it (before the
    next cell the notebook tags): the last of those is graded as the section's cell, since
    nbgrader's tests after them see what they define. Only where they make one of the
    section's names: a scratch cell below an unfilled stub is not its answer."""
    notes = []
    sections = {s.id: s for s in assignment.sections}
    for position, cell in enumerate(cells):
        unfilled = all(line.strip() in STUB_RAISE for line in code_lines(cell.source))
        if cell.role != "stub" or cell.grade_id not in sections or not unfilled:
            continue
        below = []
        for later in cells[position + 1 :]:
            if later.grade_id is not None:
                break
            below.append(later)
        made = {name for later in below for name in names_made(later.source)}
        if not below or not set(sections[cell.grade_id].names) & made:
            continue
        last = below[-1]
        cells[position] = Cell(cell.index, "", "given", None)  # the bare stub: nothing to run
        cells[cells.index(last)] = Cell(last.index, last.source, "stub", cell.grade_id)
        where = "the cell below" if len(below) == 1 else f"the {len(below)} cells below"
        notes.append(
            f"graded cell {cell.grade_id!r} was left as it came, with your code for it in "
            f"{where}: graded that code (write it in the graded cell itself)"
        )
    return notes


def _untagged_cells(cells: list[Cell], section: Section) -> list[Cell]:
    """Code cells without an nbgrader tag that hold the section's instructions (a line that
    begins with them): its graded cell, deleted and typed again, or stripped of its metadata."""
    return [
        cell
        for cell in cells
        if cell.grade_id is None
        and section.marker
        and any(line.lstrip().startswith(section.marker) for line in cell.source.splitlines())
    ]


def _retag(cells: list[Cell], assignment: Assignment, stub_ids: set[str]) -> list[str]:
    """Give each graded cell that lost its tag its section back; one note says which."""
    retagged, notes = [], []
    for section in assignment.sections:
        found = _untagged_cells(cells, section) if section.id not in stub_ids else []
        if not found:
            continue
        cell = found[-1]  # the one in effect when the notebook runs from the top
        cells[cells.index(cell)] = Cell(cell.index, cell.source, "stub", section.id)
        stub_ids.add(section.id)
        retagged.append(repr(section.id))
        if len(found) > 1:
            notes.append(
                f"{len(found)} cells hold the instructions of {section.id!r}: graded the last"
            )
    if len(retagged) == 1:
        notes.insert(
            0, f"graded cell {retagged[0]} had lost its nbgrader tag: found it by its instructions"
        )
    elif retagged:
        notes.insert(
            0,
            f"graded cells {', '.join(retagged)} had lost their nbgrader tags: found "
            "each by its instructions",
        )
    return notes


def _guess_assignment(path: Path, stub_ids: set[str], cells: list[Cell]) -> Assignment | None:
    for assignment in all_assignments().values():
        if path.stem == assignment.id:
            return assignment
    best, best_overlap = None, 0
    for assignment in all_assignments().values():
        untagged = {s.id for s in assignment.sections if _untagged_cells(cells, s)}
        overlap = len((stub_ids | untagged) & set(assignment.section_ids))
        # The walkthrough's sections are a subset of the exercises': prefer the exact match.
        exact = stub_ids == set(assignment.section_ids)
        score = overlap + (0.5 if exact else 0)
        if score > best_overlap:
            best, best_overlap = assignment, score
    if best is not None and best_overlap >= 2:
        return best
    return None


def load_submission(path: str | os.PathLike, assignment_id: str | None = None) -> Submission:
    path = Path(path)
    notebook = read_notebook(path)
    cells: list[Cell] = []
    not_code: dict[str, str] = {}
    for index, cell in enumerate(notebook.cells):
        role, grade_id = _role(cell.get("metadata", {}))
        if cell.cell_type != "code":
            if role == "stub" and grade_id:
                not_code[grade_id] = cell.cell_type
            continue
        cells.append(Cell(index=index, source=cell.source, role=role, grade_id=grade_id))
    stub_ids = {c.grade_id for c in cells if c.role == "stub" and c.grade_id}
    if assignment_id is not None:
        if assignment_id not in all_assignments():
            known = ", ".join(sorted(all_assignments()))
            raise UnusableNotebook(f"unknown assignment {assignment_id!r} (known: {known})")
        assignment = all_assignments()[assignment_id]
    else:
        assignment = _guess_assignment(path, stub_ids, cells)
        if assignment is None:
            raise UnusableNotebook(
                f"{printable(str(path), newlines=False)}: not a notebook of this kit's assignments "
                f"({', '.join(sorted(all_assignments()))}); its graded cells were not found"
            )
    notes = _retag(cells, assignment, stub_ids)
    notes += _adopt_code_below(cells, assignment)
    for position, cell in enumerate(cells):
        if cell.role == "stub":
            cells[position], note = _without_trailing_raise(cell)
            notes += [note] if note else []
    submission = Submission(path=path, assignment=assignment, cells=cells, not_code=not_code)
    submission.notes.extend(notes)
    seen: set[str] = set()
    for cell in cells:
        if cell.role == "stub" and cell.grade_id in seen:
            submission.notes.append(f"graded cell {cell.grade_id!r} appears twice; both ran")
        if cell.grade_id:
            seen.add(cell.grade_id)
    for section_id in assignment.section_ids:
        if section_id in not_code and section_id not in stub_ids:
            kind = not_code[section_id]
            submission.notes.append(f"graded cell {section_id!r} is a {kind} cell: it never ran")
        elif section_id not in stub_ids:
            submission.notes.append(f"graded cell {section_id!r} is missing from the notebook")
    return submission


def solution_notebook(assignment: Assignment, solutions_dir: Path | None):
    """The instructor's notebook for `assignment`, or None; read once per version of the file
    (a batch asks for it with every submission). Callers must not change it."""
    if solutions_dir is None:
        return None
    path = solutions_dir / assignment.id / assignment.notebook_name
    try:
        found = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode):
        return None
    return _read_solution(str(path), found.st_mtime_ns, found.st_size)


@lru_cache(maxsize=8)
def _read_solution(path: str, mtime_ns: int, size: int):
    return nbformat.read(path, as_version=4)


def solution_sources(assignment: Assignment, solutions_dir: Path | None) -> dict[str, str]:
    """Each stub's reference code from the instructor's notebook, when it is present."""
    notebook = solution_notebook(assignment, solutions_dir)
    if notebook is None:
        return {}
    sources: dict[str, str] = {}
    for cell in notebook.cells:
        role, grade_id = _role(cell.get("metadata", {}))
        if role == "stub" and grade_id:
            sources[grade_id] = strip_solution_markers(cell.source)
    return sources


def strip_solution_markers(source: str) -> str:
    """The code a student who solved the cell would have: nbgrader's markers removed."""
    lines = source.splitlines()
    kept = [
        line for line in lines if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")
    ]
    return "\n".join(kept)


def find_solutions_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The instructor's solutions/ folder: --solutions, $PTGRADE_SOLUTIONS, the kit's checkout,
    or the copy a built kit carries (setup.py)."""
    candidates = [explicit, environment_variable("solutions")]
    candidates.append(Path(__file__).resolve().parents[2] / "solutions")
    candidates.append(Path(__file__).resolve().parents[1] / "course" / "source")  # a built kit's
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None
