"""`ptgrade`: check a notebook (students), grade it (instructors, CI), grade a folder, list hints."""

from __future__ import annotations

import argparse
import math
import os
import select
import sys
from pathlib import Path

from grader.settings import DEVICES, ISOLATIONS, MIN_MEMORY_MB, Limits, Settings

EXIT_OK, EXIT_BELOW_MIN, EXIT_UNUSABLE, EXIT_GRADER_ERROR = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE's


def _at_least(minimum: float, kind=float):
    """An argparse type: a number no smaller than `minimum` (a limit of 0 or -1 s would stop
    every notebook at once, and read as the student's timeout)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is below the least allowed, {minimum:g}")
        return value

    return parse


def _folder(text: str) -> str:
    """An argparse type: an existing folder (a mistyped --solutions must not silently fall
    back to the kit's own solutions)."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return text


def _add_limits(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    group = parser.add_argument_group("limits for the submission's code")
    group.add_argument(
        "--cell-timeout",
        type=_at_least(0.1),
        metavar="S",
        help=f"seconds one cell may run (default: $PTGRADE_CELL_TIMEOUT, else {defaults.cell_timeout})",
    )
    group.add_argument(
        "--timeout",
        type=_at_least(0.1),
        dest="notebook_timeout",
        metavar="S",
        help="seconds the whole notebook may run "
        f"(default: $PTGRADE_TIMEOUT, else {defaults.notebook_timeout})",
    )
    group.add_argument(
        "--memory-mb",
        type=_at_least(MIN_MEMORY_MB, int),
        metavar="MB",
        help="memory the submission may allocate, beyond what the grader itself holds "
        f"(default {defaults.memory_mb})",
    )
    group.add_argument(
        "--output-limit",
        type=_at_least(0, int),
        dest="output_chars",
        metavar="N",
        help=f"characters of printed output kept (default {defaults.output_chars})",
    )
    group.add_argument(
        "--isolation",
        choices=ISOLATIONS,
        help="how the submission's code is confined (default: $PTGRADE_ISOLATION, else auto: "
        "bubblewrap where it works; a weaker one that leaves the file system visible only "
        "where named here)",
    )
    group.add_argument(
        "--device",
        choices=DEVICES,
        help="'cpu' runs the submission on the CPU: any GPU, real or the simulated one of a "
        f"CPU-only grader, is hidden from it (default {defaults.device})",
    )
    parser.add_argument("--assignment", help="the assignment id (default: read from the notebook)")
    parser.add_argument(
        "--solutions",
        type=_folder,
        metavar="DIR",
        help="the instructor's solutions/ folder (default: found automatically)",
    )


def _grade(args: argparse.Namespace, settings: Settings, hidden: bool):
    from grader.notebook.reading import load_submission
    from grader.sandbox.execution import start_warm_worker
    from grader.sandbox.isolation import refuse_weak_confinement

    submission = load_submission(args.notebook, args.assignment)  # bad input: no worker started
    own = args.command == "check"  # a student's own notebook
    if not own:
        refuse_weak_confinement(settings.solutions)
    start_warm_worker()  # it imports torch while this process does too
    from grader.grading import Options, grade

    options = Options.of(settings, hidden=hidden, assignment=args.assignment, own_notebook=own)
    return grade(args.notebook, options, submission)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from grader.reports import text

    result = _grade(args, settings, hidden=False)
    print(text.render(result, color=sys.stdout.isatty()))
    return EXIT_OK if result.score >= result.max_score else EXIT_BELOW_MIN


def cmd_grade(args: argparse.Namespace, settings: Settings) -> int:
    from grader.reports import render

    if args.output:  # a report folder that does not exist yet is made; one that can't be, said
        folder = Path(args.output).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            why = f"{folder} is a file" if folder.is_file() else error.strerror
            print(f"ptgrade: cannot write {args.output}: {why}", file=sys.stderr)
            return EXIT_UNUSABLE
    result, code, reason = _grade_or_say_why(args, settings)
    text = render(result, args.format)
    if args.output:
        try:
            Path(args.output).write_text(text + ("\n" if not text.endswith("\n") else ""), "utf-8")
        except OSError as error:  # the grade is not lost: it goes to stdout instead
            print(text)
            print(f"ptgrade: cannot write {args.output}: {error.strerror}", file=sys.stderr)
            return EXIT_UNUSABLE
    else:
        print(text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(render(result, "markdown") + "\n")
    if reason:
        print(reason, file=sys.stderr)
        return code
    if args.min_score is not None and result.score < args.min_score:
        print(
            f"ptgrade: score {result.score:g} is below --min-score {args.min_score:g}",
            file=sys.stderr,
        )
        return EXIT_BELOW_MIN
    return EXIT_OK


def _grade_or_say_why(args: argparse.Namespace, settings: Settings):
    """(the result, the exit code, the one line for stderr): a notebook that cannot be graded
    still gets its report, which says why (CI then shows the reason where it shows grades)."""
    from grader.errors import GraderError
    from grader.notebook.reading import UnusableNotebook, load_submission
    from grader.result import not_graded
    from grader.safe_text import printable
    from grader.sandbox.isolation import Refused

    notebook = printable(str(args.notebook), newlines=False)
    assignment = args.assignment or ""
    try:
        return _grade(args, settings, hidden=True), EXIT_OK, ""
    except UnusableNotebook as error:
        status, code, reason = "unusable", EXIT_UNUSABLE, str(error)
    except Refused as error:
        status, code, reason = "refused", EXIT_UNUSABLE, str(error)
    except GraderError as error:
        status, code, reason = "grader_error", EXIT_GRADER_ERROR, error.reason
    except Exception as error:  # a bug of the kit's: not a grade, and no traceback
        status, code, reason = "grader_error", EXIT_GRADER_ERROR, internal_error(error)
    if status != "unusable" and not assignment:
        try:  # the notebook itself was fine: its report names its assignment
            assignment = load_submission(args.notebook).assignment.id
        except Exception:
            pass
    result = not_graded(notebook, status, reason, assignment)
    return result, code, f"ptgrade: {reason}"


def internal_error(error: BaseException) -> str:
    """One line for a bug of the kit's: what was raised, and where in the kit."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    where = next((f for f in reversed(frames) if "grader" in Path(f.filename).parts), None)
    place = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return f"the grader failed: {type(error).__name__}: {error}{place}"


def cmd_hints(args: argparse.Namespace, settings: Settings) -> int:
    from grader.checking.hints import HINTS

    for hint in HINTS.values():
        print(f"{hint.id}\n    {hint.text}")
    return EXIT_OK


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    from grader.integrations.course import CourseError, read_nbgrader_config
    from grader.safe_text import printable
    from grader.settings import describe, resolve

    course = Path(args.course or ".")
    try:
        config, why_not = read_nbgrader_config(course)
        if config is not None:
            settings = resolve(args, config=config)
    except (CourseError, ValueError) as error:  # a bad c.PTGrade value, named
        print(f"ptgrade: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    if why_not:
        print(f"ptgrade: {why_not}", file=sys.stderr)
    elif args.course and config is None:
        print(f"ptgrade: no nbgrader_config.py in {course}", file=sys.stderr)
        return EXIT_UNUSABLE
    rows = [
        (name, printable(value, newlines=False), where) for name, value, where in describe(settings)
    ]
    width = max(len(name) for name, _, _ in rows)
    shown = max(len(value) for _, value, _ in rows)
    for name, value, where in rows:
        print(f"{name:<{width}}  {value:<{shown}}  {where}")
    return EXIT_OK


def cmd_batch(args: argparse.Namespace, settings: Settings) -> int:
    from grader.batch.folder import run_batch

    return run_batch(args.submissions, args.output, settings)


def cmd_init_course(args: argparse.Namespace, settings: Settings) -> int:
    from grader.integrations.course import NEXT_STEPS, CourseError, init_course

    folder = Path(args.folder)
    try:
        written = init_course(folder)
    except CourseError as error:
        print(f"ptgrade: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"wrote {len(written)} files into {folder}: {', '.join(written)}")
    print(NEXT_STEPS.format(folder=folder.resolve(), assignment=_course_assignment()))
    return EXIT_OK


DEFAULT_ASSIGNMENT = "the assignment id (default: the packs' default one, docs/packs.md)"


def _course_assignment() -> str:
    """The assignment the course's next steps name: the default one, else a placeholder."""
    from grader.packs import NoDefaultAssignment, default_assignment

    try:
        return default_assignment()
    except NoDefaultAssignment:
        return "ASSIGNMENT"


def _named_assignment(args: argparse.Namespace) -> str | None:
    """--assignment, else the packs' default one; None (said on stderr) where there is none."""
    from grader.packs import NoDefaultAssignment, default_assignment

    try:
        return args.assignment or default_assignment()
    except NoDefaultAssignment as error:
        print(f"ptgrade: {error}", file=sys.stderr)
        return None


def cmd_gradescope_bundle(args: argparse.Namespace, settings: Settings) -> int:
    from grader.integrations.gradescope_bundle import BundleError, write_bundle

    assignment = _named_assignment(args)
    if assignment is None:
        return EXIT_UNUSABLE

    try:
        names = write_bundle(Path(args.out), assignment)
    except BundleError as error:
        print(f"ptgrade: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(
        f"wrote {args.out} ({len(names)} files: setup.sh, run_autograder, the kit, the "
        f"solutions and hidden checks of {assignment}): upload it as the autograder of a "
        "Gradescope programming assignment"
    )
    return EXIT_OK


def cmd_ci_workflow(args: argparse.Namespace, settings: Settings) -> int:
    from grader.integrations.course import CourseError
    from grader.integrations.student_repos import write_workflow

    assignment = _named_assignment(args)
    if assignment is None:
        return EXIT_UNUSABLE

    try:
        write_workflow(Path(args.out), assignment, args.course_repo)
    except CourseError as error:
        print(f"ptgrade: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(
        f"wrote {args.out}: commit it to the assignment's template repository, and store a "
        f"read-only token for {args.course_repo} as its secret PTGRADE_COURSE_TOKEN"
    )
    return EXIT_OK


def cmd_classroom50_bundle(args: argparse.Namespace, settings: Settings) -> int:
    from grader.integrations.course import CourseError
    from grader.integrations.student_repos import write_classroom50_bundle

    assignment = _named_assignment(args)
    if assignment is None:
        return EXIT_UNUSABLE

    try:
        written = write_classroom50_bundle(Path(args.folder), assignment)
    except CourseError as error:
        print(f"ptgrade: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(
        f"wrote {len(written)} files into {args.folder}: put them at "
        "CLASSROOM/autograders/ASSIGNMENT/ in your classroom50 repository (published on "
        "GitHub Pages: it holds no solutions and no hidden checks)"
    )
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from grader.doctor import run

    return run(settings.given("solutions"))  # it says where the folder came from


def _versions() -> str:
    """The kit's version and the torch and Python it runs on, read without importing torch."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return (
        f"ptgrade {installed('ptgrade')} (torch {installed('torch')}, "
        f"Python {platform.python_version()})"
    )


def build_parser() -> argparse.ArgumentParser:
    from grader.reports import FORMATS

    parser = argparse.ArgumentParser(
        prog="ptgrade",
        description="Grade PyTorch workflow notebooks against the reference solutions.",
    )
    parser.add_argument("--version", action="version", version=_versions())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="students: check your notebook, with hints")
    check.add_argument("notebook")
    _add_limits(check)
    check.set_defaults(run=cmd_check)

    grade = commands.add_parser("grade", help="instructors and CI: grade one notebook")
    grade.add_argument("notebook")
    grade.add_argument("--format", choices=FORMATS, default="text")
    grade.add_argument("--output", metavar="FILE", help="write the report here, not to stdout")
    grade.add_argument(
        "--min-score", type=float, metavar="N", help="exit 1 when the score is below N"
    )
    _add_limits(grade)
    grade.set_defaults(run=cmd_grade)

    batch = commands.add_parser("batch", help="grade a whole folder of submissions")
    batch.add_argument("submissions", help="nbgrader submitted/ folder, notebooks, or repos")
    batch.add_argument("--output", required=True, metavar="DIR")
    batch.add_argument(
        "--jobs",
        type=_at_least(1, int),
        metavar="N",
        help="parallel workers (default: one per CPU)",
    )
    batch.add_argument(
        "--scheduler", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://host:8786"
    )
    _add_limits(batch)
    batch.set_defaults(run=cmd_batch)

    init = commands.add_parser(
        "init-course", help="instructors: a ready nbgrader course folder from this kit"
    )
    init.add_argument("folder", help="a new (or empty) folder for the course")
    init.set_defaults(run=cmd_init_course)

    bundle = commands.add_parser(
        "gradescope-bundle", help="instructors: the autograder zip to upload to Gradescope"
    )
    bundle.add_argument("out", metavar="OUT.zip")
    bundle.add_argument("--assignment", help=DEFAULT_ASSIGNMENT)
    bundle.set_defaults(run=cmd_gradescope_bundle)

    workflow = commands.add_parser(
        "ci-workflow", help="instructors: the GitHub Actions workflow for student repositories"
    )
    workflow.add_argument("out", nargs="?", default=".github/workflows/ptgrade.yml")
    workflow.add_argument("--assignment", help=DEFAULT_ASSIGNMENT)
    workflow.add_argument(
        "--course-repo",
        default="my-org/my-course-private",
        metavar="OWNER/NAME",
        help="the private repository holding the kit, solutions and hidden checks",
    )
    workflow.set_defaults(run=cmd_ci_workflow)

    classroom50 = commands.add_parser(
        "classroom50-bundle", help="instructors: a Classroom 50 autograder folder"
    )
    classroom50.add_argument("folder")
    classroom50.add_argument("--assignment", help=DEFAULT_ASSIGNMENT)
    classroom50.set_defaults(run=cmd_classroom50_bundle)

    doctor = commands.add_parser(
        "doctor", help="can this machine grade? each problem with what to do about it"
    )
    doctor.add_argument("--solutions", type=_folder, metavar="DIR", help="as for grade")
    doctor.add_argument("--isolation", choices=ISOLATIONS)
    doctor.set_defaults(run=cmd_doctor)

    settings = commands.add_parser(
        "settings", help="each setting, its value here and where it came from"
    )
    _add_limits(settings)
    settings.add_argument("--jobs", type=_at_least(1, int), metavar="N")
    settings.add_argument("--scheduler", metavar="ADDRESS")
    settings.add_argument(
        "--course",
        type=_folder,
        metavar="DIR",
        help="the nbgrader course whose nbgrader_config.py (c.PTGrade.*) to read "
        "(default: this folder's, if any)",
    )
    settings.set_defaults(run=cmd_settings)

    hints = commands.add_parser("hints", help="list the catalogue of known mistakes")
    hints.set_defaults(run=cmd_hints)
    return parser


def main(argv: list[str] | None = None) -> int:
    from grader.errors import GraderError
    from grader.notebook.reading import UnusableNotebook
    from grader.sandbox.isolation import Refused
    from grader.settings import resolve

    args = build_parser().parse_args(argv)
    try:
        settings = resolve(args)
    except ValueError as error:  # a malformed $PTGRADE_... value, named
        print(f"ptgrade: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    settings.export()  # for this process's pool and their workers
    try:
        return args.run(args, settings)
    except (UnusableNotebook, Refused) as error:
        print(f"ptgrade: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    except GraderError as error:  # the kit's own failure: not a grade, and no traceback
        print(error, file=sys.stderr)
        return EXIT_GRADER_ERROR
    except KeyboardInterrupt:
        print("ptgrade: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_closed():
            print("ptgrade: the grader failed: a pipe of its own broke", file=sys.stderr)
            return EXIT_GRADER_ERROR
        # The reader went away (`ptgrade hints | head`): no traceback, and the exit status of
        # a process that SIGPIPE ended, as `yes | head` gives. Python's own flush at exit would
        # fail again on the closed pipe, so stdout goes nowhere from here.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as error:  # a bug of the kit's: one line and its own exit code
        print(f"ptgrade: {internal_error(error)}", file=sys.stderr)
        return EXIT_GRADER_ERROR


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (poll reports an error on its end)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLERR)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # stdout replaced, or no poll here
        return False


if __name__ == "__main__":
    sys.exit(main())
