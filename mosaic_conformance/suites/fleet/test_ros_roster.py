"""ROS: the roster file, bad input, secrets and concurrent writers."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from mosaic_conformance.contract import DISCORD_TOKEN_ENV, MATRIX_TOKEN_ENV, agent_unit
from mosaic_conformance.harness.fleet import (
    FleetUnderTest,
    Result,
    TreeSnapshot,
    duplicate_names,
    schema_problems,
)
from mosaic_conformance.harness.systems import SystemState
from mosaic_conformance.secrets import mask_also, redact

from .checks import WORKER, assert_valid_roster, explain, names_the_field


def refusal_problems(
    fleet: FleetUnderTest, result: Result, before: TreeSnapshot, state: SystemState
) -> list[str]:
    """How a command that must be refused fell short: accepted, a traceback, or changes."""
    problems = []
    if result.exit_code == 0:
        problems.append("bad input was accepted (exit 0)")
    if "Traceback (most recent call last)" in result.output:
        problems.append("a traceback reached the user")
    changes = before.changes(fleet.snapshot())
    if changes:
        problems.append("files changed: " + ", ".join(changes))
    if fleet.backend.state() != state:
        problems.append("systemd changed")
    return problems


def assert_nothing_changed(fleet: FleetUnderTest, act: str, *args: str) -> Result:
    """Run a command that must be refused, and check it left disk and systemd alone."""
    __tracebackhide__ = True
    before, state = fleet.snapshot(), fleet.backend.state()
    result = fleet.run(act, *args)
    problems = refusal_problems(fleet, result, before, state)
    assert not problems, explain(result, "; ".join(problems))
    return result


# --- ROS.1 ------------------------------------------------------------------------------


@pytest.mark.requirement("ROS.1")
def test_every_written_roster_validates(installed: FleetUnderTest) -> None:
    fleet = installed
    assert_valid_roster(fleet, fleet.history[0])
    for step in (
        ("add", "ros1a", *WORKER),
        ("add", "ros1b", "--runtime", "claude", "--no-start"),
        ("remove", "ros1a"),
        ("remove", "ros1b", "--keep-files"),
    ):
        result = fleet.ok(*step)
        assert_valid_roster(fleet, result)
    assert not duplicate_names(fleet.roster())


@pytest.mark.requirement("ROS.1")
def test_class_defaults_to_worker(installed: FleetUnderTest) -> None:
    fleet = installed
    result = fleet.ok("add", "ros1c", "--runtime", "codex", "--no-start")
    assert_valid_roster(fleet, result)
    (agent,) = [a for a in fleet.roster()["agents"] if a["name"] == "ros1c"]  # type: ignore[index]
    assert agent.get("class", "worker") == "worker", (
        f"class of an agent added without --class: {agent}"
    )


# --- ROS.2 ------------------------------------------------------------------------------

PLAIN_ROSTER = """\
version: 1
transport: tmux
agents:
  - name: orchestrator
    runtime: pi
    class: orchestrator
  - name: coder0
    runtime: codex
