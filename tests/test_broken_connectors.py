"""Proof that the connector suite catches defects: each broken Matrix connector fails exactly
the requirements it breaks, and each broken tmux and Discord connector fails the requirement
it breaks; the shipped connectors pass everything, in process and (Matrix) as a
``--conformance-connector-cmd`` program through the JSON-lines adapter.

Matrix runs share one Synapse started here (as ``--conformance-homeserver-url`` with its shared
secret)."""

from __future__ import annotations

import importlib.metadata
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conformance_report import Report, caught_as_planted, read_report

from mosaic_conformance.catalogue import CATALOGUE
from mosaic_conformance.harness.chat.homeserver.synapse import SynapseHomeserver

pytest_plugins = ["pytester", "homeserver_fixtures"]  # the shared Synapse

BROKEN = Path(__file__).parent / "broken_connectors.py"

# factory -> the requirement ids its defect must fail, and no other (every requirement judged)
EXPECTED = {
    "echoes_own_messages": {"CONN.7"},
    "new_txn_id_on_retry": {"CONN.6", "CONN.11"},  # also retries a 5xx with a new txnId
    "raises_instead_of_not_delivered": {"CONN.5"},
    "drops_thread_relation": {"CONN.9"},
    "delivers_after_unsubscribe": {"CONN.8"},
    "claims_authenticated_with_bad_token": {"CONN.10"},
    "hangs_on_unreachable_server": {"CONN.10"},
}

# Matrix factory -> the requirement its defect breaks, and the tests that show it. Judged on
# that requirement alone: the variants above already show the suite fails nothing it should
# not. A poller that gave up costs the suite's whole recovery wait: a short one is enough here,
# the shipped connector recovers in a second or two.
SHORT_RECOVERY = ("--conformance-connector-recovery-wait", "20")
EXPECTED_ALONE: dict[str, tuple[set[str], tuple[str, ...]]] = {
    "stops_polling_after_an_error_answer": ({"CONN.11"}, ("-k", "429-answers", *SHORT_RECOVERY)),
    "delivers_newest_first": ({"CONN.11"}, SHORT_RECOVERY),
    "no_sender_filter": ({"CONN.12"}, ()),
    "no_room_filter": ({"CONN.12"}, ()),
}

# tmux and Discord factory -> the requirement its defect breaks. Each is judged on that
# requirement alone (--conformance-only): a whole suite per variant would cost minutes, and the
# Matrix variants above already show the suite fails nothing it should not.
CHAT_EXPECTED = {
    "tmux_echoes_own_messages": {"CONN.7"},
    "tmux_new_id_per_retry": {"CONN.6"},
    "tmux_raises_when_down": {"CONN.5"},
    "tmux_deaf_unsubscribe": {"CONN.8"},
    "tmux_healthy_when_down": {"CONN.10"},
    "tmux_hangs_on_silence": {"CONN.10"},
    "tmux_drops_threads": {"CONN.9"},
    "discord_new_nonce_each_try": {"CONN.6"},
    "discord_echoes_itself": {"CONN.7"},
    "discord_raises_on_failure": {"CONN.5"},
    "discord_drops_threads": {"CONN.9"},
    "discord_deaf_unsubscribe": {"CONN.8"},
    "discord_trusts_any_token": {"CONN.10"},
    "discord_hangs_on_silence": {"CONN.10"},
    "discord_lets_everyone_in": {"CONN.12"},
}
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

