"""Waiting for a condition: poll a probe with a timeout and an interval, never a blind sleep.

The one readiness helper of the library and the harness (testcontainers' wait strategies are
the model). A probe returns its result once the condition holds; ``None`` or ``False`` while it
does not; or :class:`Pending` to say what it saw, so that a timeout explains itself::

    port = wait_for(listening_port, what="Synapse listening", timeout=60, state=last_log_lines)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

DEFAULT_INTERVAL_S = 0.05


@dataclass(frozen=True, slots=True)
class Pending:
    """Not yet: what the probe saw (kept for the error if the condition never holds)."""

    seen: str


class NotReady(TimeoutError):
    """A condition did not hold in time; the message names it, what the probe last saw and,
    where given, the component's state (its status, its last log lines)."""


def wait_for(
    probe: Callable[[], T | Pending | None],
    *,
    what: str,
    timeout: float,
    interval: float = DEFAULT_INTERVAL_S,
    state: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something other than None, False or :class:`Pending`,
    and return that. On timeout raise :class:`NotReady`."""
    deadline = time.monotonic() + timeout
    seen = ""
    while True:
        result = probe()
        if isinstance(result, Pending):
            seen = result.seen
        elif result is not None and result is not False:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            parts = [f"{what} did not happen within {timeout:g} s"]
            if seen.strip():
                parts.append(f"last seen: {seen.strip()!r}")
            message = "; ".join(parts)
            detail = state() if state is not None else ""
            raise NotReady(message + (f"\n{detail}" if detail.strip() else ""))
        time.sleep(min(interval, remaining))
