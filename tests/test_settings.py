"""One settings object: the command line, else the environment, else the default; shown by
`ptgrade settings`; and the environment read nowhere else."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from grader import cli
from grader.settings import SETTINGS, Limits, Settings, from_environment, resolve

GRADER = Path(__file__).resolve().parents[1] / "grader"


def options(argv: list[str]):
    return cli.build_parser().parse_args(argv)


def test_the_command_line_beats_the_environment_which_beats_the_default():
    environ = {"PTGRADE_CELL_TIMEOUT": "7", "PTGRADE_TIMEOUT": "120"}
    settings = resolve(options(["batch", "subs", "--output", "o", "--cell-timeout", "5"]), environ)
    assert (settings.cell_timeout, settings.source("cell_timeout")) == (5.0, "command line")
    assert (settings.notebook_timeout, settings.source("notebook_timeout")) == (
        120.0,
        "$PTGRADE_TIMEOUT",
    )
    assert (settings.memory_mb, settings.source("memory_mb")) == (4096, "default")
    assert settings.limits == Limits(cell_timeout=5.0, notebook_timeout=120.0)


def test_without_options_or_environment_the_limits_are_the_sandboxs_defaults():
    settings = resolve(options(["grade", "x.ipynb"]), {})
    assert settings.limits == Limits() and settings.jobs == 0 and settings.sources == {}
    assert resolve(None, {}) == Settings()


def test_a_malformed_value_names_its_variable(monkeypatch):
    with pytest.raises(ValueError, match=r"\$PTGRADE_TIMEOUT must be .* not '60s'"):
        resolve(None, {"PTGRADE_TIMEOUT": "60s"})
    monkeypatch.setenv("PTGRADE_CLASSROOM50_SCALE", "ten")  # as before: the default
    assert from_environment("classroom50_scale") == 100
    monkeypatch.setenv("PTGRADE_TIMEOUT", "60s")  # another setting's typo does not matter here
    assert from_environment("classroom50_scale") == 100


def test_ptgrade_settings_prints_each_value_and_where_it_came_from(monkeypatch, capsys):
    monkeypatch.setenv("PTGRADE_TIMEOUT", "120")
    monkeypatch.delenv("PTGRADE_CELL_TIMEOUT", raising=False)
    assert cli.main(["settings", "--memory-mb", "512"]) == 0
    lines = {
        line.split()[0]: line.split(maxsplit=2)[1:] for line in capsys.readouterr().out.splitlines()
    }
    assert set(lines) == {setting.name for setting in SETTINGS}
    assert lines["memory_mb"] == ["512", "command line (--memory-mb)"]
    assert lines["notebook_timeout"] == ["120.0", "$PTGRADE_TIMEOUT"]
    assert lines["cell_timeout"] == [
        "60.0",
        "default (set by --cell-timeout or $PTGRADE_CELL_TIMEOUT)",
    ]


def test_a_malformed_environment_value_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("PTGRADE_CELL_TIMEOUT", "-1")
    assert cli.main(["settings"]) == cli.EXIT_UNUSABLE
    assert capsys.readouterr().err == (
        "ptgrade: $PTGRADE_CELL_TIMEOUT must be a number of seconds above 0, not '-1'\n"
    )


def test_the_environment_is_read_through_the_settings_only():
    """No module but grader/settings.py names a PTGRADE_ variable (the course templates copied
    out to a course folder aside): each one is a setting declared there, or a flag the kit
    sets for its own processes."""
    named = []
    for path in GRADER.rglob("*.py"):
        if path.name == "settings.py" or "course" in path.relative_to(GRADER).parts[:-1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.fullmatch(r"PTGRADE_[A-Z0-9_]+", node.value):
                    named.append(f"{path.relative_to(GRADER)}: {node.value}")
    assert not named, "read $PTGRADE_... through grader/settings.py:\n" + "\n".join(named)


def test_doctor_is_told_only_what_the_command_line_gave(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr("grader.doctor.run", lambda solutions: seen.append(solutions) or 0)
    monkeypatch.setenv("PTGRADE_SOLUTIONS", str(tmp_path))
    assert cli.main(["doctor"]) == 0
    assert cli.main(["doctor", "--solutions", str(tmp_path)]) == 0
    assert seen == [None, str(tmp_path)]  # so it can say "$PTGRADE_SOLUTIONS" or "--solutions"