# Each variant above -> (requirement, the test meant to catch it, a fragment of its message):
# caught there, in the call phase, for the reason it was planted (a setup error never counts).
UNREACHABLE = "test_health_of_an_unreachable_server_is_not_reachable_in_bounded_time"
THROUGH_FAULTS = "test_an_operator_writing_through_faults_loses_nothing"  # CONN.11's
OWN_ECHO = ("CONN.7", "test_the_connectors_own_messages_are_not_echoed_back", "its own message")
TWICE = ("CONN.6", "test_a_retried_send_is_delivered_once", "times, not once")
RAISES = ("CONN.5", "test_send_that_cannot_deliver_returns_not_delivered_without_raising", "raised")
THREADLESS = ("CONN.9", "test_a_send_with_a_thread_id_lands_in_that_thread", "landed in thread")
DEAF = ("CONN.8", "test_no_message_reaches_a_handler_after_unsubscribe", "after its unsubscribe")
TRUSTING = (
    "CONN.10",
    "test_health_with_a_bad_token_is_reachable_but_not_authenticated",
    "a token the server does not know is reported authenticated",
)
HANGS = ("CONN.10", UNREACHABLE, "did not return within")
STRANGERS = (
    "CONN.12",
    "test_messages_of_senders_outside_the_operators_are_not_delivered",
    "a stranger's message was delivered",
)
PLANTED: dict[str, tuple[str, str, str]] = {
    "echoes_own_messages": OWN_ECHO,
    "new_txn_id_on_retry": TWICE,
    "raises_instead_of_not_delivered": RAISES,
    "drops_thread_relation": THREADLESS,
    "delivers_after_unsubscribe": DEAF,
    "claims_authenticated_with_bad_token": TRUSTING,
    "hangs_on_unreachable_server": HANGS,
    "stops_polling_after_an_error_answer": (
        "CONN.11",
        THROUGH_FAULTS,
        "lost",
    ),
    "delivers_newest_first": (
        "CONN.11",
        THROUGH_FAULTS,
        "out of order",
    ),
    "no_sender_filter": STRANGERS,
    "no_room_filter": (
        "CONN.12",
        "test_messages_from_other_rooms_are_not_delivered",
        "a message from another room was delivered",
    ),
    "tmux_echoes_own_messages": OWN_ECHO,
    "tmux_new_id_per_retry": TWICE,
    "tmux_raises_when_down": RAISES,
    "tmux_deaf_unsubscribe": DEAF,
    "tmux_healthy_when_down": ("CONN.10", UNREACHABLE, "an unreachable server is reported"),
    "tmux_hangs_on_silence": HANGS,
    "tmux_drops_threads": THREADLESS,
    "discord_new_nonce_each_try": TWICE,
    "discord_echoes_itself": OWN_ECHO,
    "discord_raises_on_failure": RAISES,
    "discord_drops_threads": THREADLESS,
    "discord_deaf_unsubscribe": DEAF,
    "discord_trusts_any_token": TRUSTING,
    "discord_hangs_on_silence": HANGS,
    "discord_lets_everyone_in": STRANGERS,
}


def not_as_planted(pytester: pytest.Pytester, factory: str) -> list[str]:
    """How the run's catch of ``factory``'s defect differs from the plan (empty: as planted)."""
    requirement, test, fragment = PLANTED[factory]
    return caught_as_planted(read_report(pytester.path / "out"), requirement, test, fragment)


CONNECTOR_REQUIREMENTS = {rid for rid, req in CATALOGUE.items() if req.subject == "connector"}


def not_passed(outcomes: dict[str, str], *also: str) -> dict[str, str]:
    """Each connector requirement (CONN.4-14) a run of a connector alone did not pass (nor
    end as ``also``), and each other requirement it did not leave as not applicable (a
    fleet's, the registry's CONN.1-3 among them)."""
    judged = {rid: outcomes.get(rid, "missing") for rid in CONNECTOR_REQUIREMENTS}
    others = {rid: o for rid, o in outcomes.items() if rid not in CONNECTOR_REQUIREMENTS}
    return {
        **{rid: o for rid, o in judged.items() if o not in ("passed", *also)},
        **{rid: o for rid, o in others.items() if o != "not-applicable"},
    }


def homeserver_args(synapse: SynapseHomeserver) -> tuple[str, ...]:
    return (
        "--conformance-homeserver-url",
        synapse.url,
        "--conformance-homeserver-shared-secret",
        synapse.shared_secret,
    )


