"""What a notebook's code can reach under each confinement, measured on this machine.

    .venv/bin/python benchmarks/confinement.py

For bwrap, unshare and none in turn (each asked for, as PTGRADE_ISOLATION does), a probe runs as
the notebook's first cell and tries what a hostile submission would: read the solutions, the
hidden checks and a private file of the grader's user, write the checks, reach a server on the
grader's 127.0.0.1, see the grading process, read a token from the grader's environment. It
prints one row per attempt and whether each confinement let it happen, then whether the kit
would run that confinement when it is not asked for (isolation.refusal).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_pytorch_workflow_exercises"
KINDS = ("bwrap", "unshare", "none")
TOKEN = "PTGRADE_PROBE_TOKEN"

PROBE = """
import json, os, socket
TARGETS = {targets!r}
found = {{}}
for name, path in TARGETS["reads"].items():
    try:
        open(path, "rb").read(1)
        found[name] = True
    except OSError:
        found[name] = False
found["write the kit's checks"] = os.access(TARGETS["checks"], os.W_OK)
try:
    socket.create_connection(("127.0.0.1", TARGETS["port"]), timeout=2).close()
    found["reach a server on the grader's 127.0.0.1"] = True
except OSError:
    found["reach a server on the grader's 127.0.0.1"] = False
found["see the grading process"] = os.path.exists(f"/proc/{{TARGETS['grader']}}/cmdline")
found["read a token from the grader's environment"] = {token!r} in os.environ
found["run as root"] = os.getuid() == 0
print("RESULT " + json.dumps(found))
"""

# Runs in a fresh process per confinement: the warm worker takes PTGRADE_ISOLATION from it.
RUN = """
import dataclasses, json, sys
from pathlib import Path
import nbformat
sys.path.insert(0, {root!r})
from grader.sandbox.isolation import imported_folders, refusal
from grader.notebook.reading import find_solutions_dir, load_submission
from grader.sandbox.execution import Limits, cleanup, execute, isolation
from tests.submissions.build import build_submission
probe = {probe!r}
entry = {{"name": "probe", "changes": [
    {{"cell": "data", "old": "weight = 0.3\\n", "new": probe + "\\nweight = 0.3\\n"}}]}}
path = Path({folder!r}) / "{assignment}.ipynb"
nbformat.write(build_submission("{assignment}", entry), path)
execution = execute(load_submission(path), Limits(cell_timeout=20, device="cpu"), {{}})
try:
    line = [l for l in execution.output.splitlines() if l.startswith("RESULT ")][-1]
finally:
    cleanup(execution)
found = json.loads(line[len("RESULT "):])
auto = dataclasses.replace(isolation(), asked=False)
found["be run by the kit unasked"] = refusal(auto, imported_folders(find_solutions_dir())) is None
print("FOUND " + json.dumps(found))
"""


def probe(kind: str, folder: Path, port: int) -> dict | str:
    private = folder / "private.txt"  # another course's notebook, say: the grader's user's
    private.write_text("private")
    private.chmod(0o600)
    solutions = ROOT / "solutions"
    targets = {
        "reads": {
            "read the solutions": str(solutions / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"),
            "read the hidden checks": str(solutions / "checks" / "test_training_hidden.py"),
            "read a private file of the grader's user": str(private),
        },
        "checks": str(ROOT / "grader" / "checks" / "test_split.py"),
        "port": port,
        "grader": os.getpid(),
    }
    code = PROBE.format(targets=targets, token=TOKEN)
    script = RUN.format(root=str(ROOT), probe=code, folder=str(folder), assignment=ASSIGNMENT)
    env = {**os.environ, "PTGRADE_ISOLATION": kind, TOKEN: "secret"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("FOUND ")]
    if not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"did not run: {last}"
    return json.loads(lines[-1][len("FOUND ") :])


def serve_forever(server: socket.socket) -> None:
    while True:
        try:
            server.accept()[0].close()
        except OSError:
            return


def main() -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    threading.Thread(target=serve_forever, args=(server,), daemon=True).start()
    results = {}
    with tempfile.TemporaryDirectory(prefix="ptgrade-confinement-") as folder:
        Path(folder).chmod(0o755)
        for kind in KINDS:
            here = Path(folder) / kind
            here.mkdir()
            here.chmod(0o755)
            results[kind] = probe(kind, here, server.getsockname()[1])
    server.close()
    print(f"as uid {os.geteuid()}, Python at {sys.prefix}")
    rows = next((list(r) for r in results.values() if isinstance(r, dict)), [])
    width = max([len(row) for row in rows] + [10])
    heading = "the notebook's code could"
    print(f"{heading:<{width}}  " + "  ".join(f"{k:>7}" for k in KINDS))
    for row in rows:
        cells = []
        for kind in KINDS:
            found = results[kind]
            cells.append(f"{'-' if isinstance(found, str) else 'yes' if found[row] else 'no':>7}")
        print(f"{row:<{width}}  " + "  ".join(cells))
    for kind, found in results.items():
        if isinstance(found, str):
            print(f"{kind}: {found}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
