"""Each guarantee of the README's Security section, attacked by a submission that tries to break it.

The hostile submissions live in tests/submissions/adversarial.toml with their expected verdicts;
the attacks that need a value only known here (a port, a path) are built in this file.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from grader.errors import GraderError
from grader.grading import Options, grade
from grader.notebook.reading import load_submission
from grader.sandbox.execution import Limits, cleanup, execute, isolation
from grader.sandbox.isolation import (
    SANDBOX_ENV_NAMES,
    SANDBOX_ENV_PREFIXES,
    Isolation,
    bwrap_command,
    gpu_device_nodes,
    plan,
    refusal,
)
from grader.sandbox.session import GRACE
from tests.submissions.build import build_submission, load_corpus

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_pytorch_workflow_exercises"
# These tests attack the sandbox, not the device handling. On a machine with a GPU they hide it:
# CUDA's own start-up in the child (about 1 GB of host memory, measured on an H200) would not
# fit their small memory room. Without one, the default path runs (the simulated GPU).
DEVICE = "cpu" if gpu_device_nodes() else "auto"
LIMITS = Limits(cell_timeout=5, notebook_timeout=40, memory_mb=1024, device=DEVICE)
ADVERSARIAL = load_corpus("adversarial")
PICKLE_MARKER = Path("/tmp/ptgrade-pickle-marker")


def verdicts(result) -> dict[str, set[str]]:
    return {
        section.id: {check.hint for check in section.checks if not check.passed}
        for section in result.sections
        if not section.passed
    }


def write_submission(folder: Path, entry: dict, name: str = ASSIGNMENT) -> Path:
    notebook = folder / f"{name}.ipynb"
    nbformat.write(build_submission(ASSIGNMENT, entry), notebook)
    return notebook


def run_cell_code(tmp_path: Path, code: str) -> dict:
    """Execute the reference notebook with `code` as its data cell's first lines; return what
    the code printed as JSON on its last line of output starting with RESULT."""
    entry = {
        "name": "probe",
        "changes": [{"cell": "data", "old": "weight = 0.3\n", "new": code + "\nweight = 0.3\n"}],
    }
    submission = load_submission(write_submission(tmp_path, entry))
    execution = execute(submission, LIMITS, {})
    try:
        lines = [ln for ln in execution.output.splitlines() if ln.startswith("RESULT ")]
        assert lines, f"the probe printed nothing: {execution.status} {execution.output[-500:]}"
        return json.loads(lines[-1][len("RESULT ") :])
    finally:
        cleanup(execution)


def processes_named(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def processes_of_uid(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except OSError:
                continue
    return found


# ---------------------------------------------------------------------------------------------
# The adversarial corpus: every hostile submission gets exactly its expected verdict
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ADVERSARIAL, ids=[e["name"] for e in ADVERSARIAL])
def test_hostile_submission_gets_its_expected_verdict(entry, tmp_path):
    if entry.get("needs") == "files" and not isolation().files_confined:
        pytest.skip("needs bubblewrap: without it the submission can read the repository")
    if entry.get("needs") == "processes" and not process_limit_holds():
        pytest.skip("root without an unprivileged uid for the student: no process limit holds")
    PICKLE_MARKER.unlink(missing_ok=True)
    started = time.monotonic()
    # An entry may give its cell more time (`cell_timeout`): a memory hog must be stopped by
    # the memory cap, not by the clock, even on a loaded machine where touching 1 GB is slow.
    limits = replace(LIMITS, cell_timeout=entry.get("cell_timeout", LIMITS.cell_timeout))
    result = grade(write_submission(tmp_path, entry), Options(limits=limits))
    elapsed = time.monotonic() - started
    if not isolation().pid_namespace and isolation().sandbox_uid is None:
        for pid in processes_named("ptgrade-daemon"):  # the fallback leaves daemons behind
            os.kill(pid, 9)
    expected, found = entry.get("expect", {}), verdicts(result)
    assert result.execution["status"] == entry["status"], result.execution
    assert set(found) == set(expected), f"failed {found}, expected {expected}"
    for section, hint in expected.items():
        assert hint in found[section], f"{section}: {found[section]}, expected {hint}"
        assert not entry.get("exact", False) or found[section] == {hint}, found[section]
    # A section whose work is forged keeps none of its points.
    for section in entry.get("no_points", []):
        assert result.section(section).score == 0, f"{section} kept {result.section(section).score}"
    # Time: the grader answers within the notebook limit plus a few seconds, whatever happens.
    assert elapsed < LIMITS.notebook_timeout + 10
    # Pickles: the payload in a saved model never ran in the grader.
    assert not PICKLE_MARKER.exists()


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------


def test_a_loop_that_catches_the_timeout_is_stopped_at_the_cell_limit(tmp_path):
    entry = next(e for e in ADVERSARIAL if e["name"] == "loop_catches_the_timeout")
    started = time.monotonic()
    result = grade(write_submission(tmp_path, entry), Options(limits=LIMITS))
    assert time.monotonic() - started < LIMITS.cell_timeout + GRACE + 8
    assert "did not stop" in result.execution["detail"]


def test_the_notebook_timeout_stops_a_slow_notebook(tmp_path):
    limits = Limits(cell_timeout=3, notebook_timeout=4, memory_mb=2048, device=DEVICE)
    # Each cell stays under its own limit; together they pass the notebook's.
    sleep = "import time\ntime.sleep(2)\n"
    changes = [
        {"cell": "data", "old": "weight = 0.3\n", "new": sleep + "weight = 0.3\n"},
        {"cell": "split", "old": "train_split = ", "new": sleep + "train_split = "},
        {
            "cell": "model",
            "old": "torch.manual_seed(42)\n",
            "new": sleep + "torch.manual_seed(42)\n",
        },
    ]
    entry = {"name": "slow", "changes": changes}
    started = time.monotonic()
    result = grade(write_submission(tmp_path, entry), Options(limits=limits))
    assert time.monotonic() - started < limits.notebook_timeout + 8
    assert result.execution["status"] == "timeout"
    assert "notebook ran for more than 4 s" in result.execution["detail"]


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------


TRACE_FLOOD = """
import torch
from torch import nn
import grader.sandbox.child.trace as trace
trace.MAX_TRACE_BYTES = 1 << 20  # 1 MB here; 64 MB in grading
tracer = trace.Tracer()
tracer.install()
model = nn.Linear(4096, 1)
for cell in (1, 2):
    tracer.cell = cell
    for _ in range(100):
        model(torch.randn(1, 4096))  # a fresh 16 kB input every call