def run_suite(pytester: pytest.Pytester, *connector_args: str) -> tuple[int, dict[str, str], str]:
    pytester.makepyfile(broken_connectors=BROKEN.read_text())
    result = pytester.runpytest_subprocess(
        "--conformance",
        "--conformance-strict",
        "--conformance-report",
        "out",
        "-p",
        "no:cacheprovider",
        *connector_args,
    )
    report = json.loads((pytester.path / "out" / "conformance.json").read_text())
    outcomes = {r["id"]: r["outcome"] for r in report["requirements"]}
    return result.ret, outcomes, "\n".join(result.outlines[-40:])


# CONN.11's answer faults wait out the connector's retries: a quarter of a run. Where a variant
# does not break CONN.11, its dropped-connection test alone judges it.
# The half-open link waits out the connector's read timeout; its own variant below judges it.
ANSWER_FAULTS = ("-k", "not 5xx-answers and not 429-answers and not half-open-link")


@pytest.mark.parametrize("factory", EXPECTED)
def test_suite_fails_a_broken_connector_on_exactly_its_requirements(
    pytester: pytest.Pytester, synapse: SynapseHomeserver, factory: str
) -> None:
    ret, outcomes, tail = run_suite(
        pytester,
        *homeserver_args(synapse),
        *("--conformance-connector-factory", f"broken_connectors:{factory}"),
        *(() if "CONN.11" in EXPECTED[factory] else ANSWER_FAULTS),
    )
    failed = {rid for rid, outcome in outcomes.items() if outcome == "failed"}
    assert failed == EXPECTED[factory], tail
    assert not_as_planted(pytester, factory) == [], tail
    assert ret == 1


@pytest.mark.parametrize("factory", EXPECTED_ALONE)
def test_suite_fails_a_broken_connector_on_its_requirement(
    pytester: pytest.Pytester, synapse: SynapseHomeserver, factory: str
) -> None:
    expected, selection = EXPECTED_ALONE[factory]
    ret, outcomes, tail = run_suite(
        pytester,
        *homeserver_args(synapse),
        *("--conformance-connector-factory", f"broken_connectors:{factory}", *selection),
        *("--conformance-only", ",".join(sorted(expected))),
    )
    failed = {rid for rid, outcome in outcomes.items() if outcome == "failed"}
    assert failed == expected, tail
    assert not_as_planted(pytester, factory) == [], tail
    assert ret == 1


def test_the_shipped_matrix_connector_passes_everything(
    pytester: pytest.Pytester, synapse: SynapseHomeserver
) -> None:
    ret, outcomes, tail = run_suite(
        pytester, *homeserver_args(synapse), "--conformance-connector", "matrix"
    )
    assert not_passed(outcomes) == {}, tail
    assert ret == 0
    # The report names the server judged on, as the server says it is.
    version = importlib.metadata.version("matrix-synapse")
    assert (
        read_report(pytester.path / "out").meta["judged"]["target"]
        == f"matrix:external (Synapse {version})"
    )


def test_the_shipped_connector_passes_as_a_program_over_json_lines(
    pytester: pytest.Pytester, synapse: SynapseHomeserver
) -> None:
    adapter = [sys.executable, "-m", "mosaic_conformance.connectors.jsonlines", "serve"]
    cmd = shlex.join([*adapter, "--kind", "matrix"])
    ret, outcomes, tail = run_suite(
        pytester, *homeserver_args(synapse), "--conformance-connector-cmd", cmd
    )
    assert not_passed(outcomes) == {}, tail
    assert ret == 0


def test_a_broken_program_over_json_lines_is_caught(
    pytester: pytest.Pytester, synapse: SynapseHomeserver
) -> None:
    adapter = [sys.executable, "-m", "mosaic_conformance.connectors.jsonlines", "serve"]
    factory = "broken_connectors:raises_instead_of_not_delivered"
    cmd = shlex.join([*adapter, "--kind", "matrix", "--factory", factory])
    ret, outcomes, tail = run_suite(
        pytester,
        *homeserver_args(synapse),
        "--conformance-connector-cmd",
        cmd,
        "--conformance-only",
        "CONN.5",
    )
    failed = {rid for rid, outcome in outcomes.items() if outcome == "failed"}
    assert failed == {"CONN.5"}, tail
    assert caught_as_planted(read_report(pytester.path / "out"), *RAISES) == [], tail
    assert ret == 1


