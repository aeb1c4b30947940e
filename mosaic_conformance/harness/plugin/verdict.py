"""From test reports to a verdict per requirement, and the gate a release waits on.

Pure functions over plain values; the plugin feeds them and acts on what they return.

A test ends as one of: passed, failed (the subject broke the requirement), error (the toolkit,
the environment or a harness component failed: nothing was judged), skipped (the subject's
kind lacks the capability), not-run (deselected, stopped before it, skipped otherwise),
xfailed or xpassed (an expectations file said it would fail). A requirement is:

- **not-applicable** when it is about a part that is not under test;
- **not-judged** when the user left it out (``--conformance-only``/``-skip``: the run is
  *partial*) or when a test of it did not run (the run is *incomplete*);
- else **failed** if a test of it failed, **error** if one errored, **xfailed**/**xpassed**,
  **skipped** if every test of it was skipped, **passed** if the rest passed.

The gate passes only when every MUST in scope passed (or was skipped for a capability the
subject lacks, or expected to fail); an error, or a MUST in scope that was not judged, never
reads as passed.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ...catalogue import CATALOGUE, Level, Requirement, Subject, sort_key
from ...secrets import redact
from ..outcomes import (
    ERROR,
    FAILED,
    NOT_RUN,
    OUTCOME_PROPERTY,
    UNAVAILABLE,
    UNSUPPORTED,
    SubjectFailure,
    Unavailable,
    Unsupported,
)

TestVerdict = Literal["passed", "failed", "error", "skipped", "not-run", "xfailed", "xpassed"]
Verdict = Literal[
    "passed", "failed", "error", "skipped", "not-judged", "not-applicable", "xfailed", "xpassed"
]
GateStatus = Literal["passed", "failed", "error", "incomplete"]

# Exit statuses of a conformance run, beside pytest's own (0 ok, 1 failed, 2 interrupted,
# 3 internal error, 4 usage error, 5 no tests collected).
EXIT_ERROR = 10  # something could not be judged: the toolkit, the environment or a component
EXIT_INCOMPLETE = 11  # a MUST in scope was not judged (-k, -x, a skip), and nothing failed

_MAX_REASON = 200
_MAX_DETAIL = 4000
_MAX_MESSAGE_LINES = 40
NOT_RUN_REASON = "did not run (deselected, or the run stopped before it)"
# user properties the plugin itself puts on reports; the others are a test's figures
_OWN_PROPERTIES = ("requirement", OUTCOME_PROPERTY)


@dataclass
class TestOutcome:
    """How one test ended, over its setup, call and teardown phases."""

    nodeid: str
    requirements: list[str] = field(default_factory=list)
    outcome: Literal["passed", "failed", "skipped", "xfailed", "xpassed"] = "passed"
    kind: str | None = None  # outcomes.classify() of the phase that decided it
    phase: str | None = None  # where it failed or was skipped
    reason: str = ""  # one line
    message: str = ""  # what the failure says: the suites put the command and output here
    detail: str = ""  # the failure's whole text (traceback), for the Markdown report
    figures: dict[str, object] = field(default_factory=dict)  # what record_figure recorded

    def add(self, report: Any) -> None:
        """Take in one phase's report (setup, call, teardown)."""
        kind = None
        for name, value in report.user_properties:
            if name == "requirement" and value not in self.requirements:
                self.requirements.append(value)
            elif name == OUTCOME_PROPERTY:
                kind = str(value)
            elif report.when == "teardown" and name not in _OWN_PROPERTIES:
                self.figures[name] = value
        xfail_reason = getattr(report, "wasxfail", None)
        if report.failed:
            if self.outcome != "failed":
                self.outcome, self.kind, self.phase = "failed", kind or ERROR, report.when
                self.reason = _crash_line(report, self.kind)
                self.message = _failure_message(report, self.kind)
                self.detail = redact(report.longreprtext)[-_MAX_DETAIL:]
        elif self.outcome == "failed":
            return
        elif report.skipped and xfail_reason is not None:
            self.outcome, self.reason = "xfailed", xfail_reason or "expected to fail"
            self.phase = report.when
        elif report.passed and xfail_reason is not None and report.when == "call":
            self.outcome, self.reason = "xpassed", xfail_reason or "expected to fail"
        elif report.skipped:
            self.outcome, self.kind, self.phase = "skipped", kind or NOT_RUN, report.when
            self.reason = _skip_reason(report)

    def verdict(self, allow_unavailable: bool) -> TestVerdict:
        if self.outcome in ("xfailed", "xpassed", "passed"):
            return self.outcome
        if self.kind == UNAVAILABLE:
            return "skipped" if allow_unavailable else "error"
        return {FAILED: "failed", UNSUPPORTED: "skipped", NOT_RUN: "not-run"}.get(
            self.kind or "", "error"
        )  # type: ignore[return-value]

    def to_json(self, allow_unavailable: bool) -> dict[str, Any]:
        return {
            "test": self.nodeid,
            "outcome": self.verdict(allow_unavailable),
            "phase": self.phase,
            "message": self.message or self.reason,
            "figures": self.figures,
        }


