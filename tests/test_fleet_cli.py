"""The reference fleet through its command line (in-process, `fleet_main(argv)`), with the
fake backend's stand-ins for systemctl and loginctl on PATH."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
import yaml

from mosaic_conformance.contract import HOLDER_UNIT, ORCHESTRATOR_SESSION, agent_session
from mosaic_conformance.fleet import roster as roster_module
from mosaic_conformance.fleet.cli import fleet_main, main
from mosaic_conformance.fleet.commands import Completed, Fleet
from mosaic_conformance.harness.systems import Backend, create_session

UNIT = "mosaic-agent@{}.service"


@pytest.fixture(scope="module")
def fake_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    session = create_session("fake", tmp_path_factory.mktemp("fake"))
    session.start()
    yield session
    session.close()


@pytest.fixture
def backend(fake_session: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    backend: Backend = fake_session.open(tmp_path / "system")  # type: ignore[attr-defined]
    for key, value in backend.environ().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MOSAIC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MOSAIC_FLEET_PROFILES", str(tmp_path / "profiles"))
    (tmp_path / "profiles").mkdir()
    return backend


@pytest.fixture
def home(backend: Backend) -> Path:
    return Path(os.environ["MOSAIC_HOME"])


def fleet(*argv: str) -> int:
    return fleet_main(list(argv))


def roster_names(home: Path) -> list[str]:
    data = yaml.safe_load((home / "fleet" / "roster.yaml").read_text())
    return [a["name"] for a in data["agents"]]


def installed(home: Path) -> None:
    assert fleet("init", "--profile", "general", "--write") == 0
    assert fleet("install") == 0


# --- init -------------------------------------------------------------------------------


def test_init_prints_without_write(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fleet("init", "--profile", "pair") == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert [a["class"] for a in printed["agents"]] == ["orchestrator", "worker"]
    assert not (home / "fleet" / "roster.yaml").exists()


@pytest.mark.parametrize("profile", ["general", "pair", "team"])
def test_init_profiles_have_one_orchestrator(home: Path, profile: str) -> None:
    assert fleet("init", "--profile", profile, "--write") == 0
    data = yaml.safe_load((home / "fleet" / "roster.yaml").read_text())
    assert [a["class"] for a in data["agents"]].count("orchestrator") == 1


def test_init_refuses_to_overwrite_without_force(home: Path) -> None:
    assert fleet("init", "--write") == 0
    before = (home / "fleet" / "roster.yaml").read_bytes()
    assert fleet("init", "--profile", "minimal", "--write") == 1
    assert (home / "fleet" / "roster.yaml").read_bytes() == before
    assert fleet("init", "--profile", "minimal", "--write", "--force") == 0
    assert roster_names(home) == ["coder0"]


def test_corrupted_preset_names_the_count_and_writes_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profiles = Path(os.environ["MOSAIC_FLEET_PROFILES"])
    (profiles / "general.yaml").write_text(
        "version: 1\ntransport: tmux\nagents:\n"
        "  - {name: o1, runtime: pi, class: orchestrator}\n"
        "  - {name: o2, runtime: pi, class: orchestrator}\n"
    )
    assert fleet("init", "--write") == 1
    err = capsys.readouterr().err
    assert 'the "general" roster has 2 orchestrator agent(s), expected exactly 1 (R5)' in err
    assert not (home / "fleet").exists()


def plant_minimal(orchestrators: int) -> None:
    agents = [
        {"name": f"o{i}", "runtime": "pi", "class": "orchestrator"} for i in range(orchestrators)
    ]
    agents.append({"name": "c0", "runtime": "claude", "class": "worker"})
    profiles = Path(os.environ["MOSAIC_FLEET_PROFILES"])
    (profiles / "minimal.yaml").write_text(
        yaml.safe_dump({"version": 1, "transport": "tmux", "agents": agents})
    )


@pytest.mark.parametrize("orchestrators", [0, 1])
def test_minimal_may_have_no_orchestrator_or_one(home: Path, orchestrators: int) -> None:
    plant_minimal(orchestrators)
    assert fleet("init", "--profile", "minimal", "--write") == 0


def test_minimal_with_two_orchestrators_is_refused_by_its_own_rule(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plant_minimal(2)
    assert fleet("init", "--profile", "minimal", "--write") == 1
    err = capsys.readouterr().err
    assert 'the "minimal" roster has 2 orchestrator agent(s), expected at most 1' in err
    assert "exactly" not in err
    assert not (home / "fleet").exists()


def test_unknown_profile_is_a_usage_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fleet("init", "--profile", "nope") == 2
    assert "unknown profile 'nope': choose one of general, minimal, pair, team" in (
        capsys.readouterr().err
    )
    assert fleet("init", "--profile", "../etc/passwd") == 2


# --- install ----------------------------------------------------------------------------


def test_install_writes_units_enables_and_lingers(home: Path, backend: Backend) -> None:
    installed(home)
    state = backend.state()
    assert {"mosaic-agent@.service", "mosaic-tmux-holder.service"} <= state.unit_files
    assert state.enabled_agents == {"orchestrator", "coder0", "coder1", "reviewer0"}
    assert "mosaic-tmux-holder.service" in state.enabled
    assert state.linger
    enables = [c for c in backend.calls("systemctl") if "enable" in c.argv]
    assert len(enables) == 1, "install enables every unit in one call"
    assert HOLDER_UNIT in state.active, "install starts the tmux server"
    holder = (backend.unit_dir / HOLDER_UNIT).read_text()
    assert f"new-session -d -s {ORCHESTRATOR_SESSION}\n" in holder


def test_the_holder_starts_the_session_the_roster_names(home: Path, backend: Backend) -> None:
    roster = {
        "version": 1,
        "transport": "tmux",
        "connector": {"kind": "tmux", "tmux": {"session": "ops-chat"}},
        "agents": [{"name": "o", "runtime": "pi", "class": "orchestrator"}],
    }
    (home / "fleet").mkdir(parents=True)
    (home / "fleet" / "roster.yaml").write_text(yaml.safe_dump(roster))
    assert fleet("install") == 0
    assert "new-session -d -s ops-chat\n" in (backend.unit_dir / HOLDER_UNIT).read_text()


@pytest.mark.parametrize("session", ["mosaic-agent-x", "a.b", "a:b", ""])
def test_a_chat_session_tmux_would_mangle_or_an_agent_owns_is_refused(
    home: Path, session: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "version: 1\ntransport: tmux\nagents: []\n"
        f"connector: {{kind: tmux, tmux: {{session: {json.dumps(session)}}}}}\n"
    )
    (home / "fleet").mkdir(parents=True)
    (home / "fleet" / "roster.yaml").write_text(text)
    assert fleet("install") == 1
    assert "connector.tmux.session" in capsys.readouterr().err


def test_install_without_roster_fails(home: Path, backend: Backend) -> None:
    assert fleet("install") == 1
    assert backend.calls() == []


def test_install_failure_is_an_error(home: Path, backend: Backend) -> None:
    assert fleet("init", "--write") == 0
    backend.inject_failure("enable-linger", "*")
    assert fleet("install") == 1


# --- add --------------------------------------------------------------------------------


def test_add_writes_files_enables_and_starts(
    home: Path, backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    installed(home)
    assert fleet("add", "c9", "--runtime", "codex") == 0
    assert "c9" in roster_names(home)
    env = (home / "fleet" / "agents" / "c9.env").read_text()
    assert env.startswith("MOSAIC_AGENT_NAME=c9")
    assert f"MOSAIC_AGENT_SESSION={agent_session('c9')}\n" in env
    assert (home / "fleet" / "heartbeat" / "c9").exists()
    state = backend.state()
    assert UNIT.format("c9") in state.enabled
    assert UNIT.format("c9") in state.active
    out = capsys.readouterr().out
    assert "Added c9 (codex/worker) to the fleet." in out
    assert "Started mosaic-agent@c9.service." in out


def test_add_no_start_enables_only(home: Path, backend: Backend) -> None:
    installed(home)
    assert fleet("add", "c9", "--runtime", "codex", "--no-start") == 0
    assert UNIT.format("c9") in backend.state().enabled
    assert UNIT.format("c9") not in backend.state().active


def test_failed_enable_warns_and_keeps_the_agent(
    home: Path, backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    installed(home)
    backend.inject_failure("enable", UNIT.format("c9"), 1, "Access denied")
    assert fleet("add", "c9", "--runtime", "codex", "--no-start") == 0
    assert "c9" in roster_names(home)
    assert "Warning: could not enable mosaic-agent@c9.service: Access denied" in (
        capsys.readouterr().err
    )


def raising_on(verb: str, exc: Exception) -> object:
    """A runner that raises ``exc`` launching ``systemctl --user VERB``, else succeeds."""

    def run(argv: list[str]) -> Completed:
        if argv[:3] == ["systemctl", "--user", verb]:
            raise exc
        return Completed(tuple(argv), 0, "", "")

    return run


def test_a_runner_exception_on_enable_is_a_warning_naming_the_unit(home: Path) -> None:
    installed(home)
    out, err = io.StringIO(), io.StringIO()
    denied = PermissionError(13, "Permission denied", "systemctl")
    Fleet(home, out, err, raising_on("enable", denied)).add("c9", "codex", "worker", True)  # type: ignore[arg-type]
    assert "c9" in roster_names(home)
    assert (
        "Warning: could not enable mosaic-agent@c9.service: systemctl could not be run: "
        "PermissionError: [Errno 13] Permission denied: 'systemctl'"
    ) in err.getvalue()
    assert "Started mosaic-agent@c9.service." in out.getvalue()


def test_a_runner_exception_on_disable_is_a_warning_naming_the_unit(home: Path) -> None:
    installed(home)
    out, err = io.StringIO(), io.StringIO()
    Fleet(home, out, err, raising_on("disable", OSError(5, "I/O error"))).remove(  # type: ignore[arg-type]
        "coder0", keep_files=False, force=False
    )
    assert "coder0" not in roster_names(home)
    assert "Warning: could not disable mosaic-agent@coder0.service: " in err.getvalue()
    assert "OSError: [Errno 5] I/O error" in err.getvalue()


def test_a_runner_exception_through_the_cli_is_one_line(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real runner: a `systemctl` that cannot be executed, found first and only."""
    installed(home)
    only = tmp_path / "only"
    only.mkdir()
    (only / "systemctl").write_text("#!/bin/sh\n")  # not executable
    monkeypatch.setenv("PATH", str(only))
    capsys.readouterr()
    assert fleet("add", "c9", "--runtime", "codex", "--no-start") == 0
    err = capsys.readouterr().err
    assert err.startswith("Warning: could not enable mosaic-agent@c9.service: systemctl could")
    assert "PermissionError" in err
    assert "Traceback" not in err


