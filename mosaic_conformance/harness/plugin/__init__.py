"""``pytest --conformance``: run the shipped suites and judge, requirement by requirement.

Shaped like pytest's own plugins: options, then ``pytest_configure`` (which registers the
:class:`ConformanceRun` that keeps this run's state), then hooks. Without ``--conformance`` the
plugin only declares its marker, so installing the package changes no other test run.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ... import __version__
from ...catalogue import CATALOGUE, CATALOGUE_VERSION, Level
from ...contract import PROFILES_ENV
from ...secrets import redact, secret_values
from ..systems import BACKENDS, ENGINE_CHOICES
from .report import Expectations, RequirementResult, TestOutcome, judge, write_reports

# Suites shipped in the wheel, and the requirement areas each one judges.
SUITES_DIR = Path(__file__).parent.parent.parent / "suites"
SUITE_AREAS = {"fleet": ("R5", "SYM", "ROS"), "connector": ("CONN",)}
CONNECTOR_OPTIONS = (
    "conformance_connector",
    "conformance_connector_factory",
    "conformance_connector_cmd",
)

REFERENCE_FLEET = (sys.executable, "-m", "mosaic_conformance.fleet")
REFERENCE_PROFILES_ENV = PROFILES_ENV
SUITE_TEST_TIMEOUT_S = 600

run_key = pytest.StashKey["ConformanceRun"]()

# The connector suite's options and target live in their own plugin module.
pytest_plugins = ["mosaic_conformance.harness.plugin.connector"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "Mosaic fleet and connector conformance")
    group.addoption(
        "--conformance",
        action="store_true",
        help="run the shipped conformance suites (and only them)",
    )
    group.addoption(
        "--conformance-fleet-cmd",
        metavar="CMD",
        help="the fleet under test, standing for `mosaic fleet` (split like a "
        "shell line); default: the reference fleet",
    )
    group.addoption(
        "--conformance-fleet-profiles",
        metavar="P[,P]",
        help="the fleet's profiles to judge under R5.1 (default: the reference's "
        "own, or `general` for another fleet)",
    )
    group.addoption(
        "--conformance-fleet-profiles-env",
        metavar="VAR",
        help="the variable naming the fleet's profile folder (reference: "
        f"{REFERENCE_PROFILES_ENV}); without it R5.3 is skipped",
    )
    group.addoption(
        "--conformance-backend",
        choices=tuple(BACKENDS),
        help="where the fleet meets systemd: fake stand-ins (default) or a real "
        "systemd in a container",
    )
    group.addoption(
        "--conformance-systemd-image",
        metavar="IMAGE",
        help="systemd backend: use this image instead of building one",
    )
    group.addoption(
        "--conformance-container-engine",
        choices=ENGINE_CHOICES,
        help="systemd backend: the container engine (default auto: a Docker engine, "
        "else Podman through its socket or its CLI)",
    )
    group.addoption(
        "--conformance-strict",
        action="store_true",
        help="SHOULD failures and unexpected passes gate the run too (pytest's own "
        "--strict does this as well)",
    )
    group.addoption(
        "--conformance-skip",
        metavar="ID[,ID]",
        action="append",
        default=[],
        help="do not judge these requirements (reported as skipped)",
    )
    group.addoption(
        "--conformance-only",
        metavar="ID[,ID]",
        action="append",
        default=[],
        help="judge only these requirements: tests of no other id are skipped (for "
        "working on one gap)",
    )
    group.addoption(
        "--conformance-expect",
        metavar="FILE",
        help="YAML mapping of requirement id to the reason it is known to fail",
    )
    group.addoption(
        "--conformance-list",
        action="store_true",
        help="print the requirement catalogue and the tests covering it; run nothing",
    )
    group.addoption(
        "--conformance-report",
        metavar="DIR",
        help="write DIR/conformance.json and DIR/conformance.md",
    )
    parser.addini("conformance_fleet_cmd", "default for --conformance-fleet-cmd")
    parser.addini("conformance_backend", "default for --conformance-backend")
    parser.addini("conformance_container_engine", "default for --conformance-container-engine")
    parser.addini("conformance_report", "default for --conformance-report")
    parser.addini("conformance_expect", "default for --conformance-expect")


# Before Hypothesis's own pytest_configure, which loads `--hypothesis-profile`.
@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requirement(*ids): the catalogue requirement(s) a conformance test judges"
    )
    if not (config.getoption("conformance") or config.getoption("conformance_list")):
        return
    register_hypothesis_profiles()
    settings = Settings.from_config(config)
    config.args[:] = [str(SUITES_DIR / s) for s in settings.suites]
    run = ConformanceRun(config, settings)
    config.stash[run_key] = run
    config.pluginmanager.register(run, "mosaic-conformance-run")


def register_hypothesis_profiles() -> None:
    """The suites' Hypothesis profiles, for ``--hypothesis-profile``: ``mosaic-ci`` (the
    default: few derandomised examples, fast and reproducible) and ``mosaic-thorough``."""
    from hypothesis import HealthCheck, settings

    base = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)
    settings.register_profile(
        "mosaic-ci", base, max_examples=5, stateful_step_count=8, derandomize=True
    )
    settings.register_profile("mosaic-thorough", base, max_examples=60, stateful_step_count=25)


@pytest.fixture
def record_figure(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """Record a figure of what a test tried (cases, faults, messages) with its report and as a
    property of its JUnit testcase, like ``record_property`` but without its warning under
    pytest's default ``junit_family``."""
    return lambda name, value: request.node.user_properties.append((name, value))


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(run_key, None)
    if run is not None:
        del config.stash[run_key]
        config.pluginmanager.unregister(run)


