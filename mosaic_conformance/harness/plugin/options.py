"""Every option of the plugin, in one table: each makes a command-line flag and an ini value.

Flags are namespaced (``--conformance-*``) so that a project's own ``--backend`` or
``--connector`` never collides with ours; the ini name is the flag's dest
(``--conformance-backend`` is ``conformance_backend`` in ``pytest.ini`` or
``[tool.pytest.ini_options]``). The command line wins over the ini file. Values are checked
once, when the settings are built (``settings.py``), whichever of the two they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from ...contract import CONNECTOR_KINDS
from ..components import BACKENDS, CONTAINER_ENGINES, STARTABLE_HOMESERVERS

Kind = Literal["flag", "text", "ids"]
GROUP = "conformance"


@dataclass(frozen=True, slots=True)
class Option:
    """One option: ``name`` is what follows ``--conformance-`` ("" for ``--conformance``)."""

    name: str
    help: str
    kind: Kind = "text"
    metavar: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--conformance" + (f"-{self.name}" if self.name else "")

    @property
    def dest(self) -> str:
        """The argparse dest, and the ini name."""
        return self.flag.removeprefix("--").replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("", "run the shipped conformance suites (and only them)", "flag"),
    # what is judged: a fleet
    Option(
        "fleet-cmd",
        "the fleet under test, standing for `mosaic fleet` (split like a shell line); "
        "default: the bundled reference fleet",
        metavar="CMD",
    ),
    Option(
        "fleet-profiles",
        "the fleet's profiles to judge under R5.1 (default: the reference's own, or `general` "
        "for another fleet)",
        metavar="P[,P]",
    ),
    Option(
        "fleet-profiles-env",
        "the variable naming the fleet's profile folder (the reference's is "
        "MOSAIC_FLEET_PROFILES); without it R5.3 is skipped",
        metavar="VAR",
    ),
    Option(
        "backend",
        "where the fleet meets systemd: fake stand-ins (default) or a real systemd in a container",
        choices=tuple(BACKENDS),
    ),
    Option(
        "systemd-image", "systemd backend: use this image instead of building one", metavar="IMAGE"
    ),
    Option(
        "container-engine",
        "systemd backend: the container engine (default auto: a Docker engine, else Podman)",
        choices=CONTAINER_ENGINES,
    ),
    # what is judged: a connector
    Option(
        "connector",
        "run the connector suite on this kind of chat (alone: the shipped connector)",
        choices=CONNECTOR_KINDS,
    ),
    Option(
        "connector-factory",
        "the Python connector under test: CALLABLE(ConnectorConfig) -> connector",
        metavar="MODULE:CALLABLE",
    ),
    Option(
        "connector-cmd",
        "the connector under test: a program speaking the JSON-lines connector protocol",
        metavar="CMD",
    ),
    Option(
        "connector-recovery-wait",
        "CONN.11: how long every message may take to arrive after the faults (default 90 s; a "
        "connector that never recovers costs this much per test)",
        metavar="SECONDS",
    ),
    Option(
        "homeserver",
        "Matrix: the homeserver the suite starts itself (default synapse)",
        choices=STARTABLE_HOMESERVERS,
    ),
    Option(
        "homeserver-url",
        "Matrix: use this running homeserver instead of starting one",
        metavar="URL",
    ),
    Option(
        "homeserver-shared-secret",
        "Matrix, with a homeserver URL: Synapse's registration shared secret "
        "(or $MOSAIC_HOMESERVER_SHARED_SECRET)",
        metavar="SECRET",
    ),
    Option(
        "homeserver-registration-token",
        "Matrix, with a homeserver URL: a registration token for /register "
        "(or $MOSAIC_HOMESERVER_REGISTRATION_TOKEN); neither: open registration",
        metavar="TOKEN",
    ),
    # the verdict
    Option(
        "strict",
        "SHOULD failures, unexpected passes and SHOULDs not judged gate the run too (pytest's "
        "own --strict does this as well)",
        "flag",
    ),
    Option("skip", "do not judge these requirements (the report says it is partial)", "ids"),
    Option(
        "only",
        "judge only these requirements (the report says it is partial): for working on one gap",
        "ids",
    ),
    Option(
        "expect", "YAML mapping of requirement id to the reason it is known to fail", metavar="FILE"
    ),
    Option(
        "allow-unavailable",
        "a component asked for that cannot run here (container engine, homeserver, tmux) is "
        "skipped, not an error",
        "flag",
    ),
    Option(
        "seed",
        "the seed of every random draw of the suites, Hypothesis's included (default 1; "
        "'random' picks one); printed with every verdict",
        metavar="N",
    ),
    Option("report", "write DIR/conformance.json and DIR/conformance.md", metavar="DIR"),
    Option(
        "list", "print the requirement catalogue and the tests covering it; run nothing", "flag"
    ),
)

BY_NAME = {option.name: option for option in OPTIONS}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "Mosaic fleet and connector conformance")
    for option in OPTIONS:
        extra = f" [ini: {option.dest}]"
        if option.kind == "flag":
            group.addoption(
                option.flag, dest=option.dest, action="store_true", default=None, help=option.help
            )
            parser.addini(option.dest, f"default for {option.flag}", type="bool", default=None)
            continue
        group.addoption(
            option.flag,
            dest=option.dest,
            action="append" if option.kind == "ids" else "store",
            metavar=option.metavar or ("ID[,ID]" if option.kind == "ids" else None),
            choices=option.choices or None,
            default=None,
            help=option.help + extra,
        )
        parser.addini(option.dest, f"default for {option.flag}", type="string", default="")


def value(config: pytest.Config, name: str) -> str | bool | None:
    """The option's value: the command line's, else the ini file's, else None. An ``ids``
    option given several times comes back joined with commas."""
    option = BY_NAME[name]
    given = config.getoption(option.dest, None)
    if isinstance(given, list):
        given = ",".join(given)
    if given is not None:
        return given  # type: ignore[no-any-return]
    ini = config.getini(option.dest)
    if option.kind == "flag":
        return bool(ini) if ini is not None else None
    return str(ini).strip() or None


def given(config: pytest.Config, name: str) -> bool:
    """Whether the user gave this option at all (on the command line or in the ini file),
    even as an empty string."""
    option = BY_NAME[name]
    return config.getoption(option.dest, None) is not None or bool(config.getini(option.dest))
