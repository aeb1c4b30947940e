"""``mosaic fleet ...``: the reference fleet's command line.

Exit status: 0 success, 1 a refused or failed operation, 2 a usage error. Results go to
stdout, messages to stderr; no traceback reaches the user (``MOSAIC_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from functools import cache

from ..contract import HOME_ENV
from ..secrets import redact
from .commands import Fleet, FleetError, UsageError
from .profiles import DEFAULT_PROFILE, UnknownProfile
from .roster import DEFAULT_CLASS, RosterError


def _init(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help="default: %(default)s")
    parser.add_argument("--write", action="store_true", help="write $MOSAIC_HOME/fleet/roster.yaml")
    parser.add_argument("--force", action="store_true", help="replace an existing roster")


def _add(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--runtime", required=True, help="claude, codex, opencode, pi, ...")
    parser.add_argument("--class", dest="cls", default=DEFAULT_CLASS, help="default: %(default)s")
    parser.add_argument("--no-start", dest="start", action="store_false", help="enable only")


def _remove(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument(
        "--keep-files",
        action="store_true",
        help="stop only: keep the unit enabled and the agent's files",
    )
    parser.add_argument("--force", action="store_true", help="even the only orchestrator")


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")


def _name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")


def _nothing(parser: argparse.ArgumentParser) -> None:
    pass


# command: (its help, what adds its arguments)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "init": ("print (or --write) the roster of a profile", _init),
    "install": ("write and enable the units, start tmux, enable linger", _nothing),
    "add": ("add an agent, enable and start its unit", _add),
    "remove": ("stop, disable and forget an agent", _remove),
    "ps": ("agents, their units' state and tmux sessions, and drift", _json),
    "connector": ("the roster's chat connector and its health", _json),
    "start": ("start an agent's unit", _name),
    "stop": ("stop an agent's unit", _name),
}


class _Formatter(argparse.HelpFormatter):
    """argparse's own, told the terminal's width: argparse asks shutil, whose import is 3 ms
    of every start (a formatter is made for every argument, help or not)."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or _columns() - 2)


@cache
def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size says it: $COLUMNS, the terminal of
    stdout, else 80."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
        return 80


def _fleet_parser(prog: str, only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, of that command alone (building all eight costs several
    ms that every command would pay; what it parses is the same)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Manage a Mosaic agent fleet.", formatter_class=_Formatter
    )
    parser.add_argument("-V", "--version", action="version", version=_version_line())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (text, add_arguments) in COMMANDS.items():
        if only in (None, name):
            add_arguments(sub.add_parser(name, help=text, formatter_class=_Formatter))
    return parser


def _version_line() -> str:
    from .. import __version__

    return f"mosaic (mosaic-conformance reference fleet) {__version__}"


def _home() -> str:
    return os.environ.get(HOME_ENV) or os.path.expanduser("~/.config/mosaic")


def fleet_main(argv: Sequence[str] | None = None, prog: str = "mosaic fleet") -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), None)
    parser = _fleet_parser(prog, command if command in COMMANDS else None)
    args = parser.parse_args(words)
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
