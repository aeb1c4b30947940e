"""Proof that the connector suite catches defects: each broken Matrix connector fails exactly
the requirements it breaks; the shipped connector passes everything, in process and as a
``--connector-cmd`` program through the JSON-lines adapter.

All runs share one Synapse started here (as ``--homeserver-url`` with its shared secret)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from mosaic_conformance.backends.homeserver.synapse import SynapseHomeserver

pytest_plugins = ["pytester", "homeserver_fixtures"]  # the shared Synapse

BROKEN = Path(__file__).parent / "broken_connectors.py"

# factory -> the requirement ids its defect must fail (and no other)
EXPECTED = {
    "echoes_own_messages": {"CONN.7"},
    "new_txn_id_on_retry": {"CONN.6"},
    "raises_instead_of_not_delivered": {"CONN.5"},
    "drops_thread_relation": {"CONN.9"},
    "delivers_after_unsubscribe": {"CONN.8"},
    "claims_authenticated_with_bad_token": {"CONN.10"},
    "hangs_on_unreachable_server": {"CONN.10"},
}


def run_suite(
    pytester: pytest.Pytester, synapse: SynapseHomeserver, *connector_args: str
) -> tuple[int, dict[str, str], str]:
    pytester.makepyfile(broken_connectors=BROKEN.read_text())
    result = pytester.runpytest_subprocess(
        "--conformance",
        "--conformance-strict",
        "--conformance-report",
        "out",
        "-p",
        "no:cacheprovider",
        "--homeserver-url",
        synapse.url,
        "--homeserver-shared-secret",
        synapse.shared_secret,
        *connector_args,
    )
    report = json.loads((pytester.path / "out" / "conformance.json").read_text())
    outcomes = {r["id"]: r["outcome"] for r in report["requirements"]}
    return result.ret, outcomes, "\n".join(result.outlines[-40:])


@pytest.mark.parametrize("factory", EXPECTED)
def test_suite_fails_a_broken_connector_on_exactly_its_requirements(
    pytester: pytest.Pytester, synapse: SynapseHomeserver, factory: str
) -> None:
    ret, outcomes, tail = run_suite(
        pytester, synapse, "--connector-factory", f"broken_connectors:{factory}"
    )
    failed = {rid for rid, outcome in outcomes.items() if outcome == "failed"}
    assert failed == EXPECTED[factory], tail
    assert ret == 1


def test_the_shipped_matrix_connector_passes_everything(
    pytester: pytest.Pytester, synapse: SynapseHomeserver
) -> None:
    ret, outcomes, tail = run_suite(pytester, synapse, "--connector", "matrix")
    assert {rid: o for rid, o in outcomes.items() if o != "passed"} == {}, tail
    assert ret == 0


def test_the_shipped_connector_passes_as_a_program_over_json_lines(
    pytester: pytest.Pytester, synapse: SynapseHomeserver
) -> None:
    adapter = [sys.executable, "-m", "mosaic_conformance.connectors.jsonlines", "serve"]
    cmd = shlex.join([*adapter, "--kind", "matrix"])
    ret, outcomes, tail = run_suite(pytester, synapse, "--connector-cmd", cmd)
    assert {rid: o for rid, o in outcomes.items() if o != "passed"} == {}, tail
    assert ret == 0


def test_a_broken_program_over_json_lines_is_caught(
    pytester: pytest.Pytester, synapse: SynapseHomeserver
) -> None:
    adapter = [sys.executable, "-m", "mosaic_conformance.connectors.jsonlines", "serve"]
    factory = "broken_connectors:raises_instead_of_not_delivered"
    cmd = shlex.join([*adapter, "--kind", "matrix", "--factory", factory])
    ret, outcomes, tail = run_suite(pytester, synapse, "--connector-cmd", cmd)
    failed = {rid for rid, outcome in outcomes.items() if outcome == "failed"}
    assert failed == {"CONN.5"}, tail
    assert ret == 1
