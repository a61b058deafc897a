"""Every setting of the kit in one place: the command line's value, else the environment's, else
the course's nbgrader config (`c.PTGrade.cell_timeout = 30`), else the default; `ptgrade settings`
shows each one and where it came from.

The order: what this run was told (ptgrade's options, then $PTGRADE_*) beats what the course
keeps (its nbgrader_config.py, and nbgrader's `--PTGrade.x=...`, which traitlets merges into the
same config), which beats the kit's default. The nbgrader config holds only the settings of a
submission's grading (COURSE_SETTINGS); `config_values` reads and checks them, naming a bad one.

The environment is read here and only here (`tests/test_settings.py` holds every other module to
it). It also carries a setting to the processes the kit starts (a batch's pool, a Dask worker,
nbgrader's kernel): `export` writes what the command line gave for them to inherit.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# Flags the kit sets for processes it starts; no user sets them, so they are no settings.
SANDBOX_ENV = "PTGRADE_SANDBOX"  # "1" in the sandbox: a notebook graded must not grade itself
VERDICTS_ENV = "PTGRADE_VERDICTS_OUTSIDE"  # "1": the kit's nbgrader step gives the verdicts
# The packs' rehearsals (Pack.rehearsal: a JSON list of sources) for the warm worker, handed to
# it at its start (grader/sandbox/execution.py) and removed before it forks (runner.prepare).
REHEARSALS_ENV = "PTGRADE_REHEARSALS"


def seconds_from_env(name: str, default: float, environ: Mapping[str, str] | None = None) -> float:
    """A time limit from the environment, or a clear error naming the variable (it is the
    instructor's setting: `60s` or `-1` must not surface as a bare ValueError)."""
    text = (os.environ if environ is None else environ).get(name)
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < math.inf:  # nan and inf fail too
        raise ValueError(f"${name} must be a number of seconds above 0, not {text!r}")
    return seconds


@dataclass(frozen=True)
class Limits:
    """What the submission's code may spend: the settings the sandbox runs it under."""

    cell_timeout: float = 60.0
    notebook_timeout: float = 300.0
    memory_mb: int = 4096
    output_chars: int = 200_000
    device: str = "auto"  # "cpu" hides any GPU from the submission
    # Without CUDA, device-agnostic assignments run on a simulated GPU (grader/sandbox/child/simulated_gpu.py)
    # so that device mistakes fail as they would on a real one.
    simulate_gpu: bool = True


@dataclass(frozen=True)
class Setting:
    """One setting: its default, the option and the environment variable that may set it."""

    name: str
    about: str
    option: str | None = None  # where `ptgrade` takes it: `--cell-timeout`
    env: str | None = None  # where the environment gives it: `PTGRADE_CELL_TIMEOUT`
    parse: Callable[[str, str], Any] = lambda env, text: text  # (variable, its text) -> value
    # A check of the value a course's nbgrader config gives it (`c.PTGrade.<name>`): returns it
    # as the setting's type, or raises ValueError saying what it must be. None: no such setting.
    course: Callable[[Any], Any] | None = None


def _seconds(env: str, text: str) -> float:
    return seconds_from_env(env, 0.0, {env: text})


def _scale(env: str, text: str) -> int:
    try:
        return max(1, int(text))
    except ValueError:  # as before: a malformed scale is the default one
        return 100


def _flag(env: str, text: str) -> bool:
    return bool(text)  # as before: any non-empty value turns it on


# Python, torch and the cells' own tensors need some room before a limit means anything.
MIN_MEMORY_MB = 64
DEVICES = ("auto", "cpu")
ISOLATIONS = ("auto", "bwrap", "unshare", "none")


def _number(kind: type, least: float, what: str, above: bool = False) -> Callable[[Any], Any]:
    """A check of a number from the config: a Python number, or its text (nbgrader's command
    line gives `--PTGrade.cell_timeout=30` as text)."""

    def check(value: Any) -> Any:
        number = None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = kind(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        if (
            number is None
            or not math.isfinite(number)
            or number < least
            or (above and number <= least)
            or (kind is int and number != int(number))
        ):
            raise ValueError(what)
        return kind(number)

    return check


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], Any]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"one of {', '.join(choices)}")
        return str(value)

    return check


