"""The fake backend: what its stand-ins refuse, the state they keep, the calls they record, and
its tmux: the real one, one set of servers per test, ended with the test.

That the stand-ins answer as systemd does is tests/test_fake_differential.py's part.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_conformance.harness.systems import BackendUnavailable, create_session
from mosaic_conformance.harness.systems.base import Call, SystemState
from mosaic_conformance.harness.systems.fake import (
    FAKE_USER,
    TMUX_ENV,
    FakeBackend,
    FakeSession,
    TmuxSession,
    real_tmux,
)
from mosaic_conformance.wait import wait_for

pytestmark = pytest.mark.skipif(real_tmux() is None, reason="the fake backend needs tmux")

AGENT_TEMPLATE = """\
[Unit]
Description=Mosaic agent %i

[Service]
ExecStart=/bin/true

[Install]
WantedBy=default.target
"""


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSession]:
    with create_session("fake", tmp_path_factory.mktemp("fake-session")) as fake:
        assert isinstance(fake, FakeSession)
        yield fake


@pytest.fixture
def backend(session: FakeSession, tmp_path: Path) -> Iterator[FakeBackend]:
    fake = session.open(tmp_path / "root")
    (fake.unit_dir / "mosaic-agent@.service").write_text(AGENT_TEMPLATE)
    yield fake
    fake.close()


def run(backend: FakeBackend, *argv: str | bytes) -> subprocess.CompletedProcess[str]:
    """Run a stand-in as the fleet would: found on the backend's PATH."""
    return subprocess.run(
        argv,
        env={**os.environ, **backend.environ()},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def systemctl(backend: FakeBackend, *args: str) -> subprocess.CompletedProcess[str]:
    return run(backend, "systemctl", "--user", *args)


def agent(name: str) -> str:
    return f"mosaic-agent@{name}.service"


# --- the session and the environment ---------------------------------------------------------


def test_start_copies_the_stand_ins_executable(session: FakeSession) -> None:
    for name in ("systemctl", "loginctl", "tmux", "_prelude.sh", "_fake.sh", "_system.sh"):
        assert os.access(session.bin_dir / name, os.X_OK), name


def test_environ_puts_the_stand_ins_first_and_keeps_the_real_home_and_tmux_out(
    backend: FakeBackend,
) -> None:
    env = backend.environ()
    assert env["PATH"].split(os.pathsep)[0] == str(backend.bin_dir)
    for name in ("systemctl", "loginctl", "tmux"):
        assert shutil.which(name, path=env["PATH"]) == str(backend.bin_dir / name)
    assert env["HOME"] == str(backend.root / "home")
    assert env["XDG_CONFIG_HOME"] == str(backend.root / "config")
    assert env["XDG_RUNTIME_DIR"] == str(backend.root / "run")
    assert env["USER"] == backend.user == FAKE_USER
    assert env["MOSAIC_CONFORMANCE_STATE"] == str(backend.root)
    assert env["TMUX_TMPDIR"] == str(backend.tmux_tmpdir)
    assert env["TMUX"] == ""
    assert env[TMUX_ENV] == real_tmux()
    assert backend.unit_dir == backend.root / "config" / "systemd" / "user"


def test_open_before_start_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="before start"):
        FakeSession(tmp_path).open(tmp_path / "root")


def test_without_tmux_the_backend_is_unavailable_and_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_sh = tmp_path / "path"
    only_sh.mkdir()
    (only_sh / "sh").symlink_to(shutil.which("sh") or "/bin/sh")
    monkeypatch.setenv("PATH", str(only_sh))
    with pytest.raises(BackendUnavailable, match="no tmux is on PATH: install tmux"):
        FakeSession(tmp_path / "session").start()


def test_the_real_tmux_is_found_behind_stand_in_folders(session: FakeSession) -> None:
    real = real_tmux()
    assert real is not None
    path = os.pathsep.join([str(session.bin_dir), str(Path(real).parent)])
    assert real_tmux(path) == real
    assert real_tmux(str(session.bin_dir)) is None


