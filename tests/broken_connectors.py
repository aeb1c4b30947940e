"""Connectors with one deliberate defect each, for proving the connector suite catches them
(``--conformance-connector-factory broken_connectors:NAME``): Matrix ones, then ``tmux_*`` and
``discord_*``. Each is the shipped connector but for the one method that carries its defect."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import httpx

from mosaic_conformance.connectors import SHIPPED_FACTORIES, discord, load_factory, matrix, tmux
from mosaic_conformance.connectors.discord import DiscordConnector
from mosaic_conformance.connectors.jsonlines import CONFIG_ENV, Server, config_from_json
from mosaic_conformance.connectors.matrix import REQUEST_TIMEOUT_S, MatrixConnector
from mosaic_conformance.connectors.state import CursorFile
from mosaic_conformance.connectors.tmux import TmuxConnector
from mosaic_conformance.connectors.tmux_chat import INBOX_FILE, now_iso
from mosaic_conformance.connectors.types import (
    ConnectorConfig,
    ConnectorHealth,
    Handler,
    InboundMessage,
    OutboundMessage,
    SendResult,
    Unsubscribe,
)


class EchoesOwnMessages(MatrixConnector):
    """Hands its own messages back to its subscribers."""

    def _inbound(self, event: Mapping[str, Any]) -> InboundMessage | None:
        if event.get("sender") == self._config.user_id:
            content = event.get("content") or {}
            return InboundMessage(
                id=str(event.get("event_id")),
                text=str(content.get("body", "")),
                sender=str(event.get("sender")),
                ts="2026-01-01T00:00:00+00:00",
            )
        return super()._inbound(event)


class NewTxnIdOnRetry(MatrixConnector):
    """Retries a send whose answer was lost with a fresh txnId: the server stores it twice."""

    def _txn_id(self, attempt: int, last: str) -> str:
        return uuid.uuid4().hex  # the defect: one per attempt, not one per message

    def send(self, message: OutboundMessage) -> SendResult:
        error, txn_id = "", ""
        for attempt in range(4):
            txn_id = self._txn_id(attempt, txn_id)
            path = f"{self._room_path}/send/m.room.message/{quote(txn_id, safe='')}"
            try:
                response = self._http.put(path, json=self._content(message))
            except httpx.HTTPError as exc:
                error = str(exc)
                continue
            if response.status_code == 200:
                return SendResult(True, message_id=response.json().get("event_id"))
            error = f"{response.status_code}"
        return SendResult(False, error=error or "not delivered")


class RaisesInsteadOfNotDelivered(MatrixConnector):
    def send(self, message: OutboundMessage) -> SendResult:
        result = super().send(message)
        if not result.delivered:
            raise ConnectionError(f"could not deliver: {result.error}")
        return result


class DropsThreadRelation(MatrixConnector):
    """Forgets ``m.thread`` both ways."""

    def _content(self, message: OutboundMessage) -> dict[str, Any]:
        return super()._content(dataclasses.replace(message, thread_id=None))

    def _inbound(self, event: Mapping[str, Any]) -> InboundMessage | None:
        message = super()._inbound(event)
        return dataclasses.replace(message, thread_id=None) if message else None


class DeliversAfterUnsubscribe(MatrixConnector):
    def subscribe(self, handler: Handler) -> Unsubscribe:
        super().subscribe(handler)
        return lambda: None  # the defect: the handler stays


class ClaimsAuthenticatedWithBadToken(MatrixConnector):
    def health(self) -> ConnectorHealth:
        health = super().health()
        return dataclasses.replace(health, authenticated=health.reachable)


class HangsOnUnreachableServer(MatrixConnector):
    """Asks for ``/versions`` with no timeout at all before its health check."""

    def health(self) -> ConnectorHealth:
        with contextlib.suppress(httpx.HTTPError):
            self._http.get("/_matrix/client/versions", timeout=None)
        return super().health()


class SyncWithoutSince(MatrixConnector):
    """After a failed ``/sync`` it starts over without ``since``, as on a first start: the
    server sends the room's recent timeline again, and all of it is delivered again."""

    def _poll_until_closed(self) -> None:
        while not self._closed.is_set():
            since = self._since
            try:
                body = self._sync(timeout_ms=int(self._sync_timeout_s * 1000), since=since)
            except (httpx.HTTPError, ValueError, RuntimeError):
                self._since = None  # the defect: its place in the stream is forgotten
                if self._closed.wait(0.25):
                    return
                continue
            room = body.get("rooms", {}).get("join", {}).get(self._config.room_id, {})
            events = room.get("timeline", {}).get("events", [])
            with self._lock:
                # no memory of what was delivered before
                self._subscribers.deliver(filter(None, map(self._inbound, events)))
                self._since = body.get("next_batch", since)