forwards = [e for e in tracer.events if e["kind"] == "forward"]
kept = sum(e["input"]["values"] is not None for e in forwards)
print(len(forwards), kept, tracer.copy.copied)
"""


def test_a_flood_of_fresh_tensors_cannot_fill_the_graders_memory():
    """Each cell may record its events, but the values the trace copies have one budget for the
    whole notebook: past it, events keep shapes and places without values."""
    run = subprocess.run(
        [sys.executable, "-c", TRACE_FLOOD], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    events, kept, copied = map(int, run.stdout.split())
    assert events == 200  # every call is still seen
    assert 0 < kept <= 64 and copied <= 1 << 20  # 64 inputs of 16 kB fill 1 MB


def test_allocations_stop_at_the_memory_cap(tmp_path):
    code = """
import numpy as np
found = {}
for name, make in (
    # 600 MB of the 768: the cap is what the submission may add to the warm worker's own
    # memory (0.3 GB here, over 1 GB with a CUDA build of torch), not the process's total.
    ("room", lambda: bytearray(600 * 2**20)),
    ("torch", lambda: torch.ones(2**28)),  # 1 GiB
    ("numpy", lambda: np.ones(2**27)),  # 1 GiB
    ("bytes", lambda: bytearray(2**30)),
):
    try:
        make()
        found[name] = "allocated"
    except (MemoryError, RuntimeError) as error:
        found[name] = type(error).__name__
