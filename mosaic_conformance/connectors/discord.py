"""The Discord connector: Discord's REST API v10 with a bot token, through httpx.

- ``send`` posts to the configured channel, or to the thread named by ``thread_id`` (a
  Discord thread is a channel of its own: ``POST /channels/{thread_id}/messages``). Each
  send carries a ``nonce`` with ``enforce_nonce``, the same on every retry, so Discord
  returns the message it already made instead of a second one (CONN.6). Text longer than
  Discord's 2000 characters goes as several messages; the first one's id is returned.
- ``subscribe`` polls ``GET /channels/{id}/messages?after=LAST`` and, for the channel's
  active threads (``GET /guilds/{guild}/threads/active``), each thread with news. The last
  id seen per channel and thread is kept, so errors, restarts and resubscribes lose and
  double nothing. It drops the bot's own messages and, when ``operators`` is set, those of
  anyone else.
- ``health`` is ``GET /users/@me``: 200 is reachable and authenticated, 401 reachable but
  not authenticated, no answer in time is not reachable.

Every request has a bounded timeout; a 429 is waited out for its ``retry_after``, and
while it lasts no other request of this connector goes out. The token comes from
``DISCORD_BOT_TOKEN`` and is never part of an error, a log line or a repr.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from ..contract import DISCORD_TOKEN_ENV
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


class DiscordConnector:
    """The orchestrator's side of one Discord channel, as a bot."""

    def __init__(
        self,
        config: DiscordConfig,
        token: str,
        *,
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
        self._client = httpx.Client(
            base_url=config.api_base.rstrip("/"),
            headers={
                "Authorization": f"Bot {token}",
                "User-Agent": "DiscordBot (https://pypi.org/project/mosaic-conformance, 0.1)",
            },
            timeout=httpx.Timeout(request_timeout, connect=min(5.0, request_timeout)),
        )
        self._blocked_until = 0.0  # monotonic: a 429 holds every request until then
        self._lock = threading.RLock()  # held while handlers run: unsubscribe waits for them
        self._handlers: dict[int, Handler] = {}
        self._next_token = 0
        self._me: str | None = None  # the bot's user id
        self._guild_id: str | None = None
        self._cursors: dict[str, int] | None = None  # channel or thread id -> last id seen
        self._poller: threading.Thread | None = None
        self._closed = threading.Event()
        self._last_seen: str | None = None

    @property
    def kind(self) -> ConnectorKind:
        return "discord"

    def __repr__(self) -> str:
        return (
            f"DiscordConnector(channel_id={self.config.channel_id!r}, api={self.config.api_base!r})"
        )

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
        text = message.text + "".join(f"\n📎 {a}" for a in message.attachments)
        channel_id = message.thread_id or self.config.channel_id
        deadline = time.monotonic() + self._send_deadline
        base_nonce = secrets.token_hex(11)  # 22 characters: room for "-NN" within 25
        first_id: str | None = None
        try:
            for index, chunk in enumerate(_chunks(text)):
                nonce = base_nonce if index == 0 else f"{base_nonce}-{index}"
                sent = self._post_message(channel_id, chunk, nonce, deadline)
                if isinstance(sent, SendResult):
                    return sent
                first_id = first_id or sent
        except Exception as exc:  # CONN.5: a send never raises
            return SendResult(delivered=False, error=f"Sending to Discord failed: {exc!r}")
        return SendResult(delivered=True, message_id=first_id)

    def _post_message(
        self, channel_id: str, content: str, nonce: str, deadline: float
    ) -> str | SendResult:
        """The new message's id, or the not-delivered result. Retries keep the nonce."""
        body = {"content": content, "nonce": nonce, "enforce_nonce": True}
        path = f"/channels/{channel_id}/messages"
        backoff = 0.25
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                response = self._request("POST", path, json=body, deadline=deadline)
            except RateLimited as exc:
                return SendResult(delivered=False, error=str(exc))
            except httpx.TransportError as exc:
                problem = f"no answer from {self.config.api_base}: {exc.__class__.__name__}"
            else:
                if response.status_code in (200, 201):
                    return str(response.json()["id"])
                if response.status_code < 500:
                    refusal = f"Discord refused the message: {_error_text(response)}"
                    return SendResult(delivered=False, error=refusal)
                problem = f"Discord answered {_error_text(response)}"
            if attempt == SEND_ATTEMPTS or time.monotonic() + backoff >= deadline:
                break
            time.sleep(backoff)
            backoff *= 2
        return SendResult(delivered=False, error=f"Not delivered after {attempt} tries: {problem}")

    # subscribe

    def subscribe(self, handler: Handler) -> Unsubscribe:
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._handlers[token] = handler
            if self._cursors is None:
                self._start_cursors()
            if self._poller is None and not self._closed.is_set():
                self._poller = threading.Thread(
                    target=self._poll, name=f"discord-{self.config.channel_id}", daemon=True
                )
                self._poller.start()

        def unsubscribe() -> None:
            with self._lock:  # waits for a handler call in progress
                self._handlers.pop(token, None)

        return unsubscribe

    def _start_cursors(self) -> None:
        """From now on: the newest id of the channel and of each active thread.

        If Discord cannot be asked now, start from the local clock's snowflake instead.
        """
        deadline = time.monotonic() + self._health_timeout
        try:
            self._whoami(deadline)
            cursors = {self.config.channel_id: self._newest_id(self.config.channel_id, deadline)}
            for thread in self._active_threads(deadline):
                cursors[thread["id"]] = int(thread.get("last_message_id") or thread["id"])
        except (httpx.HTTPError, RateLimited, DiscordError) as exc:
            log.warning("Discord is not answering at subscribe (%r); starting from now", exc)
            now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22  # a snowflake of now
            cursors = {self.config.channel_id: now}
        self._cursors = cursors

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

    def _poll(self) -> None:
        backoff = self._poll_interval
        while not self._closed.wait(backoff):
            with self._lock:
                if not self._handlers:
                    self._poller = None  # the next subscribe starts a new poller
                    return
            try:
                self._poll_once()
            except (httpx.HTTPError, RateLimited, DiscordError) as exc:
                backoff = min(max(backoff * 2, 0.5), MAX_BACKOFF)
                log.warning("Polling Discord failed (%r); again in %.1fs", exc, backoff)
            except Exception:  # an answer of a shape we did not expect: keep polling
                backoff = min(max(backoff * 2, 0.5), MAX_BACKOFF)
                log.exception("Polling Discord failed; again in %.1fs", backoff)
            else:
                backoff = self._poll_interval

    def _poll_once(self) -> None:
        deadline = time.monotonic() + self._send_deadline
        me = self._whoami(deadline)
        assert self._cursors is not None
        self._fetch_new(self.config.channel_id, None, me, deadline)
        for thread in self._active_threads(deadline):
            thread_id = str(thread["id"])
            if thread_id not in self._cursors:
                self._cursors[thread_id] = int(thread_id)  # new since we started: all of it
            if int(thread.get("last_message_id") or 0) > self._cursors[thread_id]:
                self._fetch_new(thread_id, thread_id, me, deadline)

    def _fetch_new(self, channel_id: str, thread_id: str | None, me: str, deadline: float) -> None:
        assert self._cursors is not None
        while True:
            params = {"after": str(self._cursors[channel_id]), "limit": str(PAGE)}
            path = f"/channels/{channel_id}/messages"
            response = self._request("GET", path, params=params, deadline=deadline)
            _expect_ok(response)
            page = sorted(response.json(), key=lambda m: int(m["id"]))
            for message in page:
                self._dispatch(message, thread_id, me)
                with self._lock:
                    self._cursors[channel_id] = int(message["id"])
            if len(page) < PAGE:
                return

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
        with self._lock:
            for handler in list(self._handlers.values()):
                try:
                    handler(inbound)
                except Exception:
                    log.exception("A subscriber of the Discord connector raised")

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
        self._closed.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=self._send_deadline + 5)
        self._client.close()


class DiscordError(Exception):
    """Discord answered a read with an error."""


def _expect_ok(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise DiscordError(
            f"{response.request.method} {response.request.url.path}: {_error_text(response)}"
        )


def create_connector(
    config: ConnectorConfig, environ: Mapping[str, str] | None = None
) -> DiscordConnector:
    """The registry's factory for ``discord``: the token from ``DISCORD_BOT_TOKEN``."""
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
    if poll is None:
        return DiscordConnector(config.discord, token)
    try:
        interval = float(poll)
    except ValueError:
        raise ValueError(f"{POLL_ENV} must be a number of seconds, not {poll!r}.") from None
    return DiscordConnector(config.discord, token, poll_interval=interval)


factory = create_connector  # the name the brief uses
