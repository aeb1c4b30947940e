"""The fake backend: its stand-ins answer like systemd and tmux, and it reports what they did."""

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

from mosaic_conformance.harness.systems import create_session
from mosaic_conformance.harness.systems.base import Call
from mosaic_conformance.harness.systems.fake import FAKE_USER, FakeBackend, FakeSession, SentKeys

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
    fake = create_session("fake", tmp_path_factory.mktemp("fake-session"))
    assert isinstance(fake, FakeSession)
    fake.start()
    yield fake
    fake.close()


@pytest.fixture
def backend(session: FakeSession, tmp_path: Path) -> FakeBackend:
    fake = session.open(tmp_path / "root")
    (fake.unit_dir / "mosaic-agent@.service").write_text(AGENT_TEMPLATE)
    return fake


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
    for name in ("systemctl", "loginctl", "tmux", "_prelude.sh", "_fake.sh"):
        assert (session.bin_dir / name).exists(), name
    for name in ("systemctl", "loginctl", "tmux"):
        assert os.access(session.bin_dir / name, os.X_OK), name


def test_environ_puts_the_stand_ins_first_and_keeps_the_real_home_out(
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
    assert backend.unit_dir == backend.root / "config" / "systemd" / "user"


def test_open_before_start_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="before start"):
        FakeSession(tmp_path).open(tmp_path / "root")


# --- systemctl -------------------------------------------------------------------------------


def test_systemctl_requires_user(backend: FakeBackend) -> None:
    result = run(backend, "systemctl", "enable", agent("a"))
    assert result.returncode == 1
    assert "fake systemctl: only --user is simulated" in result.stderr
    assert backend.state().enabled == frozenset()


@pytest.mark.parametrize("option", ["--bogus", "--runtime", "-n"])
def test_an_unsimulated_option_is_refused_by_name(backend: FakeBackend, option: str) -> None:
    result = systemctl(backend, "is-active", option, agent("a"))
    assert result.returncode == 1
    assert option in result.stderr


def test_accepted_options_pass(backend: FakeBackend) -> None:
    result = systemctl(
        backend, "--no-pager", "--quiet", "-q", "--no-block", "--full", "-l", "is-active", "x"
    )
    assert (result.returncode, result.stdout) == (3, "")


def test_enable_makes_a_unit_enabled_and_says_so_like_systemd(backend: FakeBackend) -> None:
    result = systemctl(backend, "enable", agent("a"))
    assert result.returncode == 0
    wants = backend.unit_dir / "default.target.wants" / agent("a")
    assert f"Created symlink {wants}" in result.stderr
    assert str(backend.unit_dir / "mosaic-agent@.service") in result.stderr
    state = backend.state()
    assert state.enabled == {agent("a")}
    assert state.active == frozenset()
    # enabling again changes nothing and says nothing
    again = systemctl(backend, "enable", agent("a"))
    assert (again.returncode, again.stderr) == (0, "")


def test_enable_of_a_missing_unit_file_fails_and_enables_nothing(backend: FakeBackend) -> None:
    result = systemctl(backend, "enable", agent("a"), "nope.service")
    assert result.returncode == 1
    assert "Failed to enable unit: Unit file nope.service does not exist." in result.stderr
    assert backend.state().enabled == frozenset()


def test_enable_now_starts_and_disable_now_stops(backend: FakeBackend) -> None:
    assert systemctl(backend, "enable", "--now", agent("a")).returncode == 0
    assert backend.state().active == {agent("a")}
    result = systemctl(backend, "disable", "--now", agent("a"))
    assert result.returncode == 0
    assert "Removed" in result.stderr
    state = backend.state()
    assert (state.enabled, state.active) == (frozenset(), frozenset())


def test_disable_of_a_unit_not_enabled_succeeds(backend: FakeBackend) -> None:
    result = systemctl(backend, "disable", agent("a"))
    assert (result.returncode, result.stderr) == (0, "")


