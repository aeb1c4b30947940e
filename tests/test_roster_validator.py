"""The reference fleet's fast roster validator, generated from the schema at first use and
cached, judged by what it decides: it agrees with jsonschema (the suites' own validator) on
bad rosters and on Hypothesis' mutations of good ones, and a cache of another schema or a
damaged one is never used."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_conformance.fleet import schema as schema_module
from mosaic_conformance.fleet.profiles import load_profile, profile_names
from mosaic_conformance.fleet.schema import SchemaViolation, schema, validator

MATRIX = {
    "kind": "matrix",
    "matrix": {
        "homeserver_url": "http://127.0.0.1:8008",
        "user_id": "@orchestrator:local",
        "room_id": "!room:local",
        "operators": ["@op:local"],
    },
}
DISCORD = {"kind": "discord", "discord": {"channel_id": "1234", "operators": ["99"]}}
TMUX = {"kind": "tmux", "tmux": {"session": "ops-chat"}}
AGENTS = [
    {"name": "orchestrator", "runtime": "pi", "class": "orchestrator"},
    {"name": "coder.0", "runtime": "codex"},
]


def good_rosters() -> list[dict[str, Any]]:
    rosters = [load_profile(name).to_data() for name in profile_names()]
    state = {"kind": "tmux", "state_dir": "/var/lib/mosaic/chat"}  # CONN.13's folder
    for block in (None, MATRIX, DISCORD, TMUX, {"kind": "tmux"}, state):
        roster: dict[str, Any] = {"version": 1, "transport": "tmux", "agents": AGENTS}
        if block is not None:
            roster["connector"] = block
        rosters.append(roster)
    return rosters


# Bad rosters, one rule broken each (the suites' ROS.3 cases, as data).
BAD_ROSTERS: list[Any] = [
    ["just", "a list"],
    None,
    {"version": 2, "transport": "tmux", "agents": []},
    {"version": True, "transport": "tmux", "agents": []},
    {"version": 1, "transport": "ssh", "agents": []},
    {"version": 1, "transport": "tmux"},
    {"version": 1, "transport": "tmux", "agents": "coder0"},
    {"version": 1, "transport": "tmux", "agents": [{"name": "coder1"}]},
    {"version": 1, "transport": "tmux", "agents": [{"name": [1, 2], "runtime": "codex"}]},
    {"version": 1, "transport": "tmux", "agents": [{"name": "../../etc", "runtime": "codex"}]},
    {"version": 1, "transport": "tmux", "agents": [{"name": "a..b", "runtime": "codex"}]},
    {"version": 1, "transport": "tmux", "agents": [{"name": "-x", "runtime": "codex"}]},
    {"version": 1, "transport": "tmux", "agents": [{"name": "a", "runtime": "Codex"}]},
    {"version": 1, "transport": "tmux", "agents": [{"name": "a", "runtime": "x", "token": "t"}]},
    {"version": 1, "transport": "tmux", "agents": [], "connector": {"kind": "irc"}},
    {"version": 1, "transport": "tmux", "agents": [], "connector": {"kind": "matrix"}},
    {"version": 1, "transport": "tmux", "agents": [], "connector": {"kind": "discord"}},
    {"version": 1, "transport": "tmux", "agents": [], "connector": {**TMUX, "extra": 1}},
    {"version": 1, "transport": "tmux", "agents": [], "connector": {**TMUX, "state_dir": ""}},
    {
        "version": 1,
        "transport": "tmux",
        "agents": [],
        "connector": {"kind": "tmux", "tmux": {"session": "mosaic-agent-x"}},
    },
    {
        "version": 1,
        "transport": "tmux",
        "agents": [],
        "connector": {"kind": "tmux", "tmux": {"session": "a.b"}},
    },
    {
        "version": 1,
        "transport": "tmux",
        "agents": [],
        "connector": {**MATRIX, "matrix": {**MATRIX["matrix"], "access_token": "syt_x"}},  # type: ignore[dict-item]
    },
    {
        "version": 1,
        "transport": "tmux",
        "agents": [],
        "connector": {**MATRIX, "matrix": {**MATRIX["matrix"], "user_id": "orchestrator"}},  # type: ignore[dict-item]
    },
    {
        "version": 1,
        "transport": "tmux",
        "agents": [],
        "connector": {"kind": "discord", "discord": {"channel_id": 1234}},
    },
]


def decisions(data: Any) -> tuple[bool, bool, str]:
    """(the fast validator accepts, jsonschema accepts, what each said)."""
    reference = jsonschema.Draft7Validator(schema())
    errors = sorted(reference.iter_errors(data), key=lambda e: list(e.absolute_path))
    try:
        validator()(copy.deepcopy(data))
    except SchemaViolation as exc:
        fast, said = False, f"fast: {exc.message}"
    else:
        fast, said = True, "fast: valid"
    said += "; jsonschema: " + ("; ".join(e.message for e in errors) or "valid")
    return fast, not errors, said


@pytest.mark.parametrize("roster", good_rosters())
def test_both_accept_the_good_rosters(roster: dict[str, Any]) -> None:
    assert decisions(roster)[:2] == (True, True)


@pytest.mark.parametrize("roster", BAD_ROSTERS)
def test_both_refuse_the_bad_rosters(roster: Any) -> None:
    fast, reference, said = decisions(roster)
    assert (fast, reference) == (False, False), said


# --- Hypothesis: mutations of good rosters ---------------------------------------------

JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.sampled_from(["tmux", "matrix", "discord", "orchestrator", "a..b", "@a:b", "!r", "12"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
KEYS = st.sampled_from(
    [
        "version",
        "transport",
        "agents",
        "connector",
        "name",
        "runtime",
        "class",
        "kind",
        "matrix",
        "discord",
        "tmux",
        "session",
        "homeserver_url",
        "user_id",
        "room_id",
        "channel_id",
        "operators",
        "token",
        "x",
    ]
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


@st.composite
def mutated_rosters(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(draw(st.sampled_from(good_rosters())))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)))
        if not path:
            data = draw(JUNK) if draw(st.integers(0, 9)) == 0 else data
            continue
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        action = draw(st.sampled_from(["replace", "delete", "add-key", "near-miss"]))
        if action == "replace":
            parent[last] = draw(JUNK)
        elif action == "delete":
            del parent[last]
        elif action == "add-key" and isinstance(parent[last], dict):
            parent[last][draw(KEYS)] = draw(JUNK)
        elif isinstance(parent[last], str):  # a string a pattern may or may not allow
            parent[last] = parent[last] + draw(st.sampled_from(["", ".", "..", " ", ":x", "-"]))
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_rosters())
def test_both_decide_alike_on_mutated_rosters(roster: Any) -> None:
    fast, reference, said = decisions(roster)
    assert fast == reference, f"{json.dumps(roster, default=str)}\n{said}"


# --- the cache --------------------------------------------------------------------------


def fresh_validator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, schema_text: bytes) -> Any:
    """The validator of ``schema_text``, cached in ``tmp_path`` only."""
    monkeypatch.setattr(schema_module, "cache_dirs", lambda: [tmp_path])
    monkeypatch.setattr(schema_module, "schema_bytes", lambda: schema_text)
    monkeypatch.setattr(schema_module, "schema", lambda: json.loads(schema_text))
    return schema_module.validator.__wrapped__()


def test_a_changed_schema_gets_a_validator_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = schema_module.schema_bytes()
    strict = json.loads(text)
    strict["properties"]["transport"] = {"enum": ["ssh"]}
    fresh_validator(monkeypatch, tmp_path, text)({"version": 1, "transport": "tmux", "agents": []})
    (first,) = tmp_path.glob("roster-validator-*.marshal")
    other = fresh_validator(monkeypatch, tmp_path, json.dumps(strict).encode())
    with pytest.raises(SchemaViolation, match="transport"):
        other({"version": 1, "transport": "tmux", "agents": []})
    (second,) = tmp_path.glob("roster-validator-*.marshal")  # the other one's is removed
    assert second != first


def test_a_damaged_cache_is_generated_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = schema_module.schema_bytes()
    fresh_validator(monkeypatch, tmp_path, text)
    (cached,) = tmp_path.glob("roster-validator-*.marshal")
    cached.write_bytes(b"\x00garbage")
    validate = fresh_validator(monkeypatch, tmp_path, text)
    with pytest.raises(SchemaViolation, match="version"):
        validate({"version": 3, "transport": "tmux", "agents": []})
    assert cached.read_bytes() != b"\x00garbage"


def test_an_unwritable_cache_still_validates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    text = schema_module.schema_bytes()
    validate = fresh_validator(monkeypatch, blocked / "cache", text)
    with pytest.raises(SchemaViolation):
        validate({"version": 3})


def test_a_cached_validator_loads_without_fastjsonschema() -> None:
    validator()  # makes sure the cache exists
    probe = (
        "import sys; from mosaic_conformance.fleet.schema import validator; "
        "validator()({'version': 1, 'transport': 'tmux', 'agents': []}); "
        "print('fastjsonschema' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
