"""The black-box contract between a fleet, its connectors and the suites: the names every side
must agree on, stated once.

The reference fleet and the shipped connectors use these, and so do the suites; a foreign
fleet or connector follows the same contract (shared/SPEC.md, "The fleet under test").
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own would import typing: 3 ms of every fleet command
if TYPE_CHECKING:
    from typing import Literal

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


# A running agent keeps its heartbeat in this folder (relative to MOSAIC_HOME), in a file named
# after it; `fleet remove` deletes it with the agent's other files (SYM.3).
HEARTBEAT_DIR = "fleet/heartbeat"


def heartbeat_path(name: str) -> str:
    return f"{HEARTBEAT_DIR}/{name}"


# --- tmux --------------------------------------------------------------------------------
# One tmux server per fleet, and in it one session for the operator's chat and one per running
# agent. The holder unit starts the server with the chat session, so the tmux connector finds
# its session whenever the fleet is up; each agent unit opens its agent's session.

TMUX_SOCKET = "mosaic"  # the fleet's tmux server: `tmux -L mosaic`
ORCHESTRATOR_SESSION = "mosaic-orchestrator"  # the operator's chat (the tmux connector's default)
HOLDER_SESSION = ORCHESTRATOR_SESSION  # the session the holder unit starts the server with
CHAT_WINDOW = "mosaic-chat"  # the tmux connector's window in the chat session
AGENT_SESSION_PREFIX = "mosaic-agent-"  # a running agent NAME has session mosaic-agent-NAME


def agent_session(name: str) -> str:
    """The tmux session of agent ``name``. tmux turns "." in a session name into "_", which
    would make ``a.b`` and ``a_b`` one session; agent names have no "+", so "." becomes "+"."""
    return AGENT_SESSION_PREFIX + name.replace(".", "+")


def agent_of_session(session: str) -> str | None:
    """The agent name of a ``mosaic-agent-NAME`` session, else None."""
    if session.startswith(AGENT_SESSION_PREFIX) and len(session) > len(AGENT_SESSION_PREFIX):
        return session[len(AGENT_SESSION_PREFIX) :].replace("+", ".")
    return None


# --- connectors --------------------------------------------------------------------------

if TYPE_CHECKING:
    ConnectorKind = Literal["tmux", "discord", "matrix"]  # the same kinds as CONNECTOR_KINDS
CONNECTOR_KINDS: tuple[ConnectorKind, ...] = ("tmux", "discord", "matrix")
DEFAULT_CONNECTOR_KIND: ConnectorKind = "tmux"  # a roster without a connector block


def __getattr__(name: str) -> object:
    """``ConnectorKind`` at run time, made at first use (PEP 562): the fleet's commands,
    which never use it, need not import typing."""
    if name == "ConnectorKind":
        from typing import Literal

        return Literal[CONNECTOR_KINDS]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Tokens come only from these variables, never from the roster (ROS.4).
MATRIX_TOKEN_ENV = "MATRIX_ACCESS_TOKEN"
DISCORD_TOKEN_ENV = "DISCORD_BOT_TOKEN"
TOKEN_ENVS = (MATRIX_TOKEN_ENV, DISCORD_TOKEN_ENV)

# A connector program (the JSON-lines protocol) reads the roster's block here, as JSON.
CONNECTOR_CONFIG_ENV = "MOSAIC_CONNECTOR_CONFIG"

# Where a connector keeps its cursor (what it delivered) across its own restarts: a folder the
# fleet gives it under MOSAIC_HOME (the roster's ``connector.state_dir`` may name one instead).
CONNECTOR_STATE_ENV = "MOSAIC_CONNECTOR_STATE_DIR"
