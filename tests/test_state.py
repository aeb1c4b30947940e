"""A connector's saved cursor (connectors/state.py): where it lives, how it is written, and
what a missing or untrustworthy one gives."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mosaic_conformance.connectors.state import STATE_ENV, CursorFile, state_folder
from mosaic_conformance.connectors.types import ConnectorConfig


def test_the_roster_block_names_the_folder_before_the_environment(tmp_path: Path) -> None:
    env = {STATE_ENV: str(tmp_path / "from-env")}
    assert state_folder(ConnectorConfig(kind="tmux"), env) == tmp_path / "from-env"
    block = ConnectorConfig(kind="tmux", state_dir=str(tmp_path / "from-block"))
    assert state_folder(block, env) == tmp_path / "from-block"
    assert state_folder(ConnectorConfig(kind="tmux"), {}) is None


def test_a_saved_cursor_is_read_back_and_no_temporary_file_stays(tmp_path: Path) -> None:
    CursorFile(tmp_path, "matrix", "@me in !room").save({"since": "s1"})
    assert CursorFile(tmp_path, "matrix", "@me in !room").load() == {"since": "s1"}
    assert [p.name for p in tmp_path.iterdir()] == [
        CursorFile(tmp_path, "matrix", "@me in !room").path.name
    ]  # type: ignore[union-attr]


def test_conversations_sharing_a_folder_keep_their_own_cursor(tmp_path: Path) -> None:
    CursorFile(tmp_path, "discord", "channel 1").save({"n": 1})
    CursorFile(tmp_path, "discord", "channel 2").save({"n": 2})
    assert CursorFile(tmp_path, "discord", "channel 1").load() == {"n": 1}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("", "not JSON"),
        ('{"format": 1, "conversa', "not JSON"),
        ('{"format": 2, "conversation": "c", "cursor": {}}', "format 1"),
        ('{"format": 1, "conversation": "another", "cursor": {}}', "'another'"),
        ('{"format": 1, "conversation": "c", "cursor": 3}', "no cursor"),
    ],
)
def test_an_untrustworthy_cursor_is_a_warning_naming_the_file_and_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str, why: str
) -> None:
    cursor = CursorFile(tmp_path, "tmux", "c")
    assert cursor.path is not None
    cursor.path.write_text(content)
    caplog.set_level(logging.WARNING)
    assert cursor.load() is None
    assert str(cursor.path) in caplog.text
    assert why in caplog.text


def test_a_missing_cursor_is_a_first_start_and_leftovers_of_a_crash_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cursor = CursorFile(tmp_path, "tmux", "c")
    assert cursor.path is not None
    leftover = tmp_path / f".{cursor.path.name}.abc123.tmp"
    leftover.write_text('{"half')
    caplog.set_level(logging.WARNING)
    assert cursor.load() is None
    assert caplog.text == ""
    assert not leftover.exists()


def test_a_cursor_that_cannot_be_saved_is_one_warning_and_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("")  # the state folder's parent is a file: no folder
    caplog.set_level(logging.WARNING)
    cursor = CursorFile(tmp_path / "a-file" / "state", "tmux", "c")
    cursor.save({"n": 1})
    cursor.save({"n": 2})
    assert caplog.text.count("cannot be saved") == 1


def test_no_folder_keeps_the_cursor_in_memory_only(tmp_path: Path) -> None:
    cursor = CursorFile(None, "tmux", "c")
    cursor.save({"n": 1})
    assert cursor.load() is None
    assert json.dumps(list(tmp_path.iterdir())) == "[]"
