"""The sandbox's child: run the cells the grader sends in an IPython shell, answer each one.

Forked from the warm worker (warm.py). Nothing here trusts the student's code: each cell's
outcome, trace events and snapshot go to the grader over the record channel as soon as the cell
ends, so whatever kills the process, the grader has everything up to the cell that did it.
"""

from __future__ import annotations

import builtins
import difflib
import io
import json
import os
import re
import signal
import sys
import time
import tokenize
import traceback
from contextlib import contextmanager
from typing import Any

from grader.notebook.cell_source import is_cell_file
from grader.safe_text import error_text, type_name
from grader.sandbox.isolation import gpu_device_nodes


class CellTimeout(BaseException):
    """Raised inside a cell that ran past its time limit."""


class CappedText(io.TextIOBase):
    """Keeps the first `limit` characters written and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self) -> str:
        tail = f"\n[... {self.dropped} more characters of output dropped]" if self.dropped else ""
        return "".join(self.parts) + tail


def prepare() -> None:
    """Pay the fixed costs once (a warm worker calls this before it forks)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import torch

    import grader.sandbox.answers
    import grader.sandbox.channel
    import grader.sandbox.child.simulated_gpu
    import grader.sandbox.child.snapshot
    import grader.sandbox.child.trace  # noqa: F401

    # The first optimizer built in a process imports torch._dynamo (about a second): any
    # optimizer of any notebook pays it, so the worker does, once.
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    shell = new_shell()  # each forked child gets its own copy of it, with an empty namespace
    # The packs' rehearsals, from the grader; the children need not see them.
    from grader.settings import REHEARSALS_ENV

    handed = os.environ.pop(REHEARSALS_ENV, "")
    # Every child would otherwise pay the first-use costs (lazy imports, dispatch and font
    # caches, IPython's compiler) of what every notebook of a pack does: the pack's rehearsal
    # runs here once. Not on a machine with a GPU: a rehearsal's first backward makes the
    # autograd engine count the GPUs, which initialises CUDA here, and CUDA then fails in every
    # forked child ("initialization error"). There a child's own CUDA start-up (seconds)
    # dwarfs what the rehearsal saves.
    sources = rehearsals(handed) if not gpu_device_nodes() else []
    if sources:
        # Through the shell, as the cells will run: its compiler and display hook (a cell
        # ending in an expression) are first used here, not in every child (~2.5 ms each).
        shown, sys.stdout = sys.stdout, io.StringIO()
        try:
            for source in sources:
                shell.run_cell(source, store_history=False)
        finally:
            sys.stdout = shown
        shell.reset(new_session=False)  # the rehearsal's names must not reach a notebook
    else:
        shell.run_cell("pass", store_history=False, silent=True)
    matplotlib.pyplot.close("all")


def rehearsals(named: str) -> list[str]:
    """The rehearsals' sources in `named` (a JSON list; anything else is none)."""
    try:
        found = json.loads(named) if named else []
    except ValueError:
        return []
    if not isinstance(found, list):
        return []
    return [source for source in found if isinstance(source, str) and source.strip()]


def new_shell():
    """The IPython shell that runs the cells (created once, in the warm worker, before forking).

    No history: cells are run with store_history=False, and a history database would be one more
    file opened for every submission."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config, colors="nocolor")
    # A cell's error is read by _error_info; the traceback the shell prints is only output,
    # which no verdict reads. The default (Context) mode formats every frame's source and
    # values: 0.1 to 0.3 s a failing notebook, in every child. Plain prints the frames alone.
    shell.InteractiveTB.set_mode(mode="Plain")
    # `%matplotlib inline` (in many notebooks' first cell) needs a kernel's GUI support: a plain
    # shell raises NotImplementedError, which stopped the cell (and read as "not filled in").
    # Figures are drawn off screen here (Agg) whatever the notebook asks for.
    shell.register_magic_function(_matplotlib_magic, magic_kind="line", magic_name="matplotlib")
    return shell


def _matplotlib_magic(line: str = "") -> None:
    """`%matplotlib [backend]` in the sandbox: nothing to switch; pyplot is imported as the
    magic would leave it."""
    import matplotlib.pyplot  # noqa: F401


def _error_info(error: BaseException, source: str, namespace: dict | None = None) -> dict[str, Any]:
    """What the student reads of a cell's error; never raises, whatever the exception does."""
    try:
        return _read_error(error, source, namespace)
    except BaseException:  # a student's exception whose attributes raise
        return {
            "ename": type_name(error),
            "evalue": error_text(error, 500),
            "line_number": None,
            "line": None,
            "inner": None,
            "in_cell": True,
        }


