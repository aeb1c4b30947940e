"""The Matrix connector: the client-server API over httpx, no SDK.

- ``send`` is ``PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}``; the txnId
  is the message's ``key``, so every retry (the connector's own, or a caller's of the same
  message) is stored once by the homeserver.
- ``subscribe`` long-polls ``/sync`` with a filter (this room, message events), resumes from
  the saved ``since`` and backs off on errors; a ``limited`` timeline (more messages waited than
  one sync carries, after an outage or a restart) is back-filled from ``/messages``, so that no
  message falls into the gap. Its own messages, other rooms' and those of senders outside the
  operators are dropped.
- The cursor (``since`` and the last events delivered) is saved atomically in the state folder
  (:mod:`.state`) after each delivery, so a restarted connector delivers what was posted while
  it was down, once, and nothing from before again.
- ``health`` asks ``/_matrix/client/versions`` (reachable) and ``/account/whoami``
  (authenticated: a 401 ``M_UNKNOWN_TOKEN`` is reachable but not authenticated), within a
  bounded time.
- Threads are ``m.thread`` relations, both ways.

Every request has a read timeout (the long-poll's exceeds the time the server may hold it),
so a half-open connection, one that stays open but carries nothing, is given up and made
again. ``close()`` cuts a long-poll in flight and returns at once.

The access token lives only in the request headers: never in a URL, a repr or an error.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import tenacity

from ..contract import MATRIX_TOKEN_ENV
from .http import AbortableTransport
from .hub import Subscribers
from .state import CursorFile, state_folder
from .types import (
    ConnectorConfig,
    ConnectorHealth,
    ConnectorKind,
    Handler,
    InboundMessage,
    MatrixConfig,
    OutboundMessage,
    SendResult,
    Unsubscribe,
)

_log = logging.getLogger(__name__)

TOKEN_ENV = MATRIX_TOKEN_ENV
SYNC_ENV = "MOSAIC_MATRIX_SYNC_SECONDS"  # optional: how long the server may hold a /sync
CLIENT_API = "/_matrix/client/v3"

SYNC_TIMEOUT_S = 30.0  # how long the homeserver may hold a /sync open
SYNC_READ_MARGIN_S = 5.0  # the sync read timeout exceeds the sync timeout by this much
REQUEST_TIMEOUT_S = 10.0  # every other request
HEALTH_BUDGET_S = 5.0  # health answers within about this time, whatever the server does
SEND_ATTEMPTS = 4  # one send and three retries, all with the same txnId
# Events per sync: the servers' default. A longer backlog comes as a limited timeline and is
# back-filled from /messages, GAP_PAGE events a page.
TIMELINE_LIMIT = 10
GAP_PAGE, GAP_PAGES = 100, 20  # at most 2,000 events back-filled after one gap
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.25, 30.0
CLOSE_WAIT_S = 2.0  # how long close waits for the poller, once its requests are cut
REMEMBERED_EVENTS = 1024  # event ids kept to deliver each message once
SAVED_EVENTS = 100  # of which the last ones are saved with the cursor


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _iso_from_ms(ms: object) -> str:
    if isinstance(ms, int):
        return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")
    return _now_iso()


def _matrix_error(response: httpx.Response) -> str:
    """``403 M_FORBIDDEN: reason`` from an error response (the body never holds the token)."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.reason_phrase}"
    if isinstance(body, dict):
        errcode = body.get("errcode", response.reason_phrase)
        return f"{response.status_code} {errcode}: {body.get('error', '')}".rstrip(": ")
    return f"{response.status_code} {response.reason_phrase}"


def _retry_after_s(response: httpx.Response) -> float | None:
    try:
        ms = response.json().get("retry_after_ms")
    except (ValueError, AttributeError):
        ms = None
    if isinstance(ms, int | float):
        return float(ms) / 1000
    header = response.headers.get("Retry-After", "")
    return float(header) if header.replace(".", "", 1).isdigit() else None


class Closed(Exception):
    """The connector was closed while waiting to try again."""


def _backoff() -> tenacity.wait.wait_base:
    return tenacity.wait_exponential(multiplier=BACKOFF_FIRST_S, max=BACKOFF_MAX_S)