def _chat_case(factory: str) -> object:
    return pytest.param(factory, marks=[needs_tmux] if factory.startswith("tmux") else [])


@pytest.mark.parametrize("factory", [_chat_case(f) for f in CHAT_EXPECTED])
def test_suite_fails_a_broken_tmux_or_discord_connector_on_its_requirement(
    pytester: pytest.Pytester, factory: str
) -> None:
    kind, expected = factory.partition("_")[0], CHAT_EXPECTED[factory]
    ret, outcomes, tail = run_suite(
        pytester,
        *(
            "--conformance-connector",
            kind,
            "--conformance-connector-factory",
            f"broken_connectors:{factory}",
        ),
        *("--conformance-only", ",".join(sorted(expected))),
    )
    failed = {rid for rid, outcome in outcomes.items() if outcome == "failed"}
    assert failed == expected, tail
    assert not_as_planted(pytester, factory) == [], tail
    assert ret == 1


# The shipped Discord connector's strict whole-suite run is the connector guide's first
# runnable block (tests/test_docs.py).
@needs_tmux
def test_the_shipped_tmux_connector_passes(pytester: pytest.Pytester) -> None:
    ret, outcomes, tail = run_suite(pytester, "--conformance-connector", "tmux")
    assert not_passed(outcomes, "skipped") == {}, tail
    assert outcomes["CONN.4"] == "passed", tail
    assert ret == 0
    said = subprocess.run(["tmux", "-V"], capture_output=True, text=True, check=True).stdout
    assert said.startswith(read_report(pytester.path / "out").meta["judged"]["target"]), (
        said
    )  # "tmux 3.3" of "tmux 3.3a"


# --- verdicts (issue 15): every connector check made exact, shown failing where planted ------
# Each variant is judged on its requirement alone (--conformance-only), and must be caught in
# the test meant for it, in the call phase, with the fragment of its message. Discord ones run
# on the in-process stand-in (seconds); Matrix ones share the module's Synapse.

ADAPTER = (sys.executable, "-m", "mosaic_conformance.connectors.jsonlines", "serve")


def program(kind: str, factory: str | None = None) -> tuple[str, ...]:
    """The JSON-lines adapter serving the shipped connector of ``kind`` (or ``factory``'s)."""
    argv = [*ADAPTER, "--kind", kind] + (
        ["--factory", f"broken_connectors:{factory}"] if factory else []
    )
    return ("--conformance-connector", kind, "--conformance-connector-cmd", shlex.join(argv))


def factory_args(kind: str, factory: str) -> tuple[str, ...]:
    return (
        "--conformance-connector",
        kind,
        "--conformance-connector-factory",
        f"broken_connectors:{factory}",
    )


