"""The systemd backend: a real user manager in a container, reached through forwarding shims.

The first group needs no engine. The rest share one container (a module-wide session) and
are skipped, with the reason, where no Docker engine answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")

from mosaic_conformance.harness.systems import Backend, BackendUnavailable, SystemState  # noqa: E402
from mosaic_conformance.harness.systems.systemd import (  # noqa: E402
    SystemdBackend,
    SystemdBackendError,
    SystemdSession,
    cgroup_setup,
    parse_state,
)
from mosaic_conformance.harness.systems.systemd_image import Recipe  # noqa: E402

AGENT_TEMPLATE = """\
[Unit]
Description=Test agent %i

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=default.target
"""

# --- no engine needed --------------------------------------------------------------------


def test_cgroup_flags_follow_the_host_layout() -> None:
    assert cgroup_setup("2", unified_mounted=False).binds == ("/sys/fs/cgroup",)
    hybrid = cgroup_setup("1", unified_mounted=True)
    assert hybrid.layout == "hybrid"
    assert hybrid.binds == ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified")
    assert cgroup_setup("1", unified_mounted=False).binds == ("/sys/fs/cgroup/systemd",)
    assert {cgroup_setup(v, u).cgroupns for v in "12" for u in (True, False)} == {"host"}


def test_state_is_read_from_systemctl_show_blocks() -> None:
    output = textwrap.dedent(
        """\
        manager running
        Id=mosaic-agent@a.service
        ActiveState=active
        UnitFileState=enabled

        Id=mosaic-agent@b.service
        ActiveState=inactive
        UnitFileState=enabled-runtime

        Id=mosaic-agent@c.service
        ActiveState=active
        UnitFileState=disabled

        Id=other.service
        ActiveState=active
        UnitFileState=enabled

        linger
        """
    )
    state = parse_state(output, frozenset({"mosaic-agent@.service"}))
    assert state.enabled == {"mosaic-agent@a.service"}  # --runtime does not survive a boot
    assert state.active == {"mosaic-agent@a.service", "mosaic-agent@c.service"}
    assert state.unit_files == {"mosaic-agent@.service"}
    assert state.linger
    assert not parse_state("manager down\n\n", frozenset()).linger


def test_image_tag_is_a_hash_of_the_inputs() -> None:
    recipe = Recipe.from_context()
    assert recipe.tag == Recipe.from_context().tag
    assert "systemd" in recipe.packages
    more = Recipe(recipe.suite, (*recipe.packages, "less"), recipe.dockerfile)
    other_suite = Recipe("trixie", recipe.packages, recipe.dockerfile)
    assert len({recipe.tag, more.tag, other_suite.tag}) == 3


def test_no_engine_is_a_reason_to_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    session = SystemdSession(tmp_path / "work", {})
    with pytest.raises(BackendUnavailable, match="no Docker engine answers at unix://"):
        session.start()
    session.close()


# --- a real systemd ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemdSession]:
    shared = tmp_path_factory.mktemp("systemd-shared")
    session = SystemdSession(shared / "session", {"shared": str(shared)})
    try:
        session.start()
    except BackendUnavailable as exc:
        session.close()
        pytest.skip(f"the systemd backend cannot run here: {exc}")
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def backend(session: SystemdSession, request: pytest.FixtureRequest) -> SystemdBackend:
    root = session.shared / request.node.name.replace("[", "-").replace("]", "")
    return session.open(root)


@pytest.mark.usefixtures("session")  # skips with the reason when no engine answers
def test_an_unknown_image_is_named_in_a_clear_error(tmp_path: Path) -> None:
    session = SystemdSession(tmp_path, {"image": "mosaic-conformance/no-such-image:0"})
    with pytest.raises(SystemdBackendError, match="'mosaic-conformance/no-such-image:0' is not"):
        session.start()
    session.close()


def run(backend: SystemdBackend, *argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run a command as the fleet would: with the backend's environment on top."""
    env = {**os.environ, **backend.environ(), **extra}
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )


