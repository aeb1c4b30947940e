"""The fleet makes its orchestrator's connector from the roster's block, through the
registry, with the token from the environment only (``mosaic fleet connector``)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mosaic_conformance.connectors import (
    ConnectorConfig,
    ConnectorHealth,
    ConnectorRegistry,
    TmuxConfig,
)
from mosaic_conformance.contract import HOME_ENV, ROSTER_PATH, TMUX_SOCKET
from mosaic_conformance.fleet.commands import Fleet, FleetError
from mosaic_conformance.harness.chat.homeserver import MatrixUser
from mosaic_conformance.harness.chat.homeserver.synapse import SynapseHomeserver

pytest_plugins = ["homeserver_fixtures"]  # the shared Synapse

AGENTS = [{"name": "mos", "runtime": "claude", "class": "orchestrator"}]


def write_roster(home: Path, connector: dict[str, object] | None) -> None:
    roster: dict[str, object] = {"version": 1, "transport": "tmux", "agents": AGENTS}
    if connector is not None:
        roster["connector"] = connector
    path = home / ROSTER_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(roster))


def fleet_connector(home: Path, token: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, HOME_ENV: str(home), "MATRIX_ACCESS_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "mosaic_conformance.fleet", "connector", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_roster_block_reaches_a_live_matrix_connector(
    synapse: SynapseHomeserver,
    tmp_path: Path,
) -> None:
    account = synapse.register_unique("orchestrator")
    user = MatrixUser(synapse.url, account)
    room = user.create_room("fleet")
    user.close()
    block = {
        "kind": "matrix",
        "matrix": {"homeserver_url": synapse.url, "user_id": account.user_id, "room_id": room},
    }
    write_roster(tmp_path, block)

    good = fleet_connector(tmp_path, account.access_token)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["kind"] == "matrix"
    assert json.loads(good.stdout)["authenticated"] is True

    bad_token = "syt_not_the_right_token_0000"
    bad = fleet_connector(tmp_path, bad_token)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["reachable"] is True
    assert json.loads(bad.stdout)["authenticated"] is False
    assert bad_token not in bad.stdout + bad.stderr
    assert "not healthy" in bad.stderr


def test_no_block_makes_the_tmux_connector(tmp_path: Path) -> None:
    write_roster(tmp_path, None)
    made: list[ConnectorConfig] = []

    class Healthy:
        kind = "tmux"

        def health(self) -> ConnectorHealth:
            return ConnectorHealth(True, True, detail="stub")

        def close(self) -> None:
            pass

    registry = ConnectorRegistry()
    registry.register("tmux", lambda config: made.append(config) or Healthy())  # type: ignore[arg-type,func-returns-value]
    out = io.StringIO()
    Fleet(tmp_path, out, io.StringIO()).connector(as_json=False, registry=registry)
    assert made == [ConnectorConfig(kind="tmux")]
    assert out.getvalue().startswith("tmux: reachable, authenticated")


@pytest.mark.parametrize("state_dir", [None, "chat-state"])
def test_the_roster_names_the_tmux_chat_session(tmp_path: Path, state_dir: str | None) -> None:
    """The block's settings reach the connector: its tmux session, and the folder for its
    cursor (``state_dir``, which the schema allows) where the roster names one."""
    block: dict[str, object] = {"kind": "tmux", "tmux": {"session": "ops-chat"}}
    if state_dir:
        block["state_dir"] = str(tmp_path / state_dir)
    write_roster(tmp_path, block)
    made: list[ConnectorConfig] = []

    class Healthy:
        kind = "tmux"

        def health(self) -> ConnectorHealth:
            return ConnectorHealth(True, True)

        def close(self) -> None:
            pass

    registry = ConnectorRegistry()
    registry.register("tmux", lambda config: made.append(config) or Healthy())  # type: ignore[arg-type,func-returns-value]
    Fleet(tmp_path, io.StringIO(), io.StringIO()).connector(as_json=True, registry=registry)
    expected = ConnectorConfig(kind="tmux", tmux=TmuxConfig(session="ops-chat"))
    assert made == [dataclasses.replace(expected, state_dir=block.get("state_dir"))]
    assert made[0].tmux.socket_name == TMUX_SOCKET  # the fleet's server, always


def test_a_missing_token_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = {
        "kind": "matrix",
        "matrix": {"homeserver_url": "http://127.0.0.1:9", "user_id": "@a:b", "room_id": "!r:b"},
    }
    write_roster(tmp_path, block)
    monkeypatch.delenv("MATRIX_ACCESS_TOKEN", raising=False)
    fleet = Fleet(tmp_path, io.StringIO(), io.StringIO())
    with pytest.raises(FleetError, match="MATRIX_ACCESS_TOKEN is not set"):
        fleet.connector(as_json=False)


def test_the_not_implemented_hint_names_an_api_that_exists() -> None:
    """The hint says `registry.register('matrix', factory)` on a ConnectorRegistry, as
    default_registry() gives: following it makes the kind work."""
    import re

    import mosaic_conformance.connectors as connectors
    from mosaic_conformance.connectors import ConnectorNotImplementedError

    with pytest.raises(ConnectorNotImplementedError) as refused:
        ConnectorRegistry().create(ConnectorConfig(kind="matrix"))
    hint = str(refused.value)
    called = re.search(r"registry\.(\w+)\('matrix', factory\)", hint)
    assert called, hint
    named = re.findall(r"mosaic_conformance\.connectors\.(\w+)", hint) + re.findall(
        r"(\w+)\(\) holds", hint
    )
    assert named, hint
    assert all(hasattr(connectors, name) for name in named), hint
    registry = ConnectorRegistry()
    made = object()
    getattr(registry, called[1])("matrix", lambda config: made)
    assert registry.create(ConnectorConfig(kind="matrix")) is made
