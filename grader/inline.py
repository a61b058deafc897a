"""Checks called from a notebook: `check(section)` for students, `assert_section` in test cells.

Both grade the *saved* notebook file apart, exactly as `ptgrade` does (the same sandbox and
checks), and remember the result until the file changes. Inside the grader's own sandbox they do
nothing, so a notebook being graded never starts grading itself.

Under nbgrader (`NBGRADER_EXECUTION` is set while it runs a notebook) the notebook is found in
the kernel's working folder: nbclient starts the kernel in the folder of the file it executes
(`autograded/<student>/<assignment>/` for `autograde`, which holds the sanitized submission on
disk while it runs; the student's own folder for `validate`), and it is the one notebook there
whose code cells are the cells the kernel has run so far. Paths from the environment are ignored
there, since an instructor's shell or Jupyter session may have left them set.

Elsewhere the notebook is the one its front end names (JupyterLab and Notebook: the kernel's
session; VS Code: `__vsc_ipynb_file__`), Colab's live notebook (read through Colab's own API, as
it is not on disk), or the one notebook in the kernel's folder holding the cells it ran
(`jupyter nbconvert --execute`, a renamed copy). When it cannot be told, nothing is graded and
the error says why (`find_notebook`).

Under the kit's nbgrader config the kernel grades nothing: `grader.nbgrader_support.KitExecute`
computes each test cell's verdict in nbgrader's own process, where no student code runs, and
sets $PTGRADE_VERDICTS_OUTSIDE for the kernel it starts; `assert_section` then returns at once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import textwrap
import warnings
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from grader.packs import all_assignments
from grader.settings import BY_NAME, SANDBOX_ENV, VERDICTS_ENV, Settings, from_environment

NOTEBOOK_ENV = BY_NAME["check_notebook"].env
# Set by nbgrader while its kernel runs a notebook: "autograde" or "validate".
NBGRADER_ENV = "NBGRADER_EXECUTION"
# The kit's time limits for grading from a notebook (ptgrade's --cell-timeout and --timeout).
CELL_TIMEOUT_ENV = BY_NAME["cell_timeout"].env
TIMEOUT_ENV = BY_NAME["notebook_timeout"].env
TEXT_WIDTH = 80
COLAB_SECONDS = 30  # how long Colab's front end may take to send the live notebook


def _inside_sandbox() -> bool:
    return os.environ.get(SANDBOX_ENV) == "1"


def _nbgrader_execution() -> str | None:
    return os.environ.get(NBGRADER_ENV) or None


def _verdicts_outside() -> bool:
    """nbgrader's process computes the test cells' verdicts (nbgrader_support.KitExecute);
    whatever this kernel does or says in a test cell is overwritten there."""
    return bool(_nbgrader_execution()) and os.environ.get(VERDICTS_ENV) == "1"


def _assignment_notebooks_here() -> list[Path]:
    return [Path(f"{a}.ipynb") for a in all_assignments() if Path(f"{a}.ipynb").is_file()]


def _cells_run_so_far() -> list[str] | None:
    """The sources of the cells this IPython kernel has run, in order (None outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    history = getattr(getattr(get_ipython(), "history_manager", None), "input_hist_raw", None)
    return [source.strip() for source in history[1:]] if history else None


def _read_cells(path: Path) -> list:
    """The notebook's cells. nbformat is imported here, not with the kit: in nbgrader's kernel,
    where the verdicts are computed outside, nothing reads a notebook (0.1 s a kernel saved)."""
    import nbformat

    return nbformat.read(path, as_version=4).cells


def _starts_with(path: Path, run: list[str]) -> bool:
    """Whether the notebook's code cells begin with exactly the cells run so far."""
    try:
        cells = _read_cells(path)
    except Exception:  # not a notebook, or unreadable: not the one running
        return False
    # nbclient skips empty code cells, so they never reach the kernel's history.
    sources = [c.source.strip() for c in cells if c.cell_type == "code" and c.source.strip()]
    return sources[: len(run)] == run


def _notebook_run_by_nbgrader() -> Path:
    """The notebook in the kernel's folder whose code cells are the ones this kernel has run."""
    folder = Path.cwd()
    run = _cells_run_so_far()
    if run is None:  # not in a kernel: only an assignment notebook's name can tell
        candidates = _assignment_notebooks_here()
    else:
        candidates = [p for p in sorted(folder.glob("*.ipynb")) if _starts_with(p, run)]
    if len(candidates) == 1:
        return Path(candidates[0].name)
    found = ", ".join(p.name for p in candidates) or "none"
    raise FileNotFoundError(
        f"ptgrade under nbgrader cannot tell which notebook in {folder} is being run "
        f"(matching: {found}); nothing was graded. Keep one copy of the assignment there."
    )


def _user_namespace() -> dict:
    """The notebook's own globals, where front ends leave the notebook's path (empty outside
    IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    return getattr(get_ipython(), "user_ns", None) or {}


def _told_by_the_front_end() -> list[tuple[str, str]]:
    """(who says, the path) for each place that names the running notebook: $PTGRADE_NOTEBOOK,
    VS Code (`__vsc_ipynb_file__`), JupyterLab and Notebook (the kernel's session, which Jupyter
    Server passes as $JPY_SESSION_NAME and ipykernel keeps as `__session__`)."""
    namespace = _user_namespace()
    told = [
        ("$" + NOTEBOOK_ENV, os.environ.get(NOTEBOOK_ENV)),
        ("VS Code", namespace.get("__vsc_ipynb_file__")),
        ("Jupyter's session", namespace.get("__session__") or os.environ.get("JPY_SESSION_NAME")),
    ]
    return [(who, str(path)) for who, path in told if path and str(path).endswith(".ipynb")]


def _colab_notebook() -> Path | None:
    """Google Colab keeps the notebook in the browser, not on disk: read the live notebook from
    Colab's front end (the request Colab's own tools make) into a file the kit can grade; None
    outside Colab."""
    try:
        from google.colab import _message  # only Colab's kernel has it
    except ImportError:
        return None
    try:
        reply = _message.blocking_request("get_ipynb", request="", timeout_sec=COLAB_SECONDS)
    except Exception as error:  # Colab's front end did not answer
        raise FileNotFoundError(
            f"ptgrade could not read this notebook from Colab ({error}); nothing was graded. "
            'Save a copy to the session (File > Download .ipynb, then upload it) and call check("section", notebook="name.ipynb")'
        ) from None
    notebook = reply.get("ipynb") if isinstance(reply, dict) else None
    if not isinstance(notebook, dict):
        raise FileNotFoundError(
            "ptgrade asked Colab for this notebook and got no notebook back; nothing was graded"
        )
    folder = Path(tempfile.gettempdir()) / "ptgrade-colab"
    folder.mkdir(exist_ok=True)
    path = folder / "colab_notebook.ipynb"
    text = json.dumps(notebook)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:  # unchanged: cached grade
        path.write_text(text, encoding="utf-8")
    return path


def _code_sources(path: Path) -> list[str] | None:
    try:
        cells = _read_cells(path)
    except Exception:  # not a notebook, or unreadable: not the one running
        return None
    return [c.source.strip() for c in cells if c.cell_type == "code" and c.source.strip()]


def _notebook_by_its_cells(told: list[tuple[str, str]]) -> Path:
    """The one notebook in the working folder that holds the cells this kernel ran: first in
    their order (Run All, `jupyter nbconvert --execute`, whose kernel starts in the notebook's
    folder and is told no name), else in any order (cells run again or out of order). Never a
    guess: two that could be running are named in the error."""
    folder = Path.cwd()
    run = _cells_run_so_far()
    if run is None:  # not in a kernel: only an assignment notebook's own name can tell
        candidates = _assignment_notebooks_here()
    else:
        notebooks = {p: _code_sources(p) for p in sorted(folder.glob("*.ipynb"))}
        notebooks = {p: cells for p, cells in notebooks.items() if cells is not None}
        candidates = [p for p, cells in notebooks.items() if cells[: len(run)] == run]
        if len(candidates) != 1:
            earlier = [source for source in run[:-1] if source]  # the calling cell may be unsaved
            candidates = [p for p, cells in notebooks.items() if set(earlier) <= set(cells)]
    if len(candidates) == 1:
        return candidates[0]
    stale = "".join(f"; {who} names {path}, which is not there" for who, path in told)
    if candidates:
        why = f"{', '.join(p.name for p in candidates)} all hold the cells this kernel ran"
    else:
        why = f"no notebook in {folder} holds the cells this kernel ran (is it saved?)"
    raise FileNotFoundError(
        f"ptgrade could not tell which notebook is running: {why}{stale}; nothing was graded. "
        'Save the notebook, or name it: check("section", notebook="name.ipynb")'
    )


def find_notebook(explicit: str | os.PathLike | None = None) -> Path:
    """The notebook this code runs in: given; the one nbgrader runs; the one the front end names
    ($PTGRADE_NOTEBOOK, VS Code, Jupyter's session); Colab's live notebook; else the one in the
    working folder that holds the cells this kernel ran. When none of these can tell, a
    FileNotFoundError says so: a sibling notebook is never graded in its place."""
    if explicit is not None:
        if not Path(explicit).is_file():
            raise FileNotFoundError(f"ptgrade: no notebook at {explicit}")
        return Path(explicit)
    if _nbgrader_execution():
        return _notebook_run_by_nbgrader()
    told = _told_by_the_front_end()
    for _, path in told:
        if Path(path).is_file():
            return Path(path)
    colab = _colab_notebook()
    if colab is not None:
        return colab
    return _notebook_by_its_cells(told)


def _settings() -> Settings:
    """ptgrade's default settings, with the time limits $PTGRADE_CELL_TIMEOUT and
    $PTGRADE_TIMEOUT (each read alone: another variable's typo does not stop a student's check)."""
    return Settings(
        cell_timeout=from_environment("cell_timeout"),
        notebook_timeout=from_environment("notebook_timeout"),
    )


def _limits():
    return _settings().limits


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Nothing the grading writes reaches this process's stderr.

    nbgrader gives a test cell zero points for any stderr output, and Jupyter forwards file
    descriptor 2 too; the warm worker started in here keeps the quiet descriptor for its life,
    so a warning in a student's code, replayed by the sandbox, never lands in a test cell.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@lru_cache(maxsize=8)
def _graded(path: str, mtime_ns: int, size: int, hidden: bool, limits):
    from grader.grading import Options, grade

    # Without the hidden checks it is a student checking their own notebook (check(), or
    # nbgrader validate), which already ran in their kernel: no confinement is refused there.
    with _quiet_stderr():
        return grade(path, Options(limits=limits, hidden=hidden, own_notebook=not hidden))


def section_result(section: str, hidden: bool = False, notebook=None):
    path = find_notebook(notebook)
    stat = path.stat()
    result = _graded(str(path.resolve()), stat.st_mtime_ns, stat.st_size, hidden, _limits())
    try:
        return result.section(section)
    except StopIteration:
        known = ", ".join(s.id for s in result.sections)
        raise KeyError(f"no section {section!r} in this assignment (sections: {known})") from None


def failure_text(section) -> str:
    """What a failing test cell shows, in lines short enough for `nbgrader validate`, which cuts
    every line of an error at 87 characters."""
    lines = [f"Section {section.id!r}: {section.score:g} of {section.max_score:g} points."]
    for check in section.failures():
        lines += _wrapped(check.message, "- ", "  ")
        if check.hint_text:
            lines += _wrapped(check.hint_text, "  Hint: ", "    ")
    if section.note:
        lines += _wrapped(section.note, "", "")
    return "\n".join(lines)


def _wrapped(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(
        text,
        width=TEXT_WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def unsaved_warning(section: str, notebook=None) -> str | None:
    """A warning when this kernel last ran the section's graded cell with other code than the
    saved notebook holds: running a cell does not save it, and the kit grades the file."""
    run = _cells_run_so_far()
    if not run or _nbgrader_execution():
        return None
    try:
        cells = _read_cells(find_notebook(notebook))
    except Exception:  # no notebook to compare with: nothing to say
        return None
    # The section's instructions in either assignment (their training cells differ).
    markers = {s.marker for a in all_assignments().values() for s in a.sections if s.id == section}

    def marked(source: str) -> bool:
        return any(marker and marker in source for marker in markers)

    saved = [c.source.strip() for c in cells if c.cell_type == "code" and marked(c.source)]
    ran = [source for source in run if marked(source)]
    if not saved or not ran or ran[-1] == saved[-1]:
        return None
    return (
        f"the `{section}` cell in the saved notebook is not the one this kernel last ran, and "
        "this verdict is for the saved file: run your cell, save the notebook (Ctrl+S), then "
        "check again."
    )


def check(section: str, notebook: str | os.PathLike | None = None) -> None:
    """Grade the saved notebook apart and show one section's verdict (save the notebook first)."""
    if _inside_sandbox():
        return
    warning = unsaved_warning(section, notebook)
    if warning:
        print(f"Warning: {warning}")
    result = section_result(section, hidden=False, notebook=notebook)
    try:
        from IPython.display import HTML, display

        from grader.reports.html import section_table_html

        display(HTML(section_table_html(result)))
    except ImportError:
        print(failure_text(result) if not result.passed else f"Section {section!r}: passed.")


def assert_section(
    section: str, hidden: bool = False, notebook: str | os.PathLike | None = None
) -> float | None:
    """A test cell's verdict on one section: nothing when it passes, else the messages and hints
    `ptgrade` prints.

    A failing section raises AssertionError with that text, except under `nbgrader autograde`
    when it earned part of its points: then the text is printed and the section's score is
    returned, so that the cell's value (its last line) is nbgrader's partial credit. Under
    autograde the hidden checks always count, whichever call asks, so that every call of a cell
    agrees with `ptgrade grade`; only the visible call prints.
    """
    if _inside_sandbox() or _verdicts_outside():
        return None
    autograde = _nbgrader_execution() == "autograde"
    warning = unsaved_warning(section, notebook)
    if warning and not hidden:
        print(f"Warning: {warning}")
    result = section_result(section, hidden=hidden or autograde, notebook=notebook)
    if result.passed:
        return None
    text = failure_text(result) + (f"\nWarning: {warning}" if warning else "")
    if not autograde or result.score <= 0:
        raise AssertionError(text)
    if not hidden:
        print(text)
    return min(result.score, result.max_score)


def warm_start_in_background() -> None:
    """In a live Jupyter kernel, start the grader's warm worker (it imports torch) and pytest's
    collection of the checks now, while the student works: the first `check()` then costs a
    warm grade, not a cold start. Nothing where no grading will follow in this process."""
    if _inside_sandbox() or _verdicts_outside() or "IPython" not in sys.modules:
        return
    try:
        from IPython import get_ipython

        if get_ipython() is None:
            return
        from grader.sandbox.execution import start_warm_worker  # (no torch)

        with _quiet_stderr():  # the worker keeps this quiet stderr for its life
            start_warm_worker()
        # After the worker's launch: where the kernel has not imported torch yet, the checks'
        # modules import it here, beside the worker's own import, not before it.
        from grader.checking.pytest_session import open_every_pack

        open_every_pack()
    except Exception:  # a warm start is only ever a head start: the first check tells
        pass


warm_start_in_background()