print("RESULT " + __import__("json").dumps(found))
"""
    entry = {"name": "alloc", "changes": [{"cell": "data", "old": "weight = 0.3\n", "new": code}]}
    submission = load_submission(write_submission(tmp_path, entry))
    execution = execute(submission, Limits(cell_timeout=10, memory_mb=768, device=DEVICE), {})
    try:
        line = [ln for ln in execution.output.splitlines() if ln.startswith("RESULT ")][-1]
    finally:
        cleanup(execution)
    assert json.loads(line[len("RESULT ") :]) == {
        "room": "allocated",
        "torch": "RuntimeError",
        "numpy": "MemoryError",
        "bytes": "MemoryError",
    }


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


def test_daemons_are_gone_when_grading_ends(tmp_path):
    entry = next(e for e in ADVERSARIAL if e["name"] == "daemon")
    result = grade(write_submission(tmp_path, entry), Options(limits=LIMITS))
    assert result.score == result.max_score
    left = processes_named("ptgrade-daemon")
    confinement = isolation()
    if not confinement.pid_namespace and confinement.sandbox_uid is None:
        for pid in left:  # the documented fallback: only the process group is killed
            os.kill(pid, 9)
        pytest.skip("no PID namespace and no uid of its own: a setsid daemon survives")
    assert left == []


def process_limit_holds() -> bool:
    return isolation().sandbox_uid is not None or os.geteuid() != 0


def test_a_fork_bomb_is_held_by_the_process_limit(tmp_path):
    confinement = isolation()
    if not process_limit_holds():
        pytest.skip("root without an unprivileged uid for the student: no process limit holds")
    found = run_cell_code(
        tmp_path,
        """
import os, time, json
children = []
for _ in range(5000):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
print("RESULT " + json.dumps({"forked": len(children)}))
""",
    )
    assert 0 < found["forked"] < 600
    if confinement.sandbox_uid is not None:
        left = processes_of_uid(confinement.sandbox_uid)
        assert left == [], [Path(f"/proc/{p}/stat").read_text()[:80] for p in left]


# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------


def test_the_submission_cannot_reach_a_local_server(tmp_path):
    if not isolation().network_cut:
        pytest.skip("no network namespace here: the submission keeps the machine's network")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted = []
    server.settimeout(20)
    thread = threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True)
    thread.start()
    found = run_cell_code(
        tmp_path,
        f"""
import socket, json
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    outcome = "connected"
except OSError as error:
    outcome = type(error).__name__
print("RESULT " + json.dumps({{"outcome": outcome}}))
""",
    )
    # Our own connection shows the server was listening all along.
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    thread.join(10)
    server.close()
    assert found["outcome"] != "connected"
    assert accepted == ["connected"]  # only ours


def _accept(server: socket.socket) -> str:
    try:
        connection, _ = server.accept()
        connection.close()
        return "connected"
    except OSError:
        return "none"


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

FILE_PROBE = """
import json, os
found = {}
for name, path in READS.items():
    try:
        open(path, "rb").read(10)
        found[name] = "read"
    except OSError as error:
        found[name] = type(error).__name__
for name, path in WRITES.items():
    try:
        open(path, "w").write("x")
        found[name] = "written"
    except OSError as error:
        found[name] = type(error).__name__
open("mine.txt", "w").write("mine")
found["own_folder"] = open("mine.txt").read()
print("RESULT " + json.dumps(found))
"""


def test_the_submission_stays_in_its_folder(tmp_path):
    other = tmp_path / "other_student"
    other.mkdir()
    (other / "notebook.ipynb").write_text("{}")
    reads = {
        "solutions": str(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"),
        "hidden_checks": str(ROOT / "solutions" / "checks" / "test_training_hidden.py"),
        "reference_model": str(ROOT / "reference_models" / f"{ASSIGNMENT}.pth"),
        "other_student": str(other / "notebook.ipynb"),
    }
    writes = {
        "repository": str(ROOT / "ptgrade-written-by-a-submission"),
        "other_student": str(other / "forged.ipynb"),
        "parent_folder": "../escaped.txt",
        "tmp": "/tmp/ptgrade-written-by-a-submission",
    }
    code = f"READS = {reads!r}\nWRITES = {writes!r}\n" + FILE_PROBE
    try:
        found = run_cell_code(tmp_path, code)
    finally:
        for path in (ROOT / "ptgrade-written-by-a-submission", Path(writes["tmp"])):
            if path.exists():
                path.unlink()
    assert found["own_folder"] == "mine"
    confinement = isolation()
    if confinement.files_confined:
        assert {k: found[k] for k in reads} == dict.fromkeys(reads, "FileNotFoundError")
    if confinement.files_confined or confinement.sandbox_uid is not None:
        for name in writes:
            if name == "tmp" and not confinement.files_confined:
                continue  # documented fallback: an unprivileged uid may write where all users may
            assert found[name] in ("PermissionError", "FileNotFoundError", "OSError"), name
    assert not (other / "forged.ipynb").exists() or confinement.sandbox_uid is None


# ---------------------------------------------------------------------------------------------
# The record channel
# ---------------------------------------------------------------------------------------------


def test_a_forged_answer_on_the_channel_ends_the_run(tmp_path):
    code = """
