"""Matrix connectors with one deliberate defect each, for proving the connector suite catches
them (``--connector-factory broken_connectors:NAME``). Each is the shipped connector but for
the one method that carries its defect."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from mosaic_conformance.connectors.matrix import TOKEN_ENV, MatrixConnector
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

    def send(self, message: OutboundMessage) -> SendResult:
        error = ""
        for _ in range(4):
            txn_id = uuid.uuid4().hex  # the defect: one per attempt, not one per message
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


def _factory(cls: type[MatrixConnector]) -> Any:
    def create(config: ConnectorConfig) -> MatrixConnector:
        assert config.matrix is not None
        return cls(config.matrix, os.environ[TOKEN_ENV])

    return create


echoes_own_messages = _factory(EchoesOwnMessages)
new_txn_id_on_retry = _factory(NewTxnIdOnRetry)
raises_instead_of_not_delivered = _factory(RaisesInsteadOfNotDelivered)
drops_thread_relation = _factory(DropsThreadRelation)
delivers_after_unsubscribe = _factory(DeliversAfterUnsubscribe)
claims_authenticated_with_bad_token = _factory(ClaimsAuthenticatedWithBadToken)
hangs_on_unreachable_server = _factory(HangsOnUnreachableServer)
