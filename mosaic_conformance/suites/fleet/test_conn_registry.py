"""CONN.1-3: the fleet's connector registry, judged through the fleet under test.

The registry lives inside the fleet; from outside it shows through the roster's ``connector``
block and the fleet's ``connector --json`` command, which makes the connector the block asks
for (tmux when there is none, tokens from the environment), asks its health and prints one
JSON object with at least ``kind``, ``reachable`` and ``authenticated``. The suite writes the
roster, runs the command and looks at what reached the chat: the tmux calls on the backend,
the requests at a recording Matrix stand-in.

Not observable from outside, so not judged here: the order of registration (last-wins), and
the Matrix room (health asks ``/versions`` and ``/account/whoami``, neither names the room).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from mosaic_conformance.contract import CONNECTOR_KINDS, DISCORD_TOKEN_ENV, MATRIX_TOKEN_ENV
from mosaic_conformance.harness.chat.matrix_standin import WHOAMI_PATHS, MatrixStandIn
from mosaic_conformance.harness.chat.target import closed_port
from mosaic_conformance.harness.fleet import FleetUnderTest, Result
from mosaic_conformance.harness.outcomes import unsupported
from mosaic_conformance.harness.plugin import Settings
from mosaic_conformance.secrets import mask_also

from .checks import ONE_ORCHESTRATOR, explain

UNKNOWN_KINDS = ("irc", "slack", "Matrix")  # kinds are case-sensitive: "Matrix" is not one


@dataclass(frozen=True, slots=True)
class Answer:
    """What ``fleet connector --json`` said."""

    result: Result
    health: Mapping[str, Any] | None  # the JSON object it printed, if it printed one

    @classmethod
    def of(cls, result: Result) -> Answer:
        for line in reversed(result.stdout.strip().splitlines()):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                return cls(result, data)
        return cls(result, None)

    @property
    def kind(self) -> str | None:
        """The kind of connector it made, or None when it made none."""
        value = (self.health or {}).get("kind")
        return str(value) if value is not None else None

    @property
    def not_implemented(self) -> bool:
        """It knows the kind but has no connector for it (CONN.3's error)."""
        return self.result.exit_code != 0 and "not implemented" in self.result.stderr.lower()

    def names(self, fleet: FleetUnderTest, word: str) -> bool:
        """Whether its error names ``word``; the test's own folders are cut out first."""
        return word in self.result.stderr.replace(str(fleet.home.parent), "<tmp>")


@dataclass(frozen=True, slots=True)
class Chat:
    """The chat side of these tests: a Matrix stand-in that knows one token, the ids a block
    names, and the environment the fleet runs with (its tokens)."""

    standin: MatrixStandIn
    token: str
    user_id: str  # whom the token belongs to
    other_user_id: str  # a user the token does not belong to
    room_id: str
    channel_id: str
    env: Mapping[str, str]

    def block(self, kind: str, **matrix: str) -> dict[str, Any]:
        """A valid ``connector`` block of ``kind``; ``matrix`` replaces fields of its section."""
        if kind == "matrix":
            section = {"homeserver_url": self.standin.url, "user_id": self.user_id}
            return {"kind": kind, "matrix": {**section, "room_id": self.room_id, **matrix}}
        if kind == "discord":
            return {"kind": kind, "discord": {"channel_id": self.channel_id}}
        return {"kind": kind}


@pytest.fixture
def chat(conformance: Settings) -> Iterator[Chat]:
    draw = random.Random(conformance.seed)
    token = f"syt_conformance_{draw.getrandbits(64):016x}"
    discord_token = f"MTconformance.{draw.getrandbits(64):016x}"
    mask_also(token, discord_token)
    user_id = f"@mos-{draw.getrandbits(32):08x}:conformance.invalid"
    proxy = f"http://127.0.0.1:{closed_port()}"
    env = {
        MATRIX_TOKEN_ENV: token,
        DISCORD_TOKEN_ENV: discord_token,
        # The stand-in is on loopback; Discord is kept unreachable (a connector that honours
        # the proxy variables gets a refused connection), so no test talks to the real one.
        **{name: "127.0.0.1,localhost" for name in ("NO_PROXY", "no_proxy")},
        **{name: proxy for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")},
    }
    with MatrixStandIn({token: user_id}) as standin:
        yield Chat(
            standin,
            token,
            user_id,
            other_user_id=f"@someone-else-{draw.getrandbits(32):08x}:conformance.invalid",
            room_id=f"!room{draw.getrandbits(32):08x}:conformance.invalid",
            channel_id=str(draw.randrange(10**17, 10**18)),
            env=env,
        )


def ask(fleet: FleetUnderTest, chat: Chat, block: Mapping[str, Any] | None) -> Answer:
    """Plant a roster with ``block`` (none: no block) and run ``fleet connector --json``."""
    roster = copy.deepcopy(ONE_ORCHESTRATOR)
    if block is not None:
        roster["connector"] = dict(block)
    fleet.plant_roster(yaml.safe_dump(roster, sort_keys=False))
    return Answer.of(fleet.run("connector", "--json", env=chat.env))


# --- CONN.1 -----------------------------------------------------------------------------


@pytest.mark.requirement("CONN.1")
@pytest.mark.parametrize("kind", UNKNOWN_KINDS)
def test_an_unknown_kind_is_refused_naming_it(fleet: FleetUnderTest, chat: Chat, kind: str) -> None:
    # with a matrix section: a fleet that took "Matrix" for matrix would make a connector
    answer = ask(fleet, chat, {**chat.block("matrix"), "kind": kind})
    result = answer.result
    assert answer.kind is None, explain(
        result, f"for the unknown kind {kind!r} the fleet made a {answer.kind} connector"
    )
    assert result.exit_code != 0, explain(result, f"the unknown kind {kind!r} was accepted")
    assert "Traceback (most recent call last)" not in result.output, explain(
        result, f"the unknown kind {kind!r} gave a traceback, not an error"
    )
    assert answer.names(fleet, kind), explain(
        result, f"the error does not name the unknown kind {kind!r}"
    )


@pytest.mark.requirement("CONN.1")
@pytest.mark.parametrize("kind", CONNECTOR_KINDS)
def test_each_of_the_three_kinds_is_known(fleet: FleetUnderTest, chat: Chat, kind: str) -> None:
    answer = ask(fleet, chat, chat.block(kind))
    if answer.not_implemented:
        return  # a known kind without a factory (its error is CONN.3's to judge)
    made = f" (it made a {answer.kind} connector)" if answer.kind else ""
    assert answer.kind == kind, explain(
        answer.result, f"the fleet did not make a {kind} connector from a {kind} block{made}"
    )


# --- CONN.2 -----------------------------------------------------------------------------


@pytest.mark.requirement("CONN.2")
def test_a_roster_without_a_block_makes_the_tmux_connector(
    fleet: FleetUnderTest, chat: Chat
) -> None:
    answer = ask(fleet, chat, None)
    result = answer.result
    if answer.not_implemented and answer.names(fleet, "tmux"):
        return  # resolved to tmux, which this fleet cannot make (CONN.3 judges that)
    made = f"a {answer.kind} connector" if answer.kind else "no connector"
    assert answer.kind == "tmux", explain(
        result, f"a roster without a connector block made {made}, not the tmux one"
    )
    assert [c for c in result.calls if c.command == "tmux"], explain(
        result, "the fleet says it made the tmux connector, but nothing asked tmux"
    )


# --- CONN.3 -----------------------------------------------------------------------------


@pytest.mark.requirement("CONN.3")
@pytest.mark.parametrize("kind", CONNECTOR_KINDS)
def test_a_kind_without_a_factory_is_not_implemented_naming_it(
    fleet: FleetUnderTest, chat: Chat, kind: str
) -> None:
    answer = ask(fleet, chat, chat.block(kind))
    if not answer.not_implemented:
        unsupported(
            f"the fleet has a {kind} connector"
            if answer.kind == kind
            else f"the fleet neither made a {kind} connector nor said it is not implemented "
            "(CONN.1 judges that)"
        )
    assert answer.names(fleet, kind), explain(
        answer.result, f"the not-implemented error does not name the kind {kind!r}"
    )


@pytest.mark.requirement("CONN.3")
def test_the_block_reaches_the_matrix_connector_unchanged(
    fleet: FleetUnderTest, chat: Chat
) -> None:
    answer = ask(fleet, chat, chat.block("matrix"))
    if answer.not_implemented:
        unsupported("the fleet has no matrix connector: no config reaches a factory")
    result = answer.result
    assert answer.kind == "matrix", explain(result, "the matrix block made no matrix connector")
    seen = chat.standin.seen
    assert seen, explain(
        result, f"nothing reached the homeserver the block names ({chat.standin.url})"
    )
    asked = [s for s in seen if s.path in WHOAMI_PATHS]
    shown = "\n  ".join(map(str, seen))
    assert asked, explain(
        result, f"health never asked /account/whoami; the stand-in saw:\n  {shown}"
    )
    assert all(s.token_of == chat.user_id for s in asked), explain(
        result, f"whoami was not asked with the token of {MATRIX_TOKEN_ENV}:\n  {shown}"
    )
    assert (answer.health or {}).get("authenticated") is True, explain(
        result, f"the token is {chat.user_id}'s, the user the block names, yet not authenticated"
    )
    # The same token with a block naming another user: the user id reached the connector
    # only if it tells the two apart.
    other = ask(fleet, chat, chat.block("matrix", user_id=chat.other_user_id))
    assert (other.health or {}).get("authenticated") is False, explain(
        other.result,
        f"the block names {chat.other_user_id}, the token is {chat.user_id}'s, yet the "
        "connector says authenticated: the block's user_id did not reach it",
    )
