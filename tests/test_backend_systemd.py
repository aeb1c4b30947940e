"""The systemd backend: a real user manager in a container, reached through forwarding shims
and one long-lived channel.

The first group needs no engine. The rest run once per engine (Docker, Podman), each engine's
tests sharing one container (a module-wide session), and are skipped, with the reason, where
that engine cannot run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mosaic_conformance.harness.fleet import FleetUnderTest
from mosaic_conformance.harness.outcomes import HarnessError
from mosaic_conformance.harness.systems import Backend, BackendUnavailable, SystemState, channel
from mosaic_conformance.harness.systems import engine as engines
from mosaic_conformance.harness.systems.engine import (
    CgroupMode,
    Engine,
    cgroup_binds,
    find_engine,
    host_cgroup_mode,
)
from mosaic_conformance.harness.systems.systemd import (
    CHANNEL_UNIT,
    Machine,
    SystemdBackend,
    SystemdBackendError,
    SystemdSession,
    parse_state,
)
from mosaic_conformance.harness.systems.systemd_image import Recipe
from mosaic_conformance.wait import wait_for

ENGINES = ("docker", "podman")

AGENT_TEMPLATE = """\
[Unit]
Description=Test agent %i

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=default.target
"""

# --- no engine needed --------------------------------------------------------------------


MOUNTS_HYBRID = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def test_the_cgroup_mode_is_read_from_the_mounts() -> None:
    assert host_cgroup_mode(MOUNTS_HYBRID).name == "hybrid"
    assert host_cgroup_mode("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n").name == "unified"
    legacy = MOUNTS_HYBRID.replace("cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n", "")
    assert host_cgroup_mode(legacy).name == "legacy"
    assert [host_cgroup_mode(m).version for m in (MOUNTS_HYBRID, legacy)] == ["1", "1"]


def engine_of(name: str, client: str = "/usr/bin/docker", **changes: object) -> Engine:
    fields: dict[str, object] = {
        "name": name,
        "client": client,
        "host": "" if client.endswith("podman") else "unix:///x.sock",
        "version": "1.0",
        "rootless": False,
        "cgroups": CgroupMode("hybrid"),
        **changes,
    }
    return Engine(**fields)  # type: ignore[arg-type]


def test_container_flags_follow_the_engine_and_the_host_cgroups() -> None:
    assert cgroup_binds("docker", CgroupMode("unified")) == ("/sys/fs/cgroup",)
    hybrid = ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified")
    assert cgroup_binds("docker", CgroupMode("hybrid")) == hybrid
    assert cgroup_binds("docker", CgroupMode("legacy")) == ("/sys/fs/cgroup/systemd",)
    # Podman mounts the cgroups itself, but on a hybrid host not the v2 tree that systemd
    # needs to see a stop end
    assert cgroup_binds("podman", CgroupMode("hybrid")) == ("/sys/fs/cgroup/unified",)
    assert cgroup_binds("podman", CgroupMode("unified")) == ()
    docker_flags = engine_of("docker").systemd_flags()
    assert "--cgroupns=host" in docker_flags
    assert "/sys/fs/cgroup/unified:/sys/fs/cgroup/unified:rw" in docker_flags
    podman = engine_of("podman", "/usr/bin/podman", runtime="runc").systemd_flags()
    assert podman[0] == "--systemd=always"
    assert podman[podman.index("--runtime") + 1] == "runc"
    bound = [f for f in podman if "cgroup" in f]
    assert bound == ["/sys/fs/cgroup/unified:/sys/fs/cgroup/unified:rw"]
    import resource

    files = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert f"nofile={files[0]}:{files[1]}" in podman  # the limits this process has
    via_socket = engine_of("podman").systemd_flags()  # Podman through the docker client
    assert "--systemd=always" not in via_socket
    assert "--ulimit" in via_socket
    rootless = engine_of("podman", "/usr/bin/podman", rootless=True).systemd_flags()
    assert "--userns=keep-id" in rootless


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


def fake_podman(folder: Path, info: dict[str, object] | None, exit_code: int = 0) -> None:
    """A ``podman`` on PATH that answers ``podman info --format json`` with ``info``."""
    folder.mkdir(exist_ok=True)
    script = folder / "podman"
    said = json.dumps(info) if info is not None else "Error: cannot re-exec process"
    stream = "" if exit_code == 0 else " >&2"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{said}'{stream}\nexit {exit_code}\n")
    script.chmod(0o755)


@pytest.fixture
def no_engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with no engine client, and no socket where one is looked for."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setattr(engines, "PODMAN_ROOTFUL_SOCKET", f"unix://{tmp_path}/no-podman.sock")
    return empty


def test_no_engine_is_a_reason_to_skip_that_names_every_try(no_engines: Path) -> None:
    with pytest.raises(BackendUnavailable) as raised:
        SystemdSession(no_engines.parent / "work", {}).start()
    said = str(raised.value)
    assert said.startswith("no container engine (auto) can run the systemd backend here:")
    assert "no docker client on PATH" in said
    assert "no podman command on PATH (apt-get install podman)" in said
    with pytest.raises(BackendUnavailable, match=r"\(docker\).*no docker client") as only:
        find_engine("docker")
    assert "podman" not in str(only.value)
    with pytest.raises(ValueError, match="unknown container engine 'lxc'"):
        find_engine("lxc")


def test_podman_is_found_through_its_cli_and_crun_avoided_on_hybrid_cgroups(
    no_engines: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = {
        "host": {
            "cgroupVersion": "v1",
            "ociRuntime": {"name": "crun"},
            "security": {"rootless": False},
        },
        "version": {"Version": "4.3.1"},
    }
    fake_podman(no_engines, info)
    runc = no_engines / "runc"
    runc.write_text("#!/bin/sh\n")
    runc.chmod(0o755)
    monkeypatch.setattr(engines, "host_cgroup_mode", lambda: CgroupMode("hybrid"))
    found = find_engine("podman")
    assert (found.name, found.version, found.rootless, found.runtime) == (
        "podman",
        "4.3.1",
        False,
        "runc",
    )
    assert found.describe()["cgroup_mode"] == "hybrid"
    runc.unlink()
    with pytest.raises(BackendUnavailable, match="crun cannot run on this hybrid-cgroup host"):
        find_engine("podman")


def test_a_podman_that_cannot_run_says_why(no_engines: Path) -> None:
    fake_podman(no_engines, None, exit_code=125)
    with pytest.raises(BackendUnavailable, match=r"podman cannot run here \(Error: cannot re-exec"):
        find_engine("podman")


def test_an_unknown_container_engine_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nconformance_container_engine = lxc\n")
    result = pytester.runpytest("--conformance", "--conformance-backend", "systemd")
    result.stderr.fnmatch_lines(
        ["*conformance_container_engine*'lxc' is not one of auto, docker, podman*"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


# --- the channel, against stand-in servers (no engine needed) ---------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="mc-ch-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_channel_nobody_serves_is_broken_at_once(short_dir: Path) -> None:
    with pytest.raises(channel.ChannelBroken, match="nothing answers at"):
        channel.run(str(short_dir / "none.sock"), ["true"], 0, {})
    assert not channel.ping(str(short_dir / "none.sock"))


@pytest.mark.parametrize("server_does", ["nothing", "hang up"])
def test_a_channel_that_never_answers_is_broken_in_bounded_time(
    short_dir: Path, server_does: str
) -> None:
    import socket
    import threading

    path = short_dir / "mute.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    held = []

    def accept() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        if server_does == "hang up":
            conn.close()
        else:
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    started = time.monotonic()
    expected = "no answer within 1 s" if server_does == "nothing" else "went away"
    with pytest.raises(channel.ChannelBroken, match=expected):
        channel.run(str(path), ["true"], 0, {}, timeout=1.0)
    assert time.monotonic() - started < 10
    server.close()


# --- a real systemd ---------------------------------------------------------------------


@pytest.fixture(scope="module", params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, engine_name: str) -> Iterator[SystemdSession]:
    shared = tmp_path_factory.mktemp(f"systemd-shared-{engine_name}")
    session = SystemdSession(shared / "session", {"shared": str(shared), "engine": engine_name})
    try:
        session.start()
    except BackendUnavailable as exc:
        session.close()
        pytest.skip(f"the systemd backend cannot run on {engine_name} here: {exc}")
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def backend(session: SystemdSession, request: pytest.FixtureRequest) -> SystemdBackend:
    root = session.shared / request.node.name.replace("[", "-").replace("]", "")
    return session.open(root)


def machine_of(session: SystemdSession) -> Machine:
    assert session.machine is not None
    return session.machine


def test_the_session_says_where_it_runs(session: SystemdSession, engine_name: str) -> None:
    facts = session.describe()
    assert facts["engine"].startswith(f"{engine_name} ")
    assert facts["cgroup_mode"] == host_cgroup_mode().name
    assert facts["image"] == session.image
    assert facts["calls"] == "channel (a Unix socket)"


@pytest.mark.usefixtures("session")  # skips with the reason where the engine cannot run
def test_an_unknown_image_is_named_in_a_clear_error(tmp_path: Path, engine_name: str) -> None:
    options = {"image": "mosaic-conformance/no-such-image:0", "engine": engine_name}
    session = SystemdSession(tmp_path, options)
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


def test_the_state_is_read_while_the_user_manager_goes_away(backend: SystemdBackend) -> None:
    # Turning linger off lets logind stop the manager; for some milliseconds its socket is
    # still there and refuses calls (a CI run failed on it): the state waits the stop out.
    install_template(backend)
    ok(backend, "systemctl", "--user", "enable", "--now", *agents("a"))
    ok(backend, "loginctl", "enable-linger", backend.user)
    ok(backend, "loginctl", "disable-linger", backend.user)
    state = backend.state()
    assert state.enabled_agents == {"a"}
    assert not state.linger


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
    ran = machine_of(session).exec(["pgrep", "-u", str(second.machine.uid), "sleep"])
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


# --- the channel ---------------------------------------------------------------------------


def shim_client(backend: SystemdBackend, *argv: str | bytes, stdin: bytes = b"") -> Any:
    """The shim's channel client, as ``forward.sh`` runs it, on any argv."""
    env = {**os.environ, **backend.environ()}
    client = [sys.executable, "-S", "-I", str(backend.session.bin_dir / "_channel.py"), "call"]
    client += [env["MOSAIC_CONFORMANCE_SYSTEMD_CHANNEL"], str(backend.machine.uid), "--"]
    return subprocess.run([*client, *argv], input=stdin, capture_output=True, env=env, timeout=60)


