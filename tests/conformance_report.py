"""Reading the JSON report of a conformance run that a test made (pytester), for the proofs that
a suite fails a broken fleet or connector on exactly the requirements it breaks, in the test
meant to catch it, in the call phase, for the reason it was planted for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test of a requirement, as the report has it."""

    test: str  # the node id
    outcome: str  # passed, failed, error, skipped, not-run, xfailed, xpassed
    phase: str | None  # where it failed or was skipped: setup, call, teardown
    message: str
    figures: dict[str, Any]

    @property
    def name(self) -> str:
        """The test function's name, without its file and parameters."""
        return self.test.rsplit("::", 1)[-1].split("[", 1)[0]


@dataclass(frozen=True, slots=True)
class RequirementReport:
    id: str
    outcome: str
    reason: str
    results: tuple[TestResult, ...]

    def failing(self) -> list[TestResult]:
        return [r for r in self.results if r.outcome == "failed"]


@dataclass(frozen=True, slots=True)
class Report:
    meta: dict[str, Any]
    requirements: dict[str, RequirementReport]

    def with_outcome(self, outcome: str) -> set[str]:
        return {rid for rid, r in self.requirements.items() if r.outcome == outcome}

    def reasons(self, ids: set[str]) -> dict[str, str]:
        return {rid: self.requirements[rid].reason for rid in sorted(ids)}


def read_report(folder: Path) -> Report:
    """The report a run wrote with ``--conformance-report FOLDER``."""
    data = json.loads((folder / "conformance.json").read_text(encoding="utf-8"))
    requirements = {}
    for entry in data.pop("requirements"):
        results = tuple(
            TestResult(r["test"], r["outcome"], r["phase"], r["message"], r["figures"])
            for r in entry.get("results", [])
        )
        requirements[entry["id"]] = RequirementReport(
            entry["id"], entry["outcome"], entry["reason"], results
        )
    return Report(data, requirements)


def caught_as_planted(
    report: Report, requirement: str, test: str, fragment: str, phase: str = "call"
) -> list[str]:
    """How the catch of a planted defect differs from the plan: ``requirement`` failed, in
    ``test`` (a function name), in ``phase``, with ``fragment`` in its message. Empty: as
    planted."""
    entry = report.requirements.get(requirement)
    if entry is None:
        return [f"{requirement} is not in the report"]
    if entry.outcome != "failed":
        return [f"{requirement} is {entry.outcome} ({entry.reason}), not failed"]
    hits = [r for r in entry.failing() if r.name == test]
    if not hits:
        failing = [f"{r.name} ({r.phase})" for r in entry.failing()]
        return [f"{requirement} failed, but not in {test}: failing tests {failing}"]
    if any(h.phase == phase and fragment in h.message for h in hits):
        return []
    return [
        f"{test} failed in {h.phase} (expected {phase}), and its message "
        f"{'has' if fragment in h.message else 'lacks'} {fragment!r}: {h.message[:500]}"
        for h in hits
    ]