def test_tmux_sockets_are_in_the_test_folder(session: FakeSession) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if len(tmp) > 40:
            pytest.skip(f"the temporary folder's path is too long for this test: {tmp}")
        fake = session.open(Path(tmp) / "root")
        assert fake.tmux_tmpdir == fake.root / "tmux"
        fake.close()


def test_a_deep_test_folder_gets_short_tmux_sockets(session: FakeSession, tmp_path: Path) -> None:
    deep = session.open(tmp_path / ("d" * 90))
    try:
        assert not deep.tmux_tmpdir.is_relative_to(deep.root)
        assert run(deep, "tmux", "new-session", "-d", "-s", "x").returncode == 0
        assert [s.name for s in deep.tmux_sessions()] == ["x"]
    finally:
        deep.close()
    assert not deep.tmux_tmpdir.exists()


def test_an_interrupted_close_is_finished_by_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C landing in a test's close (seen in the cleanup test) leaves no server and no
    short tmux folder: the session's own close ends both."""
    own = FakeSession(tmp_path / "session")
    own.start()
    end_servers = FakeBackend._end_tmux_servers

    def interrupted(self: FakeBackend) -> None:
        monkeypatch.setattr(FakeBackend, "_end_tmux_servers", end_servers)
        raise KeyboardInterrupt

    try:
        deep = own.open(tmp_path / ("d" * 90))
        assert run(deep, "tmux", "new-session", "-d", "-s", "x").returncode == 0
        server = int(run(deep, "tmux", "display-message", "-p", "#{pid}").stdout)
        short = deep.tmux_tmpdir.parent
        monkeypatch.setattr(FakeBackend, "_end_tmux_servers", interrupted)
        with pytest.raises(KeyboardInterrupt):
            deep.close()
        assert deep.tmux_servers(), "the interrupted close should have left the server up"
        own.close()
        assert wait_for(lambda: not Path(f"/proc/{server}").exists(), what="tmux ending", timeout=5)
        assert not short.exists()
    finally:
        own.close()  # a failed assertion above leaves no server either


# --- systemctl: what it refuses, loudly --------------------------------------------------------


def test_systemctl_requires_user(backend: FakeBackend) -> None:
    result = run(backend, "systemctl", "enable", agent("a"))
    assert result.returncode == 1
    assert "the system manager (without --user) is not simulated" in result.stderr
    assert backend.state().enabled == frozenset()


@pytest.mark.parametrize("option", ["--bogus", "--runtime", "-n", "--type=service", "-P"])
def test_an_unsimulated_option_is_refused_by_name(backend: FakeBackend, option: str) -> None:
    result = systemctl(backend, "is-active", option, agent("a"))
    assert result.returncode == 1
    assert f"option '{option}' is not simulated" in result.stderr


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (["status", agent("a")], "the verb 'status'"),
        (["is-failed", agent("a")], "the verb 'is-failed'"),
        (["isolate", "default.target"], "the verb 'isolate'"),
        ([], "listing every unit"),
        (["show", agent("a")], "show without --property"),
        (["show", "-p", "MainPID", agent("a")], "property 'MainPID'"),
        (["show", "-p", "Id"], "show of the manager itself"),
        (["list-units", "--all"], "list-units without a pattern"),
        (["list-unit-files"], "list-unit-files without a pattern"),
        (["stop", "mosaic-agent@*"], "a unit pattern outside list-units"),
    ],
)
def test_what_the_fake_does_not_model_is_refused_by_name(
    backend: FakeBackend, args: list[str], refused: str
) -> None:
    result = systemctl(backend, *args)
    assert result.returncode == 1
    assert f"fake systemctl: {refused}" in result.stderr


def test_enabling_a_unit_with_more_links_than_wanted_by_is_refused(backend: FakeBackend) -> None:
    (backend.unit_dir / "mosaic-x.service").write_text(AGENT_TEMPLATE + "Alias=other.service\n")
    result = systemctl(backend, "enable", "mosaic-x.service")
    assert result.returncode == 1
    assert "enabling a unit with [Install] Alias= (mosaic-x.service) is not" in result.stderr
    assert backend.state().enabled == frozenset()


