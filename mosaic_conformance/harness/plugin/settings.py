"""The run's settings: what the options decide, checked once in ``pytest_configure``.

A mistake in them (a factory that does not load, a fleet command that is not a program, a
homeserver URL that is no URL, an unknown requirement id) is one ``UsageError`` before anything
runs, never a traceback per test. The settings are frozen for the rest of the run; the suites'
fixtures read them.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ...catalogue import CATALOGUE, Subject
from ...connectors import (
    INSTALL_CONNECTORS,
    SHIPPED_FACTORIES,
    ConnectorFactory,
    lazy_factory,
    load_factory,
)
from ...contract import PROFILES_ENV, ConnectorKind
from ...secrets import mask_also, redact
from ..chat.target import ConnectorMaker
from . import options
from .verdict import Expectations

REFERENCE_FLEET = (sys.executable, "-m", "mosaic_conformance.fleet")
REFERENCE_SHOWN = "the bundled reference fleet (python -m mosaic_conformance.fleet)"
REFERENCE_PROFILES = Path(__file__).parent.parent.parent / "fleet" / "profiles"
DEFAULT_BACKEND = "fake"
DEFAULT_SEED = 1  # fixed, so that a verdict is reproducible unless the user asks otherwise
DEFAULT_RECOVERY_WAIT_S = 90.0
DEFAULT_KIND_FOR_CUSTOM: ConnectorKind = "matrix"  # a factory or program without a kind
DEFAULT_HOMESERVER = "synapse"
SHARED_SECRET_ENV = "MOSAIC_HOMESERVER_SHARED_SECRET"
REGISTRATION_TOKEN_ENV = "MOSAIC_HOMESERVER_REGISTRATION_TOKEN"


@dataclass(frozen=True, slots=True)
class ConnectorSettings:
    """The connector under test and where it talks."""

    kind: ConnectorKind
    maker: ConnectorMaker
    under_test: str  # for the header and reports: "the shipped matrix connector", ...
    target_settings: Mapping[str, str] = field(repr=False)  # may hold a shared secret
    recovery_wait_s: float = DEFAULT_RECOVERY_WAIT_S
    unavailable: str | None = None  # why it cannot be made here (a missing dependency)

    @property
    def homeserver(self) -> str | None:
        """Matrix: the homeserver chosen (``external`` with its URL)."""
        if self.kind != "matrix":
            return None
        where = self.target_settings.get("homeserver", DEFAULT_HOMESERVER)
        url = self.target_settings.get("url")
        return f"{where} {url}" if url else f"{where} (started by the suite)"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run decides before it starts."""

    judges_fleet: bool
    fleet_cmd: tuple[str, ...]
    fleet_shown: str  # the fleet command as the header and reports show it (redacted)
    is_reference: bool
    profiles: tuple[str, ...]
    profiles_env: str | None
    backend: str
    backend_options: Mapping[str, object]
    connector: ConnectorSettings | None
    strict: bool
    skip: frozenset[str]
    only: frozenset[str] | None
    expectations: Expectations
    allow_unavailable: bool
    seed: int
    report_dir: Path | None
    listing: bool

    @property
    def subjects(self) -> tuple[Subject, ...]:
        judged: list[Subject] = ["fleet"] if self.judges_fleet else []
        return (*judged, "connector") if self.connector is not None else tuple(judged)

    @property
    def suites(self) -> tuple[str, ...]:
        """The shipped suites to run: one per subject (every suite when listing)."""
        return ("fleet", "connector") if self.listing else self.subjects

    def selected(self, requirement_id: str) -> bool:
        """Whether the user asked to judge it (``--conformance-only``/``-skip`` leave out)."""
        if requirement_id in self.skip:
            return False
        return self.only is None or requirement_id in self.only


