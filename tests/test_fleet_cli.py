"""The reference fleet through its command line (in-process, `fleet_main(argv)`), with the
fake backend's stand-ins for systemctl and loginctl on PATH."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mosaic_conformance.fleet import roster as roster_module
from mosaic_conformance.fleet.cli import fleet_main, main
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
    assert (home / "fleet" / "agents" / "c9.env").read_text().startswith("MOSAIC_AGENT_NAME=c9")
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


def test_ps_reports_drift_with_two_systemctl_calls(
    home: Path, backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    installed(home)
    fleet("add", "c9", "--runtime", "codex")
    fleet("remove", "c9", "--keep-files")
    capsys.readouterr()
    calls = len(backend.calls("systemctl"))
    assert fleet("ps", "--json") == 0
    assert len(backend.calls("systemctl")) - calls == 2
    report = json.loads(capsys.readouterr().out)
    kinds = {(d["agent"], d["kind"]) for d in report["drift"]}
    assert ("c9", "enabled-not-in-roster") in kinds
    assert ("coder0", "not-running") in kinds
    assert {a["name"] for a in report["agents"]} == {
        "orchestrator",
        "coder0",
        "coder1",
        "reviewer0",
    }


def test_ps_human_output(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    installed(home)
    assert fleet("start", "coder0") == 0
    capsys.readouterr()
    assert fleet("ps") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "CLASS", "RUNTIME", "ENABLED", "ACTIVE"]
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


def test_checked_in_validator_matches_the_schema() -> None:
    generated = Path(roster_module.__file__).parent / roster_module.GENERATED_VALIDATOR
    assert generated.read_text() == roster_module.generate_validator_code(), (
        "regenerate: python -c 'from mosaic_conformance.fleet import roster; "
        'print(roster.generate_validator_code(), end="")\' > '
        "mosaic_conformance/fleet/_roster_validator.py"
    )


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
