"""A local stand-in for the part of Discord's REST API v10 the Discord connector uses.

Written from Discord's public API reference, for tests: a threaded HTTP server on
127.0.0.1 (port 0, read back), with the state in memory.

The API (under ``/api/v10``), each with ``Authorization: Bot TOKEN`` (else 401):

- ``GET /users/@me``: the bot's user;
- ``GET /channels/{id}``: a text channel or a thread;
- ``GET /channels/{id}/messages?after=|before=&limit=``: newest first, ``limit`` 1-100
  (default 50); with ``after``, the messages right after that id;
- ``POST /channels/{id}/messages`` ``{"content", "nonce", "enforce_nonce"}``: with
  ``enforce_nonce``, a nonce the same author used in the last few minutes returns the
  message it made, and makes no new one;
- ``POST /channels/{id}/messages/{message_id}/threads`` ``{"name"}``: a public thread whose
  id is the message's id;
- ``GET /guilds/{id}/threads/active``: ``{"threads": [...], "members": []}``, the threads
  not archived;
- ``GET /channels/{id}/threads/archived/public?before=&limit=``: the channel's archived
  public threads, the last archived first, ``{"threads", "members", "has_more"}``. A message
  posted in an archived thread (not locked) un-archives it, as on Discord.

Ids are snowflakes (milliseconds since 2015-01-01 shifted left by 22, plus a counter),
so they sort by time. Errors have Discord's shape ``{"message", "code"}``.

For the test side: users and channels, posting as any user (the operator, a stranger),
reading a channel, starting and archiving a thread, and a restart on the same port with the
state kept (counted). Network faults (lost answers, 5xx and 429 answers, cut, half-open and
refused connections) are not the stand-in's: the suite's one fault injector,
:class:`~.faults.FaultyProxy`, stands in front of it as it does in front of a homeserver.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Discord's facts are restated here, not imported from the connector: a stand-in that shared
# the connector's code would share its mistakes.
API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
NONCE_WINDOW = 300.0  # seconds an enforced nonce is remembered ("the past few minutes")
MAX_CONTENT = 2000
TEXT_CHANNEL, PUBLIC_THREAD = 0, 11
HAS_THREAD_FLAG = 1 << 5

Json = dict[str, Any]


class ApiError(Exception):
    """An error answer in Discord's shape."""

    def __init__(self, status: int, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.body: Json = {"message": message, "code": code}


@dataclass
class User:
    id: str
    username: str
    bot: bool = False
    token: str | None = field(default=None, repr=False)  # bots only; never in a repr

    def to_json(self) -> Json:
        user: Json = {
            "id": self.id,
            "username": self.username,
            "global_name": None if self.bot else self.username,
            "discriminator": "0",
            "avatar": None,
        }
        if self.bot:
            user["bot"] = True
        return user


@dataclass
class Channel:
    id: str
    name: str
    type: int = TEXT_CHANNEL
    parent_id: str | None = None
    owner_id: str | None = None
    messages: list[Json] = field(default_factory=list)  # oldest first
    archived_at: str | None = None  # ISO-8601, while the thread is archived

    def to_json(self, guild_id: str) -> Json:
        channel: Json = {
            "id": self.id,
            "type": self.type,
            "guild_id": guild_id,
            "name": self.name,
            "last_message_id": self.messages[-1]["id"] if self.messages else None,
        }
        if self.type == PUBLIC_THREAD:
            channel |= {
                "parent_id": self.parent_id,
                "owner_id": self.owner_id,
                "message_count": len(self.messages),
                "member_count": 1,
                "thread_metadata": {
                    "archived": self.archived_at is not None,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": self.archived_at or _iso(self.id),
                    "locked": False,
                },
            }
        return channel


def snowflake_time_ms(snowflake: str) -> int:
    return (int(snowflake) >> 22) + DISCORD_EPOCH_MS


def _iso(snowflake: str) -> str:
    seconds = snowflake_time_ms(snowflake) / 1000
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat()


class DiscordStandIn:
    """The stand-in server and its state; a context manager that starts and stops it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._last_snowflake = 0
        self.guild_id = self._snowflake()
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self._nonces: dict[tuple[str, str], tuple[float, Json]] = {}
        self.restarts = 0  # done by restart(), each one
        # (monotonic time, method, path and query) of every request; never its headers
        self.requests: list[tuple[float, str, str]] = []
        self.sent_bodies: list[Json] = []  # every POST .../messages body as received
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # lifecycle

    def start(self) -> DiscordStandIn:
        handler = type("Handler", (_Handler,), {"standin": self})
        server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self._cut_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def restart(self) -> None:
        """Stop and start again on the same port; users, channels and messages stay."""
        self.stop()
        self.start()
        self.restarts += 1

    def __enter__(self) -> DiscordStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        return f"{self.origin}{API_PREFIX}"

    # the test side: users, channels, messages

    def add_user(self, username: str, *, bot: bool = False) -> User:
        with self._lock:
            token = f"{secrets.token_urlsafe(18)}.{secrets.token_urlsafe(24)}" if bot else None
            user = User(self._snowflake(), username, bot, token)
            self.users[user.id] = user
            return user

    def add_channel(self, name: str) -> str:
        with self._lock:
            channel = Channel(self._snowflake(), name)
            self.channels[channel.id] = channel
            return channel.id

    def post_as(self, user_id: str, channel_id: str, content: str) -> Json:
        """Post ``content`` as ``user_id`` into a channel or a thread; the message."""
        with self._lock:
            return self._create_message(self.users[user_id], channel_id, {"content": content})

    def start_thread(self, channel_id: str, message_id: str, name: str, user_id: str) -> Json:
        """Start a public thread from a message; the thread channel (its id: the message's)."""
        with self._lock:
            return self._start_thread(self.users[user_id], channel_id, message_id, {"name": name})

    def messages(self, channel_id: str) -> list[Json]:
        """The messages of a channel or thread, oldest first."""
        with self._lock:
            return [dict(m) for m in self.channels[channel_id].messages]

    def threads_of(self, channel_id: str) -> list[str]:
        with self._lock:
            return [c.id for c in self.channels.values() if c.parent_id == channel_id]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No request is answered while the context lasts: what the test side does in it
        happens at once, as far as any client can tell."""
        with self._lock:
            yield

    def archive_thread(self, thread_id: str) -> None:
        """Archive a thread (as Discord does after its auto-archive time, or a moderator)."""
        with self._lock:
            thread = self._channel(thread_id)
            if thread.type != PUBLIC_THREAD:
                raise ValueError(f"{thread_id} is not a thread")
            thread.archived_at = _iso(self._snowflake())

    def _cut_connections(self) -> None:
        """Cut every open client connection (the server is going away)."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    # the API

    def handle(self, method: str, target: str, authorization: str | None, body: bytes) -> Any:
        """One API request; the JSON answer, or raises :class:`ApiError`."""
        split = urlsplit(target)
        with self._lock:
            self.requests.append((time.monotonic(), method, target))
            if method == "POST" and split.path.endswith("/messages"):
                with contextlib.suppress(ValueError):
                    self.sent_bodies.append(json.loads(body or b"{}"))
            if not split.path.startswith(API_PREFIX + "/"):
                raise ApiError(404, "404: Not Found")
            path = split.path[len(API_PREFIX) :]
            user = self._authenticate(authorization)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            payload = _parse_body(body) if method == "POST" else {}
            return self._route(method, path, query, payload, user)

    def _authenticate(self, authorization: str | None) -> User:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme == "Bot" and token:
            for user in self.users.values():
                if user.token is not None and secrets.compare_digest(user.token, token):
                    return user
        raise ApiError(401, "401: Unauthorized")

    def _route(self, method: str, path: str, query: dict[str, str], body: Json, user: User) -> Any:
        if method == "GET" and path == "/users/@me":
            return user.to_json()
        if match := re.fullmatch(r"/channels/(\d+)", path):
            if method == "GET":
                return self._channel(match[1]).to_json(self.guild_id)
        elif match := re.fullmatch(r"/channels/(\d+)/messages", path):
            if method == "GET":
                return self._list_messages(match[1], query)
            if method == "POST":
                return self._create_message(user, match[1], body)
        elif match := re.fullmatch(r"/channels/(\d+)/messages/(\d+)/threads", path):
            if method == "POST":
                return _Created(self._start_thread(user, match[1], match[2], body))
        elif match := re.fullmatch(r"/guilds/(\d+)/threads/active", path):
            if method == "GET":
                return self._active_threads(match[1])
        elif match := re.fullmatch(r"/channels/(\d+)/threads/archived/public", path):
            if method == "GET":
                return self._archived_threads(match[1], query)
        else:
            raise ApiError(404, "404: Not Found")
        raise ApiError(405, "405: Method Not Allowed")

    def _channel(self, channel_id: str) -> Channel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise ApiError(404, "Unknown Channel", 10003) from None

    def _list_messages(self, channel_id: str, query: dict[str, str]) -> list[Json]:
        messages = self._channel(channel_id).messages
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise ApiError(400, "Invalid Form Body: limit must be between 1 and 100", 50035)
        if "after" in query:
            after = int(query["after"])
            picked = [m for m in messages if int(m["id"]) > after][:limit]
        elif "before" in query:
            before = int(query["before"])
            picked = [m for m in messages if int(m["id"]) < before][-limit:]
        else:
            picked = messages[-limit:]
        return [dict(m) for m in reversed(picked)]  # newest first

    def _create_message(self, user: User, channel_id: str, body: Json) -> Json:
        channel = self._channel(channel_id)
        content = body.get("content")
        if not isinstance(content, str) or not content:
            raise ApiError(400, "Cannot send an empty message", 50006)
        if len(content) > MAX_CONTENT:
            raise ApiError(400, "Invalid Form Body: content must be 2000 or fewer in length", 50035)
        nonce = body.get("nonce")
        if nonce is not None and not (
            (isinstance(nonce, str) and len(nonce) <= 25) or isinstance(nonce, int)
        ):
            raise ApiError(400, "Invalid Form Body: nonce must be a string of 25 or fewer", 50035)
        key = (user.id, str(nonce))
        now = time.monotonic()
        if nonce is not None and body.get("enforce_nonce") is True:
            seen = self._nonces.get(key)
            if seen is not None and now - seen[0] < NONCE_WINDOW:
                return dict(seen[1])
        message_id = self._snowflake()
        message: Json = {
            "id": message_id,
            "channel_id": channel.id,
            "author": user.to_json(),
            "content": content,
            "timestamp": _iso(message_id),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if nonce is not None:
            message["nonce"] = nonce
            self._nonces[key] = (now, message)
        channel.messages.append(message)
        channel.archived_at = None  # a message un-archives a thread
        return dict(message)

    def _start_thread(self, user: User, channel_id: str, message_id: str, body: Json) -> Json:
        parent = self._channel(channel_id)
        if parent.type != TEXT_CHANNEL:
            raise ApiError(400, "Cannot start a thread in a thread", 50024)
        starter = next((m for m in parent.messages if m["id"] == message_id), None)
        if starter is None:
            raise ApiError(404, "Unknown Message", 10008)
        if message_id in self.channels:
            raise ApiError(400, "A thread has already been created for this message", 160004)
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise ApiError(400, "Invalid Form Body: name must be 1 to 100 long", 50035)
        thread = Channel(message_id, name, PUBLIC_THREAD, parent.id, user.id)
        self.channels[thread.id] = thread
        thread_json = thread.to_json(self.guild_id)
        starter["thread"] = thread_json
        starter["flags"] |= HAS_THREAD_FLAG
        return thread_json

    def _active_threads(self, guild_id: str) -> Json:
        if guild_id != self.guild_id:
            raise ApiError(404, "Unknown Guild", 10004)
        threads = [
            c.to_json(self.guild_id)
            for c in self.channels.values()
            if c.type == PUBLIC_THREAD and c.archived_at is None
        ]
        threads.sort(key=lambda t: int(t["id"]), reverse=True)
        return {"threads": threads, "members": []}

    def _archived_threads(self, channel_id: str, query: dict[str, str]) -> Json:
        self._channel(channel_id)
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 2 <= limit <= 100:
            raise ApiError(400, "Invalid Form Body: limit must be between 2 and 100", 50035)
        before = query.get("before")
        archived = [
            c
            for c in self.channels.values()
            if c.parent_id == channel_id and c.archived_at is not None
        ]
        if before is not None:
            try:
                cutoff = dt.datetime.fromisoformat(before.replace("Z", "+00:00"))
            except ValueError:
                raise ApiError(400, "Invalid Form Body: before is not a timestamp", 50035) from None
            archived = [
                c for c in archived if dt.datetime.fromisoformat(str(c.archived_at)) < cutoff
            ]
        archived.sort(key=lambda c: str(c.archived_at), reverse=True)
        page = [c.to_json(self.guild_id) for c in archived[:limit]]
        return {"threads": page, "members": [], "has_more": len(archived) > limit}

    def _snowflake(self) -> str:
        with self._lock:
            stamp = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
            self._last_snowflake = max(stamp, self._last_snowflake + 1)
            return str(self._last_snowflake)

    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


@dataclass(frozen=True)
class _Created:
    body: Json


def _parse_body(body: bytes) -> Json:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        raise ApiError(400, "400: Bad Request (the body is not JSON)", 50109) from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "400: Bad Request (the body is not a JSON object)", 50109)
    return parsed


class _Handler(BaseHTTPRequestHandler):
    standin: DiscordStandIn
    protocol_version = "HTTP/1.1"  # keep-alive, as Discord's edge does
    timeout = 30  # an idle kept-alive connection is closed after this

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.standin._track(self.connection, opened=True)

    def finish(self) -> None:
        self.standin._track(self.connection, opened=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests read ``requests``

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            answer = self.standin.handle(method, self.path, self.headers.get("Authorization"), body)
        except ApiError as error:
            self._reply(error.status, error.body)
            return
        if isinstance(answer, _Created):
            self._reply(201, answer.body)
        else:
            self._reply(200, answer)

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