def test_a_held_roster_lock_is_waited_for_then_named(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fcntl

    installed(home)
    monkeypatch.setattr(roster_module, "LOCK_TIMEOUT_S", 0.2)
    before = (home / "fleet" / "roster.yaml").read_bytes()
    with open(home / "fleet" / "roster.yaml.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another fleet command, mid-write
        capsys.readouterr()
        assert fleet("add", "c9", "--runtime", "codex") == 1
    assert "roster.yaml: another fleet command has held the roster lock" in capsys.readouterr().err
    assert (home / "fleet" / "roster.yaml").read_bytes() == before
    assert fleet("add", "c9", "--runtime", "codex") == 0  # released: the next one goes on


def test_remove_before_install_is_not_refused(home: Path, backend: Backend) -> None:
    """The unit was never loaded: `stop` exits 5 on systemd, and there is nothing to stop."""
    assert fleet("init", "--write") == 0
    assert fleet("remove", "coder0") == 0
    assert "coder0" not in roster_names(home)
    assert [c.exit_code for c in backend.calls("systemctl") if "stop" in c.argv] == [5]


def test_failed_start_is_an_error(
    home: Path, backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    installed(home)
    backend.inject_failure("start", UNIT.format("c9"), 1, "Job failed")
    assert fleet("add", "c9", "--runtime", "codex") == 1
    assert "could not start mosaic-agent@c9.service: Job failed" in capsys.readouterr().err
    assert "c9" in roster_names(home)  # the roster and the enabled unit agree


def test_second_orchestrator_refused(home: Path, backend: Backend) -> None:
    installed(home)
    before = (home / "fleet" / "roster.yaml").read_bytes()
    assert fleet("add", "o2", "--runtime", "pi", "--class", "orchestrator") == 1
    assert (home / "fleet" / "roster.yaml").read_bytes() == before


def test_duplicate_refused(home: Path) -> None:
    installed(home)
    assert fleet("add", "coder0", "--runtime", "codex") == 1


@pytest.mark.parametrize(
    "name",
    [
        "a b",
        "a/b",
        "a@b",
        "..",
        "a..b",
        "x;y",
        "$(id)",
        "`id`",
        "-x",
        "",
        "a" * 65,
        "a\x01b",
        "é",
        "a\nb",
    ],
)
def test_unsafe_names_touch_nothing(
    home: Path, backend: Backend, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    installed(home)
    calls = len(backend.calls())
    before = (home / "fleet" / "roster.yaml").read_bytes()
    assert fleet("add", "--runtime", "codex", "--", name) == 2
    assert "agent name:" in capsys.readouterr().err
    assert (home / "fleet" / "roster.yaml").read_bytes() == before
    assert len(backend.calls()) == calls


@pytest.mark.parametrize(("flag", "value"), [("--runtime", "Bad Runtime"), ("--class", "x y")])
def test_bad_runtime_or_class_is_a_usage_error(home: Path, flag: str, value: str) -> None:
    installed(home)
    args = {"--runtime": "codex", "--class": "worker", flag: value}
    assert fleet("add", "c9", *[x for kv in args.items() for x in kv]) == 2


# --- remove -----------------------------------------------------------------------------


def test_remove_stops_disables_and_deletes(home: Path, backend: Backend) -> None:
    installed(home)
    assert fleet("add", "c9", "--runtime", "codex") == 0
    assert fleet("remove", "c9") == 0
    state = backend.state()
    assert UNIT.format("c9") not in state.enabled | state.active
    assert "c9" not in roster_names(home)
    assert not (home / "fleet" / "agents" / "c9.env").exists()
    assert not (home / "fleet" / "heartbeat" / "c9").exists()


def test_remove_keep_files(home: Path, backend: Backend) -> None:
    installed(home)
    assert fleet("add", "c9", "--runtime", "codex") == 0
    assert fleet("remove", "c9", "--keep-files") == 0
    state = backend.state()
    assert UNIT.format("c9") in state.enabled
    assert UNIT.format("c9") not in state.active
    assert (home / "fleet" / "agents" / "c9.env").exists()
    assert not [c for c in backend.calls("systemctl") if "disable" in c.argv]


def test_failed_disable_warns_and_removes(
    home: Path, backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    installed(home)
    backend.inject_failure("disable", UNIT.format("coder0"), 1, "Access denied")
    assert fleet("remove", "coder0") == 0
    assert "coder0" not in roster_names(home)
    assert "could not disable mosaic-agent@coder0.service" in capsys.readouterr().err


def test_failed_stop_changes_nothing(home: Path, backend: Backend) -> None:
    installed(home)
    backend.inject_failure("stop", UNIT.format("coder0"))
    assert fleet("remove", "coder0") == 1
    assert "coder0" in roster_names(home)
    assert UNIT.format("coder0") in backend.state().enabled


def test_only_orchestrator_needs_force(home: Path) -> None:
    installed(home)
    assert fleet("remove", "orchestrator") == 1
    assert fleet("remove", "orchestrator", "--force") == 0
    assert "orchestrator" not in roster_names(home)


def test_unknown_agent(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    installed(home)
    assert fleet("remove", "ghost") == 1
    assert "no agent named 'ghost'" in capsys.readouterr().err


# --- ps, start, stop --------------------------------------------------------------------


def tmux(*args: str) -> None:
    """The fleet's tmux server, through the backend's tmux (PATH is the backend's)."""
    subprocess.run(["tmux", "-L", "mosaic", *args], check=True, capture_output=True)


def test_ps_reports_drift_in_three_calls(
    home: Path, backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    installed(home)
    fleet("add", "c9", "--runtime", "codex")
    fleet("remove", "c9", "--keep-files")
    fleet("start", "coder1")
    fleet("start", "reviewer0")
    tmux("new-session", "-d", "-s", ORCHESTRATOR_SESSION)
    tmux("new-session", "-d", "-s", agent_session("reviewer0"))
    tmux("new-session", "-d", "-s", agent_session("gone.1"))
    capsys.readouterr()
    calls = len(backend.calls())
    assert fleet("ps", "--json") == 0
    made = [c.argv[:3] for c in backend.calls()[calls:]]
    assert sorted(made) == [
        ("systemctl", "--user", "list-units"),
        ("systemctl", "--user", "show"),
        ("tmux", "-L", "mosaic"),
    ]
    report = json.loads(capsys.readouterr().out)
    kinds = {(d["agent"], d["kind"]) for d in report["drift"]}
    assert kinds == {
        ("c9", "enabled-not-in-roster"),
        ("orchestrator", "not-running"),
        ("coder0", "not-running"),
        ("coder1", "no-tmux-session"),
        ("gone.1", "tmux-session-not-in-roster"),
    }
    assert report["tmux"] == {"socket": "mosaic", "up": True}
    tmux_of = {a["name"]: a["tmux"] for a in report["agents"]}
    assert tmux_of == {
        "orchestrator": "missing",
        "coder0": "missing",
        "coder1": "missing",
        "reviewer0": "up",
    }


def test_ps_says_once_that_the_tmux_server_is_down(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    installed(home)
    fleet("start", "coder0")
    capsys.readouterr()
    assert fleet("ps", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    down = [d for d in report["drift"] if d["kind"] == "tmux-server-down"]
    assert len(down) == 1
    assert "mosaic-tmux-holder.service is active" in down[0]["text"]
    # tmux's own reason, whichever it gives: no socket folder yet, or no server on the socket
    assert re.search(r"no server running|error connecting to", down[0]["text"]), down[0]["text"]
    assert not [d for d in report["drift"] if d["agent"] == "coder0"]
    assert report["tmux"]["up"] is False


def test_ps_reports_a_dead_pane(home: Path) -> None:
    """The fake tmux has no processes: a pane whose program ended, as tmux lists it."""
    answers = {
        "list-units": "mosaic-agent@a.service loaded active exited A\n",
        "show": "Id=mosaic-agent@a.service\nActiveState=active\nUnitFileState=enabled\n",
        "list-panes": f"{agent_session('a')}:1\n{agent_session('a')}:1\n",
    }

    def run(argv: list[str]) -> Completed:
        verb = next(w for w in argv[1:] if w in answers)
        return Completed(tuple(argv), 0, answers[verb], "")

    (home / "fleet").mkdir(parents=True)
    (home / "fleet" / "roster.yaml").write_text(
        "version: 1\ntransport: tmux\nagents: [{name: a, runtime: pi}]\n"
    )
    out = io.StringIO()
    Fleet(home, out, io.StringIO(), run).ps(as_json=False)
    assert "drift: a is running (mosaic-agent@a.service) but the pane of its tmux session" in (
        out.getvalue()
    )


def test_ps_human_output(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    installed(home)
    assert fleet("start", "coder0") == 0
    tmux("new-session", "-d", "-s", agent_session("coder0"))
    capsys.readouterr()
    assert fleet("ps") == 0
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "CLASS", "RUNTIME", "ENABLED", "ACTIVE", "TMUX"]
    assert rows[1].split() == ["coder0", "worker", "codex", "enabled", "active", "up"]
    assert "drift: coder1 is in the roster but mosaic-agent@coder1.service is not running" in out
    assert "drift: coder0" not in out


def test_start_stop(home: Path, backend: Backend) -> None:
    installed(home)
    assert fleet("start", "coder0") == 0
    assert UNIT.format("coder0") in backend.state().active
    assert fleet("stop", "coder0") == 0
    assert UNIT.format("coder0") not in backend.state().active
    assert fleet("start", "ghost") == 1


# --- the roster model ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 1\ntransport: tmux\nagents:\n  - {name: a, runtime: x, extra: 1}\n",
            "agents[0]: unknown field(s) {'extra'}",
        ),
        (
            "version: 1\ntransport: tmux\nagents:\n  - {name: 'a b', runtime: x}\n",
            "agents[0].name: 'a b' is not valid",
        ),
        ("version: 3\ntransport: tmux\nagents: []\n", "version: must be same as const"),
        ("a: &x [1]\nb: *x\n", "YAML anchors and aliases are not allowed"),
        (
            "version: 1\ntransport: tmux\nagents:\n  - {name: a, runtime: x}\n"
            "  - {name: a, runtime: y}\n",
            "agents[1].name: duplicate name 'a'",
        ),
        (b"\xff", "not UTF-8"),
        ("agents: [\n", "not valid YAML at line"),
    ],
)
def test_roster_errors_name_the_field(text: str | bytes, message: str) -> None:
    with pytest.raises(roster_module.RosterError, match=None) as info:
        roster_module.parse_roster(text, "r.yaml")
    assert message in str(info.value)


def test_mosaic_entry_point_dispatches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert main(["nope"]) == 2


@pytest.mark.parametrize("argv", [["fleet", "--version"], ["fleet", "-V"], ["--version"]])
def test_version(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from mosaic_conformance import __version__

    with pytest.raises(SystemExit) if argv[0] == "fleet" else nullcontext() as done:
        assert main(argv) == 0
    if done is not None:
        assert done.value.code == 0
    assert capsys.readouterr().out == f"mosaic (mosaic-conformance reference fleet) {__version__}\n"


# Measured in benchmarks/fleet_startup.py; each of these cost 1-35 ms of every command's start.
HEAVY_IMPORTS = (
    "dataclasses",
    "fastjsonschema",
    "filelock",
    "inspect",
    "json",
    "pathlib",
    "shutil",
    "subprocess",
    "typing",
)


@pytest.mark.parametrize("argv", [["ps"], ["add", "c9", "--runtime", "codex", "--no-start"]])
def test_the_fleet_starts_without_heavy_imports(home: Path, argv: list[str]) -> None:
    installed(home)
    probe = (
        "import sys; from mosaic_conformance.fleet.cli import main\n"
        "code = main(['fleet', *sys.argv[1:]])\n"
        f"print(sorted(set({HEAVY_IMPORTS!r}) & set(sys.modules)), code)"
    )
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == "[] 0", done.stdout + done.stderr