def conformance_settings(config: pytest.Config) -> Settings:
    """The run's settings, for the suites' fixtures."""
    return config.stash[run_key].settings


def requirement_ids(item: pytest.Item) -> list[str]:
    return [str(i) for mark in item.iter_markers("requirement") for i in mark.args]


class Settings:
    """Everything the options decide, checked once (bad input is a usage error here)."""

    def __init__(self, config: pytest.Config) -> None:
        def option(name: str, ini: str | None = None) -> Any:
            value = config.getoption(name)
            return value if value or ini is None else (config.getini(ini) or None)

        fleet_cmd = option("conformance_fleet_cmd", "conformance_fleet_cmd")
        self.fleet_cmd: tuple[str, ...] = (
            tuple(shlex.split(fleet_cmd)) if fleet_cmd else REFERENCE_FLEET
        )
        if not self.fleet_cmd:
            raise pytest.UsageError(
                "--conformance-fleet-cmd is empty: give the command that stands for `mosaic fleet`"
            )
        self.is_reference = self.fleet_cmd == REFERENCE_FLEET
        self.backend: str = option("conformance_backend", "conformance_backend") or "fake"
        if self.backend not in BACKENDS:
            known = " or ".join(BACKENDS)
            raise pytest.UsageError(f"unknown backend {self.backend!r}: choose {known}")
        engine = option("conformance_container_engine", "conformance_container_engine")
        if engine not in (None, *ENGINE_CHOICES):
            known = ", ".join(ENGINE_CHOICES)
            raise pytest.UsageError(f"unknown container engine {engine!r}: choose {known}")
        self.backend_options: dict[str, object] = {
            "image": config.getoption("conformance_systemd_image"),
            "engine": engine or "auto",
        }
        self.profiles_env: str | None = config.getoption("conformance_fleet_profiles_env") or (
            REFERENCE_PROFILES_ENV if self.is_reference else None
        )
        profiles = config.getoption("conformance_fleet_profiles")
        self.profiles: tuple[str, ...] = (
            tuple(p for p in profiles.split(",") if p)
            if profiles
            else _reference_profiles()
            if self.is_reference
            else ("general",)
        )
        self.strict: bool = config.getoption("conformance_strict") or _pytest_strict(config)
        self.skip = _parse_ids(",".join(config.getoption("conformance_skip")), "--conformance-skip")
        only = ",".join(config.getoption("conformance_only"))
        self.only = _parse_ids(only, "--conformance-only") if only else None
        expect = option("conformance_expect", "conformance_expect")
        self.expectations = Expectations.load(Path(expect)) if expect else Expectations({})
        report = option("conformance_report", "conformance_report")
        self.report_dir: Path | None = Path(report) if report else None
        self.listing: bool = config.getoption("conformance_list")
        connector_chosen = any(config.getoption(o, None) for o in CONNECTOR_OPTIONS)
        if self.listing:
            self.suites: tuple[str, ...] = tuple(SUITE_AREAS)
        elif connector_chosen and not config.getoption("conformance_fleet_cmd"):
            self.suites = ("connector",)
        elif connector_chosen:
            self.suites = ("fleet", "connector")
        else:
            self.suites = ("fleet",)
        self.connector: str | None = next(
            (f"{o}={config.getoption(o)}" for o in CONNECTOR_OPTIONS if config.getoption(o, None)),
            None,
        )

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        return cls(config)

    @property
    def fleet_cmd_shown(self) -> str:
        if self.is_reference:
            return "reference (python -m mosaic_conformance.fleet)"
        return redact(shlex.join(self.fleet_cmd))

    def areas(self) -> tuple[str, ...]:
        return tuple(a for s in self.suites for a in SUITE_AREAS[s])


