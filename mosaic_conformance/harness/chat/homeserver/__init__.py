"""Homeservers for the Matrix connector suite, chosen by flag, imported only when chosen.

- ``synapse``: matrix-synapse from PyPI as a local process with SQLite on 127.0.0.1;
- ``conduit``: the Conduit container image, where Docker can get it;
- ``external``: a server the user already runs, given by URL and credentials.

Each can register accounts (:meth:`Homeserver.register`); the suite makes its operator,
connector and stranger users and its rooms with them.
"""

from __future__ import annotations

import abc
import functools
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from ....load import load
from ...components import HOMESERVERS
from ...outcomes import HarnessError
from ...systems.base import BackendUnavailable, Component
from .client import Account, HomeserverError, MatrixUser
from .probe import server_version

__all__ = [
    "HOMESERVERS",
    "Account",
    "Homeserver",
    "HomeserverError",
    "HomeserverNotReady",
    "HomeserverUnavailable",
    "MatrixUser",
    "open_homeserver",
]


class HomeserverUnavailable(BackendUnavailable):
    """This homeserver cannot run here; the message says why and what to install."""


class HomeserverNotReady(HarnessError):
    """The homeserver did not come back after the suite restarted it: the toolkit's
    trouble, not the connector's."""


class Homeserver(Component, abc.ABC):
    """A running homeserver, started by :meth:`start` and stopped by :meth:`close`."""

    name: ClassVar[str]

    def __init__(self, workdir: Path, options: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.options = dict(options)

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The client-server API base, e.g. ``http://127.0.0.1:40123``."""

    @abc.abstractmethod
    def start(self) -> None:
        """Start and wait until ``/versions`` answers; :class:`HomeserverUnavailable` if it
        cannot run here."""

    @abc.abstractmethod
    def register(self, localpart: str) -> Account:
        """A new account with an access token."""

    def restart(self, *, hard: bool = False) -> None:
        """Stop and start again, keeping what it stored; ``hard``: kill it without warning
        (SIGKILL), as a crash would. :class:`HomeserverNotReady` if it does not come back."""
        raise NotImplementedError(f"the {self.name} homeserver cannot be restarted by the suite")

    @property
    def can_restart(self) -> bool:
        return type(self).restart is not Homeserver.restart

    def close(self) -> None:
        """Stop whatever :meth:`start` started, also after a failure."""

    @functools.cached_property
    def version(self) -> str | None:
        """What the running server says it is (``Synapse 1.163.2``), for the report; None
        if it does not say."""
        return server_version(self.url)

    def register_unique(self, role: str) -> Account:
        """An account named after its role, unique on a server shared between runs."""
        return self.register(f"mosaic-{role}-{secrets.token_hex(4)}")


def open_homeserver(name: str, workdir: Path, options: Mapping[str, str]) -> Homeserver:
    """The homeserver called ``name``, not started yet."""
    try:
        dotted = HOMESERVERS[name]
    except KeyError:
        known = ", ".join(sorted(HOMESERVERS))
        raise ValueError(f"unknown homeserver {name!r}: choose one of {known}") from None
    try:
        cls: type[Homeserver] = load(dotted)
    except ImportError as exc:
        raise HomeserverUnavailable(f"the {name} homeserver cannot be loaded: {exc}") from exc
    return cls(workdir, options)
