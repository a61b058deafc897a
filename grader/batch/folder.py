"""Grade a whole folder: find the submissions, grade what is new, write each result at once."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import os
import signal
import stat
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader.batch.cluster import ClusterUnreachable, grade_on_cluster
from grader.batch.task import Job, grade_one, grader_error, unusable, warm_up
from grader.packs import all_assignments
from grader.safe_text import csv_cell, file_name, printable
from grader.settings import Limits, Settings

EXIT_GRADER_ERROR = 3  # as `ptgrade grade`: some submission has no grade through our fault
SKIP_DIRS = {".git", ".ipynb_checkpoints", "__pycache__", ".venv", "feedback", "autograded"}


@dataclass(frozen=True)
class Passed:
    """Something among the submissions that is not graded: a link, a FIFO, a folder."""

    path: str  # under the submissions folder
    why: str


def discover(root: Path) -> list[Job]:
    """nbgrader's submitted/<student>/<assignment>/, a folder of notebooks, or of student repos."""
    return sort_out(root)[0]


def sort_out(root: Path) -> tuple[list[Job], list[Job], list[Passed]]:
    """(the notebooks to grade, the ones nbgrader would not grade either, what is not a
    notebook file at all): one walk of `root`."""
    found, passed = _notebooks(root)
    extra = beside_the_assignment(found)
    return [job for job in found if job not in extra], extra, passed


def beside_the_assignment(jobs: list[Job]) -> list[Job]:
    """Other notebooks in an nbgrader assignment folder that holds the assignment's own
    notebook (`Untitled.ipynb`, a student's spare copy): nbgrader grades only that one, and so
    does the kit. A folder without it (the student renamed it) keeps all of its notebooks."""
    nbgrader = [job for job in jobs if _nbgrader_folder(job)]
    own = {job.notebook.parent for job in nbgrader if job.notebook.stem == _assignment(job)}
    return [
        job
        for job in nbgrader
        if job.notebook.parent in own and job.notebook.stem != _assignment(job)
    ]


def _assignment(job: Job) -> str:
    return job.key.split("/")[1]


def _nbgrader_folder(job: Job) -> bool:
    parts = job.key.split("/")
    return len(parts) == 3 and parts[1] in all_assignments()


def _notebooks(root: Path) -> tuple[list[Job], list[Passed]]:
    if root.is_file():  # named on the command line: followed, even as a link
        return [Job(root.stem, root.stem, root)], []
    paths, passed = _walk(root)
    jobs = []
    for path in sorted(paths):
        parts = path.relative_to(root).parts
        if len(parts) >= 3 and parts[1] in all_assignments():
            student = parts[0]  # nbgrader: submitted/<student>/<assignment>/<notebook>
        elif len(parts) >= 2 and parts[0] not in all_assignments():
            student = parts[0]  # one folder (a cloned repo) per student
        else:
            student = path.stem  # notebooks named after their student
        jobs.append(Job(path.relative_to(root).with_suffix("").as_posix(), student, path))
    return jobs, passed


def _walk(root: Path) -> tuple[list[Path], list[Passed]]:
    """The regular files named *.ipynb under `root`, and what is passed over: a link is never
    followed (a student's link to the solution notebook, or to another student's folder), nor
    is anything but a regular file read (a FIFO would block the batch)."""
    files, passed = [], []
    for folder, folders, names in os.walk(root):  # links to folders are listed, not entered
        here = Path(folder)
        folders[:] = sorted(name for name in folders if name not in SKIP_DIRS)
        for name in [*folders, *names]:
            path = here / name
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue  # gone since the folder was listed
            if stat.S_ISLNK(mode):
                if not (name.endswith(".ipynb") or path.is_dir()):
                    continue  # a link to a data file: nothing the batch would have read
                why = "a symbolic link"
            elif not name.endswith(".ipynb"):
                continue
            elif stat.S_ISREG(mode):
                files.append(path)
                continue
            else:
                why = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            passed.append(Passed(path.relative_to(root).as_posix(), why))
    return files, sorted(passed, key=lambda p: p.path)


