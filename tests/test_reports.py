"""The reports: every format renders one hand-built GradeResult, and its text is checked."""

from __future__ import annotations

import html
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.batch.folder import Job, summary_html
from grader.packs.workflow01.assignments import ASSIGNMENTS
from grader.reports import FORMATS, render
from grader.reports.html import section_table_html
from grader.reports.svg import Series, chart, histogram, nice_ticks
from grader.reports.text import render as render_text
from grader.result import CheckResult, GradeResult, SectionResult
from grader.safe_text import WORD_JOINER

TRICKY = 'Expected y <= 1 & "line" | got 2'
CELL_ERROR = "Your cell raised NameError: name 'stop' is not defined."
STOP_HINT = "`torch.arange(start, end, step)`: pass `step`."


def make_result(figures: dict | None = None) -> GradeResult:
    passing = SectionResult(
        id="split",
        title="Split the data 80/20",
        score=2.0,
        max_score=2.0,
        checks=[
            CheckResult("split.proportion", True, 1.0, 1.0),
            CheckResult("split.aligned", True, 1.0, 1.0),
        ],
    )
    failing = SectionResult(
        id="data",
        title="Make data | straight line",
        score=1.0,
        max_score=4.0,
        checks=[
            CheckResult("data.shape", False, 0.0, 1.0, CELL_ERROR, "data.stop_typo", STOP_HINT),
            CheckResult("data.dtype", False, 0.0, 1.0, CELL_ERROR, "data.stop_typo", STOP_HINT),
            CheckResult("data.line", False, 0.0, 1.0, TRICKY, None, ""),
            CheckResult("data.count", True, 1.0, 1.0),
        ],
        note="Later sections used the reference code for this cell.",
    )
    return GradeResult(
        assignment="01_pytorch_workflow",
        notebook="submissions/alice.ipynb",
        score=3.0,
        max_score=6.0,
        sections=[passing, failing],
        errors=["The notebook did not finish: <timeout> & more\x01."],
        execution={"status": "timeout", "detail": "cell 7", "seconds": 12.5},
        figures=figures or {},
    )


FIGURES = {
    "X_train": [i / 50 for i in range(40)],
    "y_train": [0.7 * i / 50 + 0.3 for i in range(40)],
    "X_test": [i / 50 for i in range(40, 50)],
    "y_test": [0.7 * i / 50 + 0.3 for i in range(40, 50)],
    "y_preds": [0.5 * i / 50 + 0.2 for i in range(40, 50)],
    "train_loss": [0.3 - 0.002 * i for i in range(100)],
}


def test_every_format_renders_text():
    assert FORMATS == ("text", "json", "junit", "gradescope", "markdown", "html", "classroom50")
    for fmt in FORMATS:
        assert isinstance(render(make_result(), fmt), str)
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        render(make_result(), "pdf")


def test_json_round_trips_with_the_stable_keys():
    data = json.loads(render(make_result(FIGURES), "json"))
    assert set(data) == {
        "assignment",
        "notebook",
        "score",
        "max_score",
        "sections",
        "errors",
        "execution",
        "status",  # as `ptgrade batch`'s results: graded, timeout, crashed, unusable, ...
    }
    assert set(data["sections"][0]) == {"id", "title", "score", "max_score", "note", "checks"}
    assert set(data["sections"][1]["checks"][0]) == {
        "id",
        "passed",
        "points",
        "max_points",
        "message",
        "hint",
        "hint_text",
        "hidden",
    }
    assert data["sections"][1]["checks"][2]["message"] == TRICKY
    assert data["score"] == 3.0 and data["execution"]["status"] == "timeout"
    assert data["status"] == "timeout"