def test_the_channel_passes_bytes_streams_and_status_exactly(backend: SystemdBackend) -> None:
    odd = b'caf\xc3\xa9 \xff\xfe \\ " end'  # not UTF-8, quotes, a backslash
    script = 'printf %s "$1"; cat; printf "to stderr" >&2; id -u >&2; exit 42'
    done = shim_client(backend, "sh", "-c", script, "sh", odd, stdin=b"in\0put\xff")
    assert done.returncode == 42
    assert done.stdout == odd + b"in\0put\xff"
    assert done.stderr == f"to stderr{backend.machine.uid}\n".encode()  # as the user
    killed = shim_client(backend, "sh", "-c", "kill -TERM $$")
    assert killed.returncode == 128 + signal.SIGTERM  # as docker exec says it
    missing = shim_client(backend, "no-such-command")
    assert missing.returncode == 127
    assert b"no-such-command" in missing.stderr


def test_a_call_whose_caller_dies_is_ended(backend: SystemdBackend) -> None:
    env = {**os.environ, **backend.environ()}
    client = [sys.executable, "-S", "-I", str(backend.session.bin_dir / "_channel.py"), "call"]
    client += [env["MOSAIC_CONFORMANCE_SYSTEMD_CHANNEL"], str(backend.machine.uid), "--"]
    machine = backend.machine

    def sleepers() -> str:
        return machine.exec(["pgrep", "-f", "sleep 4242"]).stdout

    with subprocess.Popen([*client, "sleep", "4242"], env=env) as caller:
        wait_for(lambda: sleepers() or None, what="the call running", timeout=30)
        caller.kill()
    wait_for(lambda: not sleepers(), what="the orphaned call ended", timeout=30)


