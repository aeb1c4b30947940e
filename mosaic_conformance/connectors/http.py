"""HTTP for the connectors: an httpx transport whose requests in flight can be cut.

Closing an httpx client does not end a request another thread is waiting in (a long-poll, a
server that went silent): on Linux, closing a socket does not wake a ``recv`` blocked on it.
Shutting the socket down does. :class:`AbortableTransport` remembers the sockets it opened,
so that ``close()`` of a connector returns at once even during a long-poll.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


class _RememberingBackend(httpcore.SyncBackend):
    """httpcore's own network backend, keeping a weak reference to each socket it opens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._aborted = False  # every socket opened from now on is cut at once

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = super().connect_tcp(host, port, timeout, local_address, socket_options)
        sock = stream.get_extra_info("socket")
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.add(sock)
                aborted = self._aborted
            if aborted:  # opened while abort() ran, or after: the request fails at once
                _shut_down(sock)
        return stream

    def shut_down_all(self) -> None:
        with self._lock:
            self._aborted = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class AbortableTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` (plain HTTP and TLS, no proxy) with :meth:`abort`."""

    def __init__(self) -> None:
        super().__init__(trust_env=False)
        self._backend = _RememberingBackend()
        # httpx builds its pool without a way to pass the network backend; this is the pool it
        # builds by default, with the backend that remembers its sockets.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=httpx.Limits().max_connections,
            max_keepalive_connections=httpx.Limits().max_keepalive_connections,
            keepalive_expiry=httpx.Limits().keepalive_expiry,
            network_backend=self._backend,
        )

    def abort(self) -> None:
        """Cut every connection, also those a request is waiting on (it fails at once), and
        every one opened later: the transport is done."""
        self._backend.shut_down_all()
