"""The warm worker of a batch forks from huge pages, where Linux offers them."""

from __future__ import annotations

import json
import os
import platform
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from grader.sandbox.isolation import gpu_device_nodes
from grader.sandbox.warm import WarmWorker
from grader.settings import REHEARSALS_ENV

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
ROOT = Path(__file__).resolve().parent.parent


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        found = tuple(int(part) for part in platform.release().split("-")[0].split(".")[:2])
    except ValueError:
        return False
    return found >= (major, minor)


def _anon_huge_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("AnonHugePages:"):
            return int(line.split()[1])
    return 0


@pytest.mark.skipif(
    not THP.exists() or "[never]" in THP.read_text() or not _kernel_at_least(6, 1),
    reason="no transparent huge pages, or no MADV_COLLAPSE (Linux < 6.1)",
)
def test_a_worker_for_many_submissions_moves_its_memory_to_huge_pages():
    root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, MPLBACKEND="Agg")
    worker = WarmWorker(env, huge_pages=True)
    try:
        worker.ensure_running()  # ready once torch is imported and the pages are moved
        pid = worker._process.pid
        assert "--huge-pages" in Path(f"/proc/{pid}/cmdline").read_text()
        # torch, IPython and matplotlib: some 200 MB of the worker's memory, on 2 MB pages.
        assert _anon_huge_kb(pid) > 50 * 1024
    finally:
        worker.close()


def test_a_worker_whose_grader_dies_leaves_quietly():
    """A grader killed before it read the worker's messages (Ctrl-C while a child starts) makes
    the worker's next read fail with ECONNRESET: the worker must exit without a traceback on
    the terminal it shares with the grader."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    worker = subprocess.Popen(
        [sys.executable, "-m", "grader.sandbox.warm", str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    theirs.close()
    try:
        assert select.select([ours], [], [], 120)[0], "the worker never said it was ready"
        ours.close()  # "ready" unread: the worker's next recv gets ECONNRESET
        _, err = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == 0 and "Traceback" not in err, err


def _prepare_and_run(script: str, rehearsals: list) -> subprocess.CompletedProcess:
    """`script` in a fresh Python, handed `rehearsals` as the grader hands a worker its packs'."""
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "MPLBACKEND": "Agg",
            "PYTHONPATH": str(ROOT),
            REHEARSALS_ENV: json.dumps(rehearsals),
        },
    )


def test_the_rehearsal_leaves_no_names_for_the_notebooks():
    # The worker rehearses a chapter-like notebook in the shell every child inherits: a
    # notebook must not find its X, model or loss_fn already defined.
    from grader.packs import pack_for

    rehearsal = pack_for("01_pytorch_workflow_exercises").rehearsal
    assert rehearsal and "X = " in rehearsal  # chapter 01's rehearsal defines an X
    script = (
        "from grader.sandbox.child.runner import prepare, new_shell\n"
        "prepare()\n"
        "shell = new_shell()\n"
        "names = sorted(k for k in shell.user_ns if not k.startswith('_'))\n"
        "error = shell.run_cell('%matplotlib inline\\nX').error_in_exec\n"
        "print('NAMES', names)\n"
        "print('ERROR', repr(error))\n"
    )
    run = _prepare_and_run(script, [rehearsal])
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[-2] == "NAMES ['In', 'Out', 'exit', 'get_ipython', 'open', 'quit']"
    assert "name 'X' is not defined" in lines[-1]  # and %matplotlib ran without complaint


@pytest.mark.skipif(bool(gpu_device_nodes()), reason="a GPU machine's worker skips rehearsals")
def test_the_worker_runs_each_packs_rehearsal_once_and_hides_it(tmp_path):
    """The packs' rehearsals (Pack.rehearsal) reach the worker at its start and run there,
    through the shell, before it forks; the children see neither them nor the variable."""
    marker = tmp_path / "ran"
    rehearsal = f"open({str(marker)!r}, 'a').write('ran ')\nnumbers = [1, 2]\nnumbers"
    script = (
        "import os\n"
        "from grader.sandbox.child.runner import prepare, new_shell\nfrom grader.settings import REHEARSALS_ENV\n"
        "prepare()\n"
        "shell = new_shell()\n"
        "print('LEFT', 'numbers' in shell.user_ns, REHEARSALS_ENV in os.environ)\n"
    )
    run = _prepare_and_run(script, [rehearsal, "", 3])  # what is not source is skipped
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "LEFT False False"
    assert marker.read_text() == "ran "
