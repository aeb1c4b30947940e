"""A small Matrix client for the suite's own side: register users, make rooms, post, read.

The suite plays the operator and the stranger with it; it is not the connector under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from ...outcomes import HarnessError

CLIENT_API = "/_matrix/client/v3"
REQUEST_TIMEOUT_S = 30.0


class HomeserverError(HarnessError, RuntimeError):
    """The homeserver refused a step of the suite's own (a user, a room, the operator's
    post); the message names the step and the answer. Nothing of the connector was judged."""


@dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    access_token: str = field(repr=False)  # never printed


def _check(response: httpx.Response, step: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise HomeserverError(f"{step} failed: {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


def new_password() -> str:
    return secrets.token_urlsafe(18)


def register_with_shared_secret(base_url: str, shared_secret: str, localpart: str) -> Account:
    """Synapse's admin registration: an HMAC of a fresh nonce with the shared secret."""
    url = f"{base_url.rstrip('/')}/_synapse/admin/v1/register"
    with httpx.Client(timeout=REQUEST_TIMEOUT_S, trust_env=False) as http:
        nonce = _check(http.get(url), "fetching a registration nonce")["nonce"]
        password = new_password()
        mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(
            b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"notadmin"])
        )
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": False,
            "mac": mac.hexdigest(),
        }
        answer = _check(http.post(url, json=body), f"registering {localpart!r}")
    return Account(answer["user_id"], answer["access_token"])


def register_open(base_url: str, localpart: str, registration_token: str | None = None) -> Account:
    """The spec's ``/register`` with user-interactive auth: a registration token if the
    server wants one (``m.login.registration_token``), else ``m.login.dummy``."""
    url = f"{base_url.rstrip('/')}{CLIENT_API}/register"
    body: dict[str, Any] = {
        "username": localpart,
        "password": new_password(),
        "inhibit_login": False,
    }
    with httpx.Client(timeout=REQUEST_TIMEOUT_S, trust_env=False) as http:
        first = http.post(url, json=body)
        if first.status_code == 401:
            session = first.json().get("session")
            stage = "m.login.registration_token" if registration_token else "m.login.dummy"
            auth: dict[str, Any] = {"type": stage, "session": session}
            if registration_token:
                auth["token"] = registration_token
            first = http.post(url, json={**body, "auth": auth})
        answer = _check(first, f"registering {localpart!r}")
    return Account(answer["user_id"], answer["access_token"])


class MatrixUser:
    """One account's requests to the homeserver."""

    def __init__(self, base_url: str, account: Account) -> None:
        self.account = account
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {account.access_token}"},
            timeout=REQUEST_TIMEOUT_S,
            trust_env=False,
        )

    def __repr__(self) -> str:
        return f"MatrixUser({self.account.user_id!r})"

    @property
    def user_id(self) -> str:
        return self.account.user_id

    def create_room(self, name: str) -> str:
        body = {"preset": "public_chat", "name": name, "visibility": "private"}
        return str(
            _check(self._http.post(f"{CLIENT_API}/createRoom", json=body), "createRoom")["room_id"]
        )

    def join(self, room_id: str) -> None:
        _check(self._http.post(f"{CLIENT_API}/join/{quote(room_id, safe='')}", json={}), "join")

    def send_text(self, room_id: str, text: str, thread_id: str | None = None) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": text}
        if thread_id:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread_id,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": thread_id},
            }
        path = (
            f"{CLIENT_API}/rooms/{quote(room_id, safe='')}/send/m.room.message/"
            f"{secrets.token_hex(12)}"
        )
        return str(_check(self._http.put(path, json=content), "sending a message")["event_id"])

    def messages(self, room_id: str, limit: int = 200) -> list[Mapping[str, Any]]:
        """The room's latest message events, oldest first."""
        params: dict[str, str | int] = {
            "dir": "b",
            "limit": limit,
            "filter": json.dumps({"types": ["m.room.message"]}),
        }
        path = f"{CLIENT_API}/rooms/{quote(room_id, safe='')}/messages"
        chunk: list[Mapping[str, Any]] = _check(self._http.get(path, params=params), "messages")[
            "chunk"
        ]
        return chunk[::-1]

    def close(self) -> None:
        self._http.close()