from grader.sandbox.channel import send_answer
import socket
forged = {"seq": 2, "outcome": {"status": "ok", "duration": 0.0, "error": None}, "events": []}
send_answer(socket.socket(fileno=3), forged)
"""
    entry = {"name": "forge", "changes": [{"cell": "data", "old": "weight = 0.3\n", "new": code}]}
    result = grade(write_submission(tmp_path, entry), Options(limits=LIMITS))
    assert result.execution["status"] == "crashed"
    assert "out of turn" in result.execution["detail"]
    assert result.score == 0 or all(s.id in ("device",) or not s.passed for s in result.sections)


# ---------------------------------------------------------------------------------------------
# Failing closed: a confinement that leaves the files visible runs only where asked for
# ---------------------------------------------------------------------------------------------

SAMPLE = ROOT / "samples" / ASSIGNMENT / "ada_correct.ipynb"


def tools_only(tmp_path: Path, *names: str) -> dict[str, str]:
    """This environment with a PATH that holds only the given tools (no bubblewrap)."""
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    for name in names:
        if shutil.which(name) and not (tools / name).exists():
            (tools / name).symlink_to(shutil.which(name))
    env = {k: v for k, v in os.environ.items() if k != "PTGRADE_ISOLATION"}
    return {**env, "PATH": str(tools)}


def ptgrade(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize("fallback", ["unshare", "none"])
def test_a_weak_confinement_for_root_is_refused_unless_asked_for(fallback, tmp_path):
    if os.geteuid() != 0 or planned(tmp_path, "none").sandbox_uid is not None:
        pytest.skip("the notebook's code would not run as root here")
    if fallback == "unshare" and not shutil.which("unshare"):
        pytest.skip("no unshare here")
    env = tools_only(tmp_path, *(["unshare"] if fallback == "unshare" else []))
    run = ptgrade("grade", SAMPLE, env=env)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith(
        "ptgrade: refusing to run the notebook's code as root with the whole file system visible "
        "(bubblewrap: `bwrap` is not installed; "
        f"the fallback here is `{fallback}`). Install bubblewrap, or accept this confinement "
        f"with --isolation {fallback} (PTGRADE_ISOLATION={fallback})"
    )
    batch = ptgrade("batch", SAMPLE.parent, "--output", tmp_path / "grades", env=env)
    assert batch.returncode == 2 and "; nothing was graded" in batch.stderr
    assert not (tmp_path / "grades" / "grades.csv").exists()


def test_a_weak_confinement_asked_for_runs_and_every_report_names_it(tmp_path):
    env = tools_only(tmp_path)
    run = ptgrade("grade", SAMPLE, "--isolation", "none", "--format", "json", env=env)
    assert run.returncode == 0, run.stderr
    confinement = json.loads(run.stdout)["execution"]["confinement"]
    assert confinement["kind"] == "none" and confinement["asked"] is True
    assert not confinement["files_confined"] and not confinement["network_cut"]
    # A student checking their own notebook (its code runs in their Jupyter anyway): the best
    # confinement there is runs, and the report says which.
    check = ptgrade("check", SAMPLE, env=env)
    assert check.returncode == 0, check.stderr
    assert "Ran under: none, network open, process group only, files visible" in check.stdout
    asked_for = ptgrade("grade", SAMPLE, "--isolation", "bwrap", env=env)
    assert asked_for.returncode == 2
    assert asked_for.stderr == (
        "ptgrade: bwrap was asked for (PTGRADE_ISOLATION) but `bwrap` is not installed\n"
    )


def test_a_check_folder_the_notebooks_uid_could_write_is_refused(tmp_path):
    checks = tmp_path / "solutions" / "checks"
    checks.mkdir(parents=True)
    check = checks / "test_hidden.py"
    check.write_text("")
    uid = 4_242_424
    weak = Isolation("unshare", (), True, True, False, sandbox_uid=uid)
    assert refusal(weak, [checks]) is None  # only root may write there
    check.chmod(0o666)
    assert refusal(weak, [checks]).startswith(
        f"refusing to run the notebook's code with the whole file system visible, where it "
        f"could rewrite {check} "
    )
    check.chmod(0o644)
    os.chown(checks, uid, uid)  # its own folder: it could replace the file
    assert f"could rewrite {checks} " in refusal(weak, [checks])
    assert refusal(replace(weak, asked=True), [checks]) is None
    assert refusal(replace(weak, kind="bwrap", files_confined=True), [checks]) is None


def test_the_notebook_sees_none_of_the_graders_secrets(tmp_path):
    notebook = nbformat.read(SAMPLE, as_version=4)
    probe = "import os\nraise ValueError(' '.join(sorted(os.environ)))"
    notebook.cells.append(nbformat.v4.new_code_cell(probe))
    path = tmp_path / f"{ASSIGNMENT}.ipynb"
    nbformat.write(notebook, path)
    secrets = {
        "GITHUB_TOKEN": "ghp_secret",
        "ACTIONS_RUNTIME_TOKEN": "secret",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "DATABASE_URL": "postgres://secret",
        "PTGRADE_SOLUTIONS": str(ROOT / "solutions"),
    }
    run = ptgrade("grade", path, "--format", "json", env={**os.environ, **secrets})
    assert run.returncode == 0, run.stderr
    error = next(e for e in json.loads(run.stdout)["errors"] if "ValueError" in e)
    seen = set(error.split("ValueError: ", 1)[1].split())
    assert not seen & set(secrets)
    assert {"PATH", "HOME", "TMPDIR", "MPLBACKEND", "PYTHONPATH"} <= seen
    assert all(
        name in SANDBOX_ENV_NAMES or name.startswith(SANDBOX_ENV_PREFIXES) or name in SET_INSIDE
        for name in seen
    ), seen


# What is set inside the sandbox: by the kit (grader/sandbox/execution.py, warm.py, runner.py), by bwrap
# (PWD) and by torch itself (TORCHINDUCTOR_CACHE_DIR).
SET_INSIDE = {
    "PWD",
    "TORCHINDUCTOR_CACHE_DIR",
    "HOME",
    "TMPDIR",
    "MPLBACKEND",
    "MPLCONFIGDIR",
    "PYTHONUNBUFFERED",
    "IPYTHONDIR",
    "PTGRADE_SANDBOX",
    "CUDA_VISIBLE_DEVICES",
    "PYTORCH_NVML_BASED_CUDA_CHECK",
}


# ---------------------------------------------------------------------------------------------
# Fallbacks: what each confinement claims, here
# ---------------------------------------------------------------------------------------------


def planned(tmp_path: Path, kind: str):
    """The confinement `kind` as asked for; the test is skipped where it does not work."""
    try:
        return plan(tmp_path, kind)
    except GraderError:
        pytest.skip(f"{kind} does not work on this machine")


@pytest.mark.parametrize("kind", ["bwrap", "unshare", "none"])
def test_each_confinement_says_what_it_protects(kind, tmp_path):
    confinement = planned(tmp_path, kind)
    assert confinement.kind == kind and confinement.asked
    assert confinement.files_confined == (kind == "bwrap")
    assert confinement.network_cut == confinement.pid_namespace == (kind != "none")


@pytest.mark.parametrize("kind", ["bwrap", "unshare"])
def test_a_new_pid_namespace_gets_its_own_proc(kind, tmp_path):
    """/proc must agree with getpid() in the worker's PID namespace: CUDA fails otherwise (an
    H200 answered error 304 under `unshare --pid` alone), and the grader's processes stay out
    of sight."""
    confinement = planned(tmp_path, kind)
    if kind == "unshare" and "--mount-proc" not in confinement.prefix:
        pytest.skip("this machine refuses a /proc mount in a new namespace")
    probe = "import os; print(os.readlink('/proc/self'), os.getpid(), os.path.exists('/proc/2'))"
    done = subprocess.run(
        [*confinement.prefix, sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["1", "1", "False"], done.stdout + done.stderr


def test_bwrap_lets_the_gpu_device_nodes_in(tmp_path):
    """bwrap's fresh /dev holds no GPU; the kit binds NVIDIA's nodes into it, or CUDA code would
    silently run on the simulated GPU. Proved here with a node bwrap's /dev never has."""
    planned(tmp_path, "bwrap")
    spare = [n for n in ("/dev/kmsg", "/dev/loop-control", "/dev/vga_arbiter") if os.path.exists(n)]
    if not spare:
        pytest.skip("no device node to stand in for a GPU's")
    node = spare[0]
    probe = [sys.executable, "-c", f"import os; print(os.path.exists({node!r}))"]

    def seen(gpu_nodes: list[str]) -> str:
        command = [*bwrap_command(tmp_path, gpu_nodes=gpu_nodes), *probe]
        return subprocess.run(command, capture_output=True, text=True, timeout=60).stdout.strip()

    assert seen([]) == "False"
    assert seen([node]) == "True"