def test_disable_of_a_missing_unit_file_fails(backend: FakeBackend) -> None:
    result = systemctl(backend, "disable", "nope.service")
    assert result.returncode == 1
    assert "Unit file nope.service does not exist." in result.stderr


def test_a_name_without_suffix_means_a_service_like_systemctl(backend: FakeBackend) -> None:
    assert systemctl(backend, "enable", "mosaic-agent@a").returncode == 0
    assert backend.state().enabled == {agent("a")}


def test_a_unit_without_install_section_is_static_and_enable_does_nothing(
    backend: FakeBackend,
) -> None:
    (backend.unit_dir / "mosaic-plain.service").write_text("[Service]\nExecStart=/bin/true\n")
    result = systemctl(backend, "enable", "mosaic-plain.service")
    assert result.returncode == 0
    assert "no installation config" in result.stderr
    assert backend.state().enabled == frozenset()
    status = systemctl(backend, "is-enabled", "mosaic-plain.service")
    assert (status.returncode, status.stdout) == (0, "static\n")


def test_start_stop_restart(backend: FakeBackend) -> None:
    assert systemctl(backend, "start", agent("a"), agent("b")).returncode == 0
    assert backend.state().active == {agent("a"), agent("b")}
    assert systemctl(backend, "stop", agent("a")).returncode == 0
    assert backend.state().active == {agent("b")}
    assert systemctl(backend, "restart", agent("a")).returncode == 0
    assert backend.state().active == {agent("a"), agent("b")}
    # stopping a known unit that is not running is fine
    assert systemctl(backend, "stop", agent("c")).returncode == 0


def test_start_of_a_missing_unit_is_exit_5(backend: FakeBackend) -> None:
    result = systemctl(backend, "start", "nope.service")
    assert result.returncode == 5
    assert "Failed to start nope.service: Unit nope.service not found." in result.stderr
    restart = systemctl(backend, "restart", "nope.service")
    assert restart.returncode == 5
    assert "Failed to restart nope.service: Unit nope.service not found." in restart.stderr


def test_stop_of_an_unknown_inactive_unit_is_exit_5(backend: FakeBackend) -> None:
    result = systemctl(backend, "stop", "nope.service")
    assert result.returncode == 5
    assert "Failed to stop nope.service: Unit nope.service not loaded." in result.stderr


def test_start_of_a_template_needs_an_instance(backend: FakeBackend) -> None:
    result = systemctl(backend, "start", "mosaic-agent@.service")
    assert result.returncode == 1
    assert "missing the instance name" in result.stderr


def test_is_enabled(backend: FakeBackend) -> None:
    systemctl(backend, "enable", agent("a"))
    assert systemctl(backend, "is-enabled", agent("a")).stdout == "enabled\n"
    result = systemctl(backend, "is-enabled", agent("b"))
    assert (result.returncode, result.stdout) == (1, "disabled\n")
    # systemd 252 succeeds when any of the units is enabled
    both = systemctl(backend, "is-enabled", agent("b"), agent("a"))
    assert (both.returncode, both.stdout) == (0, "disabled\nenabled\n")
    quiet = systemctl(backend, "is-enabled", "--quiet", agent("a"))
    assert (quiet.returncode, quiet.stdout) == (0, "")
    missing = systemctl(backend, "is-enabled", "nope.service")
    assert missing.returncode == 1
    assert "Failed to get unit file state for nope.service" in missing.stderr


def test_is_active(backend: FakeBackend) -> None:
    systemctl(backend, "start", agent("a"))
    result = systemctl(backend, "is-active", agent("a"))
    assert (result.returncode, result.stdout) == (0, "active\n")
    inactive = systemctl(backend, "is-active", agent("b"), "nope.service")
    assert (inactive.returncode, inactive.stdout) == (3, "inactive\ninactive\n")
    # systemd 252 succeeds when any of the units is active
    mixed = systemctl(backend, "is-active", agent("b"), agent("a"))
    assert (mixed.returncode, mixed.stdout) == (0, "inactive\nactive\n")