SECRETS_TEST = "test_the_token_never_appears_in_what_the_connector_returns_raises_or_writes"
# name -> (how the run is pointed at it, (requirement, test, fragment))
VERDICT_VARIANTS: dict[str, tuple[tuple[str, ...], tuple[str, str, str]]] = {
    "discord-stamps-without-offset": (
        factory_args("discord", "discord_stamps_without_offset"),
        (
            "CONN.7",
            "test_each_operator_message_arrives_once_with_text_sender_and_timestamp",
            "with a UTC offset",
        ),
    ),
    "discord-stamps-wrong-offset": (
        factory_args("discord", "discord_stamps_wrong_offset"),
        (
            "CONN.7",
            "test_each_operator_message_arrives_once_with_text_sender_and_timestamp",
            "is not when it was posted",
        ),
    ),
    "discord-drops-multiline-messages": (
        factory_args("discord", "discord_drops_multiline_messages"),
        ("CONN.7", "test_an_operator_message_arrives_with_its_text_whole", "did not arrive"),
    ),
    "discord-drops-attachments": (
        factory_args("discord", "discord_drops_attachments"),
        (
            "CONN.4",
            "test_a_send_with_attachments_is_delivered_and_seen",
            "not each attachment's file name or URL",
        ),
    ),
    "discord-refuses-attachments": (
        factory_args("discord", "discord_refuses_attachments"),
        (
            "CONN.4",
            "test_a_send_with_attachments_is_delivered_and_seen",
            "a send with attachments was not delivered",
        ),
    ),
    "discord-subscribe-fails-when-down": (
        factory_args("discord", "discord_subscribe_fails_when_down"),
        (
            "CONN.7",
            "test_subscribe_while_the_server_is_down_returns_a_subscription",
            "subscribe while the server is down raised",
        ),
    ),
    "discord-second-unsubscribe-raises": (
        factory_args("discord", "discord_second_unsubscribe_raises"),
        (
            "CONN.8",
            "test_no_message_reaches_a_handler_after_unsubscribe",
            "a second unsubscribe of the same handler raised KeyError",
        ),
    ),
    "discord-last-seen-is-now": (
        factory_args("discord", "discord_last_seen_is_now"),
        ("CONN.10", UNREACHABLE, "never had an answer from a server"),
    ),
    "discord-health-raises-when-down": (
        factory_args("discord", "discord_health_raises_when_down"),
        ("CONN.10", UNREACHABLE, "health with server_down raised ConnectionError"),
    ),
    "discord-factory-raises": (
        factory_args("discord", "discord_factory_raises"),
        (
            "CONN.4",
            "test_send_is_delivered_with_an_id_and_the_operator_sees_it",
            "making the discord connector raised RuntimeError",
        ),
    ),
    "discord-threads-of-every-channel": (
        factory_args("discord", "discord_threads_of_every_channel"),
        (
            "CONN.12",
            "test_replies_in_a_thread_of_another_room_are_not_delivered",
            "in a thread of another room or channel",
        ),
    ),
    "discord-token-in-send-error-on-a-bad-token": (
        factory_args("discord", "discord_token_in_send_error_on_a_bad_token"),
        ("CONN.14", SECRETS_TEST, "with bad_token: the token appears in send().error"),
    ),
    "discord-token-in-health-detail-when-down": (
        factory_args("discord", "discord_token_in_health_detail_when_down"),
        ("CONN.14", SECRETS_TEST, "with server_down: the token appears in health().detail"),
    ),
    "program-says-its-token-on-stderr": (
        program("discord", "discord_says_its_token_on_stderr"),
        ("CONN.14", SECRETS_TEST, "the token appears in the program's stderr"),
    ),
    "program-keeps-writing-after-unsubscribe": (
        program("discord", "discord_deaf_unsubscribe"),
        DEAF,
    ),
    "program-quits-at-end-of-input": (
        (
            "--conformance-connector",
            "discord",
            "--conformance-connector-cmd",
            shlex.join([sys.executable, "broken_connectors.py", "quits-at-end-of-input"]),
        ),
        ("CONN.5", "test_a_program_answers_a_send_in_flight_when_its_input_ends", "got no answer"),
    ),
}
MATRIX_VERDICT_VARIANTS: dict[str, tuple[str, str, str]] = {
    "reports_its_txn_id_as_message_id": (
        "CONN.4",
        "test_send_is_delivered_with_an_id_and_the_operator_sees_it",
        "but the operator's chat knows the message as",
    ),
    "keeps_its_txn_id_for_one_retry": TWICE,
    "subscribe_returns_early": (
        "CONN.7",
        "test_a_message_posted_right_after_subscribe_returns_arrives",
        "posted right after subscribe returned, did not reach",
    ),
}