# ---------------------------------------------------------------------------------------------
# A batch with a hostile tenth grades everyone else exactly as alone
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_hostile_tenth_does_not_change_the_others_results(tmp_path):
    if not process_limit_holds():
        pytest.skip("the hostile submission is a fork bomb, and no process limit holds here")
    corpus = {e["name"]: e for e in load_corpus(ASSIGNMENT)}
    names = [
        "reference",
        "valid_no_grad",
        "valid_other_names",
        "valid_train_function",
        *[n for n in corpus if not n.startswith("valid") and n != "reference"][:5],
    ]
    hostile = {
        "name": "hostile",
        "changes": [
            {
                "cell": "predictions",
                "source": (
                    "import os, time\n"
                    "if os.fork() == 0:\n"
                    "    os.setsid()\n"
                    "    while True:\n"
                    "        try:\n"
                    "            os.fork()\n"
                    "        except OSError:\n"
                    "            time.sleep(0.05)\n"
                    "open('/dev/null', 'w').write('x' * 10**8)\n"
                    "print('x' * 10**7)\n"
                    "while True:\n"
                    "    try:\n"
                    "        while True:\n"
                    "            pass\n"
                    "    except BaseException:\n"
                    "        pass\n"
                ),
            }
        ],
    }
    folder = tmp_path / "submitted"
    folder.mkdir()
    for name in names:
        write_submission(folder, corpus[name], name=name)
    write_submission(folder, hostile, name="hostile")
    limits = ["--cell-timeout", "3", "--timeout", "20", "--memory-mb", "2048", "--device", DEVICE]
    output = tmp_path / "grades"
    done = subprocess.run(
        [sys.executable, "-m", "grader.cli", "batch", str(folder), "--output", str(output)]
        + ["--jobs", "2", *limits],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    alone_limits = Limits(cell_timeout=3, notebook_timeout=20, memory_mb=2048, device=DEVICE)
    for name in names:
        batch = json.loads((output / "results" / f"{name}.json").read_text())
        alone = grade(folder / f"{name}.ipynb", Options(limits=alone_limits)).to_dict()
        assert _verdict_view(batch) == _verdict_view(alone), name
    hostile_result = json.loads((output / "results" / "hostile.json").read_text())
    assert hostile_result["execution"]["status"] == "timeout"


def _verdict_view(result: dict) -> dict:
    return {
        "score": result["score"],
        "sections": [
            (s["id"], s["score"], [(c["id"], c["passed"], c["message"]) for c in s["checks"]])
            for s in result["sections"]
        ],
    }