def _read_error(error: BaseException, source: str, namespace: dict | None) -> dict[str, Any]:
    line_number = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
    inner = None
    in_cell = isinstance(error, SyntaxError)
    if line_number is None:
        frames = traceback.extract_tb(error.__traceback__)
        cells = [frame for frame in frames if is_cell_file(frame.filename)]
        if cells:
            # The first cell frame is this cell; the line is its deepest frame (a function the
            # cell defined and called included). A deeper frame in another cell is a function
            # defined there (the model's `forward`): named too, since the fault may be there.
            own = [frame for frame in cells if frame.filename == cells[0].filename]
            line_number = own[-1].lineno
            if cells[-1].filename != cells[0].filename:
                inner = {"function": cells[-1].name, "line": (cells[-1].line or "").strip()}
            in_cell = frames[-1].filename == cells[0].filename  # raised by the cell's own code
    message = error_text(error)
    if isinstance(error, SyntaxError) and message == "incomplete input":
        # Python names the cell's last line; a bracket left open names where it was opened.
        opened = _unclosed_bracket_line(source)
        if opened is not None:
            line_number, message = (
                opened,
                "incomplete input: this line opens a bracket that is never closed",
            )
    message = str(message) + _did_you_mean(error, namespace or {})
    lines = source.splitlines()
    line = lines[line_number - 1].strip() if line_number and 0 < line_number <= len(lines) else None
    return {
        "ename": type_name(error),
        "evalue": short_error(str(message)),
        "line_number": line_number,
        "line": line,
        "inner": inner,
        "in_cell": in_cell,
    }


def _did_you_mean(error: BaseException, namespace: dict) -> str:
    """The ". Did you mean: 'X_train'?" that Python's own traceback adds for a misspelled name
    or attribute (the exception's message alone lacks it), or ""."""
    name = getattr(error, "name", None)
    if not isinstance(name, str) or type(error) not in (NameError, AttributeError):
        return ""
    try:
        if isinstance(error, AttributeError):
            candidates = dir(error.obj)
        else:
            candidates = [*namespace, *dir(builtins)]
        # Private and IPython's own names (`_i3`, `Out`) are never what a student meant.
        hidden = {"In", "Out", "exit", "quit", "get_ipython"}
        candidates = [
            c
            for c in candidates
            if isinstance(c, str)
            and c != name
            and c not in hidden
            and (not c.startswith("_") or name.startswith("_"))
        ]
        found = [c for c in candidates if c.lower() == name.lower()]  # `optim.sgd`
        found = found or difflib.get_close_matches(name, candidates, 1, 0.75)
    except Exception:  # a student's object whose dir() raises: no suggestion
        return ""
    return f". Did you mean: '{found[0]}'?" if found else ""


def _unclosed_bracket_line(source: str) -> int | None:
    """The line of the last bracket the cell opens and never closes, if any."""
    opened: list[int] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.OP and token.string in "([{":
                opened.append(token.start[0])
            elif token.type == tokenize.OP and token.string in ")]}" and opened:
                opened.pop()
    except (tokenize.TokenError, SyntaxError):  # the end of the cell inside the bracket
        pass
    return opened[-1] if opened else None


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def short_error(message: str, limit: int = 500) -> str:
    """An error's message for the student (and for the hint that matches it): colour codes
    dropped; a long one cut to its first line and the line that names the error (torch's
    weights-only refusal explains itself for 900 characters before `WeightsUnpickler error:
    Unsupported global: GLOBAL getattr ...`)."""
    message = ANSI.sub("", message)
    if len(message) <= limit:
        return message
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    at = next((i for i, line in enumerate(lines) if i and "error:" in line.lower()), None)
    if at is None:
        return message[:limit]
    named = lines[at]
    if named.endswith(":") and at + 1 < len(lines):  # "WeightsUnpickler error:" then the reason
        named = f"{named} {lines[at + 1]}"
    return f"{lines[0][:150]} [...] {named}"[:limit]


def _run_cell(shell, source: str, timeout: float) -> dict[str, Any]:
    def on_alarm(signum, frame):
        raise CellTimeout()

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        result = shell.run_cell(source, store_history=False, silent=False)
    except CellTimeout:  # raised outside the cell's own try/except
        result = None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    outcome: dict[str, Any] = {"duration": time.monotonic() - started, "error": None}
    error = None
    if result is None:
        error = CellTimeout()
    else:
        error = result.error_before_exec or result.error_in_exec
    if error is None:
        outcome["status"] = "ok"
    elif isinstance(error, CellTimeout):
        outcome["status"] = "timeout"
        outcome["error"] = {
            "ename": "TimeoutError",
            "evalue": f"the cell ran for more than {timeout:g} s",
            "line_number": None,
            "line": None,
        }
    else:
        outcome["status"] = "error"
        outcome["error"] = _error_info(error, source, shell.user_ns)
    return outcome


