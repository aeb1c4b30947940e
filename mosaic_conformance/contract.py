"""The black-box contract between a fleet and the suites: names both sides must agree on.

The reference fleet uses these, and so do the suites; a foreign fleet follows the same
contract (shared/SPEC.md, "The fleet under test").
"""

from __future__ import annotations

HOME_ENV = "MOSAIC_HOME"  # the fleet keeps all its state under this folder
ROSTER_PATH = "fleet/roster.yaml"  # relative to MOSAIC_HOME
PROFILES_ENV = "MOSAIC_FLEET_PROFILES"  # the reference fleet's profile folder variable

AGENT_UNIT_PREFIX = "mosaic-agent@"
AGENT_TEMPLATE = "mosaic-agent@.service"
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
