"""systemd user units of a fleet: their names, their files and the commands that drive them.

Every command is an argv list, run without a shell; the programs are found on ``PATH`` at run
time (the seam every conformance backend uses).
"""

from __future__ import annotations

from pathlib import Path

from ..contract import AGENT_UNIT_GLOB, HOLDER_SESSION, HOLDER_UNIT, TMUX_SOCKET

# What `ps` asks of systemd, for every unit in one call.
PS_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState")


def systemctl(verb: str, *args: str) -> list[str]:
    return ["systemctl", "--user", verb, *args]


def show_units(units: list[str]) -> list[str]:
    return systemctl("show", "--property=" + ",".join(PS_PROPERTIES), *units)


def list_agent_units() -> list[str]:
    # --all lists inactive units too; an enabled unit is loaded (default.target wants it)
    return systemctl("list-units", "--all", "--plain", "--no-legend", "--full", AGENT_UNIT_GLOB)


def enable_linger(user: str) -> list[str]:
    return ["loginctl", "enable-linger", user]


# --- unit files ------------------------------------------------------------------------

AGENT_RUNNER = """\
#!/bin/sh
# The reference fleet's agent process: keeps a heartbeat and runs the agent's command,
# if its env file names one (MOSAIC_AGENT_EXEC), else stays up as a stand-in.
set -u
name=$1
beat="$MOSAIC_HOME/fleet/heartbeat/$name"
if [ -n "${MOSAIC_AGENT_EXEC:-}" ]; then
    date -u +%Y-%m-%dT%H:%M:%SZ >"$beat" 2>/dev/null || true
    exec /bin/sh -c "$MOSAIC_AGENT_EXEC"
fi
while :; do
    date -u +%Y-%m-%dT%H:%M:%SZ >"$beat" 2>/dev/null || true
    sleep 30
done
"""


def agent_runner_path(home: Path) -> Path:
    return home / "fleet" / "bin" / "mosaic-agent-run"


def agent_template(home: Path) -> str:
    # Paths are baked in at install time: the user manager does not know MOSAIC_HOME.
    return f"""\
[Unit]
Description=Mosaic agent %i
After={HOLDER_UNIT}

[Service]
Type=simple
Environment=MOSAIC_HOME={home}
EnvironmentFile=-{home}/fleet/agents/%i.env
ExecStart=/bin/sh {agent_runner_path(home)} %i
Restart=on-failure
RestartSec=5

[Install]
WantedBy=default.target
"""


def holder_unit() -> str:
    return f"""\
[Unit]
Description=Mosaic tmux holder (keeps the fleet's tmux server up)

[Service]
Type=forking
ExecStart=/usr/bin/env tmux -L {TMUX_SOCKET} new-session -d -s {HOLDER_SESSION}
ExecStop=/usr/bin/env tmux -L {TMUX_SOCKET} kill-server
RemainAfterExit=yes

[Install]
WantedBy=default.target
"""