class StopsPollingAfterAnErrorAnswer(MatrixConnector):
    """Its poller ends at the first ``/sync`` answered with an error (a 5xx, a 429)."""

    def _sync(self, **kwargs: Any) -> dict[str, Any]:
        try:
            return super()._sync(**kwargs)
        except httpx.HTTPStatusError as exc:
            if threading.current_thread() is self._poller:
                raise GaveUp(str(exc)) from None  # the defect: the poller ends here
            raise


class GaveUp(Exception):
    """Not one of the errors the poller retries: it ends the poller's thread."""


class DeliversNewestFirst(MatrixConnector):
    """Delivers what one ``/sync`` brings newest first."""

    def _messages(self, body: Mapping[str, Any], since: str) -> list[InboundMessage]:
        return super()._messages(body, since)[::-1]


class NoRoomFilter(MatrixConnector):
    """Syncs every room its user is in and delivers the operator's messages from all."""

    def _sync_filter(self) -> dict[str, Any]:
        sync_filter = super()._sync_filter()
        del sync_filter["room"]["rooms"]
        return sync_filter

    def _messages(self, body: Mapping[str, Any], since: str) -> list[InboundMessage]:
        rooms = body.get("rooms", {}).get("join", {}).values()
        events = [e for room in rooms for e in room.get("timeline", {}).get("events", [])]
        return list(filter(None, map(self._inbound, events)))


def _factory(cls: type[MatrixConnector], **changes: Any) -> Any:
    def create(config: ConnectorConfig) -> MatrixConnector:
        assert config.matrix is not None
        config = dataclasses.replace(config, matrix=dataclasses.replace(config.matrix, **changes))
        return matrix.create_connector(config, connector_class=cls)

    return create


echoes_own_messages = _factory(EchoesOwnMessages)
new_txn_id_on_retry = _factory(NewTxnIdOnRetry)
raises_instead_of_not_delivered = _factory(RaisesInsteadOfNotDelivered)
drops_thread_relation = _factory(DropsThreadRelation)
delivers_after_unsubscribe = _factory(DeliversAfterUnsubscribe)
claims_authenticated_with_bad_token = _factory(ClaimsAuthenticatedWithBadToken)
hangs_on_unreachable_server = _factory(HangsOnUnreachableServer)
sync_without_since = _factory(SyncWithoutSince)
stops_polling_after_an_error_answer = _factory(StopsPollingAfterAnErrorAnswer)
delivers_newest_first = _factory(DeliversNewestFirst)
no_sender_filter = _factory(MatrixConnector, operators=())  # the configured operators ignored
no_room_filter = _factory(NoRoomFilter)


# --- tmux -----------------------------------------------------------------------------------


class TmuxEchoesOwnMessages(TmuxConnector):
    """Writes what it sends into the operator's inbox, as a screen-scraper would read it."""

    def send(self, message: OutboundMessage) -> SendResult:
        result = super().send(message)
        record = {"id": "echo", "text": message.text, "sender": "root", "ts": now_iso()}
        with open(self.directory / INBOX_FILE, "a", encoding="utf-8") as inbox:
            inbox.write(json.dumps(record) + "\n")
        return result


