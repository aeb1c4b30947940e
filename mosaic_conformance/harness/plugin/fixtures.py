"""The fixtures a conformance test builds on: the shipped suites' and a user's own tests alike.

Fleet: ``conformance`` (the run's settings), ``backend_session`` / ``backend`` (a fresh system
per test, fake or systemd), ``fleet`` (the fleet under test on it, with a fresh
``MOSAIC_HOME``), ``installed`` (the same after ``init`` and ``install``), ``machine_settings``
(Hypothesis settings for state machines). Connector: ``connector_settings``,
``subject_maker`` (makes the connector under test, recorded), ``connector_target`` (the
servers of the chosen kind, for the session), ``scenario`` (a fresh conversation per test),
``operator`` (the human at the other end), ``recorder`` (what the test's connectors said).
Both: ``record_figure``.

They need a conformance run (``--conformance``), which builds the settings they read. A
component that cannot start here (no container engine, no homeserver, no tmux) makes every
test that needs it *unavailable*: an error of the run, not of the subject, with one reason
(``--conformance-allow-unavailable`` turns it into a skip).

Heavy modules (Docker's SDK, httpx, libtmux) are imported inside the fixtures, so that an
installed toolkit costs an unrelated pytest run nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..outcomes import unavailable
from .stash import conformance_settings, record_fact

if TYPE_CHECKING:
    from ..chat.subject import Recorder, SubjectMaker
    from ..chat.target import ConnectorTarget, OperatorSide, Scenario
    from ..fleet import FleetUnderTest
    from ..systems import Backend, BackendSession
    from .settings import ConnectorSettings, Settings


@pytest.fixture(scope="session")
def conformance(pytestconfig: pytest.Config) -> Settings:
    """The run's settings, as the options decided them: the fleet command, the backend, the
    connector, the seed of every random draw (``conformance.seed``), the selection."""
    return conformance_settings(pytestconfig)


@pytest.fixture
def record_figure(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """``record_figure(name, value)``: a figure of what the test tried or measured (cases,
    faults that fired, messages), in the JSON report's results and as a property of the
    test's JUnit testcase (``record_property`` without its warning under xunit2)."""
    return lambda name, value: request.node.user_properties.append((name, value))


# --- the fleet --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def backend_session(
    conformance: Settings, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[BackendSession]:
    """The system the fleet under test runs on, for the whole session (the fake stand-ins, or
    a systemd container); chosen by ``--conformance-backend``."""
    from .. import progress
    from ..systems import create_session

    # Every test's folders live under pytest's base folder: a backend that runs the system
    # elsewhere (a container) shares it whole.
    options = {**conformance.backend_options, "shared": str(tmp_path_factory.getbasetemp())}
    session = create_session(conformance.backend, tmp_path_factory.mktemp("backend"), options)
    running = contextlib.ExitStack()
    try:
        with progress.reporting(pytestconfig):  # a backend says how its long steps go
            running.enter_context(session)  # closed again if it fails to start
    except Exception as exc:  # whatever stops it, the subject was not judged
        unavailable(f"the {conformance.backend} backend cannot run here: {exc}")
    for name, value in session.describe().items():
        record_fact(pytestconfig, name, value)
    with running:
        yield session


@pytest.fixture
def backend(backend_session: BackendSession, tmp_path: Path) -> Iterator[Backend]:
    """A fresh system for this test: nothing enabled, nothing running, linger off. Ask it what
    the fleet did (``backend.calls()``) and what holds now (``backend.state()``)."""
    system = backend_session.open(tmp_path / "system")
    try:
        yield system
    finally:
        system.close()  # whatever the test's fleet left running (tmux servers) ends with it


