"""ROS.4 for the whole toolkit: with ``MATRIX_ACCESS_TOKEN`` and ``DISCORD_BOT_TOKEN`` set to
known values, run every fleet command and the suites, failures included, and search every
output, log, report (JSON, Markdown, JUnit XML) and failure text for a token: zero hits.

A run that only passes proves little, so the suites run against leaky variants: a fleet
that prints the token in an error (ROS.4 must catch it, and still show it masked), and
connectors that put every token they were given in their errors, logs, stdout and repr
(each writes what it leaked to a ledger, so the sweep knows what to look for, including
tokens the suite made itself). Plus: no repr of the toolkit's objects holds a token.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from test_broken_fleets import EXPECTED, JUDGED_IN_TEST_SECRETS

from mosaic_conformance.harness.systems import Backend, create_session
from mosaic_conformance.secrets import MASK, SECRET_ENV_VARS

pytest_plugins = ["pytester"]

KNOWN = {
    "MATRIX_ACCESS_TOKEN": "syt_sweepMatrixToken_Q2K5m3x",
    "DISCORD_BOT_TOKEN": "MTsweep.DiscordBotToken.u7Yq2Zr",
}
# The fleet suite's own known tokens (its ROS.4 check hands them to the fleet): never shown.
SUITE_TOKENS = ("syt_conformance_matrix_3f9a7c", "MTconformance.discord.bot.7d1e")
BROKEN_FLEETS = Path(__file__).parent / "broken_fleets.py"
BROKEN_CONNECTORS = Path(__file__).parent / "broken_connectors.py"  # holds the Wrapping base
LEDGER = "leaked.txt"  # what the leaky connectors leaked, one token a line

HAS_TMUX = shutil.which("tmux") is not None
HAS_SYNAPSE = importlib.util.find_spec("synapse") is not None


@pytest.fixture
def known_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    assert set(KNOWN) == set(SECRET_ENV_VARS)
    for name, value in KNOWN.items():
        monkeypatch.setenv(name, value)
    return list(KNOWN.values())


def hits(text: str | bytes, needles: Iterable[str], where: str) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [f"{where}: {needle[:6]}..." for needle in needles if needle.encode() in data]


# A homeserver keeps its users' access tokens in its database: that is its job, not a leak.
SERVER_STORES = (".db", ".db-wal", ".db-shm", ".db-journal")


def file_hits(root: Path, needles: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Every file under ``root`` (but those named in ``skip``, and a homeserver's database)
    that holds a needle."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.name in skip or path.name.endswith(SERVER_STORES):
            continue
        if path.is_file() and not path.is_symlink():
            found += hits(path.read_bytes(), needles, str(path.relative_to(root)))
    return found


# --- every fleet command ------------------------------------------------------------------


@pytest.fixture
def fleet_backend(tmp_path: Path) -> Iterator[Backend]:
    session = create_session("fake", tmp_path / "fake")
    session.start()
    try:
        yield session.open(tmp_path / "system")
    finally:
        session.close()


MATRIX_BLOCK = """connector:
  kind: matrix
  matrix:
    homeserver_url: http://127.0.0.1:9
    user_id: '@orchestrator:mosaic.test'
    room_id: '!room:mosaic.test'
"""
DISCORD_BLOCK = """connector:
  kind: discord
  discord:
    channel_id: '1234567890'
    api_base: http://127.0.0.1:9/api/v10
