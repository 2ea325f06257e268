"""National clouds: where to get tokens and where Graph lives (graph-facts section 8).

Tokens are not interchangeable between clouds and apps are registered per cloud, so the authority host and the
Graph root must come from the same row of this table.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Cloud:
    """One Microsoft cloud: its token authority host, Graph root and the app-only ``.default`` scope."""

    name: str
    authority_host: str
    graph_endpoint: str
    other_authority_hosts: tuple[str, ...] = ()

    @property
    def scope(self) -> str:
        """The client-credentials scope: the Graph root + ``/.default``."""
        return f"{self.graph_endpoint}/.default"


CLOUDS: dict[str, Cloud] = {
    "global": Cloud("global", "https://login.microsoftonline.com", "https://graph.microsoft.com",
                    ("https://login.microsoft.com", "https://login.windows.net", "https://sts.windows.net")),
    "usgov": Cloud("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us",
                   ("https://login.usgovcloudapi.net",)),
    "usgov-dod": Cloud("usgov-dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us",
                       ("https://login.usgovcloudapi.net",)),
    # The current Entra doc names login.partner.microsoftonline.cn; MSAL still knows the older host too.
    "china": Cloud("china", "https://login.partner.microsoftonline.cn", "https://microsoftgraph.chinacloudapi.cn",
                   ("https://login.chinacloudapi.cn",)),
}


def normalize_root(url: str) -> str:
    """``login.microsoftonline.com/`` -> ``https://login.microsoftonline.com`` (scheme added, no trailing slash)."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    return url.rstrip("/")


def host_of(url: str) -> str:
    """The lower-case host (with port) of a URL."""
    return urlsplit(normalize_root(url)).netloc.lower()


def clouds_of_authority(authority_host: str) -> set[str]:
    """Names of the clouds whose token host is ``authority_host`` (empty for a non-Microsoft host)."""
    host = host_of(authority_host)
    return {c.name for c in CLOUDS.values()
            if host in {host_of(h) for h in (c.authority_host, *c.other_authority_hosts)}}


def clouds_of_graph(graph_endpoint: str) -> set[str]:
    """Names of the clouds whose Graph root is ``graph_endpoint`` (empty for a non-Microsoft host)."""
    host = host_of(graph_endpoint)
    return {c.name for c in CLOUDS.values() if host == host_of(c.graph_endpoint)}
