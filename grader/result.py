"""The graded result: sections, checks, points, messages; the one shape every report reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class CheckResult:
    id: str
    passed: bool
    points: float
    max_points: float
    message: str = ""
    hint: str | None = None
    hint_text: str = ""
    hidden: bool = False


@dataclass
class SectionResult:
    id: str
    title: str
    score: float
    max_score: float
    checks: list[CheckResult] = field(default_factory=list)
    note: str = ""  # e.g. "your cell raised, later sections used the reference code"

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failures(self) -> list[CheckResult]:
        """Failed checks, one per distinct message (a cell error fails every check alike)."""
        seen, unique = set(), []
        for check in self.checks:
            if not check.passed and (check.message, check.hint) not in seen:
                seen.add((check.message, check.hint))
                unique.append(check)
        return unique


@dataclass
class GradeResult:
    assignment: str
    notebook: str
    score: float
    max_score: float
    sections: list[SectionResult]
    errors: list[str] = field(default_factory=list)
    execution: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)  # data for the feedback pictures

    @property
    def status(self) -> str:
        """ "graded", "timeout" or "crashed" (scored on what ran), "unusable" (not a notebook of
        this kit), "refused" (no confinement it may run under) or "grader_error" (the kit's own
        failure): the vocabulary of `ptgrade batch`'s results."""
        status = self.execution.get("status", "finished")
        return "graded" if status == "finished" else status

    @property
    def graded(self) -> bool:
        """Whether the score is a grade (a grader error or a refusal gives none)."""
        return self.status not in NO_GRADE

    def section(self, section_id: str) -> SectionResult:
        return next(s for s in self.sections if s.id == section_id)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("figures")
        data["status"] = self.status
        if not self.graded:
            data["score"] = None  # no grade, not a 0: CI and gradebooks must not read one
        return data


NO_GRADE = ("grader_error", "refused")


def not_graded(notebook: str, status: str, reason: str, assignment: str = "") -> GradeResult:
    """The report of a notebook that was not graded at all: `status` is "unusable" (the
    student's file), "refused" or "grader_error" (the grading machine's or the kit's fault)."""
    from grader.packs import all_assignments

    known = all_assignments().get(assignment)
    return GradeResult(
        assignment=assignment or "unknown",
        notebook=notebook,
        score=0.0,
        max_score=float(sum(known.default_points.values())) if known else 0.0,
        sections=[],
        errors=[reason],
        execution={"status": status, "detail": reason},
    )