"""
TOKEN_FIELD = MATRIX_BLOCK + "    access_token: syt_in_the_roster_itself\n"

# (roster to plant first, or None; the command after `mosaic`)
FLEET_COMMANDS: list[tuple[str | None, tuple[str, ...]]] = [
    (None, ()),
    (None, ("--version",)),
    (None, ("fleet", "--help")),
    (None, ("fleet", "no-such-command")),
    (None, ("fleet", "ps")),
    (None, ("fleet", "init")),
    (None, ("fleet", "init", "--profile", "nope", "--write")),
    (None, ("fleet", "init", "--profile", "general", "--write")),
    (None, ("fleet", "init", "--profile", "general", "--write")),
    (None, ("fleet", "install")),
    (None, ("fleet", "add", "alpha", "--runtime", "claude")),
    (None, ("fleet", "add", "alpha", "--runtime", "claude")),
    (None, ("fleet", "add", "bad name", "--runtime", "claude")),
    (None, ("fleet", "add", "../up", "--runtime", "claude")),
    (None, ("fleet", "add", "-x", "--runtime", "claude")),
    (None, ("fleet", "add", "boss", "--runtime", "claude", "--class", "orchestrator")),
    (None, ("fleet", "add", "beta", "--runtime", "codex", "--no-start")),  # enable fails
    (None, ("fleet", "add", "gamma", "--runtime", "codex")),  # start fails
    (None, ("fleet", "ps")),
    (None, ("fleet", "ps", "--json")),
    (None, ("fleet", "start", "alpha")),
    (None, ("fleet", "stop", "alpha")),
    (None, ("fleet", "start", "nobody")),
    (None, ("fleet", "remove", "beta")),  # disable fails
    (None, ("fleet", "remove", "nobody")),
    (None, ("fleet", "remove", "alpha", "--keep-files")),
    (None, ("fleet", "connector")),
    (None, ("fleet", "connector", "--json")),
    ("matrix", ("fleet", "connector")),
    ("matrix", ("fleet", "connector", "--json")),
    ("matrix", ("fleet", "add", "delta", "--runtime", "claude")),
    ("discord", ("fleet", "connector")),
    ("discord", ("fleet", "connector", "--json")),
    ("token-field", ("fleet", "add", "epsilon", "--runtime", "claude")),
    ("token-field", ("fleet", "ps")),
    ("token-field", ("fleet", "connector")),
    ("garbage", ("fleet", "ps")),
    ("garbage", ("fleet", "add", "zeta", "--runtime", "claude")),
]


def test_no_fleet_command_shows_or_stores_a_token(
    known_tokens: list[str], fleet_backend: Backend, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, **fleet_backend.environ(), "MOSAIC_HOME": str(home)}
    fleet_backend.inject_failure("enable", "mosaic-agent@beta.service")
    fleet_backend.inject_failure("start", "mosaic-agent@gamma.service")
    fleet_backend.inject_failure("disable", "mosaic-agent@beta.service")
    roster = home / "fleet" / "roster.yaml"
    found, failed = [], 0
    for plant, argv in FLEET_COMMANDS:
        if plant is not None:
            base = "version: 1\ntransport: tmux\nagents:\n  - {name: alpha, runtime: claude}\n"
            text = {
                "matrix": base + MATRIX_BLOCK,
                "discord": base + DISCORD_BLOCK,
                "token-field": base + TOKEN_FIELD,
                "garbage": "agents: [unclosed\n\x00",
            }[plant]
            roster.write_text(text)
        for debug in ("", "1"):  # MOSAIC_DEBUG=1 lets a traceback through: nothing in it either
            run = subprocess.run(
                [sys.executable, "-m", "mosaic_conformance.fleet.cli", *argv],
                env={**env, "MOSAIC_DEBUG": debug},
                capture_output=True,
                timeout=120,
                check=False,
            )
            failed += run.returncode != 0
            shown = f"`mosaic {' '.join(argv)}` (debug {debug or 'off'})"
            found += hits(run.stdout + run.stderr, known_tokens, shown)
    found += file_hits(tmp_path, known_tokens)
    assert failed >= 20, "the sweep is meant to include many failing commands"
    assert not found, "a token reached: " + ", ".join(found)


# --- the fleet suite on a fleet that prints the token -------------------------------------


def report_files(pytester: pytest.Pytester) -> dict[str, str]:
    out = pytester.path / "out"
    return {p.name: p.read_text() for p in out.iterdir()}


def test_a_fleet_printing_the_token_is_caught_and_every_report_masks_it(
    pytester: pytest.Pytester, known_tokens: list[str]
) -> None:
    pytester.makepyfile(broken_fleets=BROKEN_FLEETS.read_text())
    variant = JUDGED_IN_TEST_SECRETS
    fleet_cmd = f"{sys.executable} {pytester.path / 'broken_fleets.py'} {variant}"
    result = pytester.runpytest_subprocess(
        *("--conformance", "-p", "no:cacheprovider", "-n", "2"),
        *(
            "--conformance-fleet-cmd",
            fleet_cmd,
            "--conformance-fleet-profiles-env",
            "MOSAIC_FLEET_PROFILES",
        ),
        *("--conformance-report", "out", "--junitxml", "out/junit.xml", "-o", "junit_logging=all"),
        *("-rA", "-l", "--log-level=DEBUG"),  # every section, every local of a failure
    )
    reports = report_files(pytester)
    outcomes = {
        r["id"]: r["outcome"] for r in json.loads(reports["conformance.json"])["requirements"]
    }
    failed = {rid for rid, outcome in outcomes.items() if outcome == "failed"}
    assert failed == EXPECTED[variant], "\n".join(result.outlines[-30:])  # and nothing else
    needles = [*known_tokens, *SUITE_TOKENS]
    found = hits("\n".join(result.outlines + result.errlines), needles, "pytest's output")
    found += file_hits(pytester.path, needles, skip={"broken_fleets.py"})
    assert not found, "a token reached: " + ", ".join(found)
    assert f"the Matrix token in use is {MASK}" in reports["junit.xml"], (
        "the JUnit report does not show the leak, masked"
    )


# --- the connector suite on connectors that leak every token they get ---------------------

LEAKY_CONNECTORS = f'''
import logging
import os
from pathlib import Path

from broken_connectors import Wrapping, shipped
from mosaic_conformance.connectors.types import SendResult
from mosaic_conformance.secrets import SECRET_ENV_VARS

LEDGER = Path(__file__).with_name("{LEDGER}")
log = logging.getLogger("leaky")


class Leaky(Wrapping):
    """The shipped connector, but it tells everyone its tokens, and never delivers."""

    def __init__(self, inner, tokens):
        super().__init__(inner)
        self._tokens = tokens
        with LEDGER.open("a") as ledger:
            ledger.writelines(token + "\\n" for token in tokens)

    def __repr__(self):
        return f"Leaky(tokens={{self._tokens!r}})"

    def send(self, message):
        log.warning("sending with the tokens %s", self._tokens)
        print("sending with the tokens", self._tokens)
        return SendResult(False, error=f"refused; the tokens were {{self._tokens}}")


def _leaky(kind):
    def create(config):
        tokens = [os.environ[name] for name in SECRET_ENV_VARS if os.environ.get(name)]
        return Leaky(shipped(kind, config), tokens)

    return create


tmux, discord, matrix = _leaky("tmux"), _leaky("discord"), _leaky("matrix")
'''


@pytest.mark.timeout(1800)
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("tmux", marks=pytest.mark.skipif(not HAS_TMUX, reason="no tmux")),
        "discord",
        pytest.param("matrix", marks=pytest.mark.skipif(not HAS_SYNAPSE, reason="no Synapse")),
    ],
)
def test_tokens_a_connector_leaks_are_masked_in_every_output_and_report(
    pytester: pytest.Pytester, known_tokens: list[str], kind: str
) -> None:
    pytester.makepyfile(
        leaky_connectors=LEAKY_CONNECTORS, broken_connectors=BROKEN_CONNECTORS.read_text()
    )
    result = pytester.runpytest_subprocess(
        *("--conformance", "-p", "no:cacheprovider"),
        *(
            "--conformance-connector",
            kind,
            "--conformance-connector-factory",
            f"leaky_connectors:{kind}",
        ),
        *("--conformance-report", "out", "--junitxml", "out/junit.xml", "-o", "junit_logging=all"),
        *("-rA", "-l", "--log-level=DEBUG"),
        # CONN.11's fault tests add no output of their own, only minutes of waiting
        *("--conformance-skip", "CONN.11"),
    )
    leaked = set((pytester.path / LEDGER).read_text().split())
    # The Discord and Matrix targets hand the connector a token of their own making.
    assert leaked, "the leaky connector was never made"
    assert result.ret == pytest.ExitCode.TESTS_FAILED, "\n".join(result.outlines[-30:])
    needles = sorted(leaked | set(known_tokens))
    found = hits("\n".join(result.outlines + result.errlines), needles, "pytest's output")
    found += file_hits(pytester.path, needles, skip={LEDGER})
    assert not found, "a token reached: " + ", ".join(found)
    junit = report_files(pytester)["junit.xml"]
    assert f"refused; the tokens were ['{MASK}'" in junit, "the leak is not shown, masked"


# --- reprs and error texts ------------------------------------------------------------------


def test_no_repr_or_error_text_holds_a_token(known_tokens: list[str], tmp_path: Path) -> None:
    from mosaic_conformance.connectors import ConnectorConfig, MatrixConfig, OutboundMessage
    from mosaic_conformance.connectors.discord import create_connector as discord_connector
    from mosaic_conformance.connectors.jsonlines import command_maker
    from mosaic_conformance.connectors.matrix import MatrixConnector
    from mosaic_conformance.harness.chat.discord import DiscordTarget
    from mosaic_conformance.harness.chat.discord_standin import DiscordStandIn
    from mosaic_conformance.harness.chat.homeserver.client import Account, MatrixUser
    from mosaic_conformance.harness.chat.target import TargetOptions, Variant
    from mosaic_conformance.harness.plugin.settings import ConnectorSettings

    matrix_token, discord_token = KNOWN["MATRIX_ACCESS_TOKEN"], KNOWN["DISCORD_BOT_TOKEN"]
    secret_settings = {"shared_secret": discord_token, "registration_token": matrix_token}
    options = TargetOptions("discord", lambda c, e: discord_connector(c, e), tmp_path)
    objects: list[object] = [
        TargetOptions("matrix", options.make_connector, tmp_path, secret_settings),
        ConnectorSettings("matrix", None, "the shipped matrix connector", secret_settings),
        Account("@operator:mosaic.test", matrix_token),
    ]
    user = MatrixUser("http://127.0.0.1:9", Account("@operator:mosaic.test", matrix_token))
    objects.append(user)
    user.close()
    unreachable = MatrixConfig("http://127.0.0.1:9", "@orchestrator:mosaic.test", "!r:mosaic.test")
    matrix = MatrixConnector(unreachable, matrix_token, health_budget_s=1.0)
    objects += [matrix, matrix.health(), matrix.send(OutboundMessage("hello"))]
    matrix.close()
    with DiscordStandIn() as standin:
        target = DiscordTarget(standin, options)
        with target.scenario() as scenario:
            needles = [*known_tokens, scenario.bot.token or ""]  # type: ignore[attr-defined]
            connector = scenario.connect()
            bad = scenario.connect(Variant.BAD_TOKEN)
            objects += [target, scenario, scenario.operator, scenario.bot]  # type: ignore[attr-defined]
            objects += [connector, connector.health(), bad, bad.health()]
            objects.append(bad.send(OutboundMessage("refused")))
            serve = [sys.executable, "-m", "mosaic_conformance.connectors.jsonlines", "serve"]
            program = command_maker(" ".join([*serve, "--kind", "discord"]))(
                ConnectorConfig(kind="discord", discord=connector.config),  # type: ignore[attr-defined]
                {"DISCORD_BOT_TOKEN": scenario.bot.token or ""},  # type: ignore[attr-defined]
            )
            objects += [program, program.health()]
            program.close()
    found = []
    for obj in objects:
        found += hits(repr(obj), needles, f"repr of {type(obj).__name__}")
        found += hits(str(obj), needles, f"str of {type(obj).__name__}")
    assert not found, "a token reached: " + ", ".join(found)
