"""``mosaic fleet ...``: the reference fleet's command line.

Exit status: 0 success, 1 a refused or failed operation, 2 a usage error. Results go to
stdout, messages to stderr; no traceback reaches the user (``MOSAIC_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..contract import HOME_ENV
from ..secrets import redact
from .commands import Fleet, FleetError, UsageError
from .profiles import DEFAULT_PROFILE, UnknownProfile
from .roster import DEFAULT_CLASS, RosterError


def _fleet_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Manage a Mosaic agent fleet.")
    parser.add_argument("-V", "--version", action="version", version=_version_line())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="print (or --write) the roster of a profile")
    init.add_argument("--profile", default=DEFAULT_PROFILE, help="default: %(default)s")
    init.add_argument("--write", action="store_true", help="write $MOSAIC_HOME/fleet/roster.yaml")
    init.add_argument("--force", action="store_true", help="replace an existing roster")

    sub.add_parser("install", help="write and enable the units, enable linger")

    add = sub.add_parser("add", help="add an agent, enable and start its unit")
    add.add_argument("name")
    add.add_argument("--runtime", required=True, help="claude, codex, opencode, pi, ...")
    add.add_argument("--class", dest="cls", default=DEFAULT_CLASS, help="default: %(default)s")
    add.add_argument("--no-start", dest="start", action="store_false", help="enable only")

    remove = sub.add_parser("remove", help="stop, disable and forget an agent")
    remove.add_argument("name")
    remove.add_argument(
        "--keep-files",
        action="store_true",
        help="stop only: keep the unit enabled and the agent's files",
    )
    remove.add_argument("--force", action="store_true", help="even the only orchestrator")

    ps = sub.add_parser("ps", help="agents, their units' state, and drift")
    ps.add_argument("--json", action="store_true")

    connector = sub.add_parser("connector", help="the roster's chat connector and its health")
    connector.add_argument("--json", action="store_true")

    for verb in ("start", "stop"):
        sub.add_parser(verb, help=f"{verb} an agent's unit").add_argument("name")
    return parser


def _version_line() -> str:
    from .. import __version__

    return f"mosaic (mosaic-conformance reference fleet) {__version__}"


def _home() -> Path:
    home = os.environ.get(HOME_ENV)
    return Path(home) if home else Path.home() / ".config" / "mosaic"


def fleet_main(argv: Sequence[str] | None = None, prog: str = "mosaic fleet") -> int:
    parser = _fleet_parser(prog)
    args = parser.parse_args(argv)
    fleet = Fleet(_home(), sys.stdout, sys.stderr)
    try:
        if args.command == "init":
            fleet.init(args.profile, args.write, args.force)
        elif args.command == "install":
            fleet.install()
        elif args.command == "add":
            fleet.add(args.name, args.runtime, args.cls, args.start)
        elif args.command == "remove":
            fleet.remove(args.name, args.keep_files, args.force)
        elif args.command == "ps":
            fleet.ps(args.json)
        elif args.command == "connector":
            fleet.connector(args.json)
        else:
            fleet.start_stop(args.command, args.name)
    except (UsageError, UnknownProfile) as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write(redact(f"{prog}: error: {exc}") + "\n")
        return 2
    except (FleetError, RosterError) as exc:
        sys.stderr.write(redact(f"Error: {exc}") + "\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an unexpected failure still gets one clear line
        if os.environ.get("MOSAIC_DEBUG"):
            raise
        sys.stderr.write(redact(f"Error: {type(exc).__name__}: {exc}") + "\n")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``mosaic``: today it has one command group, ``fleet``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["fleet"]:
        return fleet_main(args[1:])
    if args[:1] in (["--version"], ["-V"]):
        print(_version_line())
        return 0
    sys.stderr.write("usage: mosaic fleet COMMAND ...  (mosaic fleet --help for the commands)\n")
    return 0 if args[:1] in (["-h"], ["--help"]) else 2


if __name__ == "__main__":
    sys.exit(main())