def grader_fingerprint() -> str:
    """Changes whenever the grader, the solutions or the reference models change."""
    digest = hashlib.sha256()
    from grader.notebook.reading import find_solutions_dir

    package = Path(__file__).resolve().parents[1]
    solutions = find_solutions_dir() or package.parent / "solutions"
    roots = [package, solutions, package.parent / "reference_models"]
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".ipynb", ".json", ".ini"):
                digest.update(path.relative_to(root.parent).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    # backslashreplace: a lone surrogate (from a file name) must not cost the file.
    temporary.write_text(text, encoding="utf-8", errors="backslashreplace")
    os.replace(temporary, path)


def _pool_initializer(limits: Limits, warm: bool) -> None:
    # Ctrl-C reaches the whole process group: only the batch's own process answers it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not warm:
        return
    try:
        warm_up(limits)
    except Exception:  # a failed warm-up must not stop the pool: the first grade will tell
        pass


def run_batch(submissions: str, output_folder: str, settings: Settings) -> int:
    """Grade everything under `submissions` into `output_folder`; the exit code."""
    root = Path(submissions)
    limits = settings.limits
    if not root.exists():
        print(f"ptgrade: {printable(str(root))}: no such file or folder", file=sys.stderr)
        return 2
    from grader.sandbox.isolation import Refused, refuse_weak_confinement

    settings.export()  # --solutions, for this process and its pool (Dask: set it there)

    try:
        if not settings.scheduler:  # a cluster's workers judge their own (a grader_error row each)
            refuse_weak_confinement(settings.solutions)
    except Refused as error:
        print(f"ptgrade: {error}; nothing was graded", file=sys.stderr)
        return 2
    output = Path(output_folder)
    try:
        (output / "results").mkdir(parents=True, exist_ok=True)
        (output / "feedback").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(
            f"ptgrade: cannot write results under {printable(str(output))}: {error.strerror}",
            file=sys.stderr,
        )
        return 2
    jobs, skipped, passed = sort_out(root)
    _say_not_graded(skipped, passed)
    if not jobs:
        print(f"ptgrade: no notebooks found under {printable(str(root))}", file=sys.stderr)
        return 2
    # The limits are part of the grade: a longer --timeout may turn a timeout into a score.
    fingerprint = hashlib.sha256(f"{grader_fingerprint()}{limits!r}".encode()).hexdigest()[:16]
    todo, results, unreadable = _what_to_grade(output, jobs, fingerprint)

    progress = Progress(len(jobs), already=len(results))
    not_stored: list[str] = []

    def keep(job: Job, outcome: dict) -> None:
        problem = _store(output, job, outcome)
        if problem:
            not_stored.append(f"{printable(job.key)} ({problem})")
        results[job.key] = outcome
        progress.update(job, outcome)

    for job, outcome in unreadable:
        keep(job, outcome)
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    finished = None
    try:
        if settings.scheduler:
            finished = grade_on_cluster(settings.scheduler, todo, limits)
        else:
            finished = grade_locally(todo, limits, settings.jobs or os.cpu_count() or 1)
        for job, outcome in finished:
            keep(job, outcome)
    except ClusterUnreachable as error:
        progress.close()
        print(f"ptgrade: {error}; nothing was graded", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if finished is not None:
            finished.close()  # stops the workers now
        progress.close()
        left = len(jobs) - len(results)
        print(
            f"ptgrade: interrupted: {len(results)} of {len(jobs)} results are saved in "
            f"{printable(str(output / 'results'))}; run the same command again to grade the "
            f"other {left}.",
            file=sys.stderr,
        )
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    progress.close()
    print(_score_table(jobs, results))
    _say_grader_errors(jobs, results)
    try:
        _write_summary(output, jobs, results)
    except OSError as error:
        print(
            f"ptgrade: cannot write grades.csv under {printable(str(output))}: "
            f"{error.strerror or error}; the scores are above",
            file=sys.stderr,
        )
        return 2
    lost = [job.key for job in jobs if results[job.key].get("status") == "grader_error"]
    if lost:
        shown = ", ".join(printable(key, newlines=False) for key in lost[:3])
        print(
            f"ptgrade: {len(lost)} submission{'s' * (len(lost) > 1)} could not be graded "
            f"through the grader's own failure ({shown}{' ...' if len(lost) > 3 else ''}): "
            "their score is empty in grades.csv; run the same command again to grade them",
            file=sys.stderr,
        )
    if not_stored:
        print(
            f"ptgrade: {len(not_stored)} result{'s' * (len(not_stored) > 1)} could not be "
            f"stored under {printable(str(output))}: {'; '.join(not_stored[:3])}"
            f"{' ...' if len(not_stored) > 3 else ''}; grades.csv holds every score",
            file=sys.stderr,
        )
        return 2
    return EXIT_GRADER_ERROR if lost else 0


def _say_grader_errors(jobs: list[Job], results: dict[str, dict]) -> None:
    """The kit's own failures, with their reasons: a 0.0 in grades.csv that is no grade."""
    errors = [
        results[j.key] for j in jobs if results.get(j.key, {}).get("status") == "grader_error"
    ]
    if not errors:
        return
    reasons = list(
        dict.fromkeys(printable(str(e.get("error", "")), newlines=False) for e in errors)
    )
    print(
        f"ptgrade: ERROR: {len(errors)} of {len(jobs)} submissions could not be graded, by the "
        f"kit's own failure, not the students' (grader_error, 0.0 in grades.csv): "
        f"{'; '.join(reasons[:3])}{' ...' if len(reasons) > 3 else ''}",
        file=sys.stderr,
    )


def _say_not_graded(skipped: list[Job], passed: list[Passed]) -> None:
    if skipped:
        shown = ", ".join(f"{printable(job.key)}.ipynb" for job in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        print(
            f"ptgrade: not graded, as nbgrader does not grade them either: {len(skipped)} other "
            f"notebook{'s' * (len(skipped) > 1)} in assignment folders that hold the "
            f"assignment's own: {shown}{more}",
            file=sys.stderr,
        )
    if passed:
        shown = ", ".join(f"{printable(p.path)} ({p.why})" for p in passed[:5])
        more = f" and {len(passed) - 5} more" if len(passed) > 5 else ""
        print(
            f"ptgrade: not graded, not being notebook files: {shown}{more}",
            file=sys.stderr,
        )


def _what_to_grade(
    output: Path, jobs: list[Job], fingerprint: str
) -> tuple[list[tuple[Job, str]], dict[str, dict], list[tuple[Job, dict]]]:
    """(what to grade with its hash, the results still valid from an earlier run, the
    submissions that cannot be read, each with its unusable outcome)."""
    todo, results, unreadable = [], {}, []
    for job in jobs:
        try:
            content = _digest(job.notebook)
        except OSError as error:
            why = f"{printable(job.key)}.ipynb: cannot be read ({error.strerror or error})"
            unreadable.append((job, unusable(why)))
            continue
        previous = _previous_result(output, job)
        # A grader error is no result: it is tried again, whatever the hash says.
        if previous.get("hash") == f"{content}-{fingerprint}" and previous.get("status") != (
            "grader_error"
        ):
            results[job.key] = previous
            continue
        todo.append((job, f"{content}-{fingerprint}"))
    return todo, results, unreadable


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _previous_result(output: Path, job: Job) -> dict:
    """The result an earlier run stored for `job`; {} where there is none readable."""
    try:
        previous = json.loads(_result_path(output, job).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return previous if isinstance(previous, dict) else {}


def _result_path(output: Path, job: Job) -> Path:
    return output / "results" / f"{file_name(job.key)}.json"


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a batch the way Ctrl-C does


def grade_locally(
    todo: list[tuple[Job, str]], limits: Limits, workers: int, grade=grade_one, warm: bool = True
) -> Iterator[tuple[Job, dict]]:
    """Grade on a pool of warm processes; yield (job, outcome) as each is known.

    At most `workers` submissions are in flight, so when a pool process dies we know which
    submissions it may have taken with it. Those are graded again one at a time, alone: the one
    that kills its process then is recorded as a grader_error, the others get their grade.
    """
    queue = deque((job, digest, False) for job, digest in todo)  # (job, digest, suspect)
    workers = max(1, min(workers, len(todo)))
    while queue:
        with _pool(workers, limits, warm) as pool:
            pending: dict[Future, tuple[Job, str, bool]] = {}
            try:
                while queue or pending:
                    while queue and len(pending) < workers:
                        if queue[0][2] and pending:
                            break  # a suspect runs alone
                        job, digest, suspect = entry = queue.popleft()
                        with _sigint_ignored():  # inherited by the pool processes it starts
                            future = pool.submit(grade, str(job.notebook), limits)
                        pending[future] = entry
                        if suspect:
                            break
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    broken = False
                    for future in done:
                        job, digest, suspect = pending.pop(future)
                        try:
                            outcome = future.result()
                        except BrokenProcessPool:
                            broken = True
                            if not suspect:
                                queue.append((job, digest, True))
                                continue
                            outcome = grader_error("the grading process died on this submission")
                        except Exception as error:  # e.g. the outcome could not be sent back
                            outcome = grader_error(f"{type(error).__name__}: {error}")
                        outcome["hash"] = digest
                        yield job, outcome
                    if broken:
                        for job, digest, _ in pending.values():
                            queue.append((job, digest, True))
                        pending.clear()
                        break  # a new pool for what is left
            except BaseException:
                _stop(pool)
                raise


@contextmanager
def _sigint_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _pool(workers: int, limits: Limits, warm: bool) -> ProcessPoolExecutor:
    # spawn: the pool's processes start clean (no torch threads inherited through fork).
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_pool_initializer,
        initargs=(limits, warm),
    )


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop at once: the pool's processes are killed (their warm workers die with them)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _store(output: Path, job: Job, outcome: dict) -> str | None:
    """Write the outcome's result and feedback files; why they could not be, or None."""
    outcome.update(submission=printable(job.key), student=printable(job.student))
    feedback = outcome.pop("feedback_html", None)
    try:
        if feedback:
            write_atomic(output / "feedback" / f"{file_name(job.key)}.html", feedback)
        write_atomic(_result_path(output, job), json.dumps(outcome, indent=2))
    except OSError as error:  # a full disk, a folder in the way: this result only
        return error.strerror or str(error)
    return None


class Progress:
    """One status line on stderr: done, failed, and the time left."""

    def __init__(self, total: int, already: int) -> None:
        self.total, self.done, self.failed = total, already, 0
        self.started = time.monotonic()
        self.graded_now = 0
        if already:
            print(f"{already} of {total} already graded and unchanged: skipped", file=sys.stderr)

    def update(self, job: Job, outcome: dict) -> None:
        self.done += 1
        self.graded_now += 1
        if outcome.get("status") != "graded":
            self.failed += 1
        elapsed = time.monotonic() - self.started
        left = (self.total - self.done) * elapsed / self.graded_now
        score = outcome.get("score")
        line = (
            f"[{self.done}/{self.total}] failed {self.failed}, about {left:.0f}s left"
            f" | {printable(job.key, newlines=False)}: {outcome.get('status')}"
            + (f" {score:g}/{outcome.get('max_score'):g}" if outcome.get("max_score") else "")
        )
        end = "\n" if not sys.stderr.isatty() or self.done == self.total else "\r"
        print(line.ljust(100), end=end, file=sys.stderr, flush=True)

    def close(self) -> None:
        if sys.stderr.isatty():
            print(file=sys.stderr)


def _write_summary(output: Path, jobs: list[Job], results: dict[str, dict]) -> None:
    section_ids: list[str] = []
    for job in jobs:
        for section in results[job.key].get("sections", []):
            if section["id"] not in section_ids:
                section_ids.append(section["id"])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "student",
            "submission",
            "assignment",
            "status",
            "score",
            "max_score",
            *section_ids,
            "confinement",
        ]
    )
    for job in one_per_student(jobs, results):
        result = results[job.key]
        by_section = {s["id"]: s["score"] for s in result.get("sections", [])}
        writer.writerow(
            [
                csv_cell(job.student),
                csv_cell(job.key),
                result.get("assignment", ""),
                result["status"],
                "" if result.get("score") is None else result["score"],
                result.get("max_score") or "",
                *[by_section.get(s, "") for s in section_ids],
                _confinement(result),
            ]
        )
    write_atomic(output / "grades.csv", buffer.getvalue())
    write_atomic(output / "summary.html", summary_html(jobs, results))


def one_per_student(jobs: list[Job], results: dict[str, dict]) -> list[Job]:
    """grades.csv's rows: one per student and assignment where the layout names the student (a
    folder per student, nbgrader's or a repository's), however many notebooks the folder held.
    The one kept is the assignment's own notebook, else the best graded one; a notebook that is
    no assignment of the kit's (a student's scratch file) gives a row only to a student who has
    nothing else. Every notebook keeps its own results/ file."""
    groups: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        if "/" not in job.key:  # notebooks named after their student: one each already
            groups[(job.key, "")] = [job]
            continue
        groups.setdefault((job.student, results[job.key].get("assignment", "")), []).append(job)
    graded_students = {student for (student, assignment) in groups if assignment}
    kept = []
    for (student, assignment), group in groups.items():
        if not assignment and student in graded_students and "/" in group[0].key:
            continue
        kept.append(min(group, key=lambda job: _preference(job, results[job.key], assignment)))
    order = {job.key: index for index, job in enumerate(jobs)}
    return sorted(kept, key=lambda job: order[job.key])


def _preference(job: Job, result: dict, assignment: str) -> tuple:
    score = result.get("score")
    return (
        job.notebook.stem != assignment,  # the assignment's own notebook first
        result.get("status") not in ("graded", "timeout", "crashed"),
        -(score if isinstance(score, (int, float)) else -1),
    )


def _confinement(result: dict) -> str:
    """What the result's notebook ran under, in words ("" where it never ran)."""
    found = result.get("execution", {}).get("confinement")
    return str(found.get("description", "")) if isinstance(found, dict) else ""


def confinements(results: dict[str, dict]) -> str:
    """Each confinement the batch's notebooks ran under, with how many ran under it."""
    counts = Counter(_confinement(r) for r in results.values() if _confinement(r))
    return "; ".join(f"{kind} ({count})" for kind, count in counts.most_common()) or "none ran"


def frequent_mistakes(results: dict[str, dict]) -> Counter:
    counts: Counter = Counter()
    for result in results.values():
        hints = {
            check["hint"]
            for section in result.get("sections", [])
            for check in section["checks"]
            if not check["passed"] and check["hint"]
        }
        counts.update(hints)
    return counts


def summary_html(jobs: list[Job], results: dict[str, dict]) -> str:
    from html import escape

    from grader.checking.hints import hint_text
    from grader.reports.svg import histogram

    scores = [r["score"] / r["max_score"] * 100 for r in results.values() if r.get("max_score")]
    picture = ""
    if scores:
        edges = range(0, 105, 5)
        picture = histogram(scores, edges, "score (%)", "students", "score histogram")
    rows = "".join(
        f"<tr><td>{escape(printable(job.student))}</td><td>{escape(printable(job.key))}</td>"
        f"<td>{escape(results[job.key]['status'])}</td>"
        f"<td>{_score_text(results[job.key])}</td></tr>"
        for job in jobs
    )
    mistakes = "".join(
        f"<tr><td><code>{escape(hint)}</code></td><td>{count}</td><td>{escape(hint_text(hint))}</td></tr>"
        for hint, count in frequent_mistakes(results).most_common(15)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ptgrade summary</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;border-bottom:1px solid #ddd}"
        "</style></head><body>"
        f"<h1>Course summary: {len(jobs)} submissions</h1>"
        f"<p>Ran under: {escape(confinements(results))}</p>{picture}"
        "<h2>Most frequent mistakes</h2><table><tr><th>hint</th><th>students</th><th>advice</th></tr>"
        f"{mistakes}</table><h2>Scores</h2><table><tr><th>student</th><th>submission</th>"
        f"<th>status</th><th>score</th></tr>{rows}</table></body></html>"
    )


def _score_text(result: dict) -> str:
    if result.get("score") is None:
        return "none"
    return f"{result['score']:g} / {result.get('max_score') or 0:g}"


def _score_table(jobs: list[Job], results: dict[str, dict]) -> str:
    keys = {job.key: printable(job.key, newlines=False) for job in jobs}
    width = max(len(key) for key in keys.values())
    lines = [f"ran under: {confinements(results)}", f"{'submission'.ljust(width)}  score"]
    for job in jobs:
        result, key = results[job.key], keys[job.key].ljust(width)
        if result.get("max_score"):
            lines.append(f"{key}  {result['score']:g} / {result['max_score']:g}")
        else:
            error = printable(result.get("error", ""), newlines=False)
            lines.append(f"{key}  {result['status']}: {error}")
    return "\n".join(lines)