def test_too_few_arguments(backend: FakeBackend) -> None:
    for verb in ("enable", "disable", "start", "stop", "is-enabled", "is-active"):
        result = systemctl(backend, verb)
        assert result.returncode == 1, verb
        assert "Too few arguments." in result.stderr


def test_unknown_verb_is_named(backend: FakeBackend) -> None:
    result = systemctl(backend, "isolate", "default.target")
    assert result.returncode == 1
    assert "isolate" in result.stderr


def test_daemon_reload_is_recorded(backend: FakeBackend) -> None:
    assert systemctl(backend, "daemon-reload").returncode == 0
    assert backend.calls() == [Call(("systemctl", "--user", "daemon-reload"), 0)]


def test_show_several_units(backend: FakeBackend) -> None:
    systemctl(backend, "enable", "--now", agent("a"))
    systemctl(backend, "enable", agent("b"))
    result = systemctl(backend, "show", agent("a"), agent("b"), "nope.service")
    assert result.returncode == 0
    blocks = [
        dict(line.split("=", 1) for line in block.splitlines())
        for block in result.stdout.split("\n\n")
    ]
    assert [b["Id"] for b in blocks] == [agent("a"), agent("b"), "nope.service"]
    assert blocks[0]["ActiveState"] == "active"
    assert blocks[0]["SubState"] == "running"
    assert blocks[0]["UnitFileState"] == "enabled"
    assert blocks[0]["LoadState"] == "loaded"
    assert blocks[0]["Description"] == "Mosaic agent a"
    assert blocks[1]["ActiveState"] == "inactive"
    assert blocks[1]["SubState"] == "dead"
    assert blocks[2]["LoadState"] == "not-found"
    assert "UnitFileState" not in blocks[2]  # empty values are hidden unless asked for


def test_show_properties_and_values(backend: FakeBackend) -> None:
    systemctl(backend, "enable", "--now", agent("a"))
    picked = systemctl(
        backend, "show", "-p", "ActiveState,Id", "--property=UnitFileState", agent("a"), "x"
    )
    # systemd prints in its own order, not the order asked, and empty values asked for
    assert picked.stdout == (
        f"Id={agent('a')}\nActiveState=active\nUnitFileState=enabled\n\n"
        "Id=x.service\nActiveState=inactive\nUnitFileState=\n"
    )
    values = systemctl(backend, "show", "-p", "ActiveState", "--value", agent("a"), agent("b"))
    assert values.stdout == "active\n\ninactive\n"
    bundled = systemctl(backend, "show", "-PActiveState", agent("a"))
    assert bundled.stdout == "active\n"


def test_show_expands_patterns_over_loaded_units(backend: FakeBackend) -> None:
    systemctl(backend, "start", agent("a"))
    systemctl(backend, "enable", agent("b"))
    result = systemctl(backend, "show", "-p", "Id", "--value", "mosaic-agent@*")
    assert sorted(result.stdout.split()) == [agent("a"), agent("b")]


def test_list_units(backend: FakeBackend) -> None:
    systemctl(backend, "enable", "--now", agent("a"))
    systemctl(backend, "enable", agent("b"))
    (backend.unit_dir / "other.service").write_text("[Unit]\nDescription=Other thing\n")
    systemctl(backend, "start", "other.service")

    def rows(*args: str) -> list[list[str]]:
        result = systemctl(backend, "list-units", "--plain", "--no-legend", *args)
        assert result.returncode == 0
        return [line.split(None, 4) for line in result.stdout.splitlines()]

    assert rows() == [
        [agent("a"), "loaded", "active", "running", "Mosaic agent a"],
        ["other.service", "loaded", "active", "running", "Other thing"],
    ]
    assert [r[0] for r in rows("--all")] == [agent("a"), agent("b"), "other.service"]
    assert [r[0] for r in rows("--all", "mosaic-agent@*")] == [agent("a"), agent("b")]
    assert [r[0] for r in rows("mosaic-*", "oth?r.service")] == [agent("a"), "other.service"]
    assert rows("--all", "--state=inactive") == [
        [agent("b"), "loaded", "inactive", "dead", "Mosaic agent b"]
    ]
    assert rows("nothing*") == []


