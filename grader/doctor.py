"""`ptgrade doctor`: can this machine grade, and with what? One line per question, each with
what to do when the answer is wrong. Exit 1 when grading cannot work here."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from grader.settings import environment_variable

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass
class Line:
    level: str
    topic: str
    text: str
    fix: str = ""

    def render(self) -> str:
        head = f"[{self.level:^4}] {self.topic}: {self.text}"
        return head + (f"\n       fix: {self.fix}" if self.fix and self.level != OK else "")


def kit() -> Line:
    from importlib.metadata import PackageNotFoundError, version

    from grader.sandbox.isolation import package_root

    try:
        installed = version("ptgrade")
    except PackageNotFoundError:
        installed = "not installed (run from a checkout)"
    where = package_root() / "grader"
    return Line(OK, "kit", f"ptgrade {installed}, package at {where}")


def torch_build() -> Line:
    try:
        import torch
    except Exception as error:  # not installed, or a broken build
        return Line(FAIL, "torch", f"cannot be imported ({type(error).__name__}: {error})",
                    "pip install 'torch>=2.1,<3' in the environment ptgrade runs in")  # fmt: skip
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
        return Line(OK, "torch", f"{torch.__version__} ({build}); device: {device}")
    device = "cpu: device-agnostic assignments run on a simulated GPU"
    fix = ""
    if torch.version.cuda:
        fix = "no GPU is visible: check nvidia-smi, or grade on the CPU (the simulated GPU)"
    return Line(OK if not fix else WARN, "torch", f"{torch.__version__} ({build}); {device}", fix)


def confinement(solutions: Path | None) -> tuple[Line, bool]:
    """(the line, whether grading others' notebooks may run under it)."""
    from grader.errors import GraderError
    from grader.sandbox.isolation import imported_folders, plan, refusal

    try:
        chosen = plan(Path(tempfile.gettempdir()))
    except GraderError as error:
        return Line(FAIL, "confinement", error.reason,
                    "unset PTGRADE_ISOLATION, or install what it names"), False  # fmt: skip
    reason = refusal(chosen, imported_folders(solutions))
    if reason is not None:
        return Line(FAIL, "confinement", f"{chosen.describe()}: {reason}",
                    "apt-get install bubblewrap (then rerun ptgrade doctor)"), False  # fmt: skip
    fix = ""
    if not chosen.files_confined:
        fix = "the notebook's code can read the solutions: install bubblewrap for real grading"
    return Line(WARN if fix else OK, "confinement", chosen.describe(), fix), True


def worker() -> Line:
    """Start the warm worker under the confinement and have torch imported in it."""
    from grader.sandbox.execution import warm_worker

    started = time.monotonic()
    try:
        warm_worker(wait=True)
    except Exception as error:
        return Line(FAIL, "worker", f"could not start, or import torch in it: {error}",
                    "run `ptgrade check` on a notebook to see the whole error; with bubblewrap, "
                    "try PTGRADE_ISOLATION=unshare to tell the confinement apart")  # fmt: skip
    seconds = time.monotonic() - started
    return Line(OK, "worker", f"started under it, torch imported there ({seconds:.1f} s)")


def solutions_found(explicit: str | None) -> tuple[list[Line], Path | None]:
    from grader.notebook.reading import find_solutions_dir
    from grader.packs import all_assignments

    folder = find_solutions_dir(explicit)
    how = (
        "--solutions" if explicit
        else "$PTGRADE_SOLUTIONS" if environment_variable("solutions")
        else "the kit's checkout"
    )  # fmt: skip
    if folder is not None and folder.resolve().is_relative_to(Path(__file__).resolve().parent):
        how = "the copy the built kit carries"
    fix = "set PTGRADE_SOLUTIONS (or --solutions) to the course's source folder"
    if folder is None:
        return [Line(FAIL, "solutions", "not found: hidden checks, points and the reference "
                     "code of deleted cells are missing", fix)], None  # fmt: skip
    found = [a for a in all_assignments() if (folder / a / f"{a}.ipynb").is_file()]
    lines = [
        Line(
            OK if found else FAIL,
            "solutions",
            f"{folder} (from {how}): {', '.join(found) or 'no assignment notebook in it'}",
            fix,
        )  # fmt: skip
    ]
    checks = sorted((folder / "checks").glob("test_*.py"))
    if checks:
        names = ", ".join(p.name for p in checks)
        lines.append(Line(OK, "hidden checks", f"{folder / 'checks'}: {names}"))
    else:
        lines.append(Line(FAIL, "hidden checks", f"none in {folder / 'checks'}",
                          "copy the kit's solutions/checks/ there (ptgrade init-course does)"))  # fmt: skip
    return lines, folder


def self_test(solutions: Path) -> list[Line]:
    """Grade each reference solution as a submission: full marks, or the kit is broken here."""
    from grader.grading import Options, grade
    from grader.packs import all_assignments
    from grader.sandbox.execution import Limits

    lines = []
    for assignment in all_assignments():
        notebook = solutions / assignment / f"{assignment}.ipynb"
        if not notebook.is_file():
            continue
        started = time.monotonic()
        try:
            result = grade(notebook, Options(limits=Limits(), solutions=str(solutions)))
        except Exception as error:
            lines.append(Line(FAIL, "self-test", f"{assignment}: {error}",
                              "fix what it names, then rerun ptgrade doctor"))  # fmt: skip
            continue
        seconds = time.monotonic() - started
        text = f"{assignment}: the reference solution scores {result.score:g}/{result.max_score:g}"
        full = result.score == result.max_score
        lines.append(Line(OK if full else FAIL, "self-test", f"{text} ({seconds:.1f} s)",
                          "the solutions and the kit disagree: reinstall the kit that goes "
                          "with these solutions (`ptgrade grade` on the solution says which "
                          "checks fail)"))  # fmt: skip
    return lines


def notebook_here() -> Line:
    from grader.inline import find_notebook

    try:
        found = find_notebook()
    except FileNotFoundError:
        return Line(WARN, "notebook", f"none to grade from {Path.cwd()} (check() in a notebook "
                    "grades the saved notebook it runs in)",
                    "run from the folder that holds <assignment>.ipynb, or set "
                    "PTGRADE_NOTEBOOK=path/to/notebook.ipynb")  # fmt: skip
    return Line(OK, "notebook", f"check() from here grades {found.resolve()}")


def gradebook() -> Line:
    """Where `nbgrader` run from here keeps its grades (nbgrader_config.py in this folder)."""
    config = Path("nbgrader_config.py")
    url = environment_variable("gradebook_url")
    if url is None and config.is_file():
        try:
            from traitlets.config import Config

            c = Config()
            code = compile(config.read_text(), str(config.resolve()), "exec")
            exec(code, {"get_config": lambda: c, "__file__": str(config.resolve())})
            url = c.CourseDirectory.db_url if "db_url" in c.CourseDirectory else None
        except Exception as error:  # nbgrader not installed, or a broken config
            return Line(WARN, "gradebook", f"{config.resolve()} could not be read: {error}",
                        "pip install 'ptgrade[nbgrader]', and fix the config it names")  # fmt: skip
    if url is None:
        where = "nbgrader's default (gradebook.db in its course folder)"
        if not config.is_file():
            return Line(OK, "gradebook", f"no nbgrader_config.py in {Path.cwd()}; {where}")
        return Line(OK, "gradebook", where)
    path = url.removeprefix("sqlite:///")
    if url.startswith("sqlite:///") and Path(path).resolve().is_relative_to(
        Path(tempfile.gettempdir()).resolve()
    ):
        return Line(WARN, "gradebook", f"{url}: in the temp folder, shared by every course on "
                    "this machine and lost with it",
                    'export PTGRADE_GRADEBOOK_URL="sqlite:///$PWD/gradebook.db", or start the '
                    "course with ptgrade init-course DIR")  # fmt: skip
    return Line(OK, "gradebook", url)


def run(solutions: str | None = None, print_line=print) -> int:
    """Print every line as it is known; 1 when grading cannot work here, else 0."""
    lines: list[Line] = []

    def say(*found: Line) -> None:
        for line in found:
            lines.append(line)
            print_line(line.render())

    say(kit(), torch_build())
    found, folder = solutions_found(solutions)
    say(*found)
    line, allowed = confinement(folder)
    say(line)
    if allowed:
        say(worker())
        if folder is not None:
            say(*self_test(folder))
    say(notebook_here(), gradebook())
    failed = [line.topic for line in lines if line.level == FAIL]
    if failed:
        print_line(f"ptgrade doctor: grading cannot work here ({', '.join(failed)}): see fix above")
        return 1
    print_line("ptgrade doctor: grading works here")
    return 0
