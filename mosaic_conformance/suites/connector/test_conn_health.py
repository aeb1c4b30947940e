"""CONN.10: health tells reachable from authenticated, in a bounded time."""

from __future__ import annotations

import pytest

from mosaic_conformance.harness.chat.target import Capability, ConnectorTarget, Scenario, Variant

from .conftest import HEALTH_BOUND_S, SKEW, iso8601_problem, moment, now, require, within


@pytest.mark.requirement("CONN.10")
def test_health_on_a_live_server_with_a_valid_token(scenario: Scenario) -> None:
    made = now()
    connector = scenario.connect()
    health = within(HEALTH_BOUND_S, connector.health, "health")
    answered = now()
    assert health.reachable, f"a live server is reported unreachable: {health.detail}"
    assert health.authenticated, f"a valid token is reported unauthenticated: {health.detail}"
    # last_seen: when the connector last had an answer from its server; health just had one
    problem = iso8601_problem(health.last_seen)
    assert problem is None, f"last_seen after a health that reached the server: {problem}"
    assert health.last_seen is not None
    seen = moment(health.last_seen)
    assert made - SKEW <= seen <= answered + SKEW, (
        f"last_seen {health.last_seen} is not the time of an answer of this connector's "
        f"server: it was made at {made.isoformat()}, and health answered by "
        f"{answered.isoformat()}"
    )


@pytest.mark.requirement("CONN.10")
def test_health_with_a_bad_token_is_reachable_but_not_authenticated(
    connector_target: ConnectorTarget, scenario: Scenario
) -> None:
    require(connector_target, Capability.BAD_TOKEN)
    connector = scenario.connect(Variant.BAD_TOKEN)
    health = within(HEALTH_BOUND_S, connector.health, "health with a bad token")
    assert health.reachable, f"the live server is reported unreachable: {health.detail}"
    assert not health.authenticated, "a token the server does not know is reported authenticated"


@pytest.mark.requirement("CONN.10")
@pytest.mark.parametrize(
    "variant", [Variant.SERVER_DOWN, Variant.SILENT_SERVER], ids=lambda v: v.value
)
def test_health_of_an_unreachable_server_is_not_reachable_in_bounded_time(
    connector_target: ConnectorTarget, scenario: Scenario, variant: Variant
) -> None:
    if variant is Variant.SILENT_SERVER:
        require(connector_target, Capability.SILENT_SERVER)
    connector = scenario.connect(variant)
    health = within(HEALTH_BOUND_S, connector.health, f"health with {variant.value}")
    assert not health.reachable, f"an unreachable server is reported reachable: {health.detail}"
    assert not health.authenticated
    assert health.last_seen is None, (
        f"last_seen is {health.last_seen!r}, but this connector never had an answer from a server"
    )
