"""Facts of the toolkit itself behind ROS.4, checked here rather than in the suite: a suite
test passes or fails on the fleet under test, never on a constant of the toolkit."""

from __future__ import annotations

from mosaic_conformance.harness.fleet import roster_schema
from mosaic_conformance.secrets import SECRET_ENV_VARS
from mosaic_conformance.suites.fleet.test_ros_roster import TOKENS

SECRET_WORDS = ("token", "secret", "password")


def test_the_roster_schema_has_no_secret_fields() -> None:
    found: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    found.extend(
                        f"{path}.{k}" for k in value if any(w in k.lower() for w in SECRET_WORDS)
                    )
                walk(value, f"{path}.{key}")

    walk(roster_schema(), "schema")
    assert not found, f"the roster schema has secret fields: {found}"


def test_the_ros4_suite_test_plants_every_token_variable() -> None:
    """The suite's leak test sets a token in each variable that holds one: a variable added to
    the contract without a token there would go unchecked."""
    assert set(TOKENS) == set(SECRET_ENV_VARS)
