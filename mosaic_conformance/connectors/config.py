"""The roster's ``connector`` block, to and from :class:`~.types.ConnectorConfig`.

The block is validated by the roster schema before it gets here; this only turns it into
values (and back, for the JSON-lines protocol). Tokens are never part of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .registry import resolve_connector_kind
from .types import ConnectorConfig, DiscordConfig, MatrixConfig, TmuxConfig


def connector_config(block: Mapping[str, Any] | None) -> ConnectorConfig | None:
    """The config a roster's ``connector`` block asks for; None (no block) means tmux."""
    if block is None:
        return None
    kind = resolve_connector_kind(ConnectorConfig(kind=block.get("kind", "tmux")))

    def section(name: str) -> dict[str, Any] | None:
        value = block.get(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ValueError(f"connector.{name} must be a mapping, not {type(value).__name__}")
        settings = dict(value)
        if "operators" in settings:
            settings["operators"] = tuple(settings["operators"])
        return settings

    matrix, discord, tmux = section("matrix"), section("discord"), section("tmux")
    try:
        return ConnectorConfig(
            kind=kind,
            matrix=MatrixConfig(**matrix) if matrix else None,
            discord=DiscordConfig(**discord) if discord else None,
            tmux=TmuxConfig(**tmux) if tmux else TmuxConfig(),
            state_dir=_state_dir(block.get("state_dir")),
        )
    except TypeError as exc:  # an unknown or missing field
        raise ValueError(f"the connector block does not fit: {exc}") from exc


def _state_dir(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise ValueError(f"connector.state_dir must be a folder path, not {value!r}")


def connector_block(config: ConnectorConfig) -> dict[str, Any]:
    """The block for ``config`` (every section, empty ones as null)."""
    return dataclasses.asdict(config)