class MatrixConnector:
    """An :class:`~.types.OrchestratorConnector` for one Matrix room."""

    def __init__(
        self,
        config: MatrixConfig,
        access_token: str,
        *,
        state_dir: Path | None = None,
        sync_timeout_s: float = SYNC_TIMEOUT_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        health_budget_s: float = HEALTH_BUDGET_S,
        transport: httpx.BaseTransport | None = None,  # tests: a stand-in for the network
    ) -> None:
        if not access_token:
            raise ValueError("the Matrix connector needs an access token, and it got none")
        self._config = config
        self._sync_timeout_s = sync_timeout_s
        self._health_budget_s = health_budget_s
        base = config.homeserver_url.rstrip("/")
        headers = {"Authorization": f"Bearer {access_token}"}
        self._transports = [] if transport else [AbortableTransport(), AbortableTransport()]
        self._http = httpx.Client(
            base_url=base,
            headers=headers,
            timeout=request_timeout_s,
            trust_env=False,
            transport=transport or self._transports[0],
        )
        # The long-poll gets its own client, so that sends never queue behind it.
        self._sync_http = httpx.Client(
            base_url=base,
            headers=headers,
            timeout=httpx.Timeout(request_timeout_s, read=sync_timeout_s + SYNC_READ_MARGIN_S),
            trust_env=False,
            transport=transport or self._transports[1],
        )
        self._room_path = f"{CLIENT_API}/rooms/{quote(config.room_id, safe='')}"
        self._filter = json.dumps(self._sync_filter(), separators=(",", ":"))

        self._lock = threading.RLock()  # guards the fields below; held while handlers run
        self._subscribers = Subscribers(self._lock)
        self._since: str | None = None
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._saved: dict[str, Any] | None = None  # the cursor as saved last
        self._last_seen: str | None = None
        self._poller: threading.Thread | None = None
        self._closed = threading.Event()
        self._cursor = CursorFile(state_dir, "matrix", f"{config.user_id} in {config.room_id}")
        self._resume(self._cursor.load())

    def __repr__(self) -> str:
        return f"MatrixConnector({self._config.user_id!r} in {self._config.room_id!r})"

    @property
    def kind(self) -> ConnectorKind:
        return "matrix"

    # --- the cursor -----------------------------------------------------------------------

    def _resume(self, saved: Mapping[str, Any] | None) -> None:
        if saved is None:
            return
        since, delivered = saved.get("since"), saved.get("delivered", [])
        if not isinstance(since, str) or not isinstance(delivered, list):
            self._cursor.distrust("its since or delivered events are of the wrong type")
            return
        self._since = since
        self._delivered.update((event_id, None) for event_id in delivered[-SAVED_EVENTS:])

    def _save_cursor(self) -> None:
        with self._lock:
            if self._since is None:
                return
            cursor = {"since": self._since, "delivered": list(self._delivered)[-SAVED_EVENTS:]}
            if cursor == self._saved:
                return  # an empty sync that moved nothing: not worth a write
            self._saved = cursor
        self._cursor.save(cursor)

    def _pause(self, seconds: float) -> None:
        """tenacity's sleep: wait before the next try, unless the connector closes."""
        if self._closed.wait(seconds):
            raise Closed

    # --- send -----------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> SendResult:
        txn_id = f"mosaic.{message.key}"  # the message's own: every retry reuses it
        path = f"{self._room_path}/send/m.room.message/{quote(txn_id, safe='')}"
        content = self._content(message)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(SEND_ATTEMPTS),
            wait=self._send_wait,
            retry=tenacity.retry_if_result(_worth_retrying),
            sleep=self._pause,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        try:
            answer = retrying(self._put, path, content)
        except Closed:
            return SendResult(False, error="the connector was closed while sending")
        if isinstance(answer, httpx.Response) and answer.status_code == 200:
            self._saw_server()
            event_id = answer.json().get("event_id")
            return SendResult(True, message_id=str(event_id) if event_id else None)
        if isinstance(answer, httpx.Response):
            return SendResult(
                False, error=f"the homeserver refused the message: {_matrix_error(answer)}"
            )
        return SendResult(False, error=f"the homeserver could not be reached: {answer}")

    def _put(self, path: str, content: Mapping[str, Any]) -> httpx.Response | str:
        """The answer to one PUT, or why there was none (a result, not an exception, so that
        the last try's is what ``send`` reports)."""
        try:
            return self._http.put(path, json=content)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"

    def _send_wait(self, state: tenacity.RetryCallState) -> float:
        """A 429's own ``retry_after``, else exponential backoff."""
        answer = state.outcome.result() if state.outcome else None
        if isinstance(answer, httpx.Response) and answer.status_code == 429:
            return _retry_after_s(answer) or _backoff()(state)
        return _backoff()(state)

    def _content(self, message: OutboundMessage) -> dict[str, Any]:
        # Attachments as lines, as in Discord: a path is the orchestrator's, not the room's.
        body = message.text_with_attachments("📎")
        content: dict[str, Any] = {"msgtype": "m.text", "body": body}
        if message.thread_id:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": message.thread_id,
                # For clients without threads: shown as a reply to the root.
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": message.thread_id},
            }
        return content

    # --- subscribe ------------------------------------------------------------------------

    def subscribe(self, handler: Handler) -> Unsubscribe:
        with self._lock:
            if self._closed.is_set():
                raise RuntimeError("subscribe on a closed Matrix connector")
            unsubscribe = self._subscribers.add(handler)
            if self._since is None:
                self._mark_position()
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll, name="matrix-sync", daemon=True)
                self._poller.start()
        return unsubscribe

    def _mark_position(self) -> None:
        """Start from now: messages posted after ``subscribe`` returns are delivered.

        Synapse answers a /sync identical to one of the last two minutes from a cache, with
        that one's (old) position: a connector started again with its cursor lost would replay
        from there. The filter's never-seen event type makes each request of its own."""
        sync_filter = self._sync_filter()
        sync_filter["room"]["timeline"]["not_types"] = [f"mosaic.position.{uuid.uuid4().hex}"]
        try:
            body = self._sync(timeout_ms=0, http=self._http, sync_filter=sync_filter)
        except (httpx.HTTPError, ValueError):
            return  # the poller starts from scratch and keeps trying
        self._since = body.get("next_batch")
        self._save_cursor()

    def _poll(self) -> None:
        try:
            self._poll_until_closed()
        except Closed:
            pass
        finally:
            if self._closed.is_set():
                self._sync_http.close()

    def _poll_until_closed(self) -> None:
        while not self._closed.is_set():
            since, body, messages = tenacity.Retrying(
                wait=_backoff(),
                retry=tenacity.retry_if_exception_type((httpx.HTTPError, ValueError, RuntimeError)),
                sleep=self._pause,
            )(self._next_batch)  # RuntimeError: a client closed under it
            with self._lock:
                if self._closed.is_set():
                    return
                if not self._subscribers:
                    # Nobody listens: keep ``since`` where it was, so that the next
                    # subscriber gets these messages, and stop polling.
                    self._poller = None
                    return
                if since is None:
                    continue  # the position is marked now
                self._deliver(messages)
                self._since = body.get("next_batch", since)
            self._save_cursor()

    def _next_batch(self) -> tuple[str | None, dict[str, Any], list[InboundMessage]]:
        """One step of the poller: what the next ``/sync`` from the saved ``since`` brings."""
        since = self._since
        if since is None:
            self._mark_position()
            if self._since is None:
                raise httpx.TransportError("no sync position yet")
            return None, {}, []
        body = self._sync(timeout_ms=int(self._sync_timeout_s * 1000), since=since)
        return since, body, self._messages(body, since)

    def _sync(
        self,
        *,
        timeout_ms: int,
        since: str | None = None,
        http: httpx.Client | None = None,
        sync_filter: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        text = json.dumps(sync_filter, separators=(",", ":")) if sync_filter else self._filter
        params: dict[str, str | int] = {"filter": text, "timeout": timeout_ms}
        if since is not None:
            params["since"] = since
        response = (http or self._sync_http).get(f"{CLIENT_API}/sync", params=params)
        if response.status_code != 200:
            raise httpx.HTTPStatusError(
                f"/sync answered {_matrix_error(response)}",
                request=response.request,
                response=response,
            )
        self._saw_server()
        body: dict[str, Any] = response.json()
        return body

    def _sync_filter(self) -> dict[str, Any]:
        nothing: dict[str, Any] = {"types": []}
        return {
            "presence": nothing,
            "account_data": nothing,
            "room": {
                "rooms": [self._config.room_id],
                "timeline": {"limit": TIMELINE_LIMIT, "types": ["m.room.message"]},
                "state": nothing,
                "ephemeral": nothing,
                "account_data": nothing,
            },
        }

    def _messages(self, body: Mapping[str, Any], since: str) -> list[InboundMessage]:
        room = body.get("rooms", {}).get("join", {}).get(self._config.room_id)
        if not isinstance(room, dict):
            return []
        timeline = room.get("timeline", {})
        events: list[dict[str, Any]] = list(timeline.get("events", []))
        if timeline.get("limited") and timeline.get("prev_batch"):
            events = self._gap(timeline["prev_batch"], since) + events
        found = (self._inbound(event) for event in events)
        return [message for message in found if message is not None]

    def _gap(self, prev_batch: str, since: str) -> list[dict[str, Any]]:
        """The events between ``since`` and a limited timeline, oldest first."""
        params: dict[str, str | int] = {
            "dir": "b",
            "from": prev_batch,
            "to": since,
            "limit": GAP_PAGE,
            "filter": json.dumps({"types": ["m.room.message"]}),
        }
        newest_first: list[dict[str, Any]] = []
        for _ in range(GAP_PAGES):
            response = self._sync_http.get(f"{self._room_path}/messages", params=params)
            response.raise_for_status()
            page = response.json()
            newest_first.extend(page.get("chunk", []))
            if not page.get("chunk") or not page.get("end"):
                break
            params["from"] = page["end"]
        else:
            _log.warning(
                "more than %d events were posted in a gap: the oldest are not delivered",
                GAP_PAGE * GAP_PAGES,
            )
        return newest_first[::-1]

    def _inbound(self, event: Mapping[str, Any]) -> InboundMessage | None:
        """The operator message an event carries, or None for anything to drop."""
        content = event.get("content")
        sender = event.get("sender")
        event_id = event.get("event_id")
        if event.get("type") != "m.room.message" or not isinstance(content, dict):
            return None
        if not isinstance(sender, str) or not isinstance(event_id, str):
            return None
        if sender == self._config.user_id:
            return None  # our own message, echoed by the server
        if self._config.operators and sender not in self._config.operators:
            return None
        body = content.get("body")
        relation = content.get("m.relates_to")
        if not isinstance(body, str):
            return None  # redacted
        relation = relation if isinstance(relation, dict) else {}
        if relation.get("rel_type") == "m.replace":
            return None  # an edit of an earlier message, not a new one
        thread_id = relation.get("event_id") if relation.get("rel_type") == "m.thread" else None
        return InboundMessage(
            id=event_id,
            text=body,
            sender=sender,
            ts=_iso_from_ms(event.get("origin_server_ts")),
            thread_id=thread_id if isinstance(thread_id, str) else None,
        )

    def _deliver(self, messages: list[InboundMessage]) -> None:
        """Hand the messages not delivered before to the subscribers (the lock is held)."""
        fresh = [m for m in dict.fromkeys(messages) if m.id not in self._delivered]
        for message in fresh:
            self._delivered[message.id] = None
        while len(self._delivered) > REMEMBERED_EVENTS:
            self._delivered.popitem(last=False)
        self._subscribers.deliver(fresh)

    # --- health ---------------------------------------------------------------------------

    def health(self) -> ConnectorHealth:
        budget = httpx.Timeout(self._health_budget_s / 2)
        # Asked without the token: Synapse answers 401 to a bad one even here.
        anonymous = self._http.build_request("GET", "/_matrix/client/versions", timeout=budget)
        del anonymous.headers["Authorization"]
        try:
            versions = self._http.send(anonymous)
        except httpx.HTTPError as exc:
            return self._health(False, False, f"no answer from the homeserver: {exc!r}")
        if versions.status_code != 200 or "versions" not in versions.text:
            detail = f"/versions answered {_matrix_error(versions)}: not a Matrix homeserver"
            return self._health(False, False, detail)
        self._saw_server()
        try:
            whoami = self._http.get(f"{CLIENT_API}/account/whoami", timeout=budget)
        except httpx.HTTPError as exc:
            return self._health(True, False, f"/account/whoami did not answer: {exc!r}")
        if whoami.status_code != 200:
            return self._health(True, False, f"/account/whoami: {_matrix_error(whoami)}")
        user_id = whoami.json().get("user_id")
        if user_id != self._config.user_id:
            detail = f"the token belongs to {user_id!r}, not to {self._config.user_id!r}"
            return self._health(True, False, detail)
        return self._health(True, True, f"authenticated as {user_id}")

    def _health(self, reachable: bool, authenticated: bool, detail: str) -> ConnectorHealth:
        return ConnectorHealth(reachable, authenticated, self._last_seen, detail)

    def _saw_server(self) -> None:
        self._last_seen = _now_iso()

    # --- close ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop delivering at once: requests in flight (a long-poll too) are cut, and the
        cursor is saved."""
        with self._lock:
            self._closed.set()
            self._subscribers.clear()
            poller = self._poller
        for transport in self._transports:
            transport.abort()
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=CLOSE_WAIT_S)
        self._http.close()
        if poller is None or not poller.is_alive():
            self._sync_http.close()
        self._save_cursor()


def _worth_retrying(answer: httpx.Response | str) -> bool:
    """No answer, a 429 or a 5xx: the same request again may land. A 4xx will not."""
    return isinstance(answer, str) or answer.status_code == 429 or answer.status_code >= 500


def create_connector(
    config: ConnectorConfig, *, connector_class: type[MatrixConnector] = MatrixConnector
) -> MatrixConnector:
    """The registry's factory: settings from the roster, the token from ``MATRIX_ACCESS_TOKEN``,
    the state folder from the roster or ``MOSAIC_CONNECTOR_STATE_DIR``; ``connector_class``: a
    subclass of the shipped connector to make instead."""
    if config.matrix is None:
        raise ValueError("the connector block names kind 'matrix' but has no 'matrix' settings")
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise ValueError(f"{TOKEN_ENV} is not set: the Matrix connector reads its token there")
    sync = os.environ.get(SYNC_ENV)
    try:
        sync_timeout_s = float(sync) if sync else SYNC_TIMEOUT_S
    except ValueError:
        raise ValueError(f"{SYNC_ENV} must be a number of seconds, not {sync!r}") from None
    return connector_class(
        config.matrix, token, state_dir=state_folder(config), sync_timeout_s=sync_timeout_s
    )
