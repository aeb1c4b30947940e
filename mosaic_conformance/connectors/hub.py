"""The subscribers of one connector: who gets each operator message, once, in order.

Shared by the connectors that deliver from a poller thread of their own. Handlers run with
the hub's lock held, so an ``unsubscribe`` returns only once no handler call of its
subscriber is in progress, and no message reaches a handler after it returned (CONN.8).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from .types import Handler, InboundMessage, Unsubscribe

log = logging.getLogger(__name__)


class Subscribers:
    """Handlers by subscription, and the lock that delivery and unsubscribing share."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self.lock = lock if lock is not None else threading.RLock()
        self._handlers: dict[int, Handler] = {}
        self._next = 0

    def add(self, handler: Handler) -> Unsubscribe:
        with self.lock:
            handle = self._next
            self._next += 1
            self._handlers[handle] = handler

        def unsubscribe() -> None:
            with self.lock:  # waits for a handler call in progress
                self._handlers.pop(handle, None)

        return unsubscribe

    def __bool__(self) -> bool:
        with self.lock:
            return bool(self._handlers)

    def clear(self) -> None:
        with self.lock:
            self._handlers.clear()

    def deliver(self, messages: Iterable[InboundMessage]) -> None:
        """Hand each message to every subscriber, in order; one failing handler does not stop
        the others (its error is logged)."""
        with self.lock:
            for message in messages:
                for handler in list(self._handlers.values()):
                    try:
                        handler(message)
                    except Exception:
                        log.exception("a subscriber's handler failed on message %s", message.id)