@dataclass(frozen=True, slots=True)
class RequirementResult:
    requirement: Requirement
    outcome: Verdict
    reason: str
    tests: tuple[str, ...]
    left_out: bool = False  # on purpose: not selected, or an unavailable part the user allowed


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


@dataclass(frozen=True, slots=True)
class Scope:
    """What a run set out to judge."""

    subjects: tuple[Subject, ...]
    only: frozenset[str] | None = None
    skip: frozenset[str] = frozenset()
    allow_unavailable: bool = False

    def selected(self, requirement_id: str) -> bool:
        return requirement_id not in self.skip and (
            self.only is None or requirement_id in self.only
        )


def judge(
    scope: Scope,
    collected: Mapping[str, Iterable[str]],
    outcomes: Mapping[str, TestOutcome],
    expectations: Expectations,
    deselected: Iterable[str] = (),
) -> list[RequirementResult]:
    """The verdict for every catalogue requirement. ``collected`` maps every test the run
    collected (before any deselection) to its requirement ids; ``outcomes`` holds the tests
    that reported; ``deselected`` names the tests ``-k``/``-m`` left out."""
    tests_of: dict[str, list[str]] = {}
    for nodeid, ids in collected.items():
        for rid in ids:
            tests_of.setdefault(rid, []).append(nodeid)
    for outcome in outcomes.values():
        for rid in outcome.requirements:
            if outcome.nodeid not in tests_of.setdefault(rid, []):
                tests_of[rid].append(outcome.nodeid)
    left_out = set(deselected)
    results = []
    for rid in sorted(CATALOGUE, key=sort_key):
        req = CATALOGUE[rid]
        names = tuple(tests_of.get(rid, ()))
        if req.subject not in scope.subjects:
            why = f"about the {req.subject}, which this run does not judge"
            results.append(RequirementResult(req, "not-applicable", why, names))
        elif not scope.selected(rid):
            why = "left out of this run (--conformance-only / --conformance-skip)"
            results.append(RequirementResult(req, "not-judged", why, names, left_out=True))
        else:
            tests = [outcomes.get(n) or _never_reported(n, n in left_out, rid) for n in names]
            results.append(
                _verdict(req, tests, expectations.reasons.get(rid), scope.allow_unavailable)
            )
    return results


def _never_reported(nodeid: str, deselected: bool, rid: str) -> TestOutcome:
    why = "deselected (-k, -m)" if deselected else NOT_RUN_REASON
    return TestOutcome(nodeid, [rid], "skipped", NOT_RUN, None, why)


def _verdict(
    req: Requirement, tests: list[TestOutcome], expected: str | None, allow_unavailable: bool
) -> RequirementResult:
    names = tuple(t.nodeid for t in tests)
    if not tests:
        return RequirementResult(req, "not-judged", "no test of it was collected", names)
    verdicts = [(t, t.verdict(allow_unavailable)) for t in tests]

    def first(wanted: TestVerdict) -> TestOutcome | None:
        return next((t for t, v in verdicts if v == wanted), None)

    if (hit := first("failed")) is not None:
        return RequirementResult(req, "failed", _short(f"{_short_test(hit)}: {hit.reason}"), names)
    if (hit := first("error")) is not None:
        why = f"{_short_test(hit)}: not judged, {hit.reason}"
        return RequirementResult(req, "error", _short(why), names)
    if (hit := first("xpassed")) is not None:
        why = f"expected to fail ({expected}) but passed: take it out of the expectations file"
        return RequirementResult(req, "xpassed", _short(why), names)
    if (hit := first("xfailed")) is not None:
        why = f"expected to fail: {expected or hit.reason}"
        return RequirementResult(req, "xfailed", _short(why), names)
    not_run = [t for t, v in verdicts if v == "not-run"]
    if not_run:
        why = f"{len(not_run)} of {len(tests)} test(s) not run: {not_run[0].reason}"
        return RequirementResult(req, "not-judged", _short(why), names)
    skipped = [t for t, v in verdicts if v == "skipped"]
    if len(skipped) == len(tests):
        unavailable = any(t.kind == UNAVAILABLE for t in skipped)
        return RequirementResult(req, "skipped", _short(skipped[0].reason), names, unavailable)
    why = f"{len(tests) - len(skipped)} test(s) passed"
    if skipped:
        why += f"; {len(skipped)} skipped: {skipped[0].reason}"
    return RequirementResult(req, "passed", _short(why), names)


