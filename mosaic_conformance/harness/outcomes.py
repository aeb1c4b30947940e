"""How a test of the suites ends besides pass and fail, said by the code that knows.

A conformance verdict must never blame the subject for the toolkit's own trouble, nor pass
what it did not judge. So the suites and the harness components say which it is:

- :class:`SubjectFailure` (:func:`fail_subject`): the fleet or connector under test broke a
  requirement, in any phase: a step a fixture relies on failed, a connector call hung or
  raised. Outcome **failed**. (Plain ``assert`` and ``pytest.fail`` in a test's call phase
  mean the same.)
- :class:`HarnessError`: the toolkit, the environment or a harness component failed (a
  server that never became ready, a proxy that broke, the suite unable to arrange a state).
  Outcome **error**: nothing was judged. Any other exception is taken the same way.
- :class:`Unsupported` (:func:`unsupported`): the subject's kind lacks a capability the test
  needs (tmux has no tokens; a fleet declares no profile folder). Outcome **skipped**, with
  the reason; it never gates.
- :class:`Unavailable` (:func:`unavailable`): a component the user asked for cannot run here
  (no container engine, no Synapse, no tmux). Outcome **error**, unless the run was started
  with ``--conformance-allow-unavailable``; then skipped.

A plain ``pytest.skip`` (or a deselection, or ``-x``) leaves the test *not judged*: a MUST
with such a test makes the gate incomplete.
"""

from __future__ import annotations

from typing import NoReturn

import pytest

# The outcome kinds a test report carries (as the user property below), for the verdict.
FAILED, ERROR, UNSUPPORTED, UNAVAILABLE, NOT_RUN = (
    "failed",
    "error",
    "unsupported",
    "unavailable",
    "not-run",
)
OUTCOME_PROPERTY = "mosaic_outcome"


class HarnessError(Exception):
    """The toolkit, the environment or a harness component failed; nothing was judged."""


class SubjectFailure(pytest.fail.Exception):  # type: ignore[misc,name-defined]
    """The subject under test broke a requirement (shown like ``pytest.fail``, no traceback)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, pytrace=False)


class Unsupported(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """The subject's kind lacks a capability this test needs."""


class Unavailable(pytest.skip.Exception):  # type: ignore[misc,name-defined]
    """A component the user asked for cannot run on this machine."""


def fail_subject(message: str) -> NoReturn:
    """Fail the test as the subject's failure, whatever the phase."""
    __tracebackhide__ = True
    raise SubjectFailure(message)


def unsupported(reason: str) -> NoReturn:
    """Skip: the subject's kind lacks what this test needs (``reason`` says what and why)."""
    __tracebackhide__ = True
    raise Unsupported(reason)


def unavailable(reason: str) -> NoReturn:
    """Stop: a component the user asked for cannot run here (``reason`` says why, and what to
    install or start)."""
    __tracebackhide__ = True
    raise Unavailable(reason)


def classify(when: str, outcome: str, exception: BaseException | None) -> str | None:
    """The outcome kind of one phase of a test, from how pytest ended it and the exception it
    ended with: one of the constants above, or None for a pass (or an xfail/xpass, which the
    verdict reads from pytest itself)."""
    if outcome == "passed":
        return None
    if outcome == "skipped":
        if isinstance(exception, Unsupported):
            return UNSUPPORTED
        if isinstance(exception, Unavailable):
            return UNAVAILABLE
        return NOT_RUN
    if isinstance(exception, SubjectFailure):
        return FAILED
    if when == "call" and (
        exception is None  # a report made failed by pytest itself: a strict xfail that passed
        or isinstance(exception, AssertionError | pytest.fail.Exception)
    ):
        return FAILED
    return ERROR