def test_list_units_pads_columns_and_shows_a_legend(backend: FakeBackend) -> None:
    systemctl(backend, "start", agent("a"), agent("bbbb"))
    plain = systemctl(backend, "list-units", "--plain", "--no-legend").stdout.splitlines()
    assert plain[0].index("loaded") == plain[1].index("loaded")
    legend = systemctl(backend, "list-units").stdout
    assert legend.splitlines()[0].split() == ["UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION"]
    assert "2 loaded units listed." in legend


def test_list_unit_files(backend: FakeBackend) -> None:
    (backend.unit_dir / "mosaic-tmux-holder.service").write_text(AGENT_TEMPLATE)
    result = systemctl(backend, "list-unit-files", "--no-legend")
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["mosaic-agent@.service", "disabled", "enabled"],
        ["mosaic-tmux-holder.service", "disabled", "enabled"],
    ]
    systemctl(backend, "enable", agent("a"), "mosaic-tmux-holder.service")
    result = systemctl(backend, "list-unit-files", "--no-legend", "mosaic-agent@*")
    assert result.stdout.split() == ["mosaic-agent@.service", "enabled", "enabled"]


def test_status_exit_codes(backend: FakeBackend) -> None:
    systemctl(backend, "start", agent("a"))
    running = systemctl(backend, "status", agent("a"))
    assert running.returncode == 0
    assert "Active: active (running)" in running.stdout
    assert systemctl(backend, "status", agent("b")).returncode == 3
    missing = systemctl(backend, "status", "nope.service")
    assert missing.returncode == 4
    assert "Unit nope.service could not be found." in missing.stderr


# --- failure injection -----------------------------------------------------------------------


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
    assert run(backend, "loginctl", "enable-linger").returncode == 1
    assert not backend.state().linger
    assert run(backend, "tmux", "new-session", "-d", "-s", "agent-a").returncode == 2
    assert run(backend, "tmux", "new-session", "-d", "-s", "agent-b").returncode == 0
    assert [s.name for s in backend.tmux_sessions()] == ["agent-b"]


# --- linger ----------------------------------------------------------------------------------


def test_linger(backend: FakeBackend) -> None:
    def linger() -> str:
        return run(backend, "loginctl", "show-user", FAKE_USER, "-p", "Linger").stdout

    assert linger() == "Linger=no\n"
    assert run(backend, "loginctl", "enable-linger").returncode == 0  # default: $USER
    assert backend.state().linger
    assert linger() == "Linger=yes\n"
    value = run(backend, "loginctl", "show-user", FAKE_USER, "--property=Linger", "--value")
    assert value.stdout == "yes\n"
    assert run(backend, "loginctl", "disable-linger", FAKE_USER).returncode == 0
    assert not backend.state().linger
    assert run(backend, "loginctl", "enable-linger", "someone-else").returncode == 0
    assert not backend.state().linger  # linger is per user


def test_loginctl_refuses_what_it_does_not_simulate(backend: FakeBackend) -> None:
    assert run(backend, "loginctl", "list-sessions").returncode == 1
    assert run(backend, "loginctl", "show-user", "nobody-here").returncode == 1
    assert "--bogus" in run(backend, "loginctl", "--bogus", "show-user").stderr


# --- tmux ------------------------------------------------------------------------------------