class TmuxNewIdPerRetry(TmuxConnector):
    """Makes a fresh message id on every attempt, so a retry shows a second copy."""

    def _deliver(self, request: Mapping[str, object]) -> dict[str, object]:
        return super()._deliver({**request, "id": self._new_message_id()})


class TmuxRaisesWhenDown(TmuxConnector):
    """Lets a missing server's error escape from send."""

    def _deliver(self, request: Mapping[str, object]) -> dict[str, object]:
        if not self.server.is_alive():
            raise RuntimeError("no tmux server")
        return super()._deliver(request)


class TmuxDeafUnsubscribe(TmuxConnector):
    def subscribe(self, handler: Handler) -> Unsubscribe:
        super().subscribe(handler)
        return lambda: None  # the defect: the handler stays


class TmuxHealthyWhenDown(TmuxConnector):
    """Reports healthy without asking tmux."""

    def health(self) -> ConnectorHealth:
        return ConnectorHealth(True, True, None, "always fine")


class TmuxHangsOnSilence(TmuxConnector):
    """Asks libtmux alone, which waits for a hung tmux server forever."""

    def health(self) -> ConnectorHealth:
        alive = self.server.is_alive()
        return ConnectorHealth(alive, alive, None, "asked libtmux")


class TmuxDropsThreads(TmuxConnector):
    """Forgets the thread of what it sends."""

    def send(self, message: OutboundMessage) -> SendResult:
        return super().send(OutboundMessage(message.text))


def _tmux(cls: type[TmuxConnector]) -> Any:
    return lambda config: tmux.create_connector(config, connector_class=cls)


tmux_echoes_own_messages = _tmux(TmuxEchoesOwnMessages)
tmux_new_id_per_retry = _tmux(TmuxNewIdPerRetry)
tmux_raises_when_down = _tmux(TmuxRaisesWhenDown)
tmux_deaf_unsubscribe = _tmux(TmuxDeafUnsubscribe)
tmux_healthy_when_down = _tmux(TmuxHealthyWhenDown)
tmux_hangs_on_silence = _tmux(TmuxHangsOnSilence)
tmux_drops_threads = _tmux(TmuxDropsThreads)


# --- Discord --------------------------------------------------------------------------------


class DiscordNewNonceEachTry(DiscordConnector):
    """Retries a send with a fresh nonce, so the server cannot tell it is the same message."""

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if method == "POST" and kwargs.get("json"):
            kwargs["json"] = {**kwargs["json"], "nonce": secrets.token_hex(3)}
        return super()._request(method, path, **kwargs)


class DiscordEchoesItself(DiscordConnector):
    """Filters neither its own messages nor (so its echo shows) by operator."""

    def _dispatch(self, message: dict[str, Any], thread_id: str | None, me: str) -> None:
        self.config = dataclasses.replace(self.config, operators=())
        super()._dispatch(message, thread_id, me="nobody")


class DiscordRaisesOnFailure(DiscordConnector):
    def send(self, message: OutboundMessage) -> SendResult:
        result = super().send(message)
        if not result.delivered:
            raise RuntimeError(result.error)
        return result


class DiscordDropsThreads(DiscordConnector):
    def send(self, message: OutboundMessage) -> SendResult:
        return super().send(OutboundMessage(message.text))


class DiscordDeafUnsubscribe(DiscordConnector):
    def subscribe(self, handler: Handler) -> Unsubscribe:
        super().subscribe(handler)
        return lambda: None  # the defect: the handler stays


class DiscordTrustsAnyToken(DiscordConnector):
    def health(self) -> ConnectorHealth:
        health = super().health()
        return dataclasses.replace(health, authenticated=health.reachable)


class DiscordHangsOnSilence(DiscordConnector):
    """Asks ``/users/@me`` with no timeout at all."""

    def health(self) -> ConnectorHealth:
        try:
            response = self._client.get("/users/@me", timeout=None)  # waits forever
        except httpx.HTTPError:  # once the silent server is closed at the end
            return ConnectorHealth(False, False)
        return ConnectorHealth(True, response.status_code == 200)


