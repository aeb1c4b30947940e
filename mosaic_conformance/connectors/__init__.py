"""Orchestrator chat connectors: the contract, the registry and the shipped connectors.

Each shipped connector module offers ``create_connector(config) -> OrchestratorConnector``,
reading its token from the environment; :func:`default_registry` registers them by dotted
path, so a missing optional dependency (httpx, libtmux) fails only the kind that needs it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..load import load
from .registry import (
    KNOWN_CONNECTOR_KINDS,
    ConnectorFactory,
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

# The shipped factories, imported only when their kind is created.
# What a shipped connector's client library comes with (httpx, libtmux).
INSTALL_CONNECTORS = "pip install 'mosaic-conformance[connectors]'"

SHIPPED_FACTORIES: Mapping[ConnectorKind, str] = {
    "tmux": "mosaic_conformance.connectors.tmux:create_connector",
    "discord": "mosaic_conformance.connectors.discord:create_connector",
    "matrix": "mosaic_conformance.connectors.matrix:create_connector",
}


def load_factory(dotted: str) -> ConnectorFactory:
    """The factory named ``module:callable``."""
    factory: ConnectorFactory = load(dotted)
    return factory


def lazy_factory(dotted: str) -> ConnectorFactory:
    """A factory that imports ``dotted`` only when it is first called."""

    def create(config: ConnectorConfig) -> OrchestratorConnector:
        return load_factory(dotted)(config)

    return create


def default_registry() -> ConnectorRegistry:
    """A registry holding the shipped factories of all three kinds."""
    registry = ConnectorRegistry()
    for kind, dotted in SHIPPED_FACTORIES.items():
        registry.register(kind, lazy_factory(dotted))
    return registry


__all__ = [
    "DEFAULT_CONNECTOR_KIND",
    "INSTALL_CONNECTORS",
    "KNOWN_CONNECTOR_KINDS",
    "SHIPPED_FACTORIES",
    "ConnectorConfig",
    "ConnectorFactory",
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
    "default_registry",
    "is_known_connector_kind",
    "lazy_factory",
    "load_factory",
    "resolve_connector_kind",
]