def test_tmux_sessions_and_keys(backend: FakeBackend) -> None:
    def tmux(*args: str) -> subprocess.CompletedProcess[str]:
        return run(backend, "tmux", *args)

    none = tmux("has-session", "-t", "coder0")
    assert none.returncode == 1
    assert "no server running on" in none.stderr
    assert tmux("list-sessions").returncode == 1

    made = tmux("new-session", "-d", "-s", "coder0", "-n", "main", "-c", "/srv", "codex", "go")
    assert made.returncode == 0
    assert tmux("new-session", "-ds", "orchestrator", "pi").returncode == 0
    duplicate = tmux("new-session", "-d", "-s", "coder0")
    assert (duplicate.returncode, duplicate.stderr) == (1, "duplicate session: coder0\n")
    assert tmux("new-session", "-s", "attached").returncode == 1  # needs a terminal

    assert tmux("has-session", "-t", "coder0").returncode == 0
    assert tmux("has-session", "-t", "coder").returncode == 0  # tmux matches a prefix...
    assert tmux("has-session", "-t", "=coder").returncode == 1  # ...unless told exactly
    assert tmux("list-sessions", "-F", "#{session_name}").stdout == "coder0\norchestrator\n"
    assert tmux("ls").stdout.startswith("coder0: 1 windows (created ")
    panes = tmux("list-panes", "-a", "-F", "#{session_name} #{pane_current_command} #{pane_id}")
    assert panes.stdout == "coder0 codex %0\norchestrator pi %1\n"

    assert tmux("send-keys", "-t", "coder0", "hello 'world'", "Enter").returncode == 0
    assert tmux("send-keys", "-l", "-t", "coder0:0.0", "héllo").returncode == 0
    missing = tmux("send-keys", "-t", "nobody", "x")
    assert (missing.returncode, missing.stderr) == (1, "can't find pane: nobody\n")
    assert backend.sent_keys("coder0") == [
        SentKeys(("hello 'world'", "Enter"), literal=False),
        SentKeys(("héllo",), literal=True),
    ]

    sessions = backend.tmux_sessions()
    assert [(s.name, s.window, s.command, s.cwd) for s in sessions] == [
        ("coder0", "main", ("codex", "go"), "/srv"),
        ("orchestrator", "pi", ("pi",), str(Path.cwd())),
    ]
    assert tmux("kill-session", "-t", "coder0").returncode == 0
    assert [s.name for s in backend.tmux_sessions()] == ["orchestrator"]
    assert len(backend.sent_keys("coder0")) == 2  # still readable after the kill
    assert tmux("kill-server").returncode == 0
    assert backend.tmux_sessions() == []
    assert tmux("kill-server").returncode == 1


def test_tmux_servers_are_separate(backend: FakeBackend) -> None:
    run(backend, "tmux", "-L", "mosaic", "new-session", "-d", "-s", "a")
    run(backend, "tmux", "-S", "/tmp/some/socket", "new-session", "-d", "-s", "b")
    assert [s.name for s in backend.tmux_sessions("mosaic")] == ["a"]
    assert [s.name for s in backend.tmux_sessions(socket_path="/tmp/some/socket")] == ["b"]
    assert backend.tmux_sessions() == []
    assert run(backend, "tmux", "has-session", "-t", "a").returncode == 1


def test_tmux_refuses_what_it_does_not_simulate(backend: FakeBackend) -> None:
    run(backend, "tmux", "new-session", "-d", "-s", "a")
    unknown = run(backend, "tmux", "attach-session", "-t", "a")
    assert unknown.returncode == 1
    assert "attach-session" in unknown.stderr
    fmt = run(backend, "tmux", "list-sessions", "-F", "#{?session_attached,yes,no}")
    assert fmt.returncode == 1
    assert "not simulated" in fmt.stderr
    assert run(backend, "tmux", "send-keys", "x").returncode == 1  # no current pane


def test_tmux_names_like_tmux(backend: FakeBackend) -> None:
    printed = run(backend, "tmux", "new-session", "-d", "-P", "-s", "a.b:c")
    assert printed.stdout == "a_b_c:\n"  # tmux turns "." and ":" into "_"
    numbered = run(backend, "tmux", "new-session", "-d", "-P", "-F", "#{session_name}")
    assert numbered.stdout == "1\n"  # no -s: named after its id


# --- boot ------------------------------------------------------------------------------------