@dataclass(frozen=True, slots=True)
class Gate:
    """What the run's verdict means for a release."""

    status: GateStatus
    failing: tuple[str, ...] = ()  # requirements that gate by failing (or by passing, unexpected)
    errors: tuple[str, ...] = ()  # requirements nothing could be judged of
    unjudged: tuple[str, ...] = ()  # requirements in scope that were not judged
    partial: bool = False  # the user left requirements out, or unavailable parts were skipped

    @property
    def exit_code(self) -> int:
        return {"passed": 0, "failed": 1, "error": EXIT_ERROR, "incomplete": EXIT_INCOMPLETE}[
            self.status
        ]

    def summary(self) -> str:
        """``FAILED (SYM.1, SYM.2)``, ``ERROR (nothing judged of CONN.4, ...)``, ..."""
        if self.status == "failed":
            text = f"FAILED ({', '.join(self.failing)})"
            if self.errors:
                text += f"; errors, not judged: {', '.join(self.errors)}"
            return text
        if self.status == "error":
            return f"ERROR (nothing judged of {', '.join(self.errors)}: see the errors)"
        if self.status == "incomplete":
            return f"INCOMPLETE (not judged: {', '.join(self.unjudged)})"
        return "passed" + (" (partial: requirements were left out)" if self.partial else "")


def gate(results: Iterable[RequirementResult], strict: bool) -> Gate:
    """The gate: failures first, then errors, then what was not judged."""
    results = list(results)

    def gates(r: RequirementResult) -> bool:
        return r.requirement.level is Level.MUST or strict

    failing = tuple(
        r.requirement.id
        for r in results
        if (r.outcome == "failed" and gates(r)) or (r.outcome == "xpassed" and strict)
    )
    errors = tuple(r.requirement.id for r in results if r.outcome == "error")
    unjudged = tuple(
        r.requirement.id
        for r in results
        if r.outcome == "not-judged" and not r.left_out and gates(r)
    )
    partial = any(r.left_out for r in results)
    if failing:
        return Gate("failed", failing, errors, unjudged, partial)
    if errors:
        return Gate("error", failing, errors, unjudged, partial)
    if unjudged:
        return Gate("incomplete", failing, errors, unjudged, partial)
    return Gate("passed", partial=partial)


# --- what a report says ---------------------------------------------------------------


def _short(text: str) -> str:
    line = " ".join(redact(text).split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."


def _short_test(outcome: TestOutcome) -> str:
    return short_test(outcome.nodeid)


def short_test(nodeid: str) -> str:
    return nodeid.rsplit("/", 1)[-1]


def _crash_line(report: Any, kind: str) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None) or str(report.longrepr).strip().splitlines()[-1:]
    text = message if isinstance(message, str) else " ".join(message)
    return _where(report, kind) + _without_exception_name(text.split("\n", 1)[0])


_PLAIN_EXCEPTIONS = ("AssertionError", "Failed", f"{SubjectFailure.__module__}.SubjectFailure")


def _without_exception_name(line: str) -> str:
    """A failure's words without the name of the exception that carried them (an assertion,
    ``pytest.fail``, :func:`~..outcomes.fail_subject`); other exceptions keep their name."""
    for name in _PLAIN_EXCEPTIONS:
        line = line.removeprefix(f"{name}: ")
    return line


def _where(report: Any, kind: str) -> str:
    """Where a failure or error happened, when it was not in the test itself."""
    if report.when == "call":
        return ""
    return f"error in {report.when}: " if kind == ERROR else f"in {report.when}: "


def _failure_message(report: Any, kind: str) -> str:
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
        kept[0] = _without_exception_name(kept[0])
    if report.when != "call":
        kept.insert(0, f"({_where(report, kind).rstrip(': ')})")
    if len(kept) > _MAX_MESSAGE_LINES:
        kept = [
            *kept[: _MAX_MESSAGE_LINES - 1],
            f"... ({len(kept) - _MAX_MESSAGE_LINES + 1} more lines)",
        ]
    return redact("\n".join(kept).rstrip())


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
    for kind in (
        "Skipped",
        *(f"{c.__module__}.{c.__qualname__}" for c in (Unavailable, Unsupported)),
    ):
        text = text.removeprefix(f"{kind}: ")
    return text or str(longrepr or "skipped")
