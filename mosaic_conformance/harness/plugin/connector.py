"""Pointing the connector suite at a connector: its options, and the target they make.

- ``--conformance-connector KIND``: the kind of chat (``tmux``, ``discord``, ``matrix``);
  alone, it checks the shipped connector of that kind;
- ``--conformance-connector-factory MODULE:CALLABLE``: a Python connector, made by
  ``CALLABLE(ConnectorConfig)`` with its token in the environment;
- ``--conformance-connector-cmd "CMD"``: a program in any language speaking the JSON-lines
  protocol;
- ``--conformance-homeserver synapse|conduit`` or ``--conformance-homeserver-url URL`` (with
  ``--conformance-homeserver-shared-secret`` or ``--conformance-homeserver-registration-token``):
  the Matrix server.

A factory or a command without ``--conformance-connector`` is taken to speak Matrix.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ...connectors import SHIPPED_FACTORIES, ConnectorFactory, lazy_factory, load_factory
from ...connectors.types import ConnectorConfig, ConnectorKind, OrchestratorConnector
from ...contract import CONNECTOR_KINDS
from ...secrets import mask_also
from ..chat.target import ConnectorMaker, ConnectorTarget, TargetOptions, load_target

KINDS = CONNECTOR_KINDS
DEFAULT_KIND_FOR_CUSTOM: ConnectorKind = "matrix"
HOMESERVERS = ("synapse", "conduit")
DEFAULT_RECOVERY_WAIT_S = 90.0
SHARED_SECRET_ENV = "MOSAIC_HOMESERVER_SHARED_SECRET"
REGISTRATION_TOKEN_ENV = "MOSAIC_HOMESERVER_REGISTRATION_TOKEN"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption(
        "--conformance-connector",
        choices=KINDS,
        help="run the connector suite on this kind of chat (alone: the shipped connector)",
    )
    group.addoption(
        "--conformance-connector-factory",
        metavar="MODULE:CALLABLE",
        help="the Python connector under test: CALLABLE(ConnectorConfig) -> connector",
    )
    group.addoption(
        "--conformance-connector-cmd",
        metavar="CMD",
        help="the connector under test: a program speaking the JSON-lines connector protocol",
    )
    group.addoption(
        "--conformance-homeserver",
        choices=HOMESERVERS,
        help="Matrix: the homeserver the suite starts itself (default synapse)",
    )
    group.addoption(
        "--conformance-homeserver-url",
        metavar="URL",
        help="Matrix: use this running homeserver instead of starting one",
    )
    group.addoption(
        "--conformance-homeserver-shared-secret",
        metavar="SECRET",
        help="Matrix, with --conformance-homeserver-url: Synapse's registration shared secret "
        f"(or ${SHARED_SECRET_ENV})",
    )
    group.addoption(
        "--conformance-homeserver-registration-token",
        metavar="TOKEN",
        help="Matrix, with --conformance-homeserver-url: a registration token for /register "
        f"(or ${REGISTRATION_TOKEN_ENV}); neither: open registration",
    )
    group.addoption(
        "--conformance-connector-recovery-wait",
        type=_seconds,
        default=DEFAULT_RECOVERY_WAIT_S,
        metavar="SECONDS",
        help="CONN.11: how long every message may take to arrive after the faults "
        "(default %(default)g s; a connector that never recovers costs this much per test)",
    )


def _seconds(text: str) -> float:
    """A positive number of seconds; anything else names the problem (argparse alone would
    say "invalid _seconds value")."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


@dataclass(frozen=True, slots=True)
class ConnectorSettings:
    """What the connector options decide, checked once."""

    kind: ConnectorKind | None  # None: no connector chosen
    maker: ConnectorMaker | None
    under_test: str  # for reports: "shipped matrix", "factory pkg:make", "command ..."
    target_settings: Mapping[str, str] = field(repr=False)  # may hold a shared secret
    recovery_wait_s: float = DEFAULT_RECOVERY_WAIT_S

    @classmethod
    def from_config(cls, config: pytest.Config) -> ConnectorSettings:
        kind: ConnectorKind | None = config.getoption("conformance_connector", None)
        factory: str | None = config.getoption("conformance_connector_factory", None)
        cmd: str | None = config.getoption("conformance_connector_cmd", None)
        if factory and cmd:
            raise pytest.UsageError(
                "give --conformance-connector-factory or --conformance-connector-cmd, not both"
            )
        if (factory or cmd) and kind is None:
            kind = DEFAULT_KIND_FOR_CUSTOM
        maker: ConnectorMaker | None = None
        under_test = ""
        if kind is not None:
            if factory:
                maker, under_test = _factory_maker(_load(factory)), f"factory {factory}"
            elif cmd:
                from ...connectors.jsonlines import command_maker

                maker, under_test = command_maker(cmd), "command (--conformance-connector-cmd)"
            else:  # loaded when the suite starts: a missing dependency skips, not errs
                maker = _factory_maker(lazy_factory(SHIPPED_FACTORIES[kind]))
                under_test = f"the shipped {kind} connector"
        recovery_wait_s = config.getoption(
            "conformance_connector_recovery_wait", DEFAULT_RECOVERY_WAIT_S
        )
        return cls(kind, maker, under_test, _target_settings(config), recovery_wait_s)

    def unavailable(self) -> str | None:
        """Why the shipped connector chosen cannot be loaded here, if it cannot."""
        if self.kind is None or not self.under_test.startswith("the shipped"):
            return None
        try:
            load_factory(SHIPPED_FACTORIES[self.kind])
        except ImportError as exc:
            return f"the shipped {self.kind} connector cannot be loaded: {exc}"
        return None


def _load(dotted: str) -> ConnectorFactory:
    try:
        return load_factory(dotted)
    except (ImportError, AttributeError, ValueError) as exc:
        raise pytest.UsageError(f"cannot load the connector factory {dotted!r}: {exc}") from exc


def _target_settings(config: pytest.Config) -> dict[str, str]:
    url = config.getoption("conformance_homeserver_url", None)
    if not url:
        return {"homeserver": config.getoption("conformance_homeserver", None) or "synapse"}
    settings = {"homeserver": "external", "url": url}
    secret = config.getoption("conformance_homeserver_shared_secret", None) or os.environ.get(
        SHARED_SECRET_ENV
    )
    token = config.getoption("conformance_homeserver_registration_token", None) or os.environ.get(
        REGISTRATION_TOKEN_ENV
    )
    if secret:
        settings["shared_secret"] = secret
    if token:
        settings["registration_token"] = token
    mask_also(secret or "", token or "")
    return settings


# Tokens reach in-process factories through the environment, as in production; the
# variables are set only while a factory runs.
_environ_lock = threading.Lock()


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    with _environ_lock:
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, old in saved.items():
                if old is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = old


def _factory_maker(factory: ConnectorFactory) -> ConnectorMaker:
    def make(config: ConnectorConfig, env: Mapping[str, str]) -> OrchestratorConnector:
        with _environment(env):
            return factory(config)

    return make


@contextlib.contextmanager
def open_connector_target(settings: ConnectorSettings, workdir: Path) -> Iterator[ConnectorTarget]:
    """The chosen kind's target, up for as long as the context lasts."""
    if settings.kind is None or settings.maker is None:
        raise LookupError("no connector was chosen")
    options = TargetOptions(settings.kind, settings.maker, workdir, settings.target_settings)
    with load_target(settings.kind)(options) as target:
        yield target