def build(config: pytest.Config) -> Settings:
    """The settings of this run, from its options; a mistake is a ``UsageError``."""
    connector = _connector(config)
    fleet_given = options.given(config, "fleet-cmd")
    judges_fleet = connector is None or fleet_given or bool(options.value(config, "list"))
    fleet_cmd, is_reference = _fleet_command(config)
    profiles_env = _text(config, "fleet-profiles-env") or (PROFILES_ENV if is_reference else None)
    profiles = _text(config, "fleet-profiles")
    backend = _choice(config, "backend") or DEFAULT_BACKEND
    subjects = {"fleet"} if judges_fleet else set()
    subjects |= {"connector"} if connector is not None else set()
    expect = _text(config, "expect")
    report = _text(config, "report")
    return Settings(
        judges_fleet=judges_fleet,
        fleet_cmd=fleet_cmd,
        fleet_shown=REFERENCE_SHOWN if is_reference else redact(shlex.join(fleet_cmd)),
        is_reference=is_reference,
        profiles=tuple(p for p in (profiles or "").split(",") if p.strip())
        or (_reference_profiles() if is_reference else ("general",)),
        profiles_env=profiles_env,
        backend=backend,
        backend_options={
            "image": _text(config, "systemd-image"),
            "engine": _choice(config, "container-engine") or "auto",
        },
        connector=connector,
        strict=bool(options.value(config, "strict")) or _pytest_strict(config),
        skip=_ids(config, "skip", subjects) or frozenset(),
        only=_ids(config, "only", subjects),
        expectations=Expectations.load(Path(expect)) if expect else Expectations({}),
        allow_unavailable=bool(options.value(config, "allow-unavailable")),
        seed=_seed(_text(config, "seed")),
        report_dir=Path(report) if report else None,
        listing=bool(options.value(config, "list")),
    )


# --- the fleet ------------------------------------------------------------------------


def _fleet_command(config: pytest.Config) -> tuple[tuple[str, ...], bool]:
    if not options.given(config, "fleet-cmd"):
        return REFERENCE_FLEET, True
    text = options.value(config, "fleet-cmd")
    argv = _split(str(text or ""), "--conformance-fleet-cmd")
    if not argv:
        raise pytest.UsageError(
            "--conformance-fleet-cmd is empty: give the command that stands for `mosaic fleet` "
            "(leave the option out to judge the bundled reference fleet)"
        )
    _check_program(argv[0], "--conformance-fleet-cmd")
    return tuple(argv), tuple(argv) == REFERENCE_FLEET


def _reference_profiles() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in REFERENCE_PROFILES.glob("*.yaml")))


# --- the connector --------------------------------------------------------------------


def _connector(config: pytest.Config) -> ConnectorSettings | None:
    from ..chat.makers import factory_maker

    kind: ConnectorKind | None = _choice(config, "connector")  # type: ignore[assignment]
    factory = _text(config, "connector-factory")
    cmd = options.value(config, "connector-cmd")
    if factory and cmd is not None:
        raise pytest.UsageError(
            "give --conformance-connector-factory or --conformance-connector-cmd, not both"
        )
    if kind is None and not factory and cmd is None:
        return None
    kind = kind or DEFAULT_KIND_FOR_CUSTOM
    unavailable = None
    if factory:
        maker, under_test = factory_maker(_load_factory(factory)), f"the factory {factory}"
    elif cmd is not None:
        from ...connectors.jsonlines import command_maker

        argv = _split(str(cmd), "--conformance-connector-cmd")
        if not argv:
            raise pytest.UsageError(
                "--conformance-connector-cmd is empty: give the program that speaks the "
                "JSON-lines connector protocol"
            )
        _check_program(argv[0], "--conformance-connector-cmd")
        maker, under_test = command_maker(shlex.join(argv)), f"the program {redact(str(cmd))}"
    else:
        dotted = SHIPPED_FACTORIES[kind]
        try:
            load_factory(dotted)
        except ImportError as exc:  # an optional dependency: the component is unavailable
            unavailable = (
                f"the shipped {kind} connector cannot be loaded here ({exc}); install it with "
                f"{INSTALL_CONNECTORS}"
            )
        maker, under_test = factory_maker(lazy_factory(dotted)), f"the shipped {kind} connector"
    return ConnectorSettings(
        kind,
        maker,
        under_test,
        _target_settings(config, kind),
        _recovery_wait(config),
        unavailable,
    )