def ok(backend: SystemdBackend, *argv: str) -> str:
    __tracebackhide__ = True
    done = run(backend, *argv)
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr}"
    return done.stdout


def install_template(backend: SystemdBackend) -> None:
    backend.unit_dir.mkdir(parents=True, exist_ok=True)
    (backend.unit_dir / "mosaic-agent@.service").write_text(AGENT_TEMPLATE)
    ok(backend, "systemctl", "--user", "daemon-reload")


def agents(*names: str) -> list[str]:
    return [f"mosaic-agent@{n}.service" for n in names]


def test_the_manager_loads_the_unit_file_written_on_the_host(backend: SystemdBackend) -> None:
    install_template(backend)
    shown = ok(backend, "systemctl", "--user", "show", "-p", "FragmentPath", *agents("x"))
    assert shown.strip() == f"FragmentPath={backend.unit_dir / 'mosaic-agent@.service'}"


def test_enable_start_and_disable_are_real(backend: SystemdBackend) -> None:
    install_template(backend)
    ok(backend, "systemctl", "--user", "enable", *agents("a", "b", "c"))
    ok(backend, "systemctl", "--user", "start", *agents("a", "b"))
    ok(backend, "systemctl", "--user", "disable", *agents("c"))
    state = backend.state()
    assert state.unit_files == {"mosaic-agent@.service"}
    assert state.enabled_agents == {"a", "b"}
    assert state.active_agents == {"a", "b"}
    assert not state.linger
    # enable wrote real links, beside the unit files, that resolve on the host too
    link = backend.unit_dir / "default.target.wants" / "mosaic-agent@a.service"
    assert link.resolve() == backend.unit_dir / "mosaic-agent@.service"
    assert [c.argv[2] for c in backend.calls("systemctl")] == [
        "daemon-reload",
        "enable",
        "start",
        "disable",
    ]


def test_real_exit_codes_are_passed_on_and_recorded(backend: SystemdBackend) -> None:
    done = run(backend, "systemctl", "--user", "start", "mosaic-missing.service")
    assert done.returncode == 5  # systemd: unit not found
    assert "mosaic-missing.service" in done.stderr
    assert backend.calls()[-1].exit_code == 5


def test_the_user_enables_its_own_linger_and_nobody_else_s(backend: SystemdBackend) -> None:
    denied = run(backend, "loginctl", "enable-linger", "root")
    assert denied.returncode != 0  # polkit, as on a real machine
    ok(backend, "loginctl", "enable-linger", backend.user)
    assert backend.state().linger


def test_a_reboot_brings_back_exactly_the_enabled_units(backend: SystemdBackend) -> None:
    install_template(backend)
    ok(backend, "systemctl", "--user", "enable", *agents("keep", "gone"))
    ok(backend, "systemctl", "--user", "start", *agents("keep", "gone", "once"))
    ok(backend, "systemctl", "--user", "disable", *agents("gone"))
    ok(backend, "loginctl", "enable-linger", backend.user)
    backend.boot()
    state = backend.state()
    assert state.active_agents == {"keep"}
    assert state.enabled_agents == {"keep"}
    assert state.linger
    ok(backend, "systemctl", "--user", "is-active", *agents("keep"))  # the fleet can go on


def test_without_linger_nothing_comes_back(backend: SystemdBackend) -> None:
    install_template(backend)
    ok(backend, "systemctl", "--user", "enable", "--now", *agents("a"))
    backend.boot()
    state = backend.state()
    assert state.enabled_agents == {"a"}  # read from the links: no manager runs
    assert state.active == frozenset()
    assert not state.linger