@pytest.mark.parametrize(
    ("locale", "arrow"), [("C.UTF-8", "→"), ("C", "->"), ("POSIX", "->"), ("", "→")]
)
def test_the_arrow_follows_the_locale_as_systemds_does(
    backend: FakeBackend, locale: str, arrow: str
) -> None:
    # As systemd 252 answers with LANG set so (the differential test cannot set it: the
    # systemd backend passes no locale into its container): an explicit C is not UTF-8.
    env = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_CTYPE")}
    done = subprocess.run(
        ["systemctl", "--user", "enable", agent("a")],
        env={**env, **backend.environ(), **({"LANG": locale} if locale else {})},
        capture_output=True,
        text=True,
        check=True,
    )
    assert f" {arrow} {backend.unit_dir}/mosaic-agent@.service." in done.stderr


HOSTILE_UNITS = [
    "../../escaped.service",
    "mosaic-agent@../../escaped.service",
    "a/b.service",
    ".hidden.service",
    "",
    "@x.service",
    "foo bar.service",
    "$(touch escaped).service",
    "x" * 300 + ".service",
]


@pytest.mark.parametrize("verb", ["enable", "disable", "start", "stop", "is-enabled", "show"])
def test_hostile_unit_names_are_refused_and_never_files(backend: FakeBackend, verb: str) -> None:
    outside = sorted(backend.root.parent.iterdir())
    for name in [*HOSTILE_UNITS, str(backend.root.parent / "escaped.service")]:
        result = systemctl(backend, verb, "-p", "Id", name)
        assert result.returncode == 1, name
        assert "Invalid unit name" in result.stderr, name
    assert sorted(backend.root.parent.iterdir()) == outside
    assert not list(backend.root.rglob("*escaped*"))
    unit_files = frozenset({"mosaic-agent@.service"})
    assert backend.state() == SystemState(unit_files, frozenset(), frozenset(), linger=False)


# --- the state the stand-ins keep ----------------------------------------------------------------


def test_state_follows_the_calls(backend: FakeBackend) -> None:
    assert systemctl(backend, "enable", agent("a"), agent("b")).returncode == 0
    assert systemctl(backend, "start", agent("a"), agent("c")).returncode == 0
    assert systemctl(backend, "disable", "--now", agent("b")).returncode == 0
    assert systemctl(backend, "stop", agent("c")).returncode == 0
    state = backend.state()
    assert (state.enabled, state.active) == ({agent("a")}, {agent("a")})
    assert state.unit_files == {"mosaic-agent@.service"}


def test_state_holds_only_mosaic_units(backend: FakeBackend) -> None:
    (backend.unit_dir / "other.service").write_text(AGENT_TEMPLATE)
    systemctl(backend, "enable", "--now", "other.service", agent("a"))
    state = backend.state()
    assert state.unit_files == {"mosaic-agent@.service"}
    assert state.enabled == state.active == {agent("a")}


def test_linger_is_the_one_users_and_refuses_the_rest(backend: FakeBackend) -> None:
    assert run(backend, "loginctl", "enable-linger").returncode == 0  # no user: $USER
    assert backend.state().linger
    assert run(backend, "loginctl", "disable-linger", FAKE_USER).returncode == 0
    assert not backend.state().linger
    other = run(backend, "loginctl", "enable-linger", "someone-else")
    assert (other.returncode, other.stderr) == (
        1,
        "Failed to look up user someone-else: No such process\n",
    )
    assert not backend.state().linger
    for args, refused in [
        ([], "listing sessions"),
        (["list-sessions"], "the verb 'list-sessions'"),
        (["show-user", FAKE_USER], "show-user without --property"),
        (["show-user", "-p", "Linger"], "show-user without a user"),
        (["show-user", FAKE_USER, "-p", "State"], "property 'State'"),
        (["--bogus", "show-user"], "option '--bogus'"),
    ]:
        result = run(backend, "loginctl", *args)
        assert result.returncode == 1, args
        assert result.stderr.startswith(f"fake loginctl: {refused}"), args
        assert "is not simulated" in result.stderr, args