def test_a_broken_channel_is_a_harness_error_never_the_fleet_s(backend: SystemdBackend) -> None:
    machine = backend.machine
    machine.engine_exec(["systemctl", "stop", CHANNEL_UNIT], 0, {})
    try:
        fleet = FleetUnderTest(
            ("sh", "-c", "systemctl --user daemon-reload", "fleet"), backend.root / "home", backend
        )
        started = time.monotonic()
        with pytest.raises(SystemdBackendError) as raised:
            fleet.run("any")
        assert time.monotonic() - started < 30  # never a hang
        said = str(raised.value)
        assert isinstance(raised.value, HarnessError)
        assert "channel into its container is broken: nothing answers at" in said
        assert "is running; its last log lines" in said  # the container's state and logs
        done = run(backend, "systemctl", "--user", "daemon-reload")
        assert done.returncode == channel.BROKEN_EXIT
        assert "mosaic-conformance: the systemd backend's channel" in done.stderr
    finally:
        machine.engine_exec(["systemctl", "start", CHANNEL_UNIT], 0, {})
        machine.channel_up = False  # the next open() waits for it again


def test_without_the_channel_calls_go_through_exec(
    tmp_path_factory: pytest.TempPathFactory, engine_name: str, session: SystemdSession
) -> None:
    shared = tmp_path_factory.mktemp(f"systemd-exec-{engine_name}")
    options = {"shared": str(shared), "engine": engine_name, "channel": False}
    plain = SystemdSession(shared / "session", options)
    try:
        plain.start()
        backend = plain.open(shared / "t")
        assert "MOSAIC_CONFORMANCE_SYSTEMD_CHANNEL" not in backend.environ()
        assert plain.describe()["calls"] == f"{engine_name} exec"
        done = run(backend, "systemctl", "--user", "start", "mosaic-missing.service")
        assert done.returncode == 5
        assert "mosaic-missing.service" in done.stderr
        assert backend.calls()[-1].exit_code == 5
    finally:
        plain.close()


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
    for template in SEQUENCE:
        argv = [a.format(user=backend.user) for a in template]
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
    s = SystemdSession(tmp_path_factory.mktemp("systemd"), {"engine": os.environ["ENGINE"]})
    s.start()
    yield s
    s.close()