def serve(channel, config: dict[str, Any]) -> None:
    """Answer the grader's requests on `channel` until it says exit.

    The grader decides which cell runs next and takes each answer as it comes, so what a cell
    does later (overwrite files, patch this module) cannot change what was already recorded.
    """
    import torch

    from grader.sandbox.channel import receive_request, send_answer
    from grader.sandbox.child.snapshot import MISSING, describe
    from grader.sandbox.child.trace import Tracer
    from grader.settings import SANDBOX_ENV

    os.environ[SANDBOX_ENV] = "1"
    output = CappedText(int(config.get("output_limit", 200_000)))
    sys.stdout = sys.stderr = output

    # A simulated GPU goes in first, so the tracer records what the student's code sees.
    simulated_gpu = bool(config.get("simulate_gpu")) and not torch.cuda.is_available()
    if simulated_gpu:
        from grader.sandbox.child.simulated_gpu import SimulatedGPU

        SimulatedGPU().install()
    tracer = Tracer()
    tracer.install()
    shell = new_shell()
    namespace = shell.user_ns
    probe_inputs = config.get("probe_inputs", [])
    timeout = float(config.get("cell_timeout", 60))
    recursion_limit = sys.getrecursionlimit()  # before any cell can change it

    def snapshot(names, inputs) -> dict[str, Any]:
        values = {}
        for name in names:
            if name in namespace:
                try:
                    values[name] = describe(namespace[name], tracer, inputs)
                except CellTimeout:
                    raise
                except BaseException as error:  # a hostile object (even SystemExit): go on
                    text = f"{type_name(error)}({error_text(error, 250)!r})"
                    values[name] = {"kind": "unreadable", "error": text}
            else:
                values[name] = MISSING
        return values

    def answer(seq: int, **fields: Any) -> None:
        # Shipped events leave the child: a long notebook's trace is not kept twice.
        events, tracer.events = tracer.events, []
        fields.update(
            seq=seq,
            events=events,
            trace_truncated=sorted(c for c in tracer.truncated if c is not None),
            output=output.getvalue(),
        )
        with tracer.paused(), own_recursion_limit(recursion_limit):
            send_answer(channel, fields)

    with tracer.paused():
        send_answer(
            channel,
            {
                "seq": 0,
                "torch_version": str(torch.__version__),
                "cuda_available": bool(torch.cuda.is_available.__wrapped__()) and not simulated_gpu,
                "simulated_gpu": simulated_gpu,
            },
        )
    while True:
        request = receive_request(channel)
        seq = request["seq"]
        if request["op"] == "run":
            tracer.cell = request["index"]
            tracer.substituted = bool(request["substituted"])
            outcome = _run_cell(shell, request["source"], timeout)
            tracer.substituted = False
            answer(seq, outcome=outcome)
        elif request["op"] == "run_without_gpu":
            tracer.cell = None
            with tracer.paused():
                values = _without_gpu(
                    shell, request["source"], timeout, snapshot, request["names"], probe_inputs
                )
            answer(seq, values=values)
        elif request["op"] == "snapshot":
            tracer.cell = None
            inputs = request.get("probe_inputs") or probe_inputs
            with own_recursion_limit(recursion_limit):
                values = _with_alarm(snapshot, request["names"], inputs, timeout=timeout)
            answer(seq, values=values if values is not None else {})
        else:
            answer(seq)
            break


@contextmanager
def own_recursion_limit(limit: int):
    """The grader's own work (snapshots, answers) under Python's recursion limit as it was
    before the notebook ran: a cell that lowered it would make the answer fail, one that
    raised it would let a deep value overflow the C stack. The cells keep theirs."""
    students = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(students)


def _without_gpu(shell, source: str, timeout: float, snapshot, names, inputs) -> dict[str, Any]:
    """`names` as the cell leaves them on a machine without a GPU: the cell run again with
    torch saying there is none (its `else` branch: "cpu", or a wrong "mps"), then the
    notebook's names put back as they were. A device cell is judged both ways."""
    import torch

    namespace = shell.user_ns
    kept = dict(namespace)
    patches = [(torch.cuda, "is_available", lambda: False), (torch.cuda, "device_count", lambda: 0)]
    if hasattr(torch, "accelerator"):
        patches += [
            (torch.accelerator, "is_available", lambda: False),
            (torch.accelerator, "current_accelerator", lambda *args, **kwargs: None),
            (torch.accelerator, "device_count", lambda: 0),
        ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    printed, sys.stdout = sys.stdout, io.StringIO()  # its prints are not the notebook's
    try:
        for owner, name, answer in patches:
            setattr(owner, name, answer)
        outcome = _run_cell(shell, source, timeout)
        values = snapshot(names, inputs) if outcome["status"] == "ok" else {}
        if outcome["status"] != "ok":
            error = outcome.get("error") or {}
            values = {
                name: {"kind": "error", "error": f"{error.get('ename')}: {error.get('evalue')}"}
                for name in names
            }
        return values
    finally:
        sys.stdout = printed
        for owner, name, original in originals:
            setattr(owner, name, original)
        namespace.clear()
        namespace.update(kept)


def _with_alarm(function, *args, timeout: float):
    """function(*args), or None when it runs past `timeout` (a student's forward can loop)."""

    def on_alarm(signum, frame):
        raise CellTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return function(*args)
    except CellTimeout:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
