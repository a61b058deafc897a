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

    def section(self, section_id: str) -> SectionResult:
        return next(s for s in self.sections if s.id == section_id)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("figures")
        return data