def test_fails_midway(session):
    Path(os.environ["CONTAINER_ID_FILE"]).write_text(session.machine.container_id)
    if os.environ.get("WAIT_FOR_SIGINT"):
        for _ in range(600):  # bounded: the outer test interrupts long before
            time.sleep(0.1)
    assert False, "a deliberate failure midway"
"""

CRASHING_SCRIPT = """
import os, sys, tempfile
from pathlib import Path
from mosaic_conformance.harness.systems.systemd import SystemdSession

session = SystemdSession(Path(tempfile.mkdtemp()), {"engine": sys.argv[2]})
session.start()
Path(sys.argv[1]).write_text(session.machine.container_id)
os._exit(1)  # a crash: no close(), no atexit
"""


def container_exists(session: SystemdSession, container_id: str) -> bool:
    assert session.engine is not None
    return session.engine.command("inspect", container_id).returncode == 0


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert proc.poll() is None, f"the inner run ended early ({proc.returncode})"
        assert time.monotonic() < deadline, f"no {path} within {timeout} s"
        time.sleep(0.1)
    return path.read_text()


def test_no_container_outlives_a_failing_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, session: SystemdSession
) -> None:
    id_file = pytester.path / "container-id"
    monkeypatch.setenv("CONTAINER_ID_FILE", str(id_file))
    assert session.engine is not None
    monkeypatch.setenv("ENGINE", session.engine.name)
    pytester.makepyfile(test_inner=INNER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(failed=1)
    assert not container_exists(session, id_file.read_text())


def test_no_container_outlives_a_ctrl_c(
    pytester: pytest.Pytester, session: SystemdSession, engine_name: str
) -> None:
    id_file = pytester.path / "container-id"
    pytester.makepyfile(test_inner=INNER_TEST)
    env = {**os.environ, "CONTAINER_ID_FILE": str(id_file), "WAIT_FOR_SIGINT": "1"}
    env["ENGINE"] = engine_name
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist"]
    with subprocess.Popen(argv, cwd=pytester.path, env=env, stdout=subprocess.DEVNULL) as proc:
        container_id = wait_for_file(id_file, proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) != 0
    assert not container_exists(session, container_id)


def test_a_crashed_session_s_container_is_removed_at_the_next_start(
    session: SystemdSession, tmp_path: Path, engine_name: str
) -> None:
    id_file = tmp_path / "container-id"
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_SCRIPT)
    argv = [sys.executable, str(script), str(id_file), engine_name]
    done = subprocess.run(argv, check=False, timeout=300)
    assert done.returncode == 1
    leaked = id_file.read_text()
    assert container_exists(session, leaked)
    next_session = SystemdSession(tmp_path / "next", {"engine": engine_name})
    try:
        next_session.start()
    finally:
        next_session.close()
    assert not container_exists(session, leaked)
    assert container_exists(session, machine_of(session).container_id)  # a live one is kept
