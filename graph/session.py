"""The one pooled HTTPS session of a run, trusting exactly the configured CA bundle.

Both the token client (:mod:`graph.auth`) and the Graph transport (:mod:`graph.http`) use it, so it lives apart from
either of them.
"""
from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING

import requests
from requests.adapters import HTTPAdapter

from .config import GraphConfig

if TYPE_CHECKING:
    from requests.sessions import _Settings  # the stubs' name for the merged settings (no runtime class)


class PinnedCASession(requests.Session):
    """A session whose configured CA bundle wins over ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``.

    requests lets those environment variables override ``session.verify``; with ``PROVISION_CA_BUNDLE`` set, the
    tool must trust exactly that bundle (the sandbox's CA), whatever the machine's environment says.
    """

    def __init__(self, ca_bundle: str | None = None) -> None:
        super().__init__()
        self.pinned_ca = ca_bundle
        if ca_bundle:
            self.verify = ca_bundle

    def merge_environment_settings(self, url: str | bytes | None, proxies: MutableMapping[str, str] | None,
                                   stream: bool | None, verify: bool | str | None,
                                   cert: str | tuple[str, str] | None) -> _Settings:
        """As requests does, then put the pinned CA bundle back."""
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.pinned_ca and verify in (None, True):
            settings["verify"] = self.pinned_ca
        return settings


def make_session(config: GraphConfig) -> requests.Session:
    """One session for all Graph calls, its pool sized to the concurrency of writes or reads (plus room for paging
    and single requests)."""
    session = PinnedCASession(str(config.ca_bundle) if config.ca_bundle else None)
    size = config.read_concurrency + 4
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=size, max_retries=0, pool_block=False)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": config.user_agent, "Accept": "application/json"})
    return session
