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
    attachments: tuple[str, ...] = ()  # local file paths or http(s) URLs, as given
    # Stable for the life of the message, so a connector can make it its idempotency key
    # (Matrix txnId, Discord nonce): a caller that sends the same message again (CONN.6)
    # sends the same key, and a new message with the same text has another one.
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    def text_with_attachments(self, marker: str) -> str:
        """The text, and each attachment on a line of its own after ``marker``: how a chat
        shows what the connector does not upload."""
        return self.text + "".join(f"\n{marker} {a}" for a in self.attachments)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message from the operator."""

    id: str  # connector-scoped message id
    text: str
    sender: str  # connector-scoped sender id
    # ISO-8601 date and time with a UTC offset (``...T10:00:00Z``, ``...T10:00:00.5+02:00``),
    # when the server stamped it or, failing that, when the connector saw it
    ts: str
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
    # when this connector last had an answer from its server (ISO-8601 with a UTC offset);
    # None if it never had one
    last_seen: str | None = None
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