class DiscordLetsEveryoneIn(DiscordConnector):
    """Ignores the configured operators."""

    def _dispatch(self, message: dict[str, Any], thread_id: str | None, me: str) -> None:
        self.config = dataclasses.replace(self.config, operators=())
        super()._dispatch(message, thread_id, me)


def _discord(cls: type[DiscordConnector]) -> Any:
    return lambda config: discord.create_connector(config, connector_class=cls)


discord_new_nonce_each_try = _discord(DiscordNewNonceEachTry)
discord_echoes_itself = _discord(DiscordEchoesItself)
discord_raises_on_failure = _discord(DiscordRaisesOnFailure)
discord_drops_threads = _discord(DiscordDropsThreads)
discord_deaf_unsubscribe = _discord(DiscordDeafUnsubscribe)
discord_trusts_any_token = _discord(DiscordTrustsAnyToken)
discord_hangs_on_silence = _discord(DiscordHangsOnSilence)
discord_lets_everyone_in = _discord(DiscordLetsEveryoneIn)


# --- restarts, long outages, half-open links (issue 18) ----------------------------------


class _NoStateFolderEnv:
    """``factory`` without ``MOSAIC_CONNECTOR_STATE_DIR``: the cursor lives in memory only."""

    def __init__(self, factory: Any) -> None:
        self._factory = factory

    def __call__(self, config: ConnectorConfig) -> Any:
        saved = os.environ.pop("MOSAIC_CONNECTOR_STATE_DIR", None)
        try:
            return self._factory(config)
        finally:
            if saved is not None:
                os.environ["MOSAIC_CONNECTOR_STATE_DIR"] = saved


class InPlaceCursorFile(CursorFile):
    """Writes the cursor in place: truncated, then written. A crash in between leaves it
    empty."""

    def _replace(self, data: bytes) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(data)  # the defect: not a temporary file renamed over it


class MatrixCursorWrittenInPlace(MatrixConnector):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        folder = self._cursor.path.parent if self._cursor.path else None
        self._cursor = InPlaceCursorFile(folder, "matrix", self._cursor.conversation)


class MatrixNoBackfill(MatrixConnector):
    """Takes a limited timeline as all there is: what did not fit in one sync is lost."""

    def _gap(self, prev_batch: str, since: str) -> list[dict[str, Any]]:
        return []


class MatrixNoReadTimeout(MatrixConnector):
    """Long-polls with no read timeout: a connection that went half-open holds it forever."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_http.timeout = httpx.Timeout(REQUEST_TIMEOUT_S, read=None)


matrix_cursor_in_memory = _NoStateFolderEnv(_factory(MatrixConnector))
matrix_cursor_written_in_place = _factory(MatrixCursorWrittenInPlace)
matrix_no_backfill = _factory(MatrixNoBackfill)
matrix_no_read_timeout = _factory(MatrixNoReadTimeout)
discord_cursor_in_memory = _NoStateFolderEnv(_discord(DiscordConnector))
tmux_offset_in_memory = _NoStateFolderEnv(_tmux(TmuxConnector))


# --- a pass-through wrapper, for the cleanup and secrets tests ------------------------------


class Wrapping:
    """The shipped connector of a kind with every call handed through: subclass it to change
    one call (fail a send, leak the tokens)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    @property
    def kind(self) -> Any:
        return self._inner.kind

    def send(self, message: OutboundMessage) -> SendResult:
        result: SendResult = self._inner.send(message)
        return result

    def subscribe(self, handler: Handler) -> Unsubscribe:
        unsubscribe: Unsubscribe = self._inner.subscribe(handler)
        return unsubscribe

    def health(self) -> ConnectorHealth:
        health: ConnectorHealth = self._inner.health()
        return health

    def close(self) -> None:
        self._inner.close()


def shipped(kind: str, config: ConnectorConfig) -> Any:
    """The shipped connector of ``kind`` for ``config``, as the registry makes it."""
    return load_factory(SHIPPED_FACTORIES[kind])(config)


# --- verdicts (issue 15): a variant for each connector check made exact -------------------


