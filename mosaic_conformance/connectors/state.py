"""A connector's cursor across its own restarts: one small JSON document in a state folder.

The folder is the roster's ``connector.state_dir``, else ``MOSAIC_CONNECTOR_STATE_DIR`` in the
environment (the fleet gives one under ``MOSAIC_HOME``); with neither, the cursor lives in
memory only, as before. Each conversation (a Matrix room, a Discord channel, a tmux session)
has its own file, named after it, so that connectors sharing a folder never mix cursors.

A write is atomic: a temporary file in the same folder, flushed to disk, renamed over the old
one. A crash at any moment leaves the old cursor or the new one, never half of one. A missing
file is a first start; a corrupted one, or one made for another conversation, is a warning and
a start from the present: never a crash, never a replay of old history.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..contract import CONNECTOR_STATE_ENV
from .types import ConnectorConfig

log = logging.getLogger(__name__)

STATE_ENV = CONNECTOR_STATE_ENV
FORMAT = 1  # the documents' version: another one is read as no state, with a warning


def state_folder(config: ConnectorConfig, environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder the connector of ``config`` keeps its cursor in, or None for none."""
    env = os.environ if environ is None else environ
    named = config.state_dir or env.get(STATE_ENV)
    return Path(named).expanduser() if named else None


class CursorFile:
    """The cursor of one conversation, in ``folder`` (None: nowhere, every load is empty)."""

    def __init__(self, folder: Path | None, kind: str, conversation: str) -> None:
        self.conversation = conversation
        self._kind = kind
        digest = hashlib.blake2b(conversation.encode(), digest_size=8).hexdigest()
        self.path = folder / f"{kind}-{digest}.json" if folder is not None else None
        self._write_failed = False

    def __repr__(self) -> str:
        return f"CursorFile({str(self.path)!r})"

    def load(self) -> dict[str, Any] | None:
        """The cursor saved last, or None: no folder, a first start, or a file that cannot be
        trusted (said in a warning; the caller starts from the present)."""
        if self.path is None:
            return None
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):  # a write a crash cut short
                leftover.unlink()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            log.info("no saved %s cursor in %s: starting from the present", self._kind, self.path)
            return None
        except OSError as exc:
            return self.distrust(f"it cannot be read ({exc})")
        try:
            document = json.loads(text)
        except ValueError as exc:
            return self.distrust(f"it is not JSON ({exc}; {len(text)} characters)")
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            return self.distrust(f"it is not a cursor of format {FORMAT}")
        if document.get("conversation") != self.conversation:
            theirs = document.get("conversation")
            return self.distrust(f"it is the cursor of {theirs!r}, not of {self.conversation!r}")
        cursor = document.get("cursor")
        if not isinstance(cursor, dict):
            return self.distrust("it holds no cursor")
        return cursor

    def distrust(self, why: str) -> dict[str, Any] | None:
        """Say that the saved cursor is ignored, and why; None, the cursor to use instead."""
        log.warning(
            "the saved %s cursor %s is ignored: %s. Starting from the present: messages posted "
            "while the connector was down are not delivered.",
            self._kind,
            self.path,
            why,
        )
        return None

    def save(self, cursor: Mapping[str, Any]) -> None:
        """Replace the saved cursor, atomically. A failure (a full disk, a read-only folder) is
        a warning, once: delivery goes on, with the cursor in memory."""
        if self.path is None:
            return
        document = {"format": FORMAT, "conversation": self.conversation, "cursor": dict(cursor)}
        try:
            self._replace(json.dumps(document, separators=(",", ":")).encode("utf-8"))
        except OSError as exc:
            if not self._write_failed:
                log.warning("the %s cursor cannot be saved in %s: %s", self._kind, self.path, exc)
            self._write_failed = True
        else:
            self._write_failed = False

    def _replace(self, data: bytes) -> None:
        assert self.path is not None
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        # The rename itself reaches the disk only with the folder's entry.
        with contextlib.suppress(OSError):
            folder_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(folder_fd)
            finally:
                os.close(folder_fd)