def test_junit_parses_with_counts_and_failure_messages():
    suite = ET.fromstring(render(make_result(), "junit").encode())
    assert suite.tag == "testsuite"
    assert suite.get("name") == "01_pytorch_workflow"
    # Six checks, and the notebook that ran past its time limit as one test in error.
    assert suite.get("tests") == "7" and suite.get("failures") == "3"
    assert suite.get("errors") == "1"
    timeout = suite.find("testcase[@name='grading']/error")
    assert timeout.get("type") == "timeout" and "scored on the cells that ran" in timeout.text
    cases = suite.findall("testcase")[1:]
    assert [c.get("classname") for c in cases] == ["01_pytorch_workflow.split"] * 2 + [
        "01_pytorch_workflow.data"
    ] * 4
    failures = {c.get("name"): c.find("failure") for c in cases}
    assert failures["split.proportion"] is None and failures["data.count"] is None
    assert failures["data.line"].get("message") == TRICKY
    assert failures["data.shape"].get("message") == CELL_ERROR
    assert f"hint: {STOP_HINT}" in failures["data.shape"].text
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["score"] == "3" and props["max_score"] == "6"
    # The control character in the error is dropped, the rest survives.
    assert suite.find("system-err").text == "The notebook did not finish: <timeout> & more."


def test_gradescope_one_test_per_section_and_scores_add_up():
    data = json.loads(render(make_result(), "gradescope"))
    result = make_result()
    assert data["score"] == sum(t["score"] for t in data["tests"]) == result.score
    assert [t["max_score"] for t in data["tests"]] == [s.max_score for s in result.sections]
    assert [t["number"] for t in data["tests"]] == ["split", "data"]
    assert all(t["visibility"] == "visible" for t in data["tests"])
    assert data["stdout_visibility"] == "visible"
    failed = data["tests"][1]["output"]
    assert failed.count(CELL_ERROR) == 1 and TRICKY in failed and f"Hint: {STOP_HINT}" in failed
    assert data["tests"][0]["output"] == "All checks passed."
    assert "Score: 3 / 6" in data["output"]


def rendered_markdown(text: str) -> str:
    """The HTML a Markdown renderer makes of `text`, raw HTML allowed as on GitHub."""
    mistune = pytest.importorskip("mistune")
    return mistune.create_markdown(escape=False, plugins=["table", "url", "strikethrough"])(text)


def visible_text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page)).replace(WORD_JOINER, "")


def test_markdown_table_has_a_row_per_section_and_escapes_pipes():
    text = render(make_result(), "markdown")
    page = rendered_markdown(text)
    assert re.search(r"<h2>01_pytorch_workflow: 3 / 6</h2>", page)
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    cells = [visible_text(row).split() for row in rows]
    assert cells == [
        ["Section", "Points", "Result"],
        ["Split", "the", "data", "80/20", "2/2", "✅"],
        ["Make", "data", "|", "straight", "line", "1/4", "❌"],
    ]
    assert visible_text(page).count(CELL_ERROR) == 1
    assert f"Hint: {STOP_HINT.replace('`', '')}" in visible_text(page)
    assert "<code>torch.arange(start, end, step)</code>" in page  # the hint's code stays code


HOSTILE = (
    "Your cell raised ValueError on line 1 (`raise ValueError(x)`): <img src=x onerror=alert(1)> "
    "<script>alert(2)</script> [click me](http://evil.example/a) ![pixel](https://evil.example/p) "
    "www.evil.example `</code><b>bold</b>` *loud* _under_ # not a heading | \x1b[2J\x1b]8;;x\x07"
)


def hostile_result() -> GradeResult:
    result = make_result()
    result.sections[1].checks[2].message = HOSTILE
    result.sections[1].note = HOSTILE
    result.errors = [HOSTILE, "An ungraded cell (`<a href=x>`) raised `"]
    return result


def test_markdown_shows_what_the_student_wrote_and_renders_none_of_it():
    page = rendered_markdown(render(hostile_result(), "markdown"))
    tags = set(re.findall(r"<(\w+)", page))
    assert tags <= {
        "h2",
        "h3",
        "p",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "ul",
        "li",
        "code",
    }
    text = visible_text(page)
    shown = HOSTILE.replace("`", "").replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    assert text.count(shown) == 3  # the message, the note and the warning, character for character
    assert "An ungraded cell (`<a href=x>`) raised `" in text


