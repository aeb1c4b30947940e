"""Long set-up steps say what they do and how long they took, past pytest's output capture."""

from __future__ import annotations

import pytest

from mosaic_conformance.harness import progress

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest
from mosaic_conformance.harness import progress

@pytest.fixture(scope="session")
def server(pytestconfig):
    with progress.reporting(pytestconfig):
        with progress.step("demo server: start"):
            pass
        try:
            with progress.step("demo image: build"):
                raise RuntimeError("no space left")
        except RuntimeError:
            pass
    return "up"
"""


def test_steps_reach_the_terminal_of_a_passing_captured_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("def test_it(server):\n    assert server == 'up'\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "[[]mosaic-conformance] demo server: start ...",
            "[[]mosaic-conformance] demo server: start: done in *.* s",
            "[[]mosaic-conformance] demo image: build ...",
            "[[]mosaic-conformance] demo image: build: failed after *.* s",
        ]
    )
    quiet = pytester.runpytest("-p", "no:cacheprovider", "-qq")
    assert "mosaic-conformance]" not in quiet.stdout.str()


def test_a_step_outside_a_run_says_nothing_and_keeps_its_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress.step("nothing to say"):
        pass
    with pytest.raises(ValueError, match="kept"), progress.step("failing"):
        raise ValueError("kept")
    assert capsys.readouterr() == ("", "")


SLOW_BACKEND = """
import mosaic_conformance.harness.systems as backends
from mosaic_conformance.harness import progress
from mosaic_conformance.harness.systems.fake import FakeSession


class SlowSession(FakeSession):
    def start(self):
        with progress.step("slow backend: build an image"):
            super().start()


backends.BACKENDS["fake"] = "conftest:SlowSession"
"""


def test_the_fleet_suite_lends_the_terminal_to_its_backend(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SLOW_BACKEND)
    result = pytester.runpytest_subprocess(  # its own process: the registry change stays there
        *("--conformance", "-p", "no:cacheprovider", "--conformance-only", "SYM.1"),
        *("-k", "test_add_enables_the_unit"),
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(["[[]mosaic-conformance] slow backend: build an image: done in *"])
