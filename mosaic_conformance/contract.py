"""The black-box contract between a fleet, its connectors and the suites: the names every side
must agree on, stated once.

The reference fleet and the shipped connectors use these, and so do the suites; a foreign
fleet or connector follows the same contract (shared/SPEC.md, "The fleet under test").
"""

from __future__ import annotations

from typing import Literal, get_args

HOME_ENV = "MOSAIC_HOME"  # the fleet keeps all its state under this folder
ROSTER_PATH = "fleet/roster.yaml"  # relative to MOSAIC_HOME
PROFILES_ENV = "MOSAIC_FLEET_PROFILES"  # the reference fleet's profile folder variable

# --- systemd units -----------------------------------------------------------------------

AGENT_UNIT_PREFIX = "mosaic-agent@"
AGENT_TEMPLATE = "mosaic-agent@.service"
AGENT_UNIT_GLOB = "mosaic-agent@*"
HOLDER_UNIT = "mosaic-tmux-holder.service"
UNIT_PREFIX = "mosaic-"  # every unit a fleet owns


def agent_unit(name: str) -> str:
    return f"{AGENT_UNIT_PREFIX}{name}.service"


def agent_of(unit: str) -> str | None:
    """The agent name of a ``mosaic-agent@NAME.service`` unit, else None."""
    suffix = ".service"
    if unit.startswith(AGENT_UNIT_PREFIX) and unit.endswith(suffix):
        return unit[len(AGENT_UNIT_PREFIX) : -len(suffix)] or None
    return None


# --- tmux --------------------------------------------------------------------------------

TMUX_SOCKET = "mosaic"  # the fleet's tmux server: `tmux -L mosaic`
HOLDER_SESSION = "mosaic-holder"  # the session the holder unit keeps up
ORCHESTRATOR_SESSION = "mosaic-orchestrator"  # the tmux connector's chat session

# --- connectors --------------------------------------------------------------------------

ConnectorKind = Literal["tmux", "discord", "matrix"]
CONNECTOR_KINDS: tuple[ConnectorKind, ...] = get_args(ConnectorKind)
DEFAULT_CONNECTOR_KIND: ConnectorKind = "tmux"  # a roster without a connector block

# Tokens come only from these variables, never from the roster (ROS.4).
MATRIX_TOKEN_ENV = "MATRIX_ACCESS_TOKEN"
DISCORD_TOKEN_ENV = "DISCORD_BOT_TOKEN"
TOKEN_ENVS = (MATRIX_TOKEN_ENV, DISCORD_TOKEN_ENV)

# A connector program (the JSON-lines protocol) reads the roster's block here, as JSON.
CONNECTOR_CONFIG_ENV = "MOSAIC_CONNECTOR_CONFIG"

# Where a connector keeps its cursor (what it delivered) across its own restarts: a folder the
# fleet gives it under MOSAIC_HOME (the roster's ``connector.state_dir`` may name one instead).
CONNECTOR_STATE_ENV = "MOSAIC_CONNECTOR_STATE_DIR"