def test_injected_failures_stop_the_call_before_the_system(backend: SystemdBackend) -> None:
    install_template(backend)
    [unit] = agents("a")
    backend.inject_failure("enable", unit, 3, "Failed to enable: injected")
    done = run(backend, "systemctl", "--user", "enable", unit, *agents("b"))
    assert (done.returncode, done.stderr.strip()) == (3, "Failed to enable: injected")
    assert backend.state().enabled == frozenset()  # the real systemd never saw it
    assert backend.calls()[-1].exit_code == 3
    ok(backend, "systemctl", "--user", "enable", *agents("b"))  # other units are not affected
    backend.inject_failure("enable-linger")
    assert run(backend, "loginctl", "enable-linger", backend.user).returncode == 1
    assert not backend.state().linger


def test_every_test_gets_a_fresh_system(session: SystemdSession) -> None:
    first = session.open(session.shared / "fresh-first")
    install_template(first)
    ok(first, "systemctl", "--user", "enable", "--now", *agents("old"))
    ok(first, "loginctl", "enable-linger", first.user)
    second = session.open(session.shared / "fresh-second")
    state = second.state()
    assert (state.unit_files, state.enabled, state.active, state.linger) == (
        frozenset(),
        frozenset(),
        frozenset(),
        False,
    )
    ran = session.machine.exec(["pgrep", "-u", str(second.machine.uid), "sleep"])  # type: ignore[union-attr]
    assert ran.exit_code == 1, f"a unit of the earlier test still runs: {ran.stdout}"


def test_units_read_and_write_the_fleet_s_files(backend: SystemdBackend) -> None:
    home = backend.root.with_name(backend.root.name + "-home")  # MOSAIC_HOME, made on the host
    (home / "fleet").mkdir(parents=True)
    (home / "fleet" / "greeting").write_text("hello\n")
    os.chmod(home / "fleet" / "greeting", 0o600)
    (backend.unit_dir / "mosaic-echo.service").write_text(
        f"[Service]\nType=oneshot\nExecStart=/bin/cp {home}/fleet/greeting {home}/fleet/echo\n"
    )
    env = {"MOSAIC_HOME": str(home)}
    assert run(backend, "systemctl", "--user", "daemon-reload", **env).returncode == 0
    done = run(backend, "systemctl", "--user", "start", "mosaic-echo.service", **env)
    assert done.returncode == 0, done.stderr
    assert (home / "fleet" / "echo").read_text() == "hello\n"


def test_tmux_runs_in_the_container(backend: SystemdBackend) -> None:
    ok(backend, "tmux", "-L", "mosaic-test", "new-session", "-d", "-s", "probe")
    assert ok(backend, "tmux", "-L", "mosaic-test", "list-sessions", "-F", "#S").split() == [
        "probe"
    ]
    ok(backend, "tmux", "-L", "mosaic-test", "kill-server")
    assert [c.command for c in backend.calls()] == ["tmux", "tmux", "tmux"]


# --- the same sequence on the fake backend ----------------------------------------------

SEQUENCE = (
    ("systemctl", "--user", "daemon-reload"),
    ("systemctl", "--user", "enable", "mosaic-agent@a.service", "mosaic-agent@b.service"),
    ("systemctl", "--user", "enable", "--now", "mosaic-agent@c.service"),
    ("systemctl", "--user", "start", "mosaic-agent@a.service", "mosaic-agent@d.service"),
    ("systemctl", "--user", "disable", "mosaic-agent@b.service"),
    ("systemctl", "--user", "stop", "mosaic-agent@c.service"),
    ("systemctl", "--user", "start", "mosaic-missing.service"),
    ("systemctl", "--user", "is-enabled", "mosaic-agent@a.service"),
    ("systemctl", "--user", "is-active", "mosaic-agent@c.service"),
    ("loginctl", "enable-linger", "{user}"),
)