@pytest.fixture
def fleet(
    conformance: Settings, backend: Backend, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[FleetUnderTest]:
    """The fleet under test on this test's system, with a fresh ``MOSAIC_HOME``:
    ``fleet.run("add", "a1", "--runtime", "codex")`` runs it and returns what it did,
    ``fleet.ok(...)`` fails the test (as the subject's failure) if the step fails."""
    from ..fleet import FleetUnderTest, busy_seconds

    if not conformance.judges_fleet:
        unavailable("no fleet is under test in this run: pass --conformance-fleet-cmd")
    under_test = FleetUnderTest(
        conformance.fleet_cmd, tmp_path / "home", backend, conformance.profiles_env
    )
    yield under_test
    # How long the fleet itself ran: the report separates it from the harness's own time.
    request.node.user_properties.append(("fleet_calls", len(under_test.history)))
    request.node.user_properties.append(("fleet_seconds", busy_seconds(under_test.history)))


@pytest.fixture
def installed(fleet: FleetUnderTest) -> FleetUnderTest:
    """The fleet after ``init --profile general --write`` and ``install``."""
    fleet.ok("init", "--profile", "general", "--write")
    fleet.ok("install")
    return fleet


@pytest.fixture(scope="session")
def machine_settings(request: pytest.FixtureRequest) -> object:
    """Hypothesis settings for the suites' state machines and generated inputs: the user's
    ``--hypothesis-profile``, else ``mosaic-ci`` (few examples, seeded by the run's seed)."""
    from hypothesis import settings

    chosen = request.config.getoption("hypothesis_profile", None) or "mosaic-ci"
    return settings.get_profile(chosen)


# --- the connector ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def connector_settings(conformance: Settings) -> ConnectorSettings:
    """The connector under test (its kind, how it is made) and where it talks."""
    if conformance.connector is None:
        unavailable(
            "no connector is under test in this run: pass --conformance-connector KIND, "
            "--conformance-connector-factory or --conformance-connector-cmd"
        )
    return conformance.connector


@pytest.fixture(scope="session")
def subject_maker(connector_settings: ConnectorSettings) -> SubjectMaker:
    """The maker of the connector under test, bounding every call it makes and recording
    everything the connectors it makes return, raise and write (CONN.14)."""
    from ..chat.subject import SubjectMaker

    return SubjectMaker(connector_settings.maker)


@pytest.fixture(scope="session")
def connector_target(
    connector_settings: ConnectorSettings,
    subject_maker: SubjectMaker,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Iterator[ConnectorTarget]:
    """The servers of the chosen kind, up for the session: a homeserver, the Discord
    stand-in, or nothing but tmux."""
    from ...wait import NotReady
    from .. import progress
    from ..chat.target import TargetOptions, load_target
    from ..outcomes import HarnessError
    from ..systems import BackendUnavailable

    settings = connector_settings
    if settings.unavailable:
        unavailable(settings.unavailable)
    options = TargetOptions(
        settings.kind, subject_maker, tmp_path_factory.mktemp("connector"), settings.target_settings
    )
    stack = contextlib.ExitStack()
    try:
        with progress.reporting(pytestconfig):  # a homeserver says how its start goes
            target = stack.enter_context(load_target(settings.kind)(options))
    except BackendUnavailable as exc:  # cannot run here: a server, an image, tmux missing
        stack.close()
        unavailable(f"the {settings.kind} target cannot run here: {exc}")
    except NotReady as exc:
        stack.close()
        raise HarnessError(f"the {settings.kind} target did not become ready: {exc}") from exc
    record_fact(pytestconfig, "target", target.name)
    with stack:
        yield target


@pytest.fixture
def scenario(connector_target: ConnectorTarget, subject_maker: SubjectMaker) -> Iterator[Scenario]:
    """A fresh conversation for this test (a new room, channel or tmux server); it makes the
    connectors under test (``scenario.connect(variant)``) and injects the faults."""
    with subject_maker.recording(), connector_target.scenario() as fresh:
        yield fresh


@pytest.fixture
def recorder(scenario: Scenario, subject_maker: SubjectMaker) -> Recorder:
    """What this test's connectors returned, raised and wrote, as they said it (raw, before
    any masking): where a token appeared (CONN.14)."""
    return subject_maker.recorder


@pytest.fixture
def operator(scenario: Scenario) -> OperatorSide:
    """The human at the other end of this test's conversation: posts, threads, and what they
    see."""
    return scenario.operator