class ReportsItsTxnIdAsMessageId(MatrixConnector):
    """Says the message's id is its own transaction id, not the event id the room knows."""

    def send(self, message: OutboundMessage) -> SendResult:
        result = super().send(message)
        if not result.delivered:
            return result
        return dataclasses.replace(result, message_id=f"mosaic.{message.key}")


class KeepsItsTxnIdForOneRetry(NewTxnIdOnRetry):
    """Reuses its txnId for one retry, as an HTTP client's own retry would, then makes a new
    one: one lost answer is survived, two store the message twice."""

    def _txn_id(self, attempt: int, last: str) -> str:
        return last if attempt == 1 else uuid.uuid4().hex  # the second retry: a new message


class SubscribeReturnsEarly(MatrixConnector):
    """Returns from subscribe at once and finds its place in the stream in its poller: what
    the operator posts before that first sync is never delivered."""

    def _mark_position(self) -> None:
        if threading.current_thread() is self._poller:
            super()._mark_position()  # the defect: not in subscribe, where it would hold


reports_its_txn_id_as_message_id = _factory(ReportsItsTxnIdAsMessageId)
keeps_its_txn_id_for_one_retry = _factory(KeepsItsTxnIdForOneRetry)
subscribe_returns_early = _factory(SubscribeReturnsEarly)


class DiscordStampsWithoutOffset(DiscordConnector):
    """Hands on the time of a message without its UTC offset: a local time, of no zone."""

    def _dispatch(self, message: dict[str, Any], thread_id: str | None, me: str) -> None:
        naive = {**message, "timestamp": str(message["timestamp"])[:19]}
        super()._dispatch(naive, thread_id, me)


class DiscordStampsWrongOffset(DiscordConnector):
    """Hands on the UTC wall-clock time of a message labelled +02:00: a valid stamp of
    another moment (found by a connector written from the docs)."""

    def _dispatch(self, message: dict[str, Any], thread_id: str | None, me: str) -> None:
        utc = datetime.fromisoformat(str(message["timestamp"])).astimezone(timezone.utc)
        shifted = utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "+02:00"
        super()._dispatch({**message, "timestamp": shifted}, thread_id, me)


class DiscordDropsMultilineMessages(DiscordConnector):
    """Delivers no message whose text has a line break."""

    def _dispatch(self, message: dict[str, Any], thread_id: str | None, me: str) -> None:
        if "\n" not in str(message.get("content", "")):
            super()._dispatch(message, thread_id, me)


class DiscordDropsAttachments(DiscordConnector):
    """Sends the text of a message and says nothing of its attachments."""

    def send(self, message: OutboundMessage) -> SendResult:
        return super().send(dataclasses.replace(message, attachments=()))


class DiscordRefusesAttachments(DiscordConnector):
    def send(self, message: OutboundMessage) -> SendResult:
        if message.attachments:
            return SendResult(False, error="attachments are not supported")
        return super().send(message)


class DiscordSubscribeFailsWhenDown(DiscordConnector):
    """Will not subscribe while Discord cannot be asked who it is."""

    def subscribe(self, handler: Handler) -> Unsubscribe:
        self._whoami(time.monotonic() + 5)  # the defect: no server, an exception
        return super().subscribe(handler)


class DiscordSecondUnsubscribeRaises(DiscordConnector):
    def subscribe(self, handler: Handler) -> Unsubscribe:
        inner = super().subscribe(handler)
        done: list[bool] = []

        def unsubscribe() -> None:
            if done:
                raise KeyError("this handler was unsubscribed already")
            done.append(True)
            inner()

        return unsubscribe


class DiscordLastSeenIsNow(DiscordConnector):
    """Says it saw its server just now, whether it ever did or not."""

    def health(self) -> ConnectorHealth:
        return dataclasses.replace(super().health(), last_seen=now_iso())


class DiscordHealthRaisesWhenDown(DiscordConnector):
    def health(self) -> ConnectorHealth:
        health = super().health()
        if not health.reachable:
            raise ConnectionError(f"Discord is not reachable: {health.detail}")
        return health


