"""check() finds the notebook it runs in, wherever it runs, each front end as its kernel sees it.

Every test starts a real Jupyter kernel with the environment that front end gives it: Jupyter
Server's `JPY_SESSION_NAME` (JupyterLab, Notebook), VS Code's `__vsc_ipynb_file__`, Colab's
`google.colab._message` (a stand-in module answering `get_ipynb` as Colab does), and no name at
all (`jupyter nbconvert --execute`). Folders hold two assignment notebooks or sibling copies, so
a wrong guess would grade another file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "01_pytorch_workflow_exercises"
EXERCISES = "01_pytorch_workflow_exercises.ipynb"
WALKTHROUGH = "01_pytorch_workflow.ipynb"
FIND = (
    "from grader.inline import find_notebook\n"
    "try:\n"
    "    print('FOUND', find_notebook())\n"
    "except FileNotFoundError as error:\n"
    "    print('NOT FOUND', error)"
)


def _kernel_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PTGRADE_", "JPY_", "NBGRADER_", "VSCODE_"))
    }
    env.update(extra)
    return env


def run_in_kernel(cells: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run each cell in a fresh kernel started in `cwd` with `env`; what the last one printed."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(cwd), env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        printed: list[str] = []

        def keep(message) -> None:
            content = message["content"]
            if message["msg_type"] == "stream":
                printed.append(content["text"])
            elif message["msg_type"] == "error":
                printed.append(f"{content['ename']}: {content['evalue']}")

        for cell in cells:
            printed.clear()
            client.execute_interactive(cell, output_hook=keep, timeout=300)
        return "".join(printed).strip()
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.fixture
def two_assignments(tmp_path) -> Path:
    """A student's folder with both assignments' notebooks (and a spare copy of one)."""
    for name in (EXERCISES, WALKTHROUGH):
        assignment = name.removesuffix(".ipynb")
        (tmp_path / name).write_bytes((REPO / "exercises" / assignment / name).read_bytes())
    (tmp_path / "Untitled.ipynb").write_bytes((tmp_path / EXERCISES).read_bytes())
    return tmp_path


@pytest.mark.parametrize("name", [EXERCISES, WALKTHROUGH])
def test_jupyterlab_the_kernels_session_names_the_notebook(two_assignments, name):
    path = two_assignments / name
    said = run_in_kernel([FIND], two_assignments, _kernel_env(JPY_SESSION_NAME=str(path)))
    assert said == f"FOUND {path}"


def test_jupyterlab_a_notebook_renamed_while_open_is_found_by_its_cells(tmp_path):
    """The session still names the old file; the kernel's cells tell the renamed one from a
    sibling."""
    mine = new_notebook(cells=[new_code_cell("a = 1"), new_code_cell(FIND)])
    sibling = new_notebook(cells=[new_code_cell("b = 2"), new_code_cell(FIND)])
    nbformat.write(mine, tmp_path / "renamed.ipynb")
    nbformat.write(sibling, tmp_path / EXERCISES)
    env = _kernel_env(JPY_SESSION_NAME=str(tmp_path / "old name.ipynb"))
    said = run_in_kernel(["a = 1", FIND], tmp_path, env)
    assert said == f"FOUND {tmp_path / 'renamed.ipynb'}"


def test_vscode_names_the_notebook_in_the_kernels_namespace(two_assignments):
    """VS Code's Jupyter extension sets `__vsc_ipynb_file__` in the kernel; no session."""
    path = two_assignments / WALKTHROUGH
    cells = [f"__vsc_ipynb_file__ = {str(path)!r}", FIND]
    assert run_in_kernel(cells, two_assignments, _kernel_env()) == f"FOUND {path}"


COLAB_STANDIN = '''
"""A stand-in for Colab's google.colab._message: the front end's answer to get_ipynb."""
import json, os

def blocking_request(request_type, request="", timeout_sec=5, parent=None):
    assert request_type == "get_ipynb", request_type
    with open(os.environ["COLAB_STANDIN_NOTEBOOK"]) as handle:
        return {"ipynb": json.load(handle)}
'''


