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
        "default (set by --cell-timeout or $PTGRADE_CELL_TIMEOUT or c.PTGrade.cell_timeout)",
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


# ---------------------------------------------------------------------------------------------
# The course's nbgrader config: c.PTGrade.* (and nbgrader's --PTGrade.x=..., merged into it)
# ---------------------------------------------------------------------------------------------


def course_config(tmp_path, *lines: str, argv: tuple[str, ...] = ()):
    """The config nbgrader would hold for a course whose nbgrader_config.py (the template of
    `ptgrade init-course`) ends with `lines`, run with `argv` on nbgrader's command line."""
    from traitlets.config import PyFileConfigLoader
    from traitlets.config.loader import KVArgParseConfigLoader

    from grader.integrations.course import CONFIG

    (tmp_path / "source").mkdir(exist_ok=True)
    text = CONFIG.read_text(encoding="utf-8") + "\n".join(lines) + "\n"
    (tmp_path / "nbgrader_config.py").write_text(text, encoding="utf-8")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    config.merge(KVArgParseConfigLoader(list(argv)).load_config())
    return config


def test_the_course_config_comes_after_the_command_line_and_the_environment(tmp_path):
    config = course_config(
        tmp_path,
        "c.PTGrade.cell_timeout = 30",
        "c.PTGrade.notebook_timeout = 200",
        "c.PTGrade.memory_mb = 2048",
        'c.PTGrade.device = "cpu"',
        argv=("--PTGrade.memory_mb=1024",),  # nbgrader's command line beats the file
    )
    environ = {"PTGRADE_TIMEOUT": "120"}
    settings = resolve(options(["settings", "--cell-timeout", "5"]), environ, config)
    assert settings.limits == Limits(
        cell_timeout=5.0, notebook_timeout=120.0, memory_mb=1024, device="cpu"
    )
    assert settings.source("cell_timeout") == "command line"
    assert settings.source("notebook_timeout") == "$PTGRADE_TIMEOUT"
    assert settings.source("memory_mb") == "nbgrader config (c.PTGrade.memory_mb)"
    assert settings.source("output_chars") == "default"
    # Without the command line and the environment, the course's values.
    settings = resolve(None, {}, config)
    assert (settings.cell_timeout, settings.notebook_timeout) == (30.0, 200.0)
    assert settings.source("cell_timeout") == "nbgrader config (c.PTGrade.cell_timeout)"
    # The course's source folder holds the hidden checks, unless the config names another.
    assert settings.solutions == str(tmp_path / "source")
    assert settings.source("solutions") == "nbgrader config (c.CourseDirectory.source_directory)"
    (tmp_path / "kept").mkdir()
    settings = resolve(None, {}, course_config(tmp_path, 'c.PTGrade.solutions = "kept"'))
    assert settings.solutions == str((tmp_path / "kept").resolve())
    assert settings.source("solutions") == "nbgrader config (c.PTGrade.solutions)"
    assert resolve(None, {"PTGRADE_SOLUTIONS": "/x"}, config).solutions == "/x"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'c.PTGrade.cell_timeout = "60s"',
            "c.PTGrade.cell_timeout must be a number of seconds above 0, not '60s'",
        ),
        (
            "c.PTGrade.notebook_timeout = -1",
            "c.PTGrade.notebook_timeout must be a number of seconds above 0, not -1",
        ),
        (
            "c.PTGrade.cell_timeout = float('inf')",
            "c.PTGrade.cell_timeout must be a number of seconds above 0, not inf",
        ),
        (
            "c.PTGrade.memory_mb = 10",
            "c.PTGrade.memory_mb must be a whole number of MB, at least 64, not 10",
        ),
        (
            "c.PTGrade.memory_mb = True",
            "c.PTGrade.memory_mb must be a whole number of MB, at least 64, not True",
        ),
        (
            'c.PTGrade.isolation = "bwarp"',
            "c.PTGrade.isolation must be one of auto, bwrap, unshare, none, not 'bwarp'",
        ),
        (
            'c.PTGrade.solutions = "nowhere"',
            "c.PTGrade.solutions must be an existing folder, not '",
        ),
        (
            "c.PTGrade.cel_timeout = 30",
            "c.PTGrade.cel_timeout is not a setting of ptgrade's nbgrader config "
            "(did you mean c.PTGrade.cell_timeout?)",
        ),
        (
            "c.PTGrade.jobs = 4",
            "c.PTGrade.jobs is not a setting of ptgrade's nbgrader config (its settings there: "
            "cell_timeout, notebook_timeout, memory_mb, output_chars, device, isolation, "
            "solutions)",
        ),
    ],
)
def test_a_bad_course_value_names_its_setting(tmp_path, line, message):
    with pytest.raises(ValueError) as error:
        resolve(None, {}, course_config(tmp_path, line))
    assert str(error.value).startswith(message)


