"""Long set-up steps say what they are doing, and how long they took, on pytest's terminal.

Building an image or starting a homeserver takes seconds to minutes, and a silent wait looks
like a hang. The code that does such a step knows nothing of pytest; it wraps the step::

    with progress.step("starting Synapse on 127.0.0.1"):
        ...

and the fixture that starts it lends the terminal for as long as it runs::

    with progress.reporting(request.config):
        session.start()

Outside :func:`reporting` (a library user, a benchmark) a step says nothing. The lines go
through pytest's terminal reporter, past output capturing; an xdist worker has no terminal
of its own, so there they are not shown.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

PREFIX = "[mosaic-conformance]"

_say: ContextVar[Callable[[str], None] | None] = ContextVar("mosaic_progress", default=None)


@contextlib.contextmanager
def reporting(config: pytest.Config) -> Iterator[None]:
    """Steps taken in this block (in this thread) are shown on ``config``'s terminal."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    quiet = (config.getoption("verbose", 0) or 0) < -1  # -qq: only the summary
    if reporter is None or quiet:
        yield
        return
    capture = config.pluginmanager.get_plugin("capturemanager")

    def say(line: str) -> None:
        # A fixture runs while pytest captures output: write past it, as live logging does.
        hold = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
        with hold:
            reporter.write_line(line)

    token = _say.set(say)
    try:
        yield
    finally:
        _say.reset(token)


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """Say ``what`` is starting, then how long it took (or that it failed, and when)."""
    say = _say.get()
    if say is None:
        yield
        return
    say(f"{PREFIX} {what} ...")
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        say(f"{PREFIX} {what}: failed after {time.perf_counter() - started:.1f} s")
        raise
    say(f"{PREFIX} {what}: done in {time.perf_counter() - started:.1f} s")