def test_twenty_concurrent_enables_are_all_recorded_and_applied(backend: FakeBackend) -> None:
    names = [agent(f"c{i}") for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda unit: systemctl(backend, "enable", "--now", unit), names))
    assert [r.returncode for r in results] == [0] * 20
    calls = backend.calls("systemctl")
    assert sorted(c.argv[-1] for c in calls) == sorted(names)
    assert {c.exit_code for c in calls} == {0}
    state = backend.state()
    assert state.enabled == state.active == set(names)


# --- boot ----------------------------------------------------------------------------------------


def test_boot_starts_exactly_the_enabled_units_and_ends_tmux(backend: FakeBackend) -> None:
    run(backend, "loginctl", "enable-linger")
    systemctl(backend, "enable", agent("a"), agent("b"))
    systemctl(backend, "start", agent("c"))
    systemctl(backend, "enable", "--now", agent("d"))
    systemctl(backend, "disable", agent("d"))
    run(backend, "tmux", "new-session", "-d", "-s", "x")
    backend.boot()
    state = backend.state()
    assert state.active == state.enabled == {agent("a"), agent("b")}
    assert state.active_agents == {"a", "b"}
    assert backend.tmux_sessions() == []


def test_without_linger_a_boot_starts_nothing(backend: FakeBackend) -> None:
    systemctl(backend, "enable", agent("a"))
    backend.boot()
    assert backend.state().active == frozenset()  # nobody logged in: no user manager
    run(backend, "loginctl", "enable-linger")
    backend.boot()
    assert backend.state().active == {agent("a")}


def test_boot_does_not_start_an_enabled_unit_whose_file_is_gone(backend: FakeBackend) -> None:
    run(backend, "loginctl", "enable-linger")
    (backend.unit_dir / "mosaic-gone.service").write_text(AGENT_TEMPLATE)
    systemctl(backend, "enable", "mosaic-gone.service")
    (backend.unit_dir / "mosaic-gone.service").unlink()
    backend.boot()
    assert backend.state().active == frozenset()


# --- failure injection ---------------------------------------------------------------------------


def test_injected_failure_for_one_unit(backend: FakeBackend) -> None:
    backend.inject_failure("enable", agent("b"), exit_code=1, stderr="Failed: nope")
    assert systemctl(backend, "enable", agent("a")).returncode == 0
    failed = systemctl(backend, "enable", agent("b"))
    assert (failed.returncode, failed.stderr) == (1, "Failed: nope\n")
    assert backend.state().enabled == {agent("a")}
    assert [c.exit_code for c in backend.calls()] == [0, 1]


def test_injected_failure_for_every_unit_and_cleared(backend: FakeBackend) -> None:
    backend.inject_failure("disable", exit_code=4)
    systemctl(backend, "enable", agent("a"))
    failed = systemctl(backend, "disable", agent("a"))
    assert failed.returncode == 4
    assert "Failed to disable *: injected failure" in failed.stderr
    assert backend.state().enabled == {agent("a")}
    backend.clear_failures()
    assert systemctl(backend, "disable", agent("a")).returncode == 0
    assert backend.state().enabled == frozenset()
    assert [c.exit_code for c in backend.calls()] == [0, 4, 0]


def test_injection_reaches_loginctl_and_tmux(backend: FakeBackend) -> None:
    backend.inject_failure("enable-linger")
    backend.inject_failure("new-session", "agent-a", exit_code=2)
    backend.inject_failure("send-keys", "agent-b", exit_code=3)
    assert run(backend, "loginctl", "enable-linger").returncode == 1
    assert not backend.state().linger
    for argv in (["new-session", "-d", "-s", "agent-a"], ["new", "-ds", "agent-a"]):
        assert run(backend, "tmux", *argv).returncode == 2, argv
    assert run(backend, "tmux", "-L", "x", "new", "-d", "-sagent-b").returncode == 0
    assert run(backend, "tmux", "-L", "x", "send-keys", "-t", "agent-b", "hi").returncode == 3
    assert [s.name for s in backend.tmux_sessions("x")] == ["agent-b"]
    assert backend.tmux_sessions() == []


