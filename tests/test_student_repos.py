"""Grading student repositories, run as CI would: the GitHub Actions workflow's own `run:`
steps, and the Classroom 50 autograder, on three repositories made here: one correct, one
whose test cells were edited, one with files added that the grading must ignore."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_pytorch_workflow_exercises"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
SAMPLES = REPO / "samples" / ASSIGNMENT

pytestmark = pytest.mark.slow

# classroom50/result/v1 as its documentation gives it (the classroom50 wiki, "The result.json
# contract", and schemas/result-v1.schema.json of foundation50/classroom50), written down
# here; the cross-field rules the schema cannot express are checked in `valid_result`.
STAMP = r"^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$"
WORD = {"type": "string", "minLength": 1}
POINTS = {"type": "integer", "minimum": 0}
RESULT_V1 = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "schema", "classroom", "assignment", "assignment_type", "owner", "submission",
        "commit", "release", "review", "datetime", "score", "max-score", "tests",
    ],
    "properties": {
        "schema": {"const": "classroom50/result/v1"},
        "classroom": WORD, "assignment": WORD, "owner": WORD,
        "assignment_type": {"enum": ["individual", "group"]},
        "submission": {"type": "string", "pattern": "^submit/"},
        "commit": WORD, "release": WORD, "review": WORD,
        "datetime": {"type": "string", "pattern": STAMP},
        "graded_at": {"type": "string", "pattern": STAMP},
        "score": POINTS, "max-score": POINTS,
        "submitted_by": {
            "type": "object", "additionalProperties": False, "required": ["username"],
            "properties": {"username": WORD, "id": {"type": ["integer", "null"]}},
        },
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": True,  # diagnostic fields, kept verbatim
                "required": ["test-name", "passed", "score", "max-score"],
                "properties": {
                    "test-name": WORD, "passed": {"type": "boolean"},
                    "score": POINTS, "max-score": POINTS,
                },
            },
        },
    },
}  # fmt: skip


def valid_result(result: dict) -> None:
    jsonschema.validate(result, RESULT_V1)
    assert result["score"] <= result["max-score"]
    assert all(test["score"] <= test["max-score"] for test in result["tests"])
    assert result["score"] == sum(test["score"] for test in result["tests"])
    assert result["max-score"] == sum(test["max-score"] for test in result["tests"])


def test_the_schema_written_down_refuses_what_the_documentation_forbids():
    good = {
        "schema": "classroom50/result/v1", "classroom": "c", "assignment": "a",
        "assignment_type": "individual", "owner": "o", "submission": "submit/x",
        "commit": "u", "release": "u", "review": "u", "datetime": "2026-06-01T14:32:01Z",
        "score": 1, "max-score": 2,
        "tests": [{"test-name": "t", "passed": False, "score": 1, "max-score": 2}],
    }  # fmt: skip
    valid_result(good)
    for broken in (
        {**good, "score": 1.5},  # whole points only
        {**good, "submission": "v1"},
        {**good, "datetime": "2026-06-01 14:32"},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "owner"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            valid_result(broken)


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Student", "-c", "user.email=s@example.org", *args],
        cwd=folder, check=True, capture_output=True,
    )  # fmt: skip


def student_repo(folder: Path, sample: str, edit_tests=False, extra_files=False) -> Path:
    folder.mkdir(parents=True)
    notebook = nbformat.read(SAMPLES / f"{sample}.ipynb", as_version=4)
    if edit_tests:  # every test cell emptied: the kit never reads them
        for cell in notebook.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id", "").endswith("_tests"):
                cell.source = "assert True  # all good!"
    nbformat.write(notebook, folder / NOTEBOOK)
    if extra_files:  # each would change the grade, were it read
        marker = folder.parent / f"{folder.name}-sitecustomize-ran"
        (folder / "grader").mkdir()
        (folder / "grader" / "__init__.py").write_text("")
        (folder / "grader" / "cli.py").write_text(
            "import sys\ndef main(argv=None):\n    print('20/20')\n    return 0\n"
            "if __name__ == '__main__':\n    sys.exit(main())\n"
        )
        (folder / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
        (folder / "conftest.py").write_text(
            "import pytest\n@pytest.hookimpl(hookwrapper=True)\n"
            "def pytest_runtest_makereport(item, call):\n"
            "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n"
        )
        (folder / "pytest.ini").write_text("[pytest]\naddopts = -p no:terminal\n")
        (folder / "solutions" / "checks").mkdir(parents=True)
        (folder / "solutions" / "checks" / "test_training_hidden.py").write_text(
            "def test_everything():\n    pass\n"
        )
        shutil.copy(SAMPLES / "ada_correct.ipynb", folder / "answer_key.ipynb")
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "my submission")
    return folder


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("students")
    return {
        "correct": student_repo(base / "correct", "ada_correct"),
        "plain": student_repo(base / "plain", "cleo_no_zero_grad"),
        "edited_tests": student_repo(base / "edited", "cleo_no_zero_grad", edit_tests=True),
        "extra_files": student_repo(base / "extra", "cleo_no_zero_grad", extra_files=True),
    }


def run_workflow(workflow: Path, repo: Path, workspace: Path) -> tuple[int, dict, Path]:
    """The workflow's `run:` steps as a runner runs them; the `uses:` checkouts stood in for
    (the student's repository as submission/, the course as course/), and the install step by
    this venv, whose ptgrade is this checkout's."""
    shutil.copytree(repo, workspace / "submission")
    (workspace / "course").mkdir()
    shutil.copytree(REPO / "solutions", workspace / "course" / "solutions")
    spec = yaml.safe_load(workflow.read_text())
    runner_temp, output, summary = workspace / "tmp", workspace / "output", workspace / "summary"
    runner_temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PTGRADE_", "PYTHON"))}
    env.update({k: str(v) for k, v in spec["env"].items()})
    env.update(
        GITHUB_WORKSPACE=str(workspace), RUNNER_TEMP=str(runner_temp),
        GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary),
        PATH=str(Path(sys.executable).parent) + os.pathsep + env["PATH"],
    )  # fmt: skip
    code = 0
    for step in spec["jobs"]["grade"]["steps"]:
        if "run" not in step or step.get("id") == "install":
            continue
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=workspace, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        code = code or done.returncode
        assert "Traceback" not in done.stderr, done.stderr
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return code, outputs, summary


