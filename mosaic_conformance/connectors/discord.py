"""The Discord connector: Discord's REST API v10 with a bot token, through httpx.

- ``send`` posts to the configured channel, or to the thread named by ``thread_id`` (a
  Discord thread is a channel of its own: ``POST /channels/{thread_id}/messages``). Each
  send carries a ``nonce`` made from the message's ``key``, with ``enforce_nonce``, so every
  retry (the connector's own, or a caller's of the same message) returns the message Discord
  already made instead of a second one (CONN.6). Text longer than Discord's 2000 characters
  goes as several messages; the first one's id is returned.
- ``subscribe`` polls ``GET /channels/{id}/messages?after=LAST`` and, for the channel's
  threads, each thread with news: the active ones (``GET /guilds/{guild}/threads/active``)
  and those archived since the last look (``GET /channels/{id}/threads/archived/public``: a
  reply can land just before a thread is archived). The last id seen per channel and thread is
  kept, and saved atomically in the state folder (:mod:`.state`), so errors, restarts of the
  connector and resubscribes lose and double nothing. It drops the bot's own messages and,
  when ``operators`` is set, those of anyone else.
- ``health`` is ``GET /users/@me``: 200 is reachable and authenticated, 401 reachable but
  not authenticated, no answer in time is not reachable.

Every request has a bounded timeout (a half-open connection is given up and made again); a
429 is waited out for its ``retry_after``, and while it lasts no other request of this
connector goes out. ``close()`` cuts a request in flight. The token comes from
``DISCORD_BOT_TOKEN`` and is never part of an error, a log line or a repr.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import tenacity

from ..contract import DISCORD_TOKEN_ENV
from .http import AbortableTransport
from .hub import Subscribers
from .state import CursorFile, state_folder
from .types import (
    ConnectorConfig,
    ConnectorHealth,
    ConnectorKind,
    DiscordConfig,
    Handler,
    InboundMessage,
    OutboundMessage,
    SendResult,
    Unsubscribe,
)

log = logging.getLogger(__name__)

TOKEN_ENV = DISCORD_TOKEN_ENV
POLL_ENV = "MOSAIC_DISCORD_POLL_SECONDS"  # optional: how often subscribe asks Discord
MAX_CONTENT = 2000
DISCORD_EPOCH_MS = 1_420_070_400_000  # snowflakes count milliseconds from 2015-01-01
PAGE = 100  # the most messages one GET returns
DELIVERED_TYPES = (0, 19)  # DEFAULT and REPLY; system messages are not the operator's words
MAX_BACKOFF = 30.0
SEND_ATTEMPTS = 4  # with backoff 0.25s, 0.5s, 1s: a refused connection fails in ~2s
NONCE_BYTES = 11  # 22 hex characters: room for "-NN" within Discord's 25
ARCHIVED_PAGE = 50
# Threads archived up to this long before the last look are looked at again: Discord stamps
# archive times by its clock, the horizon is taken by ours.
CLOCK_SLACK = dt.timedelta(seconds=60)


class MissingToken(ValueError):
    """The bot token is not in the environment."""


class RateLimited(Exception):
    """Discord asked to wait longer than the call may take."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Discord asks to wait {retry_after:g}s (429), longer than allowed")
        self.retry_after = retry_after


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _error_text(response: httpx.Response) -> str:
    """Discord's own words for an error answer (``{"message", "code"}``), or the status."""
    try:
        body = response.json()
        detail = f"{body['message']} (code {body.get('code')})"
    except (ValueError, LookupError, TypeError):
        detail = response.reason_phrase
    return f"HTTP {response.status_code}, {detail}"


def _chunks(text: str) -> list[str]:
    return [text[i : i + MAX_CONTENT] for i in range(0, len(text), MAX_CONTENT)] or [text]


def _nonce(key: str) -> str:
    """The nonce of a message: the same for every send of the same key."""
    return hashlib.blake2b(key.encode(), digest_size=NONCE_BYTES).hexdigest()