# --- tmux: the real one, the test's own servers ---------------------------------------------


def test_tmux_is_the_real_one_with_the_tests_own_servers(backend: FakeBackend) -> None:
    real = run(backend, "tmux", "-V")
    assert (
        real.stdout
        == subprocess.run(
            [real_tmux() or "", "-V"], capture_output=True, text=True, check=True
        ).stdout
    )
    made = run(backend, "tmux", "new-session", "-d", "-s", "coder0", "-c", "/", "cat")
    assert made.returncode == 0
    assert run(backend, "tmux", "has-session", "-t", "coder0").returncode == 0
    assert backend.tmux_sessions() == [TmuxSession("coder0", "cat", "/")]
    assert backend.tmux_servers() == [backend.tmux_tmpdir / f"tmux-{os.getuid()}" / "default"]
    duplicate = run(backend, "tmux", "new-session", "-d", "-s", "coder0")
    assert (duplicate.returncode, duplicate.stderr) == (1, "duplicate session: coder0\n")
    recorded = [c.argv[1] for c in backend.calls("tmux")]
    assert recorded == ["-V", "new-session", "has-session", "new-session"]


def test_pane_text_is_what_the_session_shows(backend: FakeBackend) -> None:
    assert run(backend, "tmux", "new-session", "-d", "-s", "coder0", "cat").returncode == 0
    assert (
        run(backend, "tmux", "send-keys", "-t", "coder0", "hello 'wörld'", "Enter").returncode == 0
    )
    wait_for(
        lambda: "hello 'wörld'" in (backend.pane_text("coder0") or ""),
        what="the keys reaching the pane",
        timeout=10,
    )
    assert backend.pane_text("coder") is None  # names are exact
    assert backend.pane_text("coder0", socket_name="other") is None


def test_tmux_servers_are_separate(backend: FakeBackend, tmp_path: Path) -> None:
    socket = tmp_path / "sock"
    assert run(backend, "tmux", "-L", "mosaic", "new-session", "-d", "-s", "a").returncode == 0
    assert run(backend, "tmux", "-S", str(socket), "new-session", "-d", "-s", "b").returncode == 0
    assert [s.name for s in backend.tmux_sessions("mosaic")] == ["a"]
    assert [s.name for s in backend.tmux_sessions(socket_path=str(socket))] == ["b"]
    assert backend.tmux_sessions() == []
    assert run(backend, "tmux", "has-session", "-t", "a").returncode == 1


def test_the_wrapper_leaves_the_callers_locale_to_tmux(backend: FakeBackend) -> None:
    # The prelude works in LC_ALL=C; tmux, and the programs its server runs, must not.
    for locale in ("", "C.UTF-8"):
        env = {k: v for k, v in os.environ.items() if k != "LC_ALL"} | backend.environ()
        if locale:
            env["LC_ALL"] = locale
        report = backend.root / f"lc-all-{locale or 'unset'}"
        shell = f'printf "%s" "${{LC_ALL-unset}}" >{report}.new && mv {report}.new {report}'
        server = f"-Llocale-{locale or 'unset'}"  # a new server: it starts with this caller's
        subprocess.run(["tmux", server, "new", "-d", shell], env=env, check=True)
        wait_for(report.exists, what="the pane's report", timeout=10)
        assert report.read_text() == (locale or "unset")