def test_colab_the_live_notebook_is_read_through_colabs_api(tmp_path):
    """In Colab the notebook is not on disk. The working folder holds a correct notebook of
    the same assignment: grading it instead would pass the split."""
    standin = tmp_path / "standin" / "google" / "colab"
    standin.mkdir(parents=True)
    (standin.parent / "__init__.py").write_text("")
    (standin / "__init__.py").write_text("")
    (standin / "_message.py").write_text(COLAB_STANDIN)
    live = tmp_path / "browser" / "live.ipynb"  # what the browser holds, not in the kernel's folder
    live.parent.mkdir()
    live.write_bytes((SAMPLES / "ben_float_split_index.ipynb").read_bytes())
    content = tmp_path / "content"
    content.mkdir()
    (content / EXERCISES).write_bytes((SAMPLES / "ada_correct.ipynb").read_bytes())
    env = _kernel_env(
        PYTHONPATH=str(standin.parent.parent), COLAB_STANDIN_NOTEBOOK=str(live), MPLBACKEND="Agg"
    )
    verdict = textwrap.dedent(
        """
        from grader.inline import find_notebook, section_result
        found = find_notebook()
        print(found.name, section_result("split").passed, section_result("model").passed)
        """
    )
    said = run_in_kernel([verdict], content, env)
    assert said == "colab_notebook.ipynb False True"


def _nbconvert(notebook: Path) -> str:
    """`jupyter nbconvert --execute` on the notebook; what its last cell printed."""
    bin_dir = Path(sys.executable).parent
    env = _kernel_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        [bin_dir / "jupyter", "nbconvert", "--to", "notebook", "--execute", "--stdout", notebook],
        capture_output=True,
        text=True,
        env=env,
        cwd=notebook.parent.parent,  # nbconvert starts the kernel in the notebook's folder
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    cells = json.loads(done.stdout)["cells"]
    texts = [o.get("text", "") for o in cells[-1].get("outputs", [])]
    return "".join("".join(t) if isinstance(t, list) else t for t in texts).strip()


def test_nbconvert_two_assignment_notebooks_in_one_folder_each_find_their_own(tmp_path):
    """nbconvert tells the kernel no name: the notebook holding the cells run is the one."""
    folder = tmp_path / "work"
    folder.mkdir()
    for name, code in ((EXERCISES, "device = 'cpu'"), (WALKTHROUGH, "import torch")):
        nbformat.write(
            new_notebook(cells=[new_code_cell(code), new_code_cell(FIND)]), folder / name
        )
    nbformat.write(
        new_notebook(cells=[new_code_cell("device = 'cpu'  # my try"), new_code_cell(FIND)]),
        folder / "my copy.ipynb",
    )
    assert _nbconvert(folder / EXERCISES) == f"FOUND {folder / EXERCISES}"
    assert _nbconvert(folder / WALKTHROUGH) == f"FOUND {folder / WALKTHROUGH}"
    assert _nbconvert(folder / "my copy.ipynb") == f"FOUND {folder / 'my copy.ipynb'}"


def test_when_it_cannot_be_told_it_says_so_and_grades_nothing(tmp_path):
    """Two identical copies: either could be running. Neither is graded silently."""
    folder = tmp_path / "work"
    folder.mkdir()
    notebook = new_notebook(cells=[new_code_cell("a = 1"), new_code_cell(FIND)])
    nbformat.write(notebook, folder / EXERCISES)
    nbformat.write(notebook, folder / "copy.ipynb")
    said = _nbconvert(folder / EXERCISES)
    assert said.startswith("NOT FOUND ptgrade could not tell which notebook is running")
    assert f"{EXERCISES}, copy.ipynb all hold the cells this kernel ran" in said
    assert 'check("section", notebook="name.ipynb")' in said
