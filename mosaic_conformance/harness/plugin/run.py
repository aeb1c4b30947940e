"""One conformance run's state and the hooks that keep it: which tests judge which requirement,
how each ended, what the components said of themselves, and the verdict at the end.

Registered by ``pytest_configure`` as a plugin object and found through ``config.stash``, like
pytest's ``junitxml.LogXML``. Under pytest-xdist every worker runs its share and sends what it
collected and learned to the controller, which alone judges, reports and sets the exit status.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ... import __version__
from ...catalogue import CATALOGUE, CATALOGUE_VERSION
from ...secrets import redact, secret_values
from ..outcomes import OUTCOME_PROPERTY, UNAVAILABLE, classify
from . import listing
from .report import add_junit_properties, write_reports
from .selection import SUITES_DIR, decide
from .settings import Settings
from .verdict import Gate, RequirementResult, Scope, TestOutcome, gate, judge

SUITE_TEST_TIMEOUT_S = 600  # a hung component fails one test, not the run
WORKER_OUTPUT = "mosaic_conformance"  # the key of what a worker sends the controller


class ConformanceRun:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.collected: dict[str, list[str]] = {}  # node id -> requirement ids, before -k
        self.covering: dict[str, list[str]] = {}  # requirement id -> test names, for listing
        self.deselected: set[str] = set()
        self.outcomes: dict[str, TestOutcome] = {}
        self.facts: dict[str, str] = {}
        self.fleet_calls = 0
        self.fleet_seconds = 0.0
        self.results: list[RequirementResult] = []
        self.gate: Gate | None = None
        self.written: list[Path] = []
        self.is_worker = hasattr(config, "workerinput")
        self.timeout = _default_timeout(config)

    # --- collection -------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)  # before -k and -m deselect: the verdict counts those
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        problems = []
        for item in items:
            ids = [str(i) for mark in item.iter_markers("requirement") for i in mark.args]
            decision = decide(ids, self.settings)
            if decision.problem:
                problems.append(f"{item.nodeid}: {decision.problem}")
                continue
            self.collected[item.nodeid] = ids
            for rid in ids:
                self.covering.setdefault(rid, []).append(listing.test_name(item, SUITES_DIR))
                item.user_properties.append(("requirement", rid))  # travels with reports
            if decision.skip:
                item.add_marker(pytest.mark.skip(reason=decision.skip))
                continue
            if decision.xfail:
                item.add_marker(pytest.mark.xfail(reason=f"expected: {decision.xfail}"))
            if self.timeout:
                item.add_marker(pytest.mark.timeout(self.timeout))
        if problems:
            raise pytest.UsageError(
                "conformance suite tests must judge a catalogue requirement:\n  "
                + "\n  ".join(problems)
            )

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected.update(item.nodeid for item in items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if not self.settings.listing:
            return None
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            listing.write(reporter, self.covering)
        return True

    # --- running ----------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        _redact_report(report)
        excinfo = call.excinfo
        kind = classify(report.when, report.outcome, excinfo.value if excinfo else None)
        if kind is not None:
            report.user_properties.append((OUTCOME_PROPERTY, kind))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = self.outcomes.setdefault(report.nodeid, TestOutcome(report.nodeid))
        outcome.add(report)
        if report.when == "teardown":
            for name, value in report.user_properties:
                if name == "fleet_calls":
                    self.fleet_calls += int(str(value))
                elif name == "fleet_seconds":
                    self.fleet_seconds += float(str(value))

    # --- xdist: the workers' share ----------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        shared = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
        if not shared:
            return
        for nodeid, ids in shared["collected"].items():
            self.collected.setdefault(nodeid, list(ids))
        self.deselected.update(shared["deselected"])
        self.facts.update(shared["facts"])

    # --- the verdict ------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)  # after junitxml has written its file
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            session.config.workeroutput[WORKER_OUTPUT] = {  # type: ignore[attr-defined]
                "collected": self.collected,
                "deselected": sorted(self.deselected),
                "facts": self.facts,
            }
            return
        if not self._judges(exitstatus):
            return
        settings = self.settings
        scope = Scope(settings.subjects, settings.only, settings.skip, settings.allow_unavailable)
        self.results = judge(
            scope, self.collected, self.outcomes, settings.expectations, self.deselected
        )
        self.gate = gate(self.results, settings.strict)
        session.exitstatus = self.gate.exit_code
        if settings.report_dir is not None:
            self.written = write_reports(
                settings.report_dir, self.meta(), self.gate, self.results, self.outcomes
            )
        xml = self.config.getoption("xmlpath", None)
        if xml and Path(xml).is_file():
            add_junit_properties(Path(xml), self.junit_properties())

    def _judges(self, exitstatus: int) -> bool:
        """A verdict only where tests were meant to be judged: not for --co, --fixtures,
        --conformance-list, nothing collected, a usage error or an interrupt."""
        option = self.config.option
        if self.settings.listing or getattr(option, "collectonly", False):
            return False
        if getattr(option, "showfixtures", False) or getattr(
            option, "show_fixtures_per_test", False
        ):
            return False
        return exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)

    def judged(self) -> dict[str, str]:
        """What was judged where, as the header and the reports name it."""
        settings = self.settings
        parts: dict[str, str] = {}
        if settings.judges_fleet:
            parts["fleet"] = settings.fleet_shown
            parts["backend"] = settings.backend
            image = settings.backend_options.get("image")
            if image:
                parts["image"] = str(image)
        if settings.connector is not None:
            parts["connector"] = f"{settings.connector.under_test} ({settings.connector.kind})"
            if settings.connector.homeserver:
                parts["homeserver"] = settings.connector.homeserver
        parts.update(self.facts)
        return parts

    def meta(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "tool": "mosaic-conformance",
            "version": __version__,
            "catalogue_version": CATALOGUE_VERSION,
            "subjects": list(settings.subjects),
            "judged": self.judged(),
            "strict": settings.strict,
            "seed": settings.seed,
            "allow_unavailable": settings.allow_unavailable,
            "selected": sorted(settings.only) if settings.only is not None else None,
            "left_out": sorted(settings.skip),
            "fleet_invocations": self.fleet_calls,
            "fleet_seconds": round(self.fleet_seconds, 3),
        }

    def junit_properties(self) -> dict[str, str]:
        assert self.gate is not None
        judged = {f"judged_{name}": value for name, value in self.judged().items()}
        return {
            "mosaic_conformance_version": __version__,
            "catalogue_version": CATALOGUE_VERSION,
            "seed": str(self.settings.seed),
            "strict": str(self.settings.strict),
            "gate": self.gate.status,
            **judged,
        }

    def header(self) -> list[str]:
        settings = self.settings
        lines = [
            f"mosaic-conformance {__version__} (requirement catalogue {CATALOGUE_VERSION}), "
            f"seed {settings.seed}" + (", strict" if settings.strict else "")
        ]
        if settings.listing:
            return lines
        judged = self.judged()
        if settings.judges_fleet:
            where = f"on the {judged['backend']} backend"
            if "image" in judged:
                where += f", image {judged['image']}"
            lines.append(f"judging the fleet: {judged['fleet']}, {where}")
        if settings.connector is not None:
            where = f", on {judged['homeserver']}" if "homeserver" in judged else ""
            lines.append(f"judging the connector: {judged['connector']}{where}")
        if settings.only is not None or settings.skip:
            lines.append("judging a part only: " + _selection(settings))
        if self.timeout is None and not self.config.pluginmanager.has_plugin("timeout"):
            lines.append("pytest-timeout is not active: a hung component can hang the run")
        return lines

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.gate is None:
            return
        tr = terminalreporter
        tr.write_sep("=", f"mosaic conformance (catalogue {CATALOGUE_VERSION})")
        for reason in self._unavailable():
            tr.write_line(f"unavailable: {reason}", red=not self.settings.allow_unavailable)
        quiet = [r for r in self.results if r.outcome == "not-applicable" or r.left_out]
        for r in self.results:
            if r in quiet and tr.verbosity < 1:
                continue
            markup = _COLOURS.get(r.outcome, {"yellow": True})
            tr.write(f"{r.requirement.id:<8} {r.requirement.level.value:<6} ")
            tr.write(f"{r.outcome.upper():<14}", **markup)
            tr.write_line(f" {r.reason}")
        if quiet and tr.verbosity < 1:
            tr.write_line(
                f"({len(quiet)} requirements not applicable or left out of this run; -v lists them)"
            )
        judged = ", ".join(f"{k} {v}" for k, v in self.judged().items())
        tr.write_line(f"judged: {judged}")
        seed = self.settings.seed
        tr.write_line(f"seed: {seed}  (--conformance-seed {seed} repeats this run's draws)")
        tr.write_line(
            f"gate: {self.gate.summary()}  (exit status {self.gate.exit_code})"
            + ("" if self.settings.strict else "  SHOULDs do not gate; --conformance-strict")
        )
        for path in self.written:
            tr.write_line(f"conformance report: {path}")

    def _unavailable(self) -> list[str]:
        """The distinct reasons components could not run, once each."""
        reasons = {t.reason for t in self.outcomes.values() if t.kind == UNAVAILABLE}
        return sorted(reasons)


_COLOURS: Mapping[str, dict[str, bool]] = {
    "passed": {"green": True},
    "failed": {"red": True},
    "error": {"red": True},
    "not-judged": {"yellow": True},
    "not-applicable": {"light": True},
}


def _selection(settings: Settings) -> str:
    parts = []
    if settings.only is not None:
        parts.append("only " + ", ".join(sorted(settings.only)))
    if settings.skip:
        parts.append("not " + ", ".join(sorted(settings.skip)))
    total = sum(CATALOGUE[r].subject in settings.subjects for r in CATALOGUE)
    return "; ".join(parts) + f" (of {total} requirements in scope)"


def _default_timeout(config: pytest.Config) -> int | None:
    """Our per-test timeout, unless pytest-timeout is not there or the user set their own."""
    if not config.pluginmanager.has_plugin("timeout"):
        return None
    user_timeout = config.getoption("timeout", None) or config.getini("timeout")
    return None if user_timeout else SUITE_TEST_TIMEOUT_S


def _redact_report(report: pytest.TestReport) -> None:
    """No token reaches the terminal, JUnit XML or our reports through a failure's text."""
    if not secret_values():
        return
    if report.longrepr is not None:
        text = report.longreprtext
        if redact(text) != text:
            report.longrepr = redact(text)
    report.sections = [(title, redact(body)) for title, body in report.sections]