def _pytest_strict(config: pytest.Config) -> bool:
    """pytest >= 9 has a `strict` ini option (set by --strict); pytest 8 a --strict flag."""
    try:
        return bool(config.getini("strict"))
    except ValueError:
        return bool(config.getoption("strict", False))


def _reference_profiles() -> tuple[str, ...]:
    folder = Path(__file__).parent.parent.parent / "fleet" / "profiles"
    return tuple(sorted(p.stem for p in folder.glob("*.yaml")))


def _parse_ids(text: str, where: str) -> frozenset[str]:
    ids = frozenset(i.strip() for i in text.split(",") if i.strip())
    unknown = sorted(ids - CATALOGUE.keys())
    if unknown:
        raise pytest.UsageError(
            f"{where}: unknown requirement id(s) {', '.join(unknown)}; see --conformance-list"
        )
    return ids


class ConformanceRun:
    """This run's state: which tests judge which requirement, and how each test ended."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.outcomes: dict[str, TestOutcome] = {}
        self.covering: dict[str, list[str]] = {}
        self.results: list[RequirementResult] = []
        self.fleet_calls = 0
        self.fleet_seconds = 0.0
        self.written: list[Path] = []
        self.is_worker = hasattr(config, "workerinput")  # an xdist worker: no summary
        # A hung component fails one test, not the run; the user's own --timeout wins.
        user_timeout = config.getoption("timeout", None) or config.getini("timeout")
        self.default_timeout = None if user_timeout else SUITE_TEST_TIMEOUT_S

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.is_worker and not self.settings.listing:
            _record_suite_properties(self.config, self.suite_properties())

    def suite_properties(self) -> dict[str, str]:
        """What the JUnit XML says of the run as a whole: which editions judged what."""
        meta = self.report_meta_static()
        named = {
            "mosaic_conformance_version": meta["version"],
            "catalogue_version": meta["catalogue_version"],
            "backend": meta["backend"],
            "fleet_cmd": meta["fleet_cmd"],
            "connector": meta["connector"],
            "strict": meta["strict"],
        }
        return {name: str(value) for name, value in named.items() if value is not None}

    # --- collection -------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        problems = []
        for item in items:
            ids = requirement_ids(item)
            unknown = [i for i in ids if i not in CATALOGUE]
            if not ids:
                problems.append(f"{item.nodeid}: no @pytest.mark.requirement(...)")
            elif unknown:
                problems.append(f"{item.nodeid}: unknown requirement id(s) {', '.join(unknown)}")
            for i in ids:
                self.covering.setdefault(i, []).append(_test_name(item))
                # ids travel with every report (through xdist too) and into JUnit XML
                item.user_properties.append(("requirement", i))
            skipped = sorted(set(ids) & self.settings.skip)
            only = self.settings.only
            if skipped:
                item.add_marker(
                    pytest.mark.skip(reason=f"not judged: --conformance-skip {','.join(skipped)}")
                )
                continue
            if only is not None and not set(ids) & only:
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"not judged: --conformance-only {','.join(sorted(only))}"
                    )
                )
                continue
            expected = self.settings.expectations.reason_for(ids)
            if expected:
                item.add_marker(pytest.mark.xfail(reason=f"expected: {expected}", strict=False))
            if self.default_timeout:
                item.add_marker(pytest.mark.timeout(self.default_timeout))
        if problems:
            raise pytest.UsageError(
                "conformance suite tests must judge a catalogue requirement:\n  "
                + "\n  ".join(problems)
            )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if not self.settings.listing:
            return None
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", f"requirement catalogue {CATALOGUE_VERSION}")
            for req in CATALOGUE.values():
                tests = sorted(set(self.covering.get(req.id, [])))
                reporter.write_line(f"{req.id:<8} {req.level.value:<6} {req.text}")
                for test in tests or ["(no test)"]:
                    reporter.write_line(f"{'':15} {test}")
        return True

    # --- running ----------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        _redact_report(report)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = self.outcomes.setdefault(report.nodeid, TestOutcome(report.nodeid))
        outcome.add(report)
        for name, value in report.user_properties:
            if report.when == "teardown" and name == "fleet_calls":
                self.fleet_calls += int(str(value))
            elif report.when == "teardown" and name == "fleet_seconds":
                self.fleet_seconds += float(str(value))

    # --- the verdict ------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker or self.settings.listing:
            return
        self.results = judge(
            self.settings.areas(), self.outcomes.values(), self.settings.expectations
        )
        gate = self.gate_failures()
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            # SHOULD failures are reported, not gated, unless --strict
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if gate else pytest.ExitCode.OK
        if self.settings.report_dir is not None:
            self.written = write_reports(
                self.settings.report_dir, self.report_meta(), self.results, self.outcomes
            )

    def gate_failures(self) -> list[RequirementResult]:
        strict = self.settings.strict
        return [
            r
            for r in self.results
            if (r.outcome == "failed" and (r.requirement.level is Level.MUST or strict))
            or (r.outcome == "xpassed" and strict)
        ]

    def report_meta_static(self) -> dict[str, Any]:
        """What is known of the run before it starts."""
        fleet = "fleet" in self.settings.suites
        return {
            "tool": "mosaic-conformance",
            "version": __version__,
            "catalogue_version": CATALOGUE_VERSION,
            "backend": self.settings.backend if fleet else None,
            "fleet_cmd": self.settings.fleet_cmd_shown if fleet else None,
            "connector": self.settings.connector,
            "strict": self.settings.strict,
        }

    def report_meta(self) -> dict[str, Any]:
        return {
            **self.report_meta_static(),
            "gate": "failed" if self.gate_failures() else "passed",
            "gating": [r.requirement.id for r in self.gate_failures()],
            "fleet_invocations": self.fleet_calls,
            "fleet_seconds": round(self.fleet_seconds, 3),
        }

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.settings.listing or not self.results:
            return
        tr = terminalreporter
        tr.write_sep("=", f"mosaic conformance (catalogue {CATALOGUE_VERSION})")
        for r in self.results:
            colour = {
                "passed": {"green": True},
                "failed": {"red": True},
                "xpassed": {"yellow": True},
            }.get(r.outcome, {"yellow": True})
            tr.write(f"{r.requirement.id:<8} {r.requirement.level.value:<6} ")
            tr.write(f"{r.outcome.upper():<8}", **colour)
            tr.write_line(f" {r.reason}")
        gate = self.gate_failures()
        verdict = ("FAILED: " + ", ".join(r.requirement.id for r in gate)) if gate else "passed"
        tr.write_line(
            f"gate: {verdict}"
            + (
                ""
                if self.settings.strict
                else "  (SHOULD failures do not gate; --conformance-strict makes them)"
            )
        )
        for path in self.written:
            tr.write_line(f"conformance report: {path}")


def _record_suite_properties(config: pytest.Config, properties: dict[str, str]) -> None:
    """``<property>`` tags on the JUnit ``<testsuite>``, as ``record_testsuite_property`` makes
    them. That fixture is the only public way in, and it works on a test, not a session; its
    stash key is the same object, imported from pytest's module."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # a pytest that moved it: the JUnit XML goes without them
        return
    xml = config.stash.get(xml_key, None)
    if xml is not None:
        for name, value in properties.items():
            xml.add_global_property(name, value)


def _redact_report(report: pytest.TestReport) -> None:
    """No token reaches the terminal, JUnit XML or our reports through a failure's text."""
    if not secret_values():
        return
    if report.longrepr is not None:
        text = report.longreprtext
        if redact(text) != text:
            report.longrepr = redact(text)
    report.sections = [(title, redact(body)) for title, body in report.sections]


def _test_name(item: pytest.Item) -> str:
    """The test without its parameters, relative to the suites: ``fleet/test_sym.py::test_x``."""
    path = Path(str(item.path))
    try:
        shown = path.relative_to(SUITES_DIR).as_posix()
    except ValueError:
        shown = path.name
    name = getattr(item, "originalname", None) or item.name
    cls = getattr(item, "cls", None)
    return f"{shown}::{cls.__name__ + '::' if cls else ''}{name}"
