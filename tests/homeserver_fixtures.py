"""A Synapse for a whole test session, shared by the modules that import this fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mosaic_conformance.harness.chat.homeserver import HomeserverUnavailable
from mosaic_conformance.harness.chat.homeserver.synapse import SynapseHomeserver


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseHomeserver]:
    server = SynapseHomeserver(tmp_path_factory.mktemp("synapse"), {})
    try:
        server.start()
    except HomeserverUnavailable as exc:
        server.close()
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.close()
