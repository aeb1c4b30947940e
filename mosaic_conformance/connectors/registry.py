"""The connector registry (the seed's ``connectors/registry.ts``).

Implementations register a factory by kind; fleet core resolves one from roster config
without branching on kind. Registration is last-wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeGuard

from ..contract import CONNECTOR_KINDS
from .types import (
    DEFAULT_CONNECTOR_KIND,
    ConnectorConfig,
    ConnectorKind,
    OrchestratorConnector,
)

KNOWN_CONNECTOR_KINDS: tuple[ConnectorKind, ...] = CONNECTOR_KINDS

ConnectorFactory = Callable[[ConnectorConfig], OrchestratorConnector]


class UnknownConnectorKind(ValueError):
    def __init__(self, kind: object) -> None:
        known = ", ".join(KNOWN_CONNECTOR_KINDS)
        super().__init__(f"unknown connector kind {kind!r}: expected one of {known}")
        self.kind = kind


class ConnectorNotImplementedError(NotImplementedError):
    """No factory is registered for the requested kind."""

    def __init__(self, kind: ConnectorKind) -> None:
        super().__init__(
            f'Connector "{kind}" is not implemented yet. Register a factory on the registry '
            f"in use: registry.register({kind!r}, factory), where registry is a "
            "mosaic_conformance.connectors.ConnectorRegistry (default_registry() holds the "
            "shipped ones) and factory takes a ConnectorConfig."
        )
        self.kind = kind


def is_known_connector_kind(value: object) -> TypeGuard[ConnectorKind]:
    return isinstance(value, str) and value in KNOWN_CONNECTOR_KINDS


def resolve_connector_kind(config: ConnectorConfig | None = None) -> ConnectorKind:
    """The kind a roster asks for; no config means tmux, so old rosters keep working."""
    if config is None:
        return DEFAULT_CONNECTOR_KIND
    if not is_known_connector_kind(config.kind):
        raise UnknownConnectorKind(config.kind)
    return config.kind


class ConnectorRegistry:
    def __init__(self) -> None:
        self._factories: dict[ConnectorKind, ConnectorFactory] = {}

    def register(self, kind: ConnectorKind, factory: ConnectorFactory) -> None:
        if not is_known_connector_kind(kind):
            raise UnknownConnectorKind(kind)
        self._factories[kind] = factory

    def has(self, kind: ConnectorKind) -> bool:
        return kind in self._factories

    def create(self, config: ConnectorConfig | None = None) -> OrchestratorConnector:
        kind = resolve_connector_kind(config)
        factory = self._factories.get(kind)
        if factory is None:
            raise ConnectorNotImplementedError(kind)
        return factory(config if config is not None else ConnectorConfig(kind=kind))

    def reset(self) -> None:
        self._factories.clear()