def judged_alone(
    pytester: pytest.Pytester, planted: tuple[str, str, str], *connector_args: str
) -> tuple[int, str]:
    """The run of the planted requirement's one test meant to catch it (the whole-suite
    variants above show the suite fails nothing it should not)."""
    requirement, test, _ = planted
    selection = ("--conformance-only", requirement, "-k", test)
    ret, _, tail = run_suite(pytester, *connector_args, *selection)
    return ret, tail


@pytest.mark.parametrize("variant", VERDICT_VARIANTS)
def test_each_exact_check_catches_its_variant_where_it_was_planted(
    pytester: pytest.Pytester, variant: str
) -> None:
    args, planted = VERDICT_VARIANTS[variant]
    ret, tail = judged_alone(pytester, planted, *args)
    assert caught_as_planted(read_report(pytester.path / "out"), *planted) == [], tail
    assert ret == 1


@pytest.mark.parametrize("factory", MATRIX_VERDICT_VARIANTS)
def test_each_exact_matrix_check_catches_its_variant_where_it_was_planted(
    pytester: pytest.Pytester, synapse: SynapseHomeserver, factory: str
) -> None:
    planted = MATRIX_VERDICT_VARIANTS[factory]
    ret, tail = judged_alone(
        pytester, planted, *homeserver_args(synapse), *factory_args("matrix", factory)
    )
    assert caught_as_planted(read_report(pytester.path / "out"), *planted) == [], tail
    assert ret == 1


def test_tmux_missing_from_path_is_one_unavailable_reason_not_a_failure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for a missing Synapse or Docker: every test that needs the target is unavailable,
    saying what to install; none fails and none is an error of its own."""
    monkeypatch.setenv("PATH", str(pytester.mkdir("no-tmux-here")))
    run_suite(pytester, "--conformance-connector", "tmux")
    report = read_report(pytester.path / "out")
    needing = [
        r for rid, q in report.requirements.items() if rid not in REGISTRY for r in q.results
    ]
    assert needing, "the run judged no connector test"
    wrong = [
        f"{r.name}: {r.outcome} in {r.phase}: {r.message[:200]}"
        for r in needing
        if not (r.outcome == "error" and r.phase == "setup" and "apt-get install tmux" in r.message)
    ]
    assert not wrong, "\n".join(wrong)


REGISTRY = ("CONN.1", "CONN.2", "CONN.3")  # judged without a target


# --- restarts, long outages, half-open links (issue 18) -------------------------------------
# Each variant is judged on its requirement alone (--conformance-only), in the test meant to
# catch it (-k), and must fail there, in the call phase, for the planted reason.

RESTARTED = "test_a_restarted_connector_delivers_what_was_posted_while_it_was_down"
ISSUE18_MATRIX: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    # factory: requirement, test, message fragment, selection
    "matrix_cursor_in_memory": ("CONN.13", RESTARTED, "lost", ()),
    # A cursor written in place survives a clean restart; only a crash mid-write tears it.
    "matrix_cursor_written_in_place": ("CONN.13", RESTARTED, "lost", ()),
    "matrix_no_backfill": (
        "CONN.11",
        THROUGH_FAULTS,
        "lost",
        ("-k", "long-outage", *SHORT_RECOVERY),
    ),
    "matrix_no_read_timeout": (
        "CONN.11",
        THROUGH_FAULTS,
        "lost",
        ("-k", "half-open-link", *SHORT_RECOVERY),
    ),
    # The dropped connection lands under a /sync that brings messages: the since it forgets
    # costs a replay, every time.
    "sync_without_since": (
        "CONN.11",
        THROUGH_FAULTS,
        "delivered more than once",
        ("-k", "dropped-connections", *SHORT_RECOVERY),
    ),
}
ISSUE18_CHAT = {
    "discord_cursor_in_memory": ("CONN.13", RESTARTED, "lost"),
    "tmux_offset_in_memory": ("CONN.13", RESTARTED, "lost"),
}


def run_proof(pytester: pytest.Pytester, *args: str) -> tuple[Report, str]:
    _ret, _outcomes, tail = run_suite(pytester, *args)
    return read_report(pytester.path / "out"), tail


def outcomes_of(report: Report, requirement: str) -> dict[str, str]:
    """The outcome of each test of ``requirement``, by its node id's parameters."""
    return {
        r.test.rsplit("[", 1)[-1].rstrip("]"): r.outcome
        for r in report.requirements[requirement].results
    }


