"""Readiness probes: poll a condition with a timeout and an interval, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


class ProbeTimeout(TimeoutError):
    """A condition did not hold in time; the message holds what was last seen."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str,
    state: Callable[[], str] = lambda: "",
) -> T:
    """Call ``probe`` until it returns something other than None; return that.

    On timeout raise :class:`ProbeTimeout` naming ``what`` and holding ``state()``
    (a component's status and last log lines).
    """
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            detail = state()
            raise ProbeTimeout(
                f"{what} did not happen within {timeout:g} s" + (f"\n{detail}" if detail else "")
            )
        time.sleep(interval)


def versions_answer(url: str) -> bool | None:
    """True once ``/_matrix/client/versions`` answers 200; None while it does not."""
    try:
        response = httpx.get(f"{url}/_matrix/client/versions", timeout=2.0, trust_env=False)
    except httpx.TransportError:
        return None  # not listening yet: the only error worth waiting out
    return True if response.status_code == 200 else None