def play(backend: Backend) -> tuple[list[int], SystemState, SystemState]:
    """Run :data:`SEQUENCE`: the exit codes, the state, and the state after a reboot."""
    backend.unit_dir.mkdir(parents=True, exist_ok=True)
    (backend.unit_dir / "mosaic-agent@.service").write_text(AGENT_TEMPLATE)
    env = {**os.environ, **backend.environ()}
    codes = []
    for argv in SEQUENCE:
        argv = tuple(a.format(user=backend.user) for a in argv)
        codes.append(subprocess.run(argv, env=env, capture_output=True, check=False).returncode)
    before = backend.state()
    backend.boot()
    return codes, before, backend.state()


def test_the_fake_backend_agrees_with_the_real_one(backend: SystemdBackend, tmp_path: Path) -> None:
    from mosaic_conformance.harness.systems.fake import FakeSession

    fake_session = FakeSession(tmp_path / "fake-session", {})
    fake_session.start()
    try:
        fake = play(fake_session.open(tmp_path / "fake"))
    finally:
        fake_session.close()
    real = play(backend)
    assert real == fake


# --- no container outlives its session ---------------------------------------------------

INNER_TEST = """
import os, time
from pathlib import Path
import pytest
from mosaic_conformance.harness.systems.systemd import SystemdSession

@pytest.fixture(scope="session")
def session(tmp_path_factory):
    s = SystemdSession(tmp_path_factory.mktemp("systemd"), {})
    s.start()
    yield s
    s.close()

def test_fails_midway(session):
    Path(os.environ["CONTAINER_ID_FILE"]).write_text(session.machine.container.id)
    if os.environ.get("WAIT_FOR_SIGINT"):
        for _ in range(600):  # bounded: the outer test interrupts long before
            time.sleep(0.1)
    assert False, "a deliberate failure midway"
"""

CRASHING_SCRIPT = """
import os, sys, tempfile
from pathlib import Path
from mosaic_conformance.harness.systems.systemd import SystemdSession

session = SystemdSession(Path(tempfile.mkdtemp()), {})
session.start()
Path(sys.argv[1]).write_text(session.machine.container.id)
os._exit(1)  # a crash: no close(), no atexit
"""


def container_exists(container_id: str) -> bool:
    client = docker.from_env()
    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return False
    finally:
        client.close()
    return True


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert proc.poll() is None, f"the inner run ended early ({proc.returncode})"
        assert time.monotonic() < deadline, f"no {path} within {timeout} s"
        time.sleep(0.1)
    return path.read_text()


@pytest.mark.usefixtures("session")  # skips with the reason when no engine answers
def test_no_container_outlives_a_failing_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    id_file = pytester.path / "container-id"
    monkeypatch.setenv("CONTAINER_ID_FILE", str(id_file))
    pytester.makepyfile(test_inner=INNER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(failed=1)
    assert not container_exists(id_file.read_text())


@pytest.mark.usefixtures("session")
def test_no_container_outlives_a_ctrl_c(pytester: pytest.Pytester) -> None:
    id_file = pytester.path / "container-id"
    pytester.makepyfile(test_inner=INNER_TEST)
    env = {**os.environ, "CONTAINER_ID_FILE": str(id_file), "WAIT_FOR_SIGINT": "1"}
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist"]
    with subprocess.Popen(argv, cwd=pytester.path, env=env, stdout=subprocess.DEVNULL) as proc:
        container_id = wait_for_file(id_file, proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) != 0
    assert not container_exists(container_id)


def test_a_crashed_session_s_container_is_removed_at_the_next_start(
    session: SystemdSession, tmp_path: Path
) -> None:
    id_file = tmp_path / "container-id"
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(id_file)], check=False, timeout=300)
    assert done.returncode == 1
    leaked = id_file.read_text()
    assert container_exists(leaked)
    next_session = SystemdSession(tmp_path / "next", {})
    try:
        next_session.start()
    finally:
        next_session.close()
    assert not container_exists(leaked)
    assert session.machine is not None
    assert container_exists(session.machine.container.id or "")  # a live session's is kept