@pytest.mark.parametrize("factory", ISSUE18_MATRIX)
def test_suite_catches_a_connector_that_loses_messages_across_restarts_and_outages(
    pytester: pytest.Pytester, synapse: SynapseHomeserver, factory: str
) -> None:
    requirement, test, fragment, selection = ISSUE18_MATRIX[factory]
    report, tail = run_proof(
        pytester,
        *homeserver_args(synapse),
        *("--conformance-connector-factory", f"broken_connectors:{factory}", *selection),
        *("--conformance-only", requirement),
    )
    assert not caught_as_planted(report, requirement, test, fragment), tail
    if factory == "matrix_cursor_written_in_place":
        assert outcomes_of(report, requirement) == {"closed": "passed", "crashed": "failed"}, tail


def test_suite_restarts_a_program_as_a_new_process(
    pytester: pytest.Pytester, synapse: SynapseHomeserver
) -> None:
    """A program that keeps its cursor in memory loses what was posted while it was down,
    closed (end of input) and killed (SIGKILL) alike."""
    adapter = [sys.executable, "-m", "mosaic_conformance.connectors.jsonlines", "serve"]
    factory = "broken_connectors:matrix_cursor_in_memory"
    cmd = shlex.join([*adapter, "--kind", "matrix", "--factory", factory])
    report, tail = run_proof(
        pytester,
        *homeserver_args(synapse),
        *("--conformance-connector-cmd", cmd, "--conformance-only", "CONN.13"),
    )
    assert not caught_as_planted(report, "CONN.13", RESTARTED, "lost"), tail
    assert outcomes_of(report, "CONN.13") == {"closed": "failed", "crashed": "failed"}, tail


@pytest.mark.parametrize("factory", [_chat_case(f) for f in ISSUE18_CHAT])
def test_suite_catches_a_tmux_or_discord_connector_that_forgets_across_restarts(
    pytester: pytest.Pytester, factory: str
) -> None:
    requirement, test, fragment = ISSUE18_CHAT[factory]
    report, tail = run_proof(
        pytester,
        *("--conformance-connector", factory.partition("_")[0]),
        *("--conformance-connector-factory", f"broken_connectors:{factory}"),
        *("--conformance-only", requirement),
    )
    assert not caught_as_planted(report, requirement, test, fragment), tail


def test_a_program_that_exits_at_once_passes_no_requirement(pytester: pytest.Pytester) -> None:
    """`false` as the connector program: nothing it said can meet a requirement (CONN.14
    included: silence keeps no token, but is not judged as keeping it)."""
    ret, outcomes, tail = run_suite(
        pytester, "--conformance-connector", "discord", "--conformance-connector-cmd", "false"
    )
    assert {rid for rid, outcome in outcomes.items() if outcome == "passed"} == set(), tail
    assert outcomes["CONN.14"] == "not-judged", tail
    assert outcomes["CONN.4"] == outcomes["CONN.10"] == "failed", tail
    assert ret == 1


def test_every_connector_requirement_is_shown_failing() -> None:
    """Each requirement the connector suite judges has a broken connector planted to fail it
    (the fleet's counterpart is in test_broken_fleets.py)."""
    shown = set().union(*EXPECTED.values(), *CHAT_EXPECTED.values())
    shown |= {rid for ids, _ in EXPECTED_ALONE.values() for rid in ids}
    shown |= {planted[0] for _, planted in VERDICT_VARIANTS.values()}
    shown |= {planted[0] for planted in MATRIX_VERDICT_VARIANTS.values()}
    shown |= {case[0] for case in (*ISSUE18_MATRIX.values(), *ISSUE18_CHAT.values())}
    assert sorted(CONNECTOR_REQUIREMENTS - shown) == []
