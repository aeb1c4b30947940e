"""systemd user units of a fleet: their names, their files and the commands that drive them.

Every command is an argv list, run without a shell; the programs are found on ``PATH`` at run
time (the seam every conformance backend uses).
"""

from __future__ import annotations

import os

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


# `systemctl stop` of a unit the manager never loaded (no unit file yet) exits 5: nothing
# runs under that name, so for `remove` there is nothing to stop.
NOT_LOADED_EXIT = 5

# What `ps` asks of tmux, for every pane of the fleet's server in one call. ":" parts the
# fields: tmux allows it in no session name, and prints a tab as "_" in some locales.
TMUX_PANE_FORMAT = "#{session_name}:#{pane_dead}"


def tmux(*args: str) -> list[str]:
    return ["tmux", "-L", TMUX_SOCKET, *args]


def list_panes() -> list[str]:
    return tmux("list-panes", "-a", "-F", TMUX_PANE_FORMAT)


# --- unit files ------------------------------------------------------------------------

# The agent's program, run by its unit (`start`, `stop`) and in its tmux pane (`run`). Its
# variables come from the unit: MOSAIC_HOME and the agent's env file.
AGENT_RUNNER = f"""\
#!/bin/sh
# The reference fleet's agent runner.
#   start NAME  open the agent's tmux session on the fleet's server, running `run NAME`
#   stop NAME   close that session
#   run NAME    the agent: keeps a heartbeat and runs the agent's command if its env file
#               names one (MOSAIC_AGENT_EXEC), else stays up as a stand-in
set -u
verb=$1
name=$2
session=${{MOSAIC_AGENT_SESSION:?the env file of $name sets no MOSAIC_AGENT_SESSION}}
case $verb in
start)
    # a session left from before is the agent, still running
    tmux -L {TMUX_SOCKET} has-session -t "=$session" 2>/dev/null && exit 0
    exec tmux -L {TMUX_SOCKET} new-session -d -s "$session" \
        -e "MOSAIC_HOME=$MOSAIC_HOME" -e "MOSAIC_AGENT_SESSION=$session" \
        -e "MOSAIC_AGENT_NAME=${{MOSAIC_AGENT_NAME:-$name}}" \
        -e "MOSAIC_AGENT_RUNTIME=${{MOSAIC_AGENT_RUNTIME:-}}" \
        -e "MOSAIC_AGENT_CLASS=${{MOSAIC_AGENT_CLASS:-}}" \
        -e "MOSAIC_AGENT_EXEC=${{MOSAIC_AGENT_EXEC:-}}" \
        -- /bin/sh "$0" run "$name"
    ;;
stop)
    tmux -L {TMUX_SOCKET} kill-session -t "=$session" 2>/dev/null || true
    ;;
run)
    beat="$MOSAIC_HOME/fleet/heartbeat/$name"
    if [ -n "${{MOSAIC_AGENT_EXEC:-}}" ]; then
        date -u +%Y-%m-%dT%H:%M:%SZ >"$beat" 2>/dev/null || true
        exec /bin/sh -c "$MOSAIC_AGENT_EXEC"
    fi
    while :; do
        date -u +%Y-%m-%dT%H:%M:%SZ >"$beat" 2>/dev/null || true
        sleep 30
    done
    ;;
*)
    echo "usage: $0 start|stop|run NAME" >&2
    exit 2
    ;;
esac
"""


def agent_runner_path(home: str) -> str:
    return os.path.join(home, "fleet", "bin", "mosaic-agent-run")


def agent_template(home: str) -> str:
    # Paths are baked in at install time: the user manager does not know MOSAIC_HOME.
    # A oneshot that stays active: the agent lives in its tmux pane (a child of the tmux
    # server), so a pane that is gone while the unit is active is drift `ps` reports.
    runner = agent_runner_path(home)
    return f"""\
[Unit]
Description=Mosaic agent %i
Requires={HOLDER_UNIT}
After={HOLDER_UNIT}

[Service]
Type=oneshot
RemainAfterExit=yes
Environment=MOSAIC_HOME={home}
EnvironmentFile=-{home}/fleet/agents/%i.env
ExecStart=/bin/sh {runner} start %i
ExecStop=/bin/sh {runner} stop %i

[Install]
WantedBy=default.target
"""


def holder_unit(session: str = HOLDER_SESSION) -> str:
    """The tmux holder: the fleet's tmux server, started with the operator's chat session."""
    return f"""\
[Unit]
Description=Mosaic tmux holder (the fleet's tmux server and the operator's chat session)

[Service]
Type=forking
ExecStart=/usr/bin/env tmux -L {TMUX_SOCKET} new-session -d -s {session}
ExecStop=/usr/bin/env tmux -L {TMUX_SOCKET} kill-server
RemainAfterExit=yes

[Install]
WantedBy=default.target
"""
