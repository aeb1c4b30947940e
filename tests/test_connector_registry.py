"""The toolkit's own connector registry (the reference fleet resolves its connectors through
it). The fleet suite judges CONN.1-3 on the fleet under test, through its `connector` command
(suites/fleet/test_conn_registry.py); these check the library itself, including what no fleet
shows from outside: registration is last-wins."""

from __future__ import annotations

import pytest

from mosaic_conformance.connectors import (
    KNOWN_CONNECTOR_KINDS,
    SHIPPED_FACTORIES,
    ConnectorConfig,
    ConnectorNotImplementedError,
    ConnectorRegistry,
    MatrixConfig,
    OrchestratorConnector,
    UnknownConnectorKind,
    default_registry,
    resolve_connector_kind,
)
from mosaic_conformance.connectors.types import ConnectorKind


class _Stub:
    """The least connector: the registry only passes it through."""

    def __init__(self, kind: ConnectorKind, config: ConnectorConfig | None = None) -> None:
        self._kind = kind
        self.config = config

    @property
    def kind(self) -> ConnectorKind:
        return self._kind

    def send(self, message: object) -> object:
        raise NotImplementedError

    def subscribe(self, handler: object) -> object:
        raise NotImplementedError

    def health(self) -> object:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _factory(kind: ConnectorKind) -> object:
    return lambda config: _Stub(kind, config)


def test_the_registry_knows_exactly_the_three_kinds() -> None:
    assert KNOWN_CONNECTOR_KINDS == ("tmux", "discord", "matrix")
    assert set(SHIPPED_FACTORIES) == set(KNOWN_CONNECTOR_KINDS)
    registry = default_registry()
    assert all(registry.has(kind) for kind in KNOWN_CONNECTOR_KINDS)


@pytest.mark.parametrize("kind", ["irc", "Matrix", "", "slack"])
def test_an_unknown_kind_is_rejected_with_a_clear_error(kind: str) -> None:
    with pytest.raises(UnknownConnectorKind, match=r"unknown connector kind .*expected one of"):
        resolve_connector_kind(ConnectorConfig(kind=kind))  # type: ignore[arg-type]
    with pytest.raises(UnknownConnectorKind):
        ConnectorRegistry().register(kind, _factory("tmux"))  # type: ignore[arg-type]


def test_no_connector_config_resolves_to_tmux() -> None:
    assert resolve_connector_kind(None) == "tmux"
    registry = ConnectorRegistry()
    registry.register("tmux", _factory("tmux"))  # type: ignore[arg-type]
    assert registry.create().kind == "tmux"


def test_an_unregistered_kind_raises_not_implemented_carrying_the_kind() -> None:
    with pytest.raises(ConnectorNotImplementedError, match="not implemented") as raised:
        ConnectorRegistry().create(ConnectorConfig(kind="matrix"))
    assert raised.value.kind == "matrix"
    with pytest.raises(ConnectorNotImplementedError) as raised:
        ConnectorRegistry().create()
    assert raised.value.kind == "tmux"


def test_registration_is_last_wins_and_the_config_reaches_the_factory_unchanged() -> None:
    registry = ConnectorRegistry()
    registry.register("matrix", _factory("tmux"))  # type: ignore[arg-type]
    registry.register("matrix", _factory("matrix"))  # type: ignore[arg-type]
    config = ConnectorConfig(
        kind="matrix",
        matrix=MatrixConfig("https://matrix.internal", "@mos:internal", "!room:internal"),
    )
    made = registry.create(config)
    assert isinstance(made, _Stub)
    assert made.kind == "matrix", "the first registration won; the last must"
    assert made.config is config
    assert isinstance(made, OrchestratorConnector)