def test_the_workflow_grades_the_notebook_and_nothing_else(repos, tmp_path):
    workflow = tmp_path / "ptgrade.yml"
    made = subprocess.run(
        [sys.executable, "-m", "grader.cli", "ci-workflow", str(workflow),
         "--course-repo", "teacher/course-private"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    spec = yaml.safe_load(workflow.read_text())
    steps = spec["jobs"]["grade"]["steps"]
    course = next(s for s in steps if s.get("with", {}).get("path") == "course")
    assert course["with"]["repository"] == "${{ env.PTGRADE_COURSE_REPO }}"
    assert spec["env"]["PTGRADE_COURSE_REPO"] == "teacher/course-private"
    assert course["with"]["token"] == "${{ secrets.PTGRADE_COURSE_TOKEN }}"
    assert all(s.get("with", {}).get("persist-credentials") is False for s in steps[:2])

    scores = {}
    for name, repo in repos.items():
        code, outputs, summary = run_workflow(workflow, repo, tmp_path / name)
        assert code == 0, name
        assert outputs["status"] == "graded", name
        scores[name] = float(outputs["score"])
        report = ET.parse(tmp_path / name / "ptgrade-report.xml").getroot()
        assert report.get("tests") and int(report.get("tests")) > 9
        assert "| Section | Points | Result |" in summary.read_text()
    assert scores["correct"] == 20.0
    assert scores["plain"] < 20.0
    assert scores["edited_tests"] == scores["plain"]  # the test cells count for nothing
    assert scores["extra_files"] == scores["plain"]  # nor does anything beside the notebook
    assert not list(repos["extra_files"].parent.glob("*-sitecustomize-ran"))


def test_below_the_minimum_the_run_fails_with_the_report_kept(repos, tmp_path):
    workflow = tmp_path / "ptgrade.yml"
    subprocess.run(
        [sys.executable, "-m", "grader.cli", "ci-workflow", str(workflow)], check=True, cwd=REPO
    )
    workflow.write_text(
        workflow.read_text().replace('PTGRADE_MIN_SCORE: "0"', 'PTGRADE_MIN_SCORE: "19"')
    )
    code, outputs, _ = run_workflow(workflow, repos["plain"], tmp_path / "run")
    assert code == 1 and outputs["status"] == "graded"
    assert (tmp_path / "run" / "ptgrade-report.xml").is_file()


@pytest.fixture(scope="module")
def classroom50(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("classroom50") / "autograders" / "hw1"
    made = subprocess.run(
        [sys.executable, "-m", "grader.cli", "classroom50-bundle", str(folder)],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return folder


def test_the_classroom50_bundle_holds_no_solutions(classroom50):
    names = {p.relative_to(classroom50).as_posix() for p in classroom50.rglob("*") if p.is_file()}
    assert "autograder.py" in names and "kit/grader/cli.py" in names
    assert not any("solutions" in n or n.endswith(".ipynb") or "hidden" in n for n in names)


def test_the_classroom50_autograder_writes_a_valid_result(classroom50, repos):
    scores = {}
    for name, repo in repos.items():
        (repo / "result.json").unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PTGRADE_", "PYTHON"))}
        env.update(
            CLASSROOM="ml-101", ASSIGNMENT="hw1", ASSIGNMENT_TYPE="individual", OWNER=name,
            USERNAME=name, SUBMISSION_TAG="submit/2026-06-01T14-32-05Z-a1b2c3d",
            COMMIT_URL="https://github.com/o/r/commit/a1b2c3d",
            RELEASE_URL="https://github.com/o/r/releases/tag/submit%2Fx",
            REVIEW_URL="https://github.com/o/r/compare/base...a1b2c3d",
        )  # fmt: skip
        done = subprocess.run(
            [sys.executable, str(classroom50 / "autograder.py")],
            cwd=repo, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads((repo / "result.json").read_text())
        valid_result(result)
        assert (result["classroom"], result["assignment"], result["owner"]) == (
            "ml-101",
            "hw1",
            name,
        )
        assert len(result["tests"]) == 9 and result["max-score"] == 2000
        assert all({"message", "points", "max_points"} <= set(t) for t in result["tests"])
        scores[name] = result["score"]
        if name == "plain":
            failed = [t for t in result["tests"] if not t["passed"]]
            assert failed and all(t["message"] != "All checks passed." for t in failed)
    assert scores["correct"] == 2000
    assert scores["plain"] < 2000
    assert scores["edited_tests"] == scores["plain"] == scores["extra_files"]
    assert not list(repos["extra_files"].parent.glob("*-sitecustomize-ran"))