def test_text_report_escapes_control_characters():
    text = render(hostile_result(), "text")
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[2J" in text
    assert "\r" not in render(make_result(), "text").replace("\r\n", "")


def test_gradescope_output_is_plain_text():
    data = json.loads(render(hostile_result(), "gradescope"))
    assert data["output_format"] == "text"
    assert {test["output_format"] for test in data["tests"]} == {"text"}


def charts(page: str) -> list[ET.Element]:
    """Every inline <svg> of a page, parsed as XML (a parse error fails the test)."""
    return [ET.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", page, re.S)]


def series(chart: ET.Element, label: str) -> list:
    """The points of one legend entry: circles of a scatter, or (x, y) pairs of a line."""
    found = chart.find(f".//*[@aria-label='{label}']")
    assert found is not None, f"no series {label!r} in the chart"
    if found.tag == "polyline":
        return [tuple(map(float, xy.split(","))) for xy in found.get("points").split()]
    return found.findall("circle")


def test_html_escapes_text_and_embeds_two_charts():
    page = render(make_result(FIGURES), "html")
    assert page.startswith("<!DOCTYPE html>")
    assert "Expected y &lt;= 1 &amp; &quot;line&quot; | got 2" in page
    assert TRICKY not in page
    assert "&lt;timeout&gt;" in page
    assert "http://" not in page and "https://" not in page  # works offline
    assert "data:image/png" not in page
    data, loss = charts(page)
    assert data.find("title").text == "Your data and predictions"
    assert len(series(data, "Training data")) == len(FIGURES["X_train"])
    assert len(series(data, "Testing data")) == len(FIGURES["X_test"])
    assert len(series(data, "Your predictions")) == len(FIGURES["X_test"])
    assert len(series(data, "y = 0.7·x + 0.3")) == 2  # the true line, end to end
    assert len(series(loss, "Your training loss")) == len(FIGURES["train_loss"])
    epochs = ASSIGNMENTS["01_pytorch_workflow"].epochs
    assert len(series(loss, "Reference run")) == epochs
    legend = [t.text for t in loss.iter("text")]
    assert "Reference run" in legend and "Your training loss" in legend and "L1 loss" in legend


def test_html_charts_skip_values_that_cannot_be_drawn():
    figures = dict(FIGURES)
    figures["y_preds"] = [math.nan, math.inf, -math.inf, None] + FIGURES["y_preds"][4:]
    figures["train_loss"] = [math.nan] * 3 + FIGURES["train_loss"][3:]
    page = render(make_result(figures), "html")
    data, loss = charts(page)
    assert len(series(data, "Your predictions")) == len(FIGURES["X_test"]) - 4
    drawn = series(loss, "Your training loss")
    assert len(drawn) == len(FIGURES["train_loss"]) - 3
    assert all(math.isfinite(v) for xy in drawn for v in xy)
    assert not re.search(r"nan|inf", "".join(re.findall(r'"[^"]*"', page[page.index("<svg") :])))


def test_html_without_figures_says_so():
    page = render(make_result(), "html")
    assert "<svg" not in page
    assert "No data: the training and test sets were not recorded." in page
    assert "No data: no training loss was recorded." in page


def test_chart_draws_empty_and_unusual_series_without_failing():
    odd = [
        Series("nothing", "red", [], []),
        Series("only <NaN> & co", "blue", [math.nan, 1.0], [2.0, math.inf], line=True),
        Series("one point", "green", [5.0], [5.0]),
        Series("huge", "grey", [1e300, 10**400, "1"], [1.0, 1.0, 1.0]),
    ]
    for drawn in ([], odd[:2], odd):
        svg = ET.fromstring(chart(drawn, "x <1>", "y & z", 'a "title"'))
        assert svg.find("title").text == 'a "title"'
        assert {"x <1>", "y & z"} <= {t.text for t in svg.iter("text")}
    assert len(series(svg, "one point")) == 1 and series(svg, "huge") == []


@pytest.mark.parametrize(
    "lo, hi, expected",
    [(0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]), (0.003, 0.3, [0, 0.1, 0.2, 0.3]), (0, 7, [0, 2, 4, 6, 8])],
)
def test_nice_ticks_are_round_and_cover_the_data(lo, hi, expected):
    assert nice_ticks(lo, hi) == pytest.approx(expected)


@pytest.mark.parametrize("value", [0.0, 3.0, -2.5, 1e-320, 1e99])
def test_nice_ticks_spread_a_single_value(value):
    ticks = nice_ticks(value, value)
    assert ticks[0] < value < ticks[-1] and 2 <= len(ticks) <= 12


def test_histogram_counts_each_value_in_its_bin():
    svg = ET.fromstring(
        histogram([100, 99, 0, 4.9, 5, -1, math.nan], range(0, 105, 5), "", "", "h")
    )
    bars = [bar.find("title").text for bar in svg.iter("rect") if bar.find("title") is not None]
    assert bars == ["0 to 5: 2", "5 to 10: 1", "95 to 100: 2"]
    y_ticks = [t.text for t in svg.iter("text") if t.get("text-anchor") == "end"]
    assert y_ticks == ["0", "1", "2"]  # whole students only, not 0.5


def test_summary_page_draws_the_score_histogram():
    jobs = [Job(name, name, Path(f"{name}.ipynb")) for name in ("ada", "ben", "cleo", "dev")]
    results = {
        "ada": {"status": "graded", "score": 20.0, "max_score": 20.0},
        "ben": {"status": "graded", "score": 10.0, "max_score": 20.0},
        "cleo": {"status": "graded", "score": 10.5, "max_score": 20.0},
        "dev": {"status": "unusable", "score": 0.0, "max_score": None},
    }
    page = summary_html(jobs, results)
    assert "data:image/png" not in page
    (svg,) = charts(page)
    bars = [bar.find("title").text for bar in svg.iter("rect") if bar.find("title") is not None]
    assert bars == ["50 to 55: 2", "95 to 100: 1"]  # the unusable notebook has no score
    assert {"score (%)", "students"} <= {t.text for t in svg.iter("text")}
    nobody = {"dev": results["dev"]}
    assert "<svg" not in summary_html(jobs[3:], nobody)


def test_section_table_html_lists_every_check_escaped():
    table = section_table_html(make_result().sections[1])
    assert table.count("<tr>") == 5  # header + four checks
    assert "&lt;= 1 &amp;" in table and STOP_HINT in table


def test_text_shows_each_distinct_failure_once_and_the_total():
    text = render(make_result(), "text")
    assert text.count(CELL_ERROR) == 1
    assert f"    hint: {STOP_HINT}" in text
    assert f"  - {TRICKY}" in text
    assert "    note: Later sections used the reference code for this cell." in text
    assert "Score: 3 / 6" in text
    assert "warning: The notebook did not finish" in text
    assert "\033[" not in text
    assert all(len(line) <= 100 for line in text.splitlines())
    lines = text.splitlines()
    rows = {row.split("  ")[0]: row for row in lines}
    assert rows["Split the data 80/20"].endswith("2/2  PASS")
    assert rows["Make data | straight line"].endswith("1/4  FAIL")


def test_text_wraps_long_messages_and_colours_on_request():
    result = make_result()
    result.sections[1].checks[2].message = "word " * 60
    text = render_text(result)
    assert all(len(line) <= 100 for line in text.splitlines())
    coloured = render_text(result, color=True)
    assert "\033[32mPASS\033[0m" in coloured and "\033[31mFAIL\033[0m" in coloured


@pytest.mark.parametrize("ran", [True, False])
def test_every_format_says_whether_the_hidden_checks_ran(ran):
    """A student's `check` (no hidden checks) must not read as the whole grade."""
    result = make_result()
    result.execution.update(hidden_checks=ran, device="simulated cuda")
    said = "Hidden checks: ran." if ran else "Hidden checks: not run here"
    shown = {
        "text": render(result, "text"),
        "html": visible_text(render(result, "html")),
        "markdown": visible_text(rendered_markdown(render(result, "markdown"))),
    }
    for fmt, text in shown.items():
        assert said in text, fmt
        assert "graded as if on a GPU" in text, fmt
    assert said in json.loads(render(result, "gradescope"))["output"]
    assert json.loads(render(result, "json"))["execution"]["hidden_checks"] is ran
    suite = ET.fromstring(render(result, "junit"))
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["hidden_checks"] == str(ran).lower()
    assert properties["device"] == "simulated cuda"


def test_a_result_without_a_simulated_gpu_says_nothing_of_one():
    result = make_result()
    result.execution.update(hidden_checks=True, device="cpu")
    for fmt in ("text", "html", "markdown", "gradescope"):
        assert "as if on a GPU" not in render(result, fmt)
