"""What the harness can start, by name: each a ``module:attribute`` imported only when chosen.

Kept apart from the components themselves so that the plugin reads the names at start-up
without importing Docker's SDK, httpx or libtmux into every pytest run of the environment.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..contract import ConnectorKind

# Where a fleet under test runs (harness/systems/).
BACKENDS: Mapping[str, str] = {
    "fake": "mosaic_conformance.harness.systems.fake:FakeSession",
    "systemd": "mosaic_conformance.harness.systems.systemd:SystemdSession",
}
# The systemd backend's container engines; "auto" finds one.
CONTAINER_ENGINES = ("auto", "docker", "podman")

# The Matrix homeservers the connector suite can use (harness/chat/homeserver/).
HOMESERVERS: Mapping[str, str] = {
    "synapse": "mosaic_conformance.harness.chat.homeserver.synapse:SynapseHomeserver",
    "conduit": "mosaic_conformance.harness.chat.homeserver.conduit:ConduitHomeserver",
    "external": "mosaic_conformance.harness.chat.homeserver.external:ExternalHomeserver",
}
STARTABLE_HOMESERVERS = ("synapse", "conduit")  # "external" is chosen by giving a URL

# Each connector kind's target: the servers a connector of that kind talks to (harness/chat/).
TARGETS: Mapping[ConnectorKind, str] = {
    "tmux": "mosaic_conformance.harness.chat.tmux:open_target",
    "discord": "mosaic_conformance.harness.chat.discord:open_target",
    "matrix": "mosaic_conformance.harness.chat.matrix:open_target",
}