def _load_factory(dotted: str) -> ConnectorFactory:
    try:
        factory = load_factory(dotted)
    except (ImportError, AttributeError, ValueError) as exc:
        raise pytest.UsageError(
            f"--conformance-connector-factory {dotted}: cannot load it: {exc}"
        ) from None
    if not callable(factory):
        raise pytest.UsageError(
            f"--conformance-connector-factory {dotted}: not callable "
            f"({type(factory).__name__}); name a function taking a ConnectorConfig"
        )
    return factory


def _target_settings(config: pytest.Config, kind: ConnectorKind) -> dict[str, str]:
    url = _text(config, "homeserver-url")
    if not url:
        return {"homeserver": _choice(config, "homeserver") or DEFAULT_HOMESERVER}
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise pytest.UsageError(
            f"--conformance-homeserver-url {url!r}: not an http(s) URL with a host, like "
            "http://127.0.0.1:8008"
        )
    settings = {"homeserver": "external", "url": url}
    secret = _text(config, "homeserver-shared-secret") or os.environ.get(SHARED_SECRET_ENV)
    token = _text(config, "homeserver-registration-token") or os.environ.get(REGISTRATION_TOKEN_ENV)
    if secret:
        settings["shared_secret"] = secret
    if token:
        settings["registration_token"] = token
    mask_also(secret or "", token or "")
    return settings


def _recovery_wait(config: pytest.Config) -> float:
    text = _text(config, "connector-recovery-wait")
    if text is None:
        return DEFAULT_RECOVERY_WAIT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise pytest.UsageError(
            f"--conformance-connector-recovery-wait: {text!r} is not a number of seconds above 0"
        )
    return seconds


# --- the verdict ------------------------------------------------------------------------


def _ids(config: pytest.Config, name: str, subjects: set[str]) -> frozenset[str] | None:
    text = _text(config, name)
    if text is None:
        return None
    ids = frozenset(i.strip() for i in text.replace(" ", ",").split(",") if i.strip())
    flag = options.BY_NAME[name].flag
    unknown = sorted(ids - CATALOGUE.keys())
    if unknown:
        raise pytest.UsageError(
            f"{flag}: unknown requirement id(s) {', '.join(unknown)}; see --conformance-list"
        )
    foreign = sorted(i for i in ids if CATALOGUE[i].subject not in subjects)
    if foreign:
        raise pytest.UsageError(
            f"{flag}: {', '.join(foreign)} judge(s) a part this run does not test "
            f"(it tests: {' and '.join(sorted(subjects)) or 'nothing'})"
        )
    return ids


def _seed(text: str | None) -> int:
    if text is None:
        return DEFAULT_SEED
    if text == "random":
        return secrets.randbelow(2**32)
    try:
        return int(text)
    except ValueError:
        raise pytest.UsageError(
            f"--conformance-seed: {text!r} is not a seed; give an integer, or 'random'"
        ) from None


def _pytest_strict(config: pytest.Config) -> bool:
    """pytest >= 9 has a `strict` ini option (set by --strict); pytest 8 a --strict flag."""
    try:
        return bool(config.getini("strict"))
    except ValueError:
        return bool(config.getoption("strict", False))


# --- plain values -----------------------------------------------------------------------


def _text(config: pytest.Config, name: str) -> str | None:
    value = options.value(config, name)
    return str(value) if value is not None else None


def _choice(config: pytest.Config, name: str) -> str | None:
    """A value that must be one of the option's choices (an ini value is checked here, the
    command line already by argparse)."""
    value = _text(config, name)
    option = options.BY_NAME[name]
    if value is not None and value not in option.choices:
        raise pytest.UsageError(
            f"{option.flag} (or ini {option.dest}): {value!r} is not one of "
            f"{', '.join(option.choices)}"
        )
    return value


def _split(text: str, flag: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise pytest.UsageError(f"{flag} {text!r}: cannot split it like a shell: {exc}") from None


def _check_program(program: str, flag: str) -> None:
    """The program exists and can be run (so that a typo is one error, not every test's)."""
    if "/" in program:
        path = Path(program)
        if not path.is_file():
            raise pytest.UsageError(f"{flag}: {program!r} does not exist")
        if not os.access(path, os.X_OK):
            raise pytest.UsageError(f"{flag}: {program!r} is not executable")
    elif shutil.which(program) is None:
        raise pytest.UsageError(f"{flag}: {program!r} is not a program on PATH")