def test_close_ends_every_tmux_server_and_the_programs_in_it(
    session: FakeSession, tmp_path: Path
) -> None:
    fake = session.open(tmp_path / "root")
    deaf_child = tmp_path / "deaf-child"
    # a pane program that outlives the hangup, with a child that does too
    deaf = f"trap '' HUP; sleep 300 & echo $! >{deaf_child}; wait"
    run(fake, "tmux", "new-session", "-d", "-s", "a", "sleep 300")
    run(fake, "tmux", "-L", "mosaic", "new-session", "-d", "-s", "b", deaf)
    run(fake, "tmux", "-S", str(tmp_path / "outside"), "new-session", "-d", "-s", "c")
    wait_for(
        lambda: deaf_child.read_text().strip() if deaf_child.exists() else None,
        what="the deaf pane's child",
        timeout=10,
    )
    sockets = fake.tmux_servers()
    assert len(sockets) == 3
    pids = [int(deaf_child.read_text())] + [
        int(pid)
        for socket in sockets
        for pid in subprocess.run(
            [real_tmux() or "", "-S", str(socket), "list-panes", "-a", "-F", "#{pid} #{pane_pid}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    ]
    fake.close()
    assert [pid for pid in pids if _running(pid)] == []
    assert all(fake.tmux_sessions(name) == [] for name in ("default", "mosaic"))


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


# --- the call log --------------------------------------------------------------------------------


def test_every_call_is_recorded_once_with_its_exit_code(backend: FakeBackend) -> None:
    systemctl(backend, "start", "nope.service")
    systemctl(backend, "--bogus")
    run(backend, "loginctl", "enable-linger")
    run(backend, "tmux", "has-session", "-t", "x")
    assert backend.calls() == [
        Call(("systemctl", "--user", "start", "nope.service"), 5),
        Call(("systemctl", "--user", "--bogus"), 1),
        Call(("loginctl", "enable-linger"), 0),
        Call(("tmux", "has-session", "-t", "x"), 1),
    ]
    assert [c.command for c in backend.calls("tmux")] == ["tmux"]
    for line in (backend.root / "calls.jsonl").read_text().splitlines():
        json.loads(line)


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
_BYTES = st.binary().filter(lambda b: b"\x00" not in b)
_ARG = st.one_of(_TEXT.map(os.fsencode), _BYTES)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    command=st.sampled_from(["systemctl", "loginctl", "tmux"]),
    args=st.lists(_ARG, max_size=6),
)
def test_any_argv_round_trips_through_the_call_log(
    session: FakeSession, command: str, args: list[bytes]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fake = session.open(Path(tmp))
        # Random arguments are for the recording, not for a real tmux (-c runs a command).
        env = {**os.environ, **fake.environ(), TMUX_ENV: shutil.which("true") or "/bin/true"}
        subprocess.run(
            [command.encode(), *args], env=env, capture_output=True, timeout=30, check=False
        )
        calls = fake.calls()
        assert len(calls) == 1
        assert calls[0].argv == (command, *(os.fsdecode(a) for a in args))
        fake.close()


# --- the fake tells a broken fleet from a good one -------------------------------------------

FLEET = """#!/bin/sh
# a tiny fleet: add NAME / remove NAME
unit="mosaic-agent@$2.service"
case $1 in
add) systemctl --user enable "$unit" || echo "warning: could not enable $unit" >&2
     systemctl --user start "$unit" ;;
remove) systemctl --user stop "$unit"
        {DISABLE} ;;
esac
"""


@pytest.mark.parametrize(
    ("disable", "left_enabled"),
    [('systemctl --user disable "$unit"', set()), (":", {"b"})],
    ids=["good-fleet", "fleet-that-forgets-to-disable"],
)
def test_state_after_reboot_tells_a_fleet_that_forgets_to_disable(
    backend: FakeBackend, tmp_path: Path, disable: str, left_enabled: set[str]
) -> None:
    fleet = tmp_path / "fleet"
    fleet.write_text(FLEET.replace("{DISABLE}", disable))
    fleet.chmod(0o755)
    run(backend, "loginctl", "enable-linger")
    for argv in (["add", "a"], ["add", "b"], ["remove", "b"]):
        assert run(backend, str(fleet), *argv).returncode == 0
    backend.boot()
    assert backend.state().enabled_agents == {"a"} | left_enabled
    assert backend.state().active_agents == {"a"} | left_enabled
