"""From test reports to a verdict per requirement, and the JSON and Markdown reports.

Pure functions over plain values: the plugin feeds them and acts on what they return.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ...catalogue import CATALOGUE, Requirement, sort_key
from ...secrets import redact
from ..outcomes import ERROR, FAILED, NOT_RUN, OUTCOME_PROPERTY, UNAVAILABLE, UNSUPPORTED

Outcome = Literal["passed", "failed", "skipped", "xfailed", "xpassed"]
_MAX_REASON = 200
_MAX_DETAIL = 4000
_MAX_MESSAGE_LINES = 40
# Forges cap a comment at 65536 characters (GitHub); tracebacks go first when one would not fit.
MAX_COMMENT_CHARS = 60000


@dataclass
class TestOutcome:
    """How one test ended, over its setup, call and teardown phases."""

    nodeid: str
    requirements: list[str] = field(default_factory=list)
    outcome: Outcome = "passed"
    reason: str = ""
    message: str = ""  # what the failure says: the suites put the command and output here
    detail: str = ""  # the failure's whole text (traceback), for the Markdown report
    phase: str | None = None  # setup, call or teardown: where it failed or was skipped
    kind: str | None = None  # outcomes.classify(): failed, error, unsupported, ...
    figures: dict[str, object] = field(default_factory=dict)  # what record_figure recorded

    def add(self, report: Any) -> None:
        for name, value in report.user_properties:
            if name == "requirement" and value not in self.requirements:
                self.requirements.append(value)
            elif name == OUTCOME_PROPERTY and self.kind not in (FAILED, ERROR):
                self.kind, self.phase = str(value), report.when
            elif report.when == "teardown" and name not in (OUTCOME_PROPERTY, "requirement"):
                self.figures[name] = value
        xfail_reason = getattr(report, "wasxfail", None)
        if report.failed:
            self.outcome = "failed"
            self.reason = self.reason or _crash_line(report)
            self.message = self.message or _failure_message(report)
            self.detail = self.detail or redact(report.longreprtext)[-_MAX_DETAIL:]
        elif self.outcome == "failed":
            return
        elif report.skipped and xfail_reason is not None:
            self.outcome, self.reason = "xfailed", xfail_reason or "expected to fail"
        elif report.passed and xfail_reason is not None and report.when == "call":
            self.outcome, self.reason = "xpassed", xfail_reason or "expected to fail"
        elif report.skipped:
            self.outcome, self.reason = "skipped", _skip_reason(report)

    @property
    def test_outcome(self) -> str:
        """This test's own outcome: passed, failed, error, skipped (a capability the subject
        lacks), not-run (deselected, stopped, skipped otherwise), xfailed or xpassed."""
        if self.outcome in ("xfailed", "xpassed"):
            return self.outcome
        return {
            FAILED: "failed",
            ERROR: "error",
            UNSUPPORTED: "skipped",
            UNAVAILABLE: "error",
            NOT_RUN: "not-run",
        }.get(self.kind or "", "failed" if self.outcome == "failed" else "passed")

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.nodeid,
            "outcome": self.test_outcome,
            "phase": self.phase,
            "message": self.message or self.reason,
            "figures": self.figures,
        }


@dataclass(frozen=True, slots=True)
class RequirementResult:
    requirement: Requirement
    outcome: Outcome
    reason: str
    tests: tuple[str, ...]

    def to_json(self, outcomes: Mapping[str, TestOutcome] | None = None) -> dict[str, Any]:
        r = self.requirement
        known = outcomes or {}
        return {
            "id": r.id,
            "level": r.level.value,
            "title": r.text,
            "outcome": self.outcome,
            "tests": list(self.tests),
            "reason": self.reason,
            "results": [known[t].to_json() for t in self.tests if t in known],
        }


@dataclass(frozen=True, slots=True)
class Expectations:
    """Known failures: requirement id -> why. Loaded from ``--conformance-expect``."""

    reasons: Mapping[str, str]

    @classmethod
    def load(cls, path: Path) -> Expectations:
        import pytest

        try:
            data = yaml.safe_load(path.read_text("utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise pytest.UsageError(f"--conformance-expect {path}: cannot read it: {exc}") from None
        data = data or {}
        if not isinstance(data, dict):
            raise pytest.UsageError(
                f"--conformance-expect {path}: expected a mapping of requirement id to reason, "
                f'like `R5.3: "init writes before it validates (#123)"`'
            )
        problems = [f"{k!r} is not a requirement id" for k in data if k not in CATALOGUE]
        problems += [
            f"{k}: the reason must be a non-empty string"
            for k, v in data.items()
            if k in CATALOGUE and not (isinstance(v, str) and v.strip())
        ]
        if problems:
            raise pytest.UsageError(f"--conformance-expect {path}: " + "; ".join(problems))
        return cls({str(k): str(v).strip() for k, v in data.items()})

    def reason_for(self, ids: Iterable[str]) -> str | None:
        reasons = [f"{i}: {self.reasons[i]}" for i in ids if i in self.reasons]
        return "; ".join(reasons) or None


def judge(
    scope: Iterable[str], outcomes: Iterable[TestOutcome], expectations: Expectations
) -> list[RequirementResult]:
    """The verdict for every catalogue requirement in ``scope`` (subjects: ``fleet``,
    ``connector``; or areas: ``SYM``, ...), from the tests that ran."""
    by_requirement: dict[str, list[TestOutcome]] = {}
    for outcome in outcomes:
        for rid in outcome.requirements:
            by_requirement.setdefault(rid, []).append(outcome)
    wanted = set(scope)
    results = []
    in_scope = (r for r in CATALOGUE if {CATALOGUE[r].subject, CATALOGUE[r].area} & wanted)
    for rid in sorted(in_scope, key=sort_key):
        tests = by_requirement.get(rid, [])
        results.append(_verdict(CATALOGUE[rid], tests, expectations.reasons.get(rid)))
    return results


def _verdict(req: Requirement, tests: list[TestOutcome], expected: str | None) -> RequirementResult:
    names = tuple(t.nodeid for t in tests)
    ran = [t for t in tests if t.outcome != "skipped"]
    if not ran:
        reason = next((t.reason for t in tests if t.reason), "no test of it ran")
        return RequirementResult(req, "skipped", _short(reason), names)
    for outcome in ("failed", "xfailed", "xpassed"):
        hit = next((t for t in ran if t.outcome == outcome), None)
        if hit is None:
            continue
        if outcome == "failed":
            reason = f"{_short_test(hit.nodeid)}: {hit.reason}"
        elif outcome == "xfailed":
            reason = f"expected to fail: {expected or hit.reason}"
        else:
            reason = (
                f"expected to fail ({expected}) but passed: take it out of the expectations file"
            )
        return RequirementResult(req, outcome, _short(reason), names)
    passed = sum(t.outcome == "passed" for t in ran)
    return RequirementResult(req, "passed", f"{passed} test(s) passed", names)


def _short(text: str) -> str:
    line = " ".join(redact(text).split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."


def _short_test(nodeid: str) -> str:
    return nodeid.rsplit("/", 1)[-1]


def _crash_line(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None) or str(report.longrepr).strip().splitlines()[-1:]
    text = message if isinstance(message, str) else " ".join(message)
    if report.when != "call":
        text = f"error in {report.when}: {text}"
    return text.split("\n", 1)[0]


def _failure_message(report: Any) -> str:
    """The failure's own words, without pytest's re-evaluation of the assert expression.

    The suites word every assertion as its shortest reproduction (the command, its exit status,
    its output, its system calls); the traceback around it says little to an implementer.
    """
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        lines = str(crash.message).splitlines()
    else:  # a plain-text longrepr (e.g. redacted): its "E   " lines are the exception
        text = report.longreprtext
        exception = "\n".join(line[1:] for line in text.splitlines() if line.startswith("E "))
        lines = textwrap.dedent(exception).splitlines() or text.strip().splitlines()
    kept: list[str] = []
    explaining = False
    for i, line in enumerate(lines):
        if i > 0 and line.startswith("assert "):
            explaining = True  # pytest's "assert x == y" and its indented "+ where" lines
            continue
        if explaining and (not line or line[0].isspace()):
            continue
        explaining = False
        kept.append(line)
    if kept:
        kept[0] = kept[0].removeprefix("AssertionError: ").removeprefix("Failed: ")
    if report.when != "call":
        kept.insert(0, f"(error in {report.when})")
    if len(kept) > _MAX_MESSAGE_LINES:
        kept = [
            *kept[: _MAX_MESSAGE_LINES - 1],
            f"... ({len(kept) - _MAX_MESSAGE_LINES + 1} more lines)",
        ]
    return redact("\n".join(kept).rstrip())


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "skipped")


# --- files ------------------------------------------------------------------------------


def write_reports(
    folder: Path,
    meta: dict[str, Any],
    results: list[RequirementResult],
    outcomes: Mapping[str, TestOutcome],
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    document = {**meta, "summary": counts, "requirements": [r.to_json(outcomes) for r in results]}
    json_path, md_path = folder / "conformance.json", folder / "conformance.md"
    json_path.write_text(redact(json.dumps(document, indent=2)) + "\n", encoding="utf-8")
    md_path.write_text(redact(markdown(meta, results, outcomes)), encoding="utf-8")
    return [json_path, md_path]


def markdown(
    meta: dict[str, Any], results: list[RequirementResult], outcomes: Mapping[str, TestOutcome]
) -> str:
    """A report that reads on its own, e.g. as a review comment: the verdict in one line, then
    each failure with its requirement and shortest reproduction, then every requirement."""
    lines = ["# Mosaic conformance report", "", _summary(meta, results), ""]
    subjects = [
        ("fleet", meta.get("fleet_cmd")),
        ("backend", meta.get("backend")),
        ("connector", meta.get("connector")),
    ]
    lines += [f"- {name}: `{value}`" for name, value in subjects if value]
    lines.append(
        f"- judged against requirement catalogue {meta['catalogue_version']} by "
        f"mosaic-conformance {meta['version']}"
        + (" (strict: SHOULD failures and unexpected passes gate)" if meta.get("strict") else "")
    )
    failing = [r for r in results if r.outcome in ("failed", "xpassed")]
    sections = [_failure_section(r, outcomes) for r in failing]
    budget = MAX_COMMENT_CHARS - sum(len(text) for text, _ in sections) - 200 * len(results)
    if failing:
        lines += ["", "## Failures", ""]
    for text, traceback in sections:
        lines.append(text)
        if traceback and len(traceback) <= budget:
            lines.append(traceback)
            budget -= len(traceback)
        elif traceback:
            lines += ["(traceback left out to keep this report short; it is in the JUnit XML)", ""]
    lines += [
        "",
        "## All requirements",
        "",
        "| id | level | outcome | reason |",
        "|---|---|---|---|",
    ]
    for r in results:
        reason = r.reason.replace("|", "\\|")
        lines.append(
            f"| {r.requirement.id} | {r.requirement.level.value} | {r.outcome} | {reason} |"
        )
    return "\n".join(lines) + "\n"


def _summary(meta: dict[str, Any], results: list[RequirementResult]) -> str:
    """``**FAILED** (gating: SYM.1, R5.3): 17 passed, 2 failed of 19 requirements``."""
    counts = ", ".join(
        f"{sum(r.outcome == o for r in results)} {o}"
        for o in ("passed", "failed", "xfailed", "xpassed", "skipped")
        if any(r.outcome == o for r in results)
    )
    if all(r.outcome == "skipped" for r in results):
        verdict = "**NOTHING JUDGED**"  # every test skipped or deselected: no verdict to give
    elif meta["gate"] == "failed":
        gating = meta.get("gating") or [r.requirement.id for r in results if r.outcome == "failed"]
        verdict = f"**FAILED** (gating: {', '.join(gating)})"
    else:
        verdict = "**PASSED**"
    return f"{verdict}: {counts} of {len(results)} requirements"


def _failure_section(
    result: RequirementResult, outcomes: Mapping[str, TestOutcome]
) -> tuple[str, str]:
    """The section of one failing requirement, and its traceback (shown if there is room)."""
    req = result.requirement
    what = "failed" if result.outcome == "failed" else "passed, but was expected to fail"
    lines = [f"### {req.id} ({req.level.value}): {what}", "", f"> {req.text}", ""]
    failed = [t for nodeid in result.tests if (t := outcomes.get(nodeid)) and t.outcome == "failed"]
    if not failed:
        return "\n".join([*lines, result.reason, ""]), ""
    first = failed[0]
    lines += [f"`{_short_test(first.nodeid)}`", "", _fenced(first.message or first.reason), ""]
    if len(failed) > 1:
        others = ", ".join(f"`{_short_test(t.nodeid)}`" for t in failed[1:])
        lines += [f"Also failed: {others}.", ""]
    lines += [f"Run it alone: add `-k {_test_function(first.nodeid)}` to the same command.", ""]
    traceback = ""
    if first.detail.strip() not in ("", first.message.strip()):
        traceback = "\n".join(
            [
                "<details><summary>traceback</summary>",
                "",
                _fenced(first.detail),
                "",
                "</details>",
                "",
            ]
        )
    return "\n".join(lines), traceback


def _test_function(nodeid: str) -> str:
    """``test_x`` of ``dir/test_file.py::test_x[param]``: a ``-k`` that selects it."""
    return nodeid.rsplit("::", 1)[-1].split("[", 1)[0]


def _fenced(text: str, lines: int = 60) -> str:
    kept = text.rstrip().splitlines()[-lines:]
    return "```text\n" + "\n".join(kept).replace("```", "'''") + "\n```"
