"""Orchestrator chat connectors: the contract (the seed's ``connectors/types.ts``).

A connector carries the chat between the fleet's orchestrator and its human operator:
``send`` (orchestrator to human), ``subscribe`` (human to orchestrator), ``health``
(reachable and authenticated). Threads are optional metadata (``thread_id``), so
thread-capable connectors fit without a change of interface.

The Python API is synchronous: ``subscribe`` delivers from a background thread of the
connector's own, and ``close`` stops it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..contract import DEFAULT_CONNECTOR_KIND, ORCHESTRATOR_SESSION, TMUX_SOCKET, ConnectorKind

__all__ = ["DEFAULT_CONNECTOR_KIND", "ConnectorKind"]  # re-exported: part of the API


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message the orchestrator sends to its operator."""

    text: str
    thread_id: str | None = None  # for thread-capable connectors
    attachments: tuple[str, ...] = ()  # paths or URLs; connector-dependent
    # The message's identity: a caller's retry of the same message carries the same key, and a
    # connector uses it as its idempotency key (Matrix txnId, Discord nonce).
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message from the operator."""

    id: str  # connector-scoped message id
    text: str
    sender: str  # connector-scoped sender id
    ts: str  # ISO-8601, when the connector saw or the server stamped it
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    delivered: bool
    message_id: str | None = None
    error: str | None = None  # why, when not delivered


@dataclass(frozen=True, slots=True)
class ConnectorHealth:
    reachable: bool
    authenticated: bool
    last_seen: str | None = None  # ISO-8601 of the last successful exchange
    detail: str | None = None


Unsubscribe = Callable[[], None]
Handler = Callable[[InboundMessage], None]


@runtime_checkable
class OrchestratorConnector(Protocol):
    """The contract every connector implements; fleet core depends on nothing else."""

    @property
    def kind(self) -> ConnectorKind: ...

    def send(self, message: OutboundMessage) -> SendResult:
        """Deliver to the operator; never raises for a delivery failure (CONN.5)."""
        ...

    def subscribe(self, handler: Handler) -> Unsubscribe:
        """Call ``handler`` once per operator message until the returned function is called."""
        ...

    def health(self) -> ConnectorHealth: ...

    def close(self) -> None:
        """Stop every background thread and release connections."""
        ...


@dataclass(frozen=True, slots=True)
class MatrixConfig:
    homeserver_url: str
    user_id: str
    room_id: str
    operators: tuple[str, ...] = ()  # user ids whose messages are delivered; empty: all others


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    channel_id: str
    operators: tuple[str, ...] = ()
    api_base: str = "https://discord.com/api/v10"


@dataclass(frozen=True, slots=True)
class TmuxConfig:
    socket_name: str = TMUX_SOCKET
    session: str = ORCHESTRATOR_SESSION


@dataclass(frozen=True, slots=True)
class ConnectorConfig:
    """The roster's ``connector`` block, parsed. Secrets are never here: tokens come from
    ``MATRIX_ACCESS_TOKEN`` / ``DISCORD_BOT_TOKEN`` in the environment."""

    kind: ConnectorKind
    matrix: MatrixConfig | None = None
    discord: DiscordConfig | None = None
    tmux: TmuxConfig = field(default_factory=TmuxConfig)
    # Where the connector keeps its cursor across restarts; None: ``MOSAIC_CONNECTOR_STATE_DIR``
    # in the environment names it (and without either, the cursor lives in memory only).
    state_dir: str | None = None
