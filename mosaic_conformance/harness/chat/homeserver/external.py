"""A homeserver the user already runs, given by ``--conformance-homeserver-url``.

Accounts are made with Synapse's shared-secret registration when a shared secret is given,
else with the spec's ``/register`` (a registration token if given, else open registration).
"""

from __future__ import annotations

from . import Homeserver, HomeserverUnavailable
from .client import Account, register_open, register_with_shared_secret
from .probe import versions_answer


class ExternalHomeserver(Homeserver):
    name = "external"

    @property
    def url(self) -> str:
        return self.options["url"].rstrip("/")

    def start(self) -> None:
        if not self.options.get("url"):
            raise HomeserverUnavailable("no --conformance-homeserver-url was given")
        if not versions_answer(self.url):
            raise HomeserverUnavailable(
                f"the homeserver at {self.url} does not answer /_matrix/client/versions"
            )

    def register(self, localpart: str) -> Account:
        shared_secret = self.options.get("shared_secret")
        if shared_secret:
            return register_with_shared_secret(self.url, shared_secret, localpart)
        return register_open(self.url, localpart, self.options.get("registration_token"))