"""


@pytest.mark.requirement("ROS.2")
def test_roster_without_connector_keeps_working(fleet: FleetUnderTest) -> None:
    fleet.plant_roster(PLAIN_ROSTER)
    for step in (("install",), ("add", "ros2", *WORKER), ("ps",), ("remove", "ros2")):
        result = fleet.run(*step)
        assert result.exit_code == 0, explain(
            result, "a roster without `connector` was not accepted"
        )
    roster = fleet.roster() or {}
    assert "connector" not in roster, f"the fleet added a connector block: {roster['connector']}"
    assert fleet.roster_names() == ["orchestrator", "coder0"]


# --- ROS.3 ------------------------------------------------------------------------------

BAD_NAMES = {
    "space": "bad name",
    "slash": "bad/name",
    "at": "bad@name",
    "dotdot": "..",
    "dotdot-inside": "a..b",
    "semicolon": "x;rm -rf ~",
    "dollar": "$(id)",
    "backtick": "`id`",
    "pipe": "a|b",
    "ampersand": "a&b",
    "quote": "a'b",
    "glob": "a*",
    "newline": "a\nb",
    "tab": "a\tb",
    "control": "a\x01b",
    "non-ascii": "agent\u00e9",
    "empty": "",
    "too-long": "a" * 300,
    "leading-dash": "-x",
}


@pytest.mark.requirement("ROS.3")
def test_unsafe_agent_names_are_refused(installed: FleetUnderTest) -> None:
    """Every class of unsafe name on one fleet (a fresh fleet per name would cost 3x)."""
    wrong = []
    for case, name in BAD_NAMES.items():
        # `--` keeps a leading dash from being read as an option, as a user would type it
        args = ("add", *WORKER, "--no-start", "--", name)
        before, state = installed.snapshot(), installed.backend.state()
        result = installed.run(*args)
        problems = refusal_problems(installed, result, before, state)
        if not problems and not names_the_field(installed, result, "name", given=[name]):
            problems.append("the error does not name the field `name`")
        if problems:
            wrong.append(f"{case} ({name!r}): " + "; ".join(problems) + f"\n{result}")
    assert not wrong, f"{len(wrong)} of {len(BAD_NAMES)} unsafe names:\n" + "\n".join(wrong)


@pytest.mark.requirement("ROS.3")
def test_duplicate_name_is_refused(installed: FleetUnderTest) -> None:
    existing = installed.roster_names()[0]
    result = assert_nothing_changed(installed, "add", existing, *WORKER, "--no-start")
    assert existing in result.output, f"the error does not name {existing!r}:\n{result}"


@pytest.mark.requirement("ROS.3")
def test_unknown_agent_is_refused(installed: FleetUnderTest) -> None:
    result = assert_nothing_changed(installed, "remove", "nobody9")
    assert "nobody9" in result.output, f"the error does not name the unknown agent:\n{result}"


BAD_ROSTERS = {
    # case: (roster text, words of which the error must name one)
    "not-yaml": ("version: 1\nagents: [\n", ("yaml", "line")),
    "not-a-mapping": ("- just\n- a list\n", ("roster", "mapping", "object", "top")),
    "wrong-version": (PLAIN_ROSTER.replace("version: 1", "version: 2"), ("version",)),
    "no-agents": ("version: 1\ntransport: tmux\n", ("agents",)),
    "agents-not-list": ("version: 1\ntransport: tmux\nagents: coder0\n", ("agents",)),
    "agent-without-runtime": (PLAIN_ROSTER + "  - name: coder1\n", ("runtime",)),
    "name-not-string": (PLAIN_ROSTER + "  - name: [1, 2]\n    runtime: codex\n", ("name",)),
    "unsafe-name": (PLAIN_ROSTER + "  - name: ../../etc\n    runtime: codex\n", ("name",)),
    "extra-field": (PLAIN_ROSTER + "    token: abc\n", ("token",)),
    "duplicate-name": (
        PLAIN_ROSTER + "  - name: coder0\n    runtime: claude\n",
        ("duplicate", "coder0"),
    ),
    "unknown-connector": (PLAIN_ROSTER + "connector:\n  kind: irc\n", ("kind", "connector")),
    "non-utf8": (
        b"version: 1\ntransport: tmux\nagents:\n  - name: \xff\xfe\n    runtime: x\n",
        ("utf", "decode", "byte", "name", "unicode"),
    ),
}


@pytest.mark.requirement("ROS.3")
@pytest.mark.parametrize("case", BAD_ROSTERS.keys())
def test_invalid_roster_is_refused(fleet: FleetUnderTest, case: str) -> None:
    text, fields = BAD_ROSTERS[case]
    assert isinstance(text, str | bytes)
    fleet.plant_roster(text)
    result = assert_nothing_changed(fleet, "add", "ros3new", *WORKER, "--no-start")
    assert names_the_field(fleet, result, *fields), (
        f"the error does not name the problem (one of {fields}):\n{result}"
    )


# --- ROS.4 ------------------------------------------------------------------------------

TOKENS = {
    MATRIX_TOKEN_ENV: "syt_conformance_matrix_3f9a7c",
    DISCORD_TOKEN_ENV: "MTconformance.discord.bot.7d1e",
}


MATRIX_ROSTER = PLAIN_ROSTER + (
    "connector:\n  kind: matrix\n  matrix:\n"
    "    homeserver_url: http://127.0.0.1:8008\n    user_id: '@o:local'\n"
    "    room_id: '!r:local'\n"
)


@pytest.mark.requirement("ROS.4")
def test_token_in_roster_is_refused(fleet: FleetUnderTest) -> None:
    fleet.plant_roster(MATRIX_ROSTER + "    access_token: syt_in_the_roster\n")
    assert_nothing_changed(fleet, "add", "ros4", *WORKER, "--no-start")
    # A fleet that refuses every add refuses this one too: its refusal tells of the token
    # only if the same roster without it is taken.
    fleet.plant_roster(MATRIX_ROSTER)
    if fleet.run("add", "ros4", *WORKER, "--no-start").exit_code != 0:
        pytest.skip(
            "not judged: the fleet refuses the same roster without the token too, so its "
            "refusal says nothing of tokens (ROS.2 and ROS.1 judge that refusal)"
        )


@pytest.mark.requirement("ROS.4")
def test_tokens_never_reach_output_or_files(fleet: FleetUnderTest) -> None:
    mask_also(*TOKENS.values())  # this run's texts and reports show them as ***
    env = dict(TOKENS)
    backend = fleet.backend
    backend.inject_failure("disable", agent_unit("ros4b"))
    # the steps that must work: through them the tokens go through the fleet's work
    working = [
        ("init", "--profile", "general", "--write"),
        ("install",),
        ("add", "ros4a", *WORKER),
        ("add", "ros4b", *WORKER, "--no-start"),
    ]
    steps = [
        *working,
        ("add", "bad name", *WORKER),
        ("ps",),
        ("remove", "ros4b"),
        ("remove", "nobody"),
        ("init", "--profile", "nonexistent-profile", "--write"),
    ]
    results = [fleet.run(*step, env=env) for step in steps]
    carried = results[: len(working)]
    leaked = [r for r in results if any(t in r.output for t in TOKENS.values())]
    leaks = [f"the output of `fleet {' '.join(r.args)}`" for r in leaked]
    for path in fleet.snapshot().files:
        with open(path, "rb") as f:
            content = f.read()
        leaks += [path for t in TOKENS.values() if t.encode() in content]
    assert not leaks, (
        "a token reached: "
        + ", ".join(leaks)
        + "".join(f"\n{redact(str(r))}" for r in leaked)  # where, with the token masked
    )
    failed = [f"`fleet {' '.join(r.args)}`" for r in carried if r.exit_code != 0]
    if failed:
        pytest.skip(
            f"not judged: {', '.join(failed)} failed, so the tokens never went through the "
            "fleet's work (the requirements of those steps judge that)"
        )


# --- ROS.5 ------------------------------------------------------------------------------

CONCURRENT_ADDS = 20


@pytest.mark.requirement("ROS.5")
def test_concurrent_adds_lose_no_agent(
    installed: FleetUnderTest, record_figure: Callable[[str, object], None]
) -> None:
    fleet = installed
    before = set(fleet.roster_names())
    names = [f"conc{i:02d}" for i in range(CONCURRENT_ADDS)]
    with ThreadPoolExecutor(max_workers=CONCURRENT_ADDS) as pool:
        results = list(pool.map(lambda n: fleet.run("add", n, *WORKER, "--no-start"), names))
    succeeded = {n for n, r in zip(names, results, strict=True) if r.exit_code == 0}
    record_figure("concurrent_adds", len(names))
    record_figure("adds_reported", len(succeeded))
    roster = fleet.roster()
    problems = schema_problems(roster)
    assert not problems, f"concurrent adds left an invalid roster: {problems}"
    lost = sorted(succeeded - set(fleet.roster_names()))
    assert not lost, (
        f"{len(lost)} of {len(succeeded)} successful concurrent adds are not in the roster: {lost}"
    )
    assert before <= set(fleet.roster_names()), "concurrent adds lost earlier agents"
    assert succeeded == set(names), "concurrent adds failed:\n" + "\n".join(
        str(r) for r in results if r.exit_code != 0
    )
