"""JUnit XML for CI dashboards: one testcase per check, grouped by section in the classname."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from grader.reports.text import confinement, points, status_line
from grader.result import GradeResult

# Characters XML 1.0 forbids even when escaped (most C0 controls, surrogates, U+FFFE/FFFF).
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    return _NOT_XML.sub("", text)


def render(result: GradeResult) -> str:
    checks = [(section, check) for section in result.sections for check in section.checks]
    failures = sum(not check.passed for _, check in checks)
    # A notebook that did not run to the end, or was not graded at all, is one test in error
    # (the warnings of a normal grade go to system-err, not counted as tests).
    trouble = status_line(result)
    suite = ET.Element(
        "testsuite",
        name=xml_safe(result.assignment),
        tests=str(len(checks) + bool(trouble)),
        failures=str(failures),
        errors=str(int(bool(trouble))),
        skipped="0",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("notebook", result.notebook),
        ("score", points(result.score) if result.graded else ""),
        ("max_score", points(result.max_score)),
        ("confinement", confinement(result)),
        ("hidden_checks", str(result.execution.get("hidden_checks", "")).lower()),
        ("device", str(result.execution.get("device", ""))),
        ("status", result.status),
    ):
        ET.SubElement(properties, "property", name=name, value=xml_safe(value))
    if trouble:
        case = ET.SubElement(
            suite, "testcase", classname=xml_safe(f"{result.assignment}.notebook"), name="grading"
        )
        ET.SubElement(case, "error", message=xml_safe(trouble), type=result.status).text = xml_safe(
            trouble
        )
    for section, check in checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=xml_safe(f"{result.assignment}.{section.id}"),
            name=xml_safe(check.id),
        )
        if not check.passed:
            message = xml_safe(check.message)
            failure = ET.SubElement(case, "failure", message=message)
            body = [message] + ([f"hint: {xml_safe(check.hint_text)}"] if check.hint_text else [])
            failure.text = "\n".join(body)
    if result.errors:
        ET.SubElement(suite, "system-err").text = xml_safe("\n".join(result.errors))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