def test_boot_starts_exactly_the_enabled_units_and_ends_tmux(backend: FakeBackend) -> None:
    run(backend, "loginctl", "enable-linger")
    systemctl(backend, "enable", agent("a"), agent("b"))
    systemctl(backend, "start", agent("c"))
    systemctl(backend, "enable", "--now", agent("d"))
    systemctl(backend, "disable", agent("d"))
    run(backend, "tmux", "new-session", "-d", "-s", "x")
    run(backend, "tmux", "send-keys", "-t", "x", "hi")
    backend.boot()
    state = backend.state()
    assert state.active == state.enabled == {agent("a"), agent("b")}
    assert state.active_agents == {"a", "b"}
    assert backend.tmux_sessions() == []
    assert backend.sent_keys("x") == [SentKeys(("hi",), literal=False)]


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


def test_state_holds_only_mosaic_units(backend: FakeBackend) -> None:
    (backend.unit_dir / "other.service").write_text(AGENT_TEMPLATE)
    systemctl(backend, "enable", "--now", "other.service", agent("a"))
    state = backend.state()
    assert state.unit_files == {"mosaic-agent@.service"}
    assert state.enabled == state.active == {agent("a")}


# --- hostile names ---------------------------------------------------------------------------

HOSTILE_UNITS = [
    "../../escaped.service",
    "mosaic-agent@../../escaped.service",
    "a/b.service",
    "..",
    ".",
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
        result = systemctl(backend, verb, name)
        assert result.returncode == 1, name
        assert "Invalid unit name" in result.stderr, name
    assert sorted(backend.root.parent.iterdir()) == outside
    assert not list(backend.root.rglob("*escaped*"))
    for folder in ("enabled", "active"):
        assert list((backend.root / "state" / folder).iterdir()) == []
    assert [c.exit_code for c in backend.calls()] == [1] * (len(HOSTILE_UNITS) + 1)


def test_hostile_tmux_and_user_names_stay_inside(backend: FakeBackend) -> None:
    outside = sorted(backend.root.parent.iterdir())
    # tmux turns "." into "_"; "/" stays part of the name
    names = {"../../escaped": "__/__/escaped", "/tmp/escaped": "/tmp/escaped", "..": "__"}
    for asked, name in names.items():
        assert run(backend, "tmux", "new-session", "-d", "-s", asked).returncode == 0
        assert run(backend, "tmux", "send-keys", "-t", f"={name}", "x").returncode == 0
        assert backend.sent_keys(name) == [SentKeys(("x",), literal=False)]
    assert {s.name for s in backend.tmux_sessions()} == set(names.values())
    assert run(backend, "tmux", "-L", "../up", "ls").returncode == 1
    assert run(backend, "tmux", "-S", "../../escaped", "new", "-d").returncode == 0
    assert run(backend, "loginctl", "enable-linger", "../../escaped").returncode == 1
    assert sorted(backend.root.parent.iterdir()) == outside
    assert not list(backend.root.rglob("escaped"))


# --- concurrency and the call log ------------------------------------------------------------


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


def test_concurrent_new_sessions_of_one_name_make_exactly_one(backend: FakeBackend) -> None:
    def new(_: int) -> int:
        return run(backend, "tmux", "new-session", "-d", "-s", "agent").returncode

    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(new, range(10)))
    assert sorted(codes) == [0] + [1] * 9
    assert [s.name for s in backend.tmux_sessions()] == ["agent"]


def test_versions(backend: FakeBackend) -> None:
    assert run(backend, "tmux", "-V").stdout == "tmux 3.3a\n"
    assert systemctl(backend, "--version").stdout.startswith("systemd 252 ")
    assert run(backend, "loginctl", "--version").stdout.startswith("systemd 252 ")


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
        subprocess.run(
            [command.encode(), *args],
            env={**os.environ, **fake.environ()},
            capture_output=True,
            timeout=30,
            check=False,
        )
        calls = fake.calls()
        assert len(calls) == 1
        assert calls[0].argv == (command, *(os.fsdecode(a) for a in args))


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