class DiscordThreadsOfEveryChannel(DiscordConnector):
    """Reads every active thread of the guild, not only those of its channel."""

    def _active_threads(self, deadline: float) -> list[dict[str, Any]]:
        super()._active_threads(deadline)  # learns the guild's id
        path = f"/guilds/{self._guild_id}/threads/active"
        threads: list[dict[str, Any]] = self._request("GET", path, deadline=deadline).json()[
            "threads"
        ]
        return threads  # the defect: no parent_id filter


class _KeepsItsToken(DiscordConnector):
    def __init__(self, config: Any, token: str, **options: Any) -> None:
        super().__init__(config, token, **options)
        self._token = token


class DiscordTokenInSendErrorOnABadToken(_KeepsItsToken):
    """Shows the token it was refused with, in the error of the send."""

    def send(self, message: OutboundMessage) -> SendResult:
        result = super().send(message)
        if result.error and "401" in result.error:
            return dataclasses.replace(result, error=f"{result.error}; the token was {self._token}")
        return result


class DiscordTokenInHealthDetailWhenDown(_KeepsItsToken):
    """Names the token in its health detail when it cannot reach Discord."""

    def health(self) -> ConnectorHealth:
        health = super().health()
        if health.reachable:
            return health
        return dataclasses.replace(health, detail=f"{health.detail} (Bot {self._token})")


class DiscordSaysItsTokenOnStderr(_KeepsItsToken):
    """Announces its token on standard error as it starts (over JSON lines: the program's)."""

    def __init__(self, config: Any, token: str, **options: Any) -> None:
        super().__init__(config, token, **options)
        print(f"discord connector starting with token {token}", file=sys.stderr, flush=True)


def discord_factory_raises(config: ConnectorConfig) -> Any:
    raise RuntimeError("this factory cannot make a connector")


discord_stamps_without_offset = _discord(DiscordStampsWithoutOffset)
discord_refuses_attachments = _discord(DiscordRefusesAttachments)
discord_stamps_wrong_offset = _discord(DiscordStampsWrongOffset)
discord_drops_multiline_messages = _discord(DiscordDropsMultilineMessages)
discord_drops_attachments = _discord(DiscordDropsAttachments)
discord_subscribe_fails_when_down = _discord(DiscordSubscribeFailsWhenDown)
discord_second_unsubscribe_raises = _discord(DiscordSecondUnsubscribeRaises)
discord_last_seen_is_now = _discord(DiscordLastSeenIsNow)
discord_health_raises_when_down = _discord(DiscordHealthRaisesWhenDown)
discord_threads_of_every_channel = _discord(DiscordThreadsOfEveryChannel)
discord_token_in_send_error_on_a_bad_token = _discord(DiscordTokenInSendErrorOnABadToken)
discord_token_in_health_detail_when_down = _discord(DiscordTokenInHealthDetailWhenDown)
discord_says_its_token_on_stderr = _discord(DiscordSaysItsTokenOnStderr)


class QuitsAtEndOfInput(Server):
    """The JSON-lines adapter, but it exits the moment its input ends: what it was still
    doing gets no answer."""

    def serve(self, lines: Any) -> None:
        for line in lines:
            if line.strip():
                threading.Thread(target=self._handle, args=(line,), daemon=True).start()
        sys.stdout.flush()
        os._exit(0)  # the defect: the send in flight is never answered


def serve_quitting_at_end_of_input() -> None:
    """``python broken_connectors.py quits-at-end-of-input``: the shipped connector of the
    configured kind behind :class:`QuitsAtEndOfInput`."""
    from mosaic_conformance.connectors import default_registry

    config = config_from_json(os.environ[CONFIG_ENV])
    QuitsAtEndOfInput(default_registry().create(config), sys.stdout).serve(sys.stdin)


if __name__ == "__main__" and sys.argv[1:] == ["quits-at-end-of-input"]:
    serve_quitting_at_end_of_input()
