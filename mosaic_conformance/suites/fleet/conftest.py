"""Fixtures of the fleet suites: the backend chosen by ``--conformance-backend`` and the fleet
under test.

A suite test asks for ``fleet`` (a fresh ``MOSAIC_HOME`` on a fresh system) or for
``installed`` (the same, after ``init --profile general --write`` and ``install``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mosaic_conformance.harness import progress
from mosaic_conformance.harness.fleet import FleetUnderTest, busy_seconds
from mosaic_conformance.harness.plugin import Settings, conformance_settings
from mosaic_conformance.harness.systems import (
    Backend,
    BackendSession,
    BackendUnavailable,
    create_session,
)


@pytest.fixture(scope="session")
def conformance(request: pytest.FixtureRequest) -> Settings:
    return conformance_settings(request.config)


@pytest.fixture(scope="session")
def backend_session(
    conformance: Settings, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[BackendSession]:
    # Every test's folders live under pytest's base folder: a backend that runs the system
    # elsewhere (a container) shares it whole.
    options = {**conformance.backend_options, "shared": str(tmp_path_factory.getbasetemp())}
    session = create_session(conformance.backend, tmp_path_factory.mktemp("backend"), options)
    try:
        with progress.reporting(pytestconfig):  # a backend says how its long steps go
            session.start()
    except BackendUnavailable as exc:
        session.close()
        pytest.skip(f"backend {conformance.backend!r} cannot run here: {exc}")
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def backend(backend_session: BackendSession, tmp_path: Path) -> Iterator[Backend]:
    system = backend_session.open(tmp_path / "system")
    try:
        yield system
    finally:
        system.close()  # whatever the test's fleet left running (tmux servers) ends with it


@pytest.fixture
def fleet(
    conformance: Settings, backend: Backend, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[FleetUnderTest]:
    under_test = FleetUnderTest(
        conformance.fleet_cmd, tmp_path / "home", backend, conformance.profiles_env
    )
    yield under_test
    # How long the fleet itself ran: the report separates it from the harness's own time.
    request.node.user_properties.append(("fleet_calls", len(under_test.history)))
    request.node.user_properties.append(("fleet_seconds", busy_seconds(under_test.history)))


@pytest.fixture
def installed(fleet: FleetUnderTest) -> FleetUnderTest:
    """A fleet initialised from the `general` profile and installed."""
    fleet.ok("init", "--profile", "general", "--write")
    fleet.ok("install")
    return fleet


@pytest.fixture(scope="session")
def machine_settings(request: pytest.FixtureRequest) -> object:
    """Hypothesis settings for the state machines: the user's ``--hypothesis-profile``, else
    ``mosaic-ci`` (few, derandomised examples: fast and reproducible in CI)."""
    from hypothesis import settings

    chosen = request.config.getoption("hypothesis_profile", None) or "mosaic-ci"  # the plugin's
    return settings.get_profile(chosen)