def _snowflake_of(moment: dt.datetime) -> int:
    return (int(moment.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22


def _parse_time(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class Closed(Exception):
    """The connector was closed while waiting to try again."""


class DiscordConnector:
    """The orchestrator's side of one Discord channel, as a bot."""

    def __init__(
        self,
        config: DiscordConfig,
        token: str,
        *,
        state_dir: Path | None = None,
        poll_interval: float = 1.0,
        request_timeout: float = 10.0,
        send_deadline: float = 15.0,
        health_timeout: float = 5.0,
    ) -> None:
        if not token.isprintable() or not token.isascii() or " " in token:
            raise ValueError(f"{TOKEN_ENV} holds characters an HTTP header cannot carry.")
        self.config = config
        self._poll_interval = poll_interval
        self._send_deadline = send_deadline
        self._health_timeout = health_timeout
        self._transport = AbortableTransport()
        self._client = httpx.Client(
            base_url=config.api_base.rstrip("/"),
            headers={
                "Authorization": f"Bot {token}",
                "User-Agent": "DiscordBot (https://pypi.org/project/mosaic-conformance, 0.1)",
            },
            timeout=httpx.Timeout(request_timeout, connect=min(5.0, request_timeout)),
            transport=self._transport,
        )
        self._blocked_until = 0.0  # monotonic: a 429 holds every request until then
        self._lock = threading.RLock()  # held while handlers run: unsubscribe waits for them
        self._subscribers = Subscribers(self._lock)
        self._me: str | None = None  # the bot's user id
        self._guild_id: str | None = None
        self._cursors: dict[str, int] | None = None  # channel or thread id -> last id seen
        self._origin = 0  # a snowflake of the first start: nothing older is ever delivered
        self._archived_horizon: dt.datetime | None = None  # threads archived since: look again
        self._saved: dict[str, Any] | None = None
        self._poller: threading.Thread | None = None
        self._closed = threading.Event()
        self._last_seen: str | None = None
        self._cursor_file = CursorFile(state_dir, "discord", f"channel {config.channel_id}")
        self._resume(self._cursor_file.load())

    @property
    def kind(self) -> ConnectorKind:
        return "discord"

    def __repr__(self) -> str:
        return (
            f"DiscordConnector(channel_id={self.config.channel_id!r}, api={self.config.api_base!r})"
        )

    # the cursors, saved

    def _resume(self, saved: Mapping[str, Any] | None) -> None:
        if saved is None:
            return
        try:
            cursors = {str(k): int(v) for k, v in saved["cursors"].items()}
            origin = int(saved["origin"])
        except (KeyError, TypeError, ValueError, AttributeError):
            self._cursor_file.distrust("its cursors are not channel ids with message ids")
            return
        if self.config.channel_id not in cursors:
            self._cursor_file.distrust("it has no cursor for the channel")
            return
        self._cursors, self._origin = cursors, origin
        self._archived_horizon = _parse_time(saved.get("archived_horizon"))

    def _save_cursors(self) -> None:
        with self._lock:
            if self._cursors is None:
                return
            horizon = self._archived_horizon
            cursor = {
                "cursors": {k: str(v) for k, v in self._cursors.items()},
                "origin": str(self._origin),
                "archived_horizon": horizon.isoformat() if horizon else None,
            }
            if cursor["cursors"] == (self._saved or {}).get("cursors"):
                return  # nothing delivered since: the horizon alone is not worth a write
            self._saved = cursor
        self._cursor_file.save(cursor)

    def _pause(self, seconds: float) -> None:
        """tenacity's sleep: wait before the next try, unless the connector closes."""
        if self._closed.wait(seconds):
            raise Closed

    # the HTTP layer

    def _request(
        self,
        method: str,
        path: str,
        *,
        deadline: float,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One API call within ``deadline`` (monotonic), waiting out 429s."""
        while True:
            wait = self._blocked_until - time.monotonic()
            if wait > 0:
                if time.monotonic() + wait > deadline:
                    raise RateLimited(wait)
                self._closed.wait(wait)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise httpx.TimeoutException("the call ran out of time")
            timeout = self._client.timeout
            bounded = httpx.Timeout(
                min(remaining, timeout.read or remaining),
                connect=min(remaining, timeout.connect or remaining),
            )
            response = self._client.request(method, path, json=json, params=params, timeout=bounded)
            if response.status_code != 429:
                if response.is_success:
                    self._last_seen = _now_iso()
                return response
            retry_after = self._retry_after(response)
            self._blocked_until = max(self._blocked_until, time.monotonic() + retry_after)

    @staticmethod
    def _retry_after(response: httpx.Response) -> float:
        try:
            return max(0.0, float(response.json()["retry_after"]))
        except (ValueError, KeyError, TypeError):
            pass
        try:
            return max(0.0, float(response.headers.get("Retry-After", "1")))
        except ValueError:
            return 1.0

    # send

    def send(self, message: OutboundMessage) -> SendResult:
        text = message.text_with_attachments("📎")
        channel_id = message.thread_id or self.config.channel_id
        deadline = time.monotonic() + self._send_deadline
        base_nonce = _nonce(message.key)
        first_id: str | None = None
        try:
            for index, chunk in enumerate(_chunks(text)):
                nonce = base_nonce if index == 0 else f"{base_nonce}-{index}"
                sent = self._post_message(channel_id, chunk, nonce, deadline)
                if isinstance(sent, SendResult):
                    return sent
                first_id = first_id or sent
        except Closed:
            return SendResult(delivered=False, error="the connector was closed while sending")
        except Exception as exc:  # CONN.5: a send never raises
            return SendResult(delivered=False, error=f"Sending to Discord failed: {exc!r}")
        return SendResult(delivered=True, message_id=first_id)

    def _post_message(
        self, channel_id: str, content: str, nonce: str, deadline: float
    ) -> str | SendResult:
        """The new message's id, or the not-delivered result. Retries keep the nonce."""
        body = {"content": content, "nonce": nonce, "enforce_nonce": True}
        path = f"/channels/{channel_id}/messages"

        def attempt() -> str | SendResult:
            """The id; a SendResult to give up with; or a string saying why to try again."""
            try:
                response = self._request("POST", path, json=body, deadline=deadline)
            except RateLimited as exc:
                return SendResult(delivered=False, error=str(exc))
            except httpx.TransportError as exc:
                return f"no answer from {self.config.api_base}: {exc.__class__.__name__}"
            if response.status_code in (200, 201):
                return _Sent(str(response.json()["id"]))
            if response.status_code < 500:
                refusal = f"Discord refused the message: {_error_text(response)}"
                return SendResult(delivered=False, error=refusal)
            return f"Discord answered {_error_text(response)}"

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(SEND_ATTEMPTS)
            | tenacity.stop_before_delay(max(0.0, deadline - time.monotonic())),
            wait=tenacity.wait_exponential(multiplier=0.25),
            retry=tenacity.retry_if_result(lambda outcome: type(outcome) is str),
            sleep=self._pause,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        outcome = retrying(attempt)
        if isinstance(outcome, _Sent):
            return str(outcome)
        if isinstance(outcome, SendResult):
            return outcome
        tries = retrying.statistics.get("attempt_number", SEND_ATTEMPTS)
        return SendResult(delivered=False, error=f"Not delivered after {tries} tries: {outcome}")

    # subscribe

    def subscribe(self, handler: Handler) -> Unsubscribe:
        with self._lock:
            unsubscribe = self._subscribers.add(handler)
            if self._cursors is None:
                self._start_cursors()
            if self._poller is None and not self._closed.is_set():
                self._poller = threading.Thread(
                    target=self._poll, name=f"discord-{self.config.channel_id}", daemon=True
                )
                self._poller.start()
        return unsubscribe

    def _start_cursors(self) -> None:
        """From now on: the newest id of the channel and of each active thread.

        If Discord cannot be asked now, start from the local clock's snowflake instead.
        """
        deadline = time.monotonic() + self._health_timeout
        started = dt.datetime.now(dt.timezone.utc)
        self._origin = _snowflake_of(started)
        self._archived_horizon = started
        try:
            self._whoami(deadline)
            cursors = {self.config.channel_id: self._newest_id(self.config.channel_id, deadline)}
            for thread in self._active_threads(deadline):
                cursors[thread["id"]] = int(thread.get("last_message_id") or thread["id"])
        except (httpx.HTTPError, RateLimited, DiscordError) as exc:
            log.warning("Discord is not answering at subscribe (%r); starting from now", exc)
            cursors = {self.config.channel_id: self._origin}
        self._cursors = cursors
        self._save_cursors()

    def _whoami(self, deadline: float) -> str:
        if self._me is None:
            response = self._request("GET", "/users/@me", deadline=deadline)
            _expect_ok(response)
            self._me = str(response.json()["id"])
        return self._me

    def _newest_id(self, channel_id: str, deadline: float) -> int:
        path = f"/channels/{channel_id}/messages"
        response = self._request("GET", path, params={"limit": "1"}, deadline=deadline)
        _expect_ok(response)
        newest = response.json()
        return int(newest[0]["id"]) if newest else 0

    def _active_threads(self, deadline: float) -> list[dict[str, Any]]:
        """The active threads whose parent is the configured channel."""
        if self._guild_id is None:
            path = f"/channels/{self.config.channel_id}"
            response = self._request("GET", path, deadline=deadline)
            _expect_ok(response)
            self._guild_id = str(response.json()["guild_id"])
        path = f"/guilds/{self._guild_id}/threads/active"
        response = self._request("GET", path, deadline=deadline)
        _expect_ok(response)
        threads: list[dict[str, Any]] = response.json()["threads"]
        return [t for t in threads if t.get("parent_id") == self.config.channel_id]

    def _archived_threads(self, since: dt.datetime, deadline: float) -> Iterator[dict[str, Any]]:
        """The channel's public threads archived since ``since``, newest archived first: a
        reply may have landed in one just before it was archived. (A reply to a thread
        archived earlier un-archives it: it is among the active ones then.)"""
        path = f"/channels/{self.config.channel_id}/threads/archived/public"
        params = {"limit": str(ARCHIVED_PAGE)}
        while True:
            response = self._request("GET", path, params=params, deadline=deadline)
            _expect_ok(response)
            page = response.json()
            oldest: str | None = None
            for thread in page.get("threads", []):
                archived = _parse_time(thread.get("thread_metadata", {}).get("archive_timestamp"))
                if archived is None or archived < since:
                    return
                oldest = thread["thread_metadata"]["archive_timestamp"]
                yield thread
            if not page.get("has_more") or oldest is None:
                return
            params = {"limit": str(ARCHIVED_PAGE), "before": oldest}

    def _poll(self) -> None:
        polling = tenacity.Retrying(
            wait=tenacity.wait_exponential(
                multiplier=max(self._poll_interval, 0.25), max=MAX_BACKOFF
            ),
            retry=tenacity.retry_if_exception_type(Exception)
            & tenacity.retry_if_not_exception_type(Closed),
            sleep=self._pause,
            before_sleep=lambda state: log.warning(
                "Polling Discord failed (%r); again in %.1fs",
                state.outcome.exception() if state.outcome else None,
                state.upcoming_sleep,
            ),
        )
        try:
            while not self._closed.wait(self._poll_interval):
                with self._lock:
                    if not self._subscribers:
                        self._poller = None  # the next subscribe starts a new poller
                        return
                polling(self._poll_once)  # an answer of a shape we did not expect included
        except Closed:
            pass

    def _poll_once(self) -> None:
        """One look at the channel and its threads; what is new there is delivered oldest
        first (ids are snowflakes: they sort by time), then the cursors are saved."""
        deadline = time.monotonic() + self._send_deadline
        me = self._whoami(deadline)
        assert self._cursors is not None
        news = self._fetch_new(self.config.channel_id, None, deadline)
        looked = dt.datetime.now(dt.timezone.utc)
        horizon = (self._archived_horizon or looked) - CLOCK_SLACK
        threads = {str(t["id"]): t for t in self._archived_threads(horizon, deadline)}
        threads.update((str(t["id"]), t) for t in self._active_threads(deadline))
        for thread_id, thread in threads.items():
            if thread_id not in self._cursors:
                # New since we started: all of it, but never what was there before our start.
                self._cursors[thread_id] = max(int(thread_id), self._origin)
            if int(thread.get("last_message_id") or 0) > self._cursors[thread_id]:
                news += self._fetch_new(thread_id, thread_id, deadline)
        with self._lock:
            for where, message in sorted(news, key=lambda found: int(found[1]["id"])):
                self._dispatch(message, None if where == self.config.channel_id else where, me)
                self._cursors[where] = max(self._cursors[where], int(message["id"]))
            self._archived_horizon = looked
        self._save_cursors()

    def _fetch_new(
        self, channel_id: str, thread_id: str | None, deadline: float
    ) -> list[tuple[str, dict[str, Any]]]:
        """The messages of a channel or thread after its cursor, each with where it is."""
        assert self._cursors is not None
        after, found = self._cursors[channel_id], []
        while True:
            params = {"after": str(after), "limit": str(PAGE)}
            path = f"/channels/{channel_id}/messages"
            response = self._request("GET", path, params=params, deadline=deadline)
            _expect_ok(response)
            page = sorted(response.json(), key=lambda m: int(m["id"]))
            found += [(thread_id or channel_id, message) for message in page]
            if len(page) < PAGE:
                return found
            after = int(page[-1]["id"])

    def _dispatch(self, message: dict[str, Any], thread_id: str | None, me: str) -> None:
        author = str(message["author"]["id"])
        if author == me or message.get("type", 0) not in DELIVERED_TYPES:
            return
        if self.config.operators and author not in self.config.operators:
            return
        inbound = InboundMessage(
            id=str(message["id"]),
            text=str(message.get("content", "")),
            sender=author,
            ts=str(message["timestamp"]),
            thread_id=thread_id,
        )
        self._subscribers.deliver([inbound])

    # health

    def health(self) -> ConnectorHealth:
        deadline = time.monotonic() + self._health_timeout
        where = self.config.api_base
        try:
            response = self._request("GET", "/users/@me", deadline=deadline)
        except RateLimited as exc:
            return ConnectorHealth(True, False, self._last_seen, f"{where} answers: {exc}")
        except httpx.HTTPError as exc:
            detail = f"{where} is not reachable: {exc.__class__.__name__}"
            return ConnectorHealth(False, False, self._last_seen, detail)
        if response.status_code == 200:
            user = response.json()
            self._me = str(user["id"])
            detail = f"{where} answers; the token is the bot {user.get('username')!r}"
            return ConnectorHealth(True, True, self._last_seen, detail)
        if response.status_code == 401:
            detail = f"{where} answers, but rejects the token in {TOKEN_ENV} (401)"
            return ConnectorHealth(True, False, self._last_seen, detail)
        detail = f"{where} answers {_error_text(response)}"
        return ConnectorHealth(True, False, self._last_seen, detail)

    def close(self) -> None:
        """Stop at once: a request in flight is cut; the cursors are saved."""
        with self._lock:
            self._closed.set()
            self._subscribers.clear()
            poller = self._poller
        self._transport.abort()
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=5)
        self._client.close()
        self._save_cursors()


class _Sent(str):
    """The id of a message Discord made (a plain string is a reason to try again)."""


class DiscordError(Exception):
    """Discord answered a read with an error."""


def _expect_ok(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise DiscordError(
            f"{response.request.method} {response.request.url.path}: {_error_text(response)}"
        )


def create_connector(
    config: ConnectorConfig,
    environ: Mapping[str, str] | None = None,
    *,
    connector_class: type[DiscordConnector] = DiscordConnector,
) -> DiscordConnector:
    """The registry's factory for ``discord``: the token from ``DISCORD_BOT_TOKEN``, the state
    folder from the roster or ``MOSAIC_CONNECTOR_STATE_DIR``; ``connector_class``: a subclass
    of the shipped connector to make instead."""
    env = os.environ if environ is None else environ
    if config.discord is None:
        raise ValueError(
            "The connector block says kind 'discord' but has no 'discord' settings "
            "(channel_id is required)."
        )
    token = env.get(TOKEN_ENV, "")
    if not token:
        raise MissingToken(
            f"{TOKEN_ENV} is not set: the Discord connector needs a bot token in the environment."
        )
    poll = env.get(POLL_ENV)
    try:
        interval = 1.0 if poll is None else float(poll)
    except ValueError:
        raise ValueError(f"{POLL_ENV} must be a number of seconds, not {poll!r}.") from None
    state_dir = state_folder(config, env)
    return connector_class(config.discord, token, state_dir=state_dir, poll_interval=interval)


factory = create_connector  # the name the brief uses