def test_nbgraders_command_line_text_is_read_as_the_file_would_be(tmp_path):
    config = course_config(tmp_path, argv=("--PTGrade.cell_timeout=2.5", "--PTGrade.memory_mb=512"))
    settings = resolve(None, {}, config)
    assert (settings.cell_timeout, settings.memory_mb) == (2.5, 512)
    with pytest.raises(ValueError, match=r"c\.PTGrade\.cell_timeout must be .* not '60s'"):
        resolve(None, {}, course_config(tmp_path, argv=("--PTGrade.cell_timeout=60s",)))


def test_ptgrade_settings_in_a_course_shows_its_config(tmp_path, monkeypatch, capsys):
    for name in ("PTGRADE_CELL_TIMEOUT", "PTGRADE_TIMEOUT", "PTGRADE_SOLUTIONS"):
        monkeypatch.delenv(name, raising=False)
    course_config(tmp_path, "c.PTGrade.cell_timeout = 30")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["settings"]) == 0
    shown = capsys.readouterr().out
    assert re.search(
        r"^cell_timeout +30\.0 +nbgrader config \(c\.PTGrade\.cell_timeout\)$", shown, re.M
    )
    assert re.search(
        r"^notebook_timeout +300\.0 +default \(set by .* or c\.PTGrade\.notebook_timeout\)$",
        shown,
        re.M,
    )
    # Elsewhere, --course names the course.
    monkeypatch.chdir(tmp_path.parent)
    assert cli.main(["settings", "--course", str(tmp_path), "--cell-timeout", "9"]) == 0
    assert re.search(
        r"^cell_timeout +9\.0 +command line \(--cell-timeout\)$", capsys.readouterr().out, re.M
    )
    assert cli.main(["settings", "--course", str(tmp_path.parent)]) == cli.EXIT_UNUSABLE
    assert "no nbgrader_config.py in" in capsys.readouterr().err


def test_ptgrade_settings_names_a_bad_course_value_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PTGRADE_CELL_TIMEOUT", raising=False)
    course_config(tmp_path, 'c.PTGrade.cell_timeout = "60s"')
    assert cli.main(["settings", "--course", str(tmp_path)]) == cli.EXIT_UNUSABLE
    assert capsys.readouterr().err == (
        "ptgrade: c.PTGrade.cell_timeout must be a number of seconds above 0, not '60s'\n"
    )


def test_without_nbgrader_ptgrade_settings_says_so_and_shows_the_rest(
    tmp_path, monkeypatch, capsys
):
    import builtins

    course_config(tmp_path, "c.PTGrade.cell_timeout = 30")
    real_import = builtins.__import__

    def no_nbgrader(name, *args, **kwargs):
        if name == "nbgrader" or name.startswith("nbgrader."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nbgrader)
    monkeypatch.delenv("PTGRADE_CELL_TIMEOUT", raising=False)
    assert cli.main(["settings", "--course", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "nbgrader is not installed, so" in err and "nbgrader_config.py is not read" in err
    assert re.search(r"^cell_timeout +60\.0 +default", out, re.M)
