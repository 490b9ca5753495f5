"""What a scenario ends with: an exact verdict, the counts it rests on, and what went wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Verdict:
    scenario: str
    #: every count the verdict rests on (events produced, learned, dead-lettered, requests ...)
    counts: dict[str, Any] = field(default_factory=dict)
    #: each broken promise, in words; none means the scenario passed
    problems: list[str] = field(default_factory=list)
    #: measured, for a person: never part of the verdict unless the scenario says so
    figures: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems

    def expect(self, ok: bool, problem: str) -> bool:
        """Record ``problem`` unless ``ok``; return ``ok``."""
        if not ok:
            self.problems.append(problem)
        return ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "passed": self.passed,
            "counts": self.counts,
            "problems": self.problems,
            "figures": self.figures,
            "seconds": round(self.seconds, 1),
        }
