"""Every setting of the kit in one place: the command line's value, else the environment's, else
the default; `ptgrade settings` shows each one and where it came from.

The environment is read here and only here (`tests/test_settings.py` holds every other module to
it). It also carries a setting to the processes the kit starts (a batch's pool, a Dask worker,
nbgrader's kernel): `export` writes what the command line gave for them to inherit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# Flags the kit sets for processes it starts; no user sets them, so they are no settings.
SANDBOX_ENV = "PTGRADE_SANDBOX"  # "1" in the sandbox: a notebook graded must not grade itself
VERDICTS_ENV = "PTGRADE_VERDICTS_OUTSIDE"  # "1": the kit's nbgrader step gives the verdicts


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


def _seconds(env: str, text: str) -> float:
    return seconds_from_env(env, 0.0, {env: text})


def _scale(env: str, text: str) -> int:
    try:
        return max(1, int(text))
    except ValueError:  # as before: a malformed scale is the default one
        return 100


def _flag(env: str, text: str) -> bool:
    return bool(text)  # as before: any non-empty value turns it on


SETTINGS = (
    Setting(
        "cell_timeout",
        "seconds one cell may run",
        "--cell-timeout",
        "PTGRADE_CELL_TIMEOUT",
        _seconds,
    ),  # fmt: skip
    Setting(
        "notebook_timeout",
        "seconds the whole notebook may run",
        "--timeout",
        "PTGRADE_TIMEOUT",
        _seconds,
    ),  # fmt: skip
    Setting("memory_mb", "memory the submission may allocate (MB)", "--memory-mb"),
    Setting("output_chars", "characters of printed output kept", "--output-limit"),
    Setting("device", "auto, or cpu: hide any GPU from the submission", "--device"),
    Setting(
        "isolation", "how the submission's code is confined", "--isolation", "PTGRADE_ISOLATION"
    ),  # fmt: skip
    Setting(
        "solutions", "the instructor's solutions/ folder", "--solutions", "PTGRADE_SOLUTIONS"
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
        """Write what the command line set for the processes the kit starts (a batch's pool,
        a Dask worker on this machine, the warm worker) to find in their environment."""
        if self.given("isolation"):
            os.environ[BY_NAME["isolation"].env] = self.isolation
        if self.given("solutions"):
            os.environ[BY_NAME["solutions"].env] = str(Path(self.solutions).resolve())


def resolve(options: object = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings: each from `options` (parsed command-line options; None where not given),
    else from the environment, else the default. A malformed environment value raises
    ValueError naming its variable."""
    environ = os.environ if environ is None else environ
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
    return Settings(**values, sources=sources)


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
            ways = [way for way in (setting.option, setting.env and f"${setting.env}") if way]
            where = f"default (set by {' or '.join(ways)})"
        rows.append((item.name, "-" if value is None else str(value), where))
    return rows
