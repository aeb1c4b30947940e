"""The requirement catalogue: the one place that states what the suites check.

Tests carry these ids as ``@pytest.mark.requirement("SYM.1")``; reports, the docs page
and ``--conformance-list`` are built from this table. Nothing else restates a requirement.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

# What a requirement is about: the fleet under test (its command) or the connector under test.
# A run judges the requirements of its subjects; the others are "not applicable".
Subject = Literal["fleet", "connector"]

# Bump when a requirement is added, removed or changes meaning; every report carries it.
CATALOGUE_VERSION = "1.1"


class Level(str, enum.Enum):
    MUST = "MUST"  # gates a release
    SHOULD = "SHOULD"  # reported; gates only with --strict


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    level: Level
    text: str
    subject: Subject = "fleet"

    @property
    def area(self) -> str:
        """The family the id belongs to: ``R5``, ``SYM``, ``ROS`` or ``CONN``."""
        return self.id.split(".", 1)[0]


MUST, SHOULD = Level.MUST, Level.SHOULD

_REQUIREMENTS = (
    # R5 — exactly one orchestrator
    Requirement(
        "R5.1",
        MUST,
        "`fleet init --profile P --write`, for every profile P but `minimal`, "
        "writes a roster with exactly one agent of class `orchestrator`.",
    ),
    Requirement(
        "R5.2",
        MUST,
        "`minimal` is the sanctioned no-orchestrator preset: init succeeds "
        "with zero orchestrators.",
    ),
    Requirement(
        "R5.3",
        MUST,
        "A non-minimal preset that would give != 1 orchestrators makes init "
        "exit non-zero with an error naming the count, and leaves no malformed roster "
        "behind (an earlier roster is untouched).",
    ),
    Requirement(
        "R5.4",
        SHOULD,
        "`fleet add --class orchestrator` on a fleet that has one is "
        "refused; the roster is unchanged.",
    ),
    Requirement(
        "R5.5",
        SHOULD,
        "`fleet remove` of the only orchestrator of a non-minimal fleet is refused unless forced.",
    ),
    # SYM — boot-survival symmetry
    Requirement(
        "SYM.1",
        MUST,
        "`fleet add NAME` runs `systemctl --user enable "
        "mosaic-agent@NAME.service`, with or without `--no-start`.",
    ),
    Requirement(
        "SYM.2",
        MUST,
        "An enable that fails on add is not fatal: exit 0, the agent is in "
        "the roster, a warning naming the unit is on stderr.",
    ),
    Requirement(
        "SYM.3",
        MUST,
        "`fleet remove NAME` stops and disables `mosaic-agent@NAME.service`, "
        "and removes its roster entry, env and heartbeat files.",
    ),
    Requirement(
        "SYM.4",
        MUST,
        "`fleet remove NAME --keep-files` stops the unit but neither "
        "disables it nor deletes its files.",
    ),
    Requirement(
        "SYM.5",
        MUST,
        "A disable that fails on remove is not fatal: a warning, and the "
        "roster entry is still removed.",
    ),
    Requirement(
        "SYM.6",
        MUST,
        "After any sequence of adds and removes, the enabled `mosaic-agent@` "
        "units are exactly the roster's agents: on a real systemd, after a restart, "
        "exactly the roster's agents come back.",
    ),
    Requirement(
        "SYM.7",
        MUST,
        "`fleet add` starts the unit unless `--no-start`; a failed start is an error.",
    ),
    Requirement(
        "SYM.8",
        MUST,
        "`fleet install` writes the units, enables them and enables linger for the user.",
    ),
    Requirement(
        "SYM.9",
        SHOULD,
        "`fleet ps` reports drift: a unit enabled but not in the roster, a "
        "roster agent whose unit is not enabled or not running, and a running agent whose "
        "tmux session is missing.",
    ),
    # ROS — the roster file and bad input
    Requirement(
        "ROS.1",
        MUST,
        "Every roster a fleet writes validates against the roster JSON "
        "Schema (version, transport, agents with name, runtime, class; optional "
        "`connector`).",
    ),
    Requirement(
        "ROS.2", MUST, "A roster without a `connector` block keeps working unchanged (tmux)."
    ),
    Requirement(
        "ROS.3",
        MUST,
        "An invalid roster, an unknown agent, a duplicate name or an agent "
        "name that is not a safe unit instance name gets a clear error naming the field, a "
        "non-zero exit, and changes nothing on disk or in systemd.",
    ),
    Requirement(
        "ROS.4",
        MUST,
        "No secret is ever stored in the roster: the schema has no token "
        "fields; tokens come from the environment and never appear in output, errors or "
        "reports.",
    ),
    Requirement(
        "ROS.5",
        SHOULD,
        "Roster writes are atomic and serialised: a crash mid-write or two "
        "concurrent `fleet add`s lose no agent and leave a valid roster.",
    ),
    # CONN — orchestrator chat connectors
    Requirement(
        "CONN.1",
        MUST,
        "The registry knows exactly `tmux`, `discord`, `matrix`; an unknown "
        "kind is rejected with a clear error.",
    ),
    Requirement("CONN.2", MUST, "No connector config resolves to `tmux` (back-compat)."),
    Requirement(
        "CONN.3",
        MUST,
        "Creating a kind with no registered factory raises a "
        "not-implemented error that carries the kind; registration is last-wins and the "
        "config reaches the factory unchanged.",
    ),
    Requirement(
        "CONN.4",
        MUST,
        "`send` on a healthy connector returns delivered with a message "
        "id, and the operator sees the text.",
        subject="connector",
    ),
    Requirement(
        "CONN.5",
        MUST,
        "`send` that cannot deliver (server down, bad token) returns "
        "not-delivered with an error; it does not raise.",
        subject="connector",
    ),
    Requirement(
        "CONN.6",
        MUST,
        "A retried send of the same message is delivered once (Matrix: the same txnId).",
        subject="connector",
    ),
    Requirement(
        "CONN.7",
        MUST,
        "`subscribe` delivers each operator message once, with text, "
        "sender and an ISO-8601 timestamp; the connector's own messages are not echoed "
        "back.",
        subject="connector",
    ),
    Requirement(
        "CONN.8",
        MUST,
        "After unsubscribe no more messages reach that handler.",
        subject="connector",
    ),
    Requirement(
        "CONN.9",
        MUST,
        "Threads: a send with a thread id lands in that thread; an operator "
        "reply in a thread arrives with its thread id.",
        subject="connector",
    ),
    Requirement(
        "CONN.10",
        MUST,
        "`health` is reachable and authenticated on a live server with a "
        "valid token; a bad token gives reachable but not authenticated; an unreachable "
        "server gives not reachable within a bounded time.",
        subject="connector",
    ),
    Requirement(
        "CONN.11",
        SHOULD,
        "No operator message is lost or duplicated across a dropped "
        "connection or a homeserver restart (resume from the saved `since`).",
        subject="connector",
    ),
    Requirement(
        "CONN.12",
        SHOULD,
        "Messages from senders outside the configured operators, or "
        "from other rooms, are not delivered.",
        subject="connector",
    ),
    Requirement(
        "CONN.13",
        SHOULD,
        "A connector that restarts (a new process, the same state folder) delivers every "
        "operator message posted while it was down exactly once, in order, and none delivered "
        "before the restart again.",
        subject="connector",
    ),
    Requirement(
        "CONN.14",
        MUST,
        "The token never appears in anything the connector returns, raises or writes: send "
        "results, health details, exceptions, and a program's output and standard error, "
        "with a valid token, a bad token and the server down.",
        subject="connector",
    ),
)

CATALOGUE: dict[str, Requirement] = {r.id: r for r in _REQUIREMENTS}


def sort_key(requirement_id: str) -> tuple[int, str, int]:
    """Catalogue order: areas as the spec lists them, then by number (SYM.2 before SYM.10)."""
    area, _, number = requirement_id.partition(".")
    areas = ("R5", "SYM", "ROS", "CONN")
    return (areas.index(area) if area in areas else len(areas), area, int(number or 0))
