"""Making the connector under test: a Python factory run with its token in the environment,
as in production (a ``--conformance-connector-cmd`` program is made by
:func:`mosaic_conformance.connectors.jsonlines.command_maker`)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping

from ...connectors import ConnectorFactory
from ...connectors.types import ConnectorConfig, OrchestratorConnector
from .target import ConnectorMaker

# The variables are set only while a factory runs; one factory at a time, since the
# environment is the process's.
_environ_lock = threading.Lock()


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    with _environ_lock:
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, old in saved.items():
                if old is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = old


def factory_maker(factory: ConnectorFactory) -> ConnectorMaker:
    """A maker calling ``factory(config)`` with the scenario's tokens in the environment."""

    def make(config: ConnectorConfig, env: Mapping[str, str]) -> OrchestratorConnector:
        with _environment(env):
            return factory(config)

    return make
