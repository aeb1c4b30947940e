"""Orchestrator chat connectors: the contract, the registry and the shipped connectors."""

from .registry import (
    KNOWN_CONNECTOR_KINDS,
    ConnectorNotImplementedError,
    ConnectorRegistry,
    UnknownConnectorKind,
    is_known_connector_kind,
    resolve_connector_kind,
)
from .types import (
    DEFAULT_CONNECTOR_KIND,
    ConnectorConfig,
    ConnectorHealth,
    ConnectorKind,
    DiscordConfig,
    InboundMessage,
    MatrixConfig,
    OrchestratorConnector,
    OutboundMessage,
    SendResult,
    TmuxConfig,
)

__all__ = [
    "DEFAULT_CONNECTOR_KIND",
    "KNOWN_CONNECTOR_KINDS",
    "ConnectorConfig",
    "ConnectorHealth",
    "ConnectorKind",
    "ConnectorNotImplementedError",
    "ConnectorRegistry",
    "DiscordConfig",
    "InboundMessage",
    "MatrixConfig",
    "OrchestratorConnector",
    "OutboundMessage",
    "SendResult",
    "TmuxConfig",
    "UnknownConnectorKind",
    "is_known_connector_kind",
    "resolve_connector_kind",
]
