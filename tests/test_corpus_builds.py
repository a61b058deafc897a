"""The submission corpus builds, each entry is what it says, and the bundled samples are fresh."""

from __future__ import annotations

import re

import nbformat
import pytest

from grader.checking.hints import HINTS
from grader.packs.workflow01.assignments import ASSIGNMENTS
from tests.conftest import REPO_ROOT, load_script
from tests.submissions.build import (
    StaleChange,
    build_submission,
    load_corpus,
    reference_code,
    released_path,
)

CORPORA = {assignment_id: load_corpus(assignment_id) for assignment_id in ASSIGNMENTS}
ENTRIES = [
    pytest.param(assignment_id, entry, id=f"{assignment_id}:{entry['name']}")
    for assignment_id, corpus in CORPORA.items()
    for entry in corpus
]
REFERENCE = {"name": "reference", "changes": []}


def stub_sources(notebook: nbformat.NotebookNode) -> dict[str, str]:
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in notebook.cells
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution")
    }


def graded_sources(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """Every cell with a grade_id, stub or given: what a corpus change may edit."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in notebook.cells
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    }


@pytest.fixture(scope="module")
def reference_builds() -> dict[str, dict[str, str]]:
    return {a: graded_sources(build_submission(a, REFERENCE)) for a in ASSIGNMENTS}


@pytest.mark.parametrize(("assignment_id", "entry"), ENTRIES)
def test_entry_builds_and_changes_its_notebook(assignment_id, entry, reference_builds):
    built = graded_sources(build_submission(assignment_id, entry))
    if entry["changes"]:
        assert built != reference_builds[assignment_id], f"{entry['name']} changes nothing"
    else:
        assert built == reference_builds[assignment_id]


@pytest.mark.parametrize(("assignment_id", "entry"), ENTRIES)
def test_entry_is_well_formed(assignment_id, entry):
    assert re.fullmatch(r"[a-z][a-z0-9_]*", entry["name"]), entry["name"]
    assert entry["description"].strip().endswith("."), entry["name"]
    known = {
        "name",
        "description",
        "changes",
        "expect",
        "says",
        "unsure",
        "exact",
        "no_points",
        "notes",
        "errors",
    }
    assert set(entry) <= known, entry["name"]
    assert entry.get("exact", False) is False, f"{entry['name']}: exact is true by default"
    assert "exact" not in entry or entry["expect"], f"{entry['name']}: exact of a valid variant"
    assert set(entry.get("says", {})) <= set(entry["expect"]), f"{entry['name']}: says of a pass"
    if entry.get("unsure"):
        assert entry["expect"], f"{entry['name']}: a valid variant can't be unsure"


@pytest.mark.parametrize(("assignment_id", "entry"), ENTRIES)
def test_expected_sections_and_hints_exist(assignment_id, entry):
    sections = ASSIGNMENTS[assignment_id].section_ids
    for section_id, hint_id in entry["expect"].items():
        assert section_id in sections, f"{entry['name']}: no section {section_id!r}"
        assert hint_id in HINTS, f"{entry['name']}: no hint {hint_id!r}"


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_names_are_unique(assignment_id):
    names = [entry["name"] for entry in CORPORA[assignment_id]]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_corpus_has_faulty_and_valid_entries(assignment_id):
    faulty = [e for e in CORPORA[assignment_id] if e["expect"]]
    valid = [e for e in CORPORA[assignment_id] if not e["expect"]]
    assert len(faulty) >= 8 and len(valid) >= 4


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_reference_build_is_the_solution_without_markers(assignment_id):
    for grade_id, source in stub_sources(build_submission(assignment_id, REFERENCE)).items():
        assert "NotImplementedError" not in source, grade_id
        assert "SOLUTION" not in source, grade_id


def test_reference_code_keeps_instructions_and_drops_markers():
    source = "# Define `device`.\n### BEGIN SOLUTION\ndevice = 'cpu'\n### END SOLUTION"
    assert reference_code(source) == "# Define `device`.\ndevice = 'cpu'"


def test_unfilled_cell_is_left_as_released():
    assignment_id = "01_pytorch_workflow_exercises"
    entry = {"name": "x", "changes": [{"cell": "predictions", "unfilled": True}]}
    released = stub_sources(nbformat.read(released_path(assignment_id), as_version=4))
    built = stub_sources(build_submission(assignment_id, entry))
    assert built["predictions"] == released["predictions"]
    assert "raise NotImplementedError()" in built["predictions"]


def test_given_cell_is_changed_in_place():
    """A student edits a given cell (the walkthrough's data): the change lands in that cell."""
    change = {"cell": "data", "old": "bias = 0.3\n", "new": "bias = torch.tensor(0.3)\n"}
    built = build_submission("01_pytorch_workflow", {"name": "x", "changes": [change]})
    data = [c for c in built.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "data"]
    assert len(data) == 1 and "bias = torch.tensor(0.3)\n" in data[0].source
    assert "data" not in stub_sources(built)


def test_deleted_cell_is_gone():
    entry = {"name": "x", "changes": [{"delete": "predictions"}]}
    built = stub_sources(build_submission("01_pytorch_workflow_exercises", entry))
    assert "predictions" not in built and "load_model" in built


def test_whole_source_replaces_the_cell():
    entry = {"name": "x", "changes": [{"cell": "device", "source": "device = 'cpu'\n"}]}
    built = stub_sources(build_submission("01_pytorch_workflow_exercises", entry))
    assert built["device"] == "device = 'cpu'"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cell": "split", "old": "no such text", "new": ""}, "found 0 times"),
        ({"cell": "split", "old": "train_split", "new": "n"}, "must occur exactly once"),
        ({"cell": "no_such_cell", "old": "x", "new": "y"}, "no stub cell 'no_such_cell'"),
        ({"delete": "imports"}, "no stub cell 'imports'"),
    ],
)
def test_stale_change_is_an_error(change, message):
    entry = {"name": "stale", "changes": [change]}
    with pytest.raises(StaleChange, match=f"submission 'stale'.*{re.escape(message)}"):
        build_submission("01_pytorch_workflow_exercises", entry)


def test_committed_samples_equal_a_fresh_build():
    build_samples = load_script(REPO_ROOT / "tools" / "build_samples.py")
    built = build_samples.build_samples()
    assert len(built) == sum(len(students) for students in build_samples.SAMPLES.values())
    for path, text in built.items():
        assert path.exists(), f"{path} is missing: run `python tools/build_samples.py`"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run `python tools/build_samples.py`"
        )
    on_disk = set((REPO_ROOT / "samples").rglob("*.ipynb"))
    assert on_disk == set(built), "samples/ holds notebooks tools/build_samples.py doesn't build"