def _a_folder(value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not Path(value).is_dir():
        raise ValueError("an existing folder")
    return str(Path(value).resolve())


_above_zero = _number(float, 0.0, "a number of seconds above 0", above=True)


SETTINGS = (
    Setting(
        "cell_timeout",
        "seconds one cell may run",
        "--cell-timeout",
        "PTGRADE_CELL_TIMEOUT",
        _seconds,
        _above_zero,
    ),  # fmt: skip
    Setting(
        "notebook_timeout",
        "seconds the whole notebook may run",
        "--timeout",
        "PTGRADE_TIMEOUT",
        _seconds,
        _above_zero,
    ),  # fmt: skip
    Setting(
        "memory_mb",
        "memory the submission may allocate (MB)",
        "--memory-mb",
        course=_number(int, MIN_MEMORY_MB, f"a whole number of MB, at least {MIN_MEMORY_MB}"),
    ),  # fmt: skip
    Setting(
        "output_chars",
        "characters of printed output kept",
        "--output-limit",
        course=_number(int, 0, "a whole number, at least 0"),
    ),  # fmt: skip
    Setting(
        "device",
        "auto, or cpu: hide any GPU from the submission",
        "--device",
        course=_one_of(DEVICES),
    ),  # fmt: skip
    Setting(
        "isolation",
        "how the submission's code is confined",
        "--isolation",
        "PTGRADE_ISOLATION",
        course=_one_of(ISOLATIONS),
    ),  # fmt: skip
    Setting(
        "solutions",
        "the instructor's solutions/ folder",
        "--solutions",
        "PTGRADE_SOLUTIONS",
        course=_a_folder,
    ),  # fmt: skip
    Setting("jobs", "a batch's parallel workers (0: one per CPU)", "--jobs"),
    Setting("scheduler", "a batch's Dask scheduler", "--scheduler"),
    Setting(
        "check_notebook", "the notebook check() grades from a notebook", None, "PTGRADE_NOTEBOOK"
    ),  # fmt: skip
    Setting(
        "gradebook_url",
        "nbgrader's gradebook (the course's nbgrader_config.py)",
        None,
        "PTGRADE_GRADEBOOK_URL",
    ),  # fmt: skip
    Setting(
        "classroom50_scale",
        "Classroom 50 points per point",
        None,
        "PTGRADE_CLASSROOM50_SCALE",
        _scale,
    ),  # fmt: skip
    Setting("debug", "the sandbox's tracebacks on stderr", None, "PTGRADE_DEBUG", _flag),
    Setting(
        "packs",
        "more assignment packs (module:attribute, comma-separated; docs/packs.md)",
        None,
        "PTGRADE_PACKS",
    ),  # fmt: skip
)
BY_NAME = {setting.name: setting for setting in SETTINGS}
# The section of nbgrader's config that holds the kit's settings: `c.PTGrade.cell_timeout = 30`.
SECTION = "PTGrade"
COURSE_SETTINGS = tuple(setting.name for setting in SETTINGS if setting.course)
# What `export` wrote from a course's config: the kit's own, not the user's environment, so a
# later run in the same process (nbgrader's formgrader) reads the config afresh.
_EXPORTED: dict[str, str] = {}


@dataclass(frozen=True)
class Settings:
    """The settings of one run of the kit, and where each came from."""

    cell_timeout: float = Limits.cell_timeout
    notebook_timeout: float = Limits.notebook_timeout
    memory_mb: int = Limits.memory_mb
    output_chars: int = Limits.output_chars
    device: str = Limits.device
    isolation: str = "auto"  # bubblewrap where it works (grader/sandbox/isolation.py)
    solutions: str | None = None  # None: found (notebook.find_solutions_dir)
    jobs: int = 0
    scheduler: str | None = None
    check_notebook: str | None = None  # the notebook check() grades, where it cannot tell
    gradebook_url: str | None = None  # None: the course's nbgrader_config.py decides
    classroom50_scale: int = 100
    debug: bool = False
    packs: str | None = None  # None: the built-in and installed packs only (grader/packs)
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def limits(self) -> Limits:
        return Limits(
            cell_timeout=self.cell_timeout,
            notebook_timeout=self.notebook_timeout,
            memory_mb=self.memory_mb,
            output_chars=self.output_chars,
            device=self.device,
        )

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")

    def given(self, name: str) -> Any:
        """The setting where the command line gave it, else None (doctor tells the two apart)."""
        return getattr(self, name) if self.source(name) == "command line" else None

    def export(self) -> None:
        """Write what the command line or the course's nbgrader config set for the processes
        the kit starts (a batch's pool, a Dask worker on this machine, the warm worker,
        nbgrader's kernel) to find in their environment."""
        for name in ("isolation", "solutions"):
            where = self.source(name)
            if where != "command line" and not where.startswith("nbgrader config"):
                continue
            value = getattr(self, name)
            value = str(Path(value).resolve()) if name == "solutions" else value
            os.environ[BY_NAME[name].env] = value
            if where.startswith("nbgrader config"):
                _EXPORTED[BY_NAME[name].env] = value


def resolve(
    options: object = None, environ: Mapping[str, str] | None = None, config: Any = None
) -> Settings:
    """The settings: each from `options` (parsed command-line options; None where not given),
    else from the environment, else from `config` (a course's nbgrader config: config_values),
    else the default. A malformed value raises ValueError naming its variable or setting."""
    if environ is None:
        environ = {k: v for k, v in os.environ.items() if _EXPORTED.get(k) != v}
    course = config_values(config) if config is not None else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        given = getattr(options, setting.name, None) if options is not None else None
        if given is not None:
            values[setting.name], sources[setting.name] = given, "command line"
        elif setting.env and environ.get(setting.env):
            text = environ[setting.env]
            values[setting.name] = setting.parse(setting.env, text)
            sources[setting.name] = f"${setting.env}"
        elif setting.name in course:
            values[setting.name], sources[setting.name] = course[setting.name]
    return Settings(**values, sources=sources)


def config_values(config: Mapping) -> dict[str, tuple[Any, str]]:
    """The settings a course's nbgrader config gives (a traitlets Config: nbgrader_config.py
    and nbgrader's `--PTGrade.x=...` merged), as name -> (value, where it came from): each
    `c.PTGrade.<setting>`, and the course's source folder as the solutions where
    `c.PTGrade.solutions` is not set (its hidden checks and points). A value of the wrong kind,
    or a name that is no setting of the kit, raises ValueError naming it."""
    found: dict[str, tuple[Any, str]] = {}
    course = config.get("CourseDirectory") or {}
    for name, value in (config.get(SECTION) or {}).items():
        where = f"c.{SECTION}.{name}"
        setting = BY_NAME.get(name)
        if name == "solutions" and isinstance(value, str) and course.get("root"):
            value = os.path.join(course["root"], value)  # a relative one is the course's
        if setting is None or setting.course is None:
            close = difflib.get_close_matches(name, COURSE_SETTINGS, n=1)
            known = f"did you mean c.{SECTION}.{close[0]}?" if close else "its settings there: "
            known += "" if close else ", ".join(COURSE_SETTINGS)
            raise ValueError(f"{where} is not a setting of ptgrade's nbgrader config ({known})")
        try:
            found[name] = (setting.course(value), f"nbgrader config ({where})")
        except ValueError as error:
            shown = repr(str(value)) if isinstance(value, str) else repr(value)
            raise ValueError(f"{where} must be {error}, not {shown}") from None
    if "solutions" not in found and course.get("root"):
        source = Path(course["root"], course.get("source_directory", "source"))
        found["solutions"] = (str(source), "nbgrader config (c.CourseDirectory.source_directory)")
    return found


def from_environment(name: str) -> Any:
    """One setting as the environment (else the default) gives it: for code that runs
    without a command line (a notebook's check(), nbgrader's kernel, the sandbox). Only this
    setting's variable is read, so a malformed other one cannot stop it."""
    setting, text = BY_NAME[name], environment_variable(name)
    return setting.parse(setting.env, text) if text else getattr(Settings(), name)


def environment_variable(name: str) -> str | None:
    """The raw text the environment gives the setting `name`, where a caller must tell
    "unset" from "set to the default" (doctor, isolation)."""
    return os.environ.get(BY_NAME[name].env) or None


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """(setting, value, where it came from) for every setting, as `ptgrade settings` prints."""
    rows = []
    for item in fields(Settings):
        if item.name == "sources":
            continue
        setting = BY_NAME[item.name]
        value = getattr(settings, item.name)
        where = settings.source(item.name)
        if where == "command line":
            where = f"command line ({setting.option})"
        elif where == "default":
            course = setting.course and f"c.{SECTION}.{setting.name}"
            ways = [
                way for way in (setting.option, setting.env and f"${setting.env}", course) if way
            ]
            where = f"default (set by {' or '.join(ways)})"
        rows.append((item.name, "-" if value is None else str(value), where))
    return rows
