"""Readiness probes for the connectors and their test servers: poll, never sleep blindly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class NotReady(TimeoutError):
    """A probe's condition did not hold in time; the message says what and what was seen."""


def wait_for(
    probe: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    interval: float = 0.05,
    state: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something other than None or False, and return that.

    On timeout raise :class:`NotReady` naming ``what`` and, if given, ``state()`` (the
    component's state or last log lines), so the failure explains itself.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            seen = f" Last state: {state()}" if state is not None else ""
            raise NotReady(f"Waited {timeout:g}s for {what}, in vain.{seen}")
        time.sleep(min(interval, remaining))
