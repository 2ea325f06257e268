"""How a :class:`graph.client.GraphClient` is configured: one frozen value, built by ``provisioning.settings``.

Secrets are held in :class:`Secret`, whose ``str`` and ``repr`` are redacted, so no log line, traceback or
f-string can leak them by accident; only :meth:`Secret.reveal` gives the value, and only ``graph.auth`` calls it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .governor import GovernorConfig
from .retry import RetryPolicy

#: Graph's smallest resource-unit bucket (3,500 RU per 10 s for a tenant under 50 users, graph-facts 3.2), paced per
#: read item (most cost 1-2 RU). A refused read costs only its retry, so the start is not held back: its first probe
#: is what ``read_concurrency`` batches of 20 carry (6,000 UPN lookups, 400 items, in one round trip).
READ_GOVERNOR = GovernorConfig(quota_writes=3500, quota_window_s=10, first_probe=400)
#: ``$batch`` requests of reads only (pre-flight lookups) in flight at once: five per chunk of writes, at most 20
#: (400 items) unless ``concurrency`` is higher still.
READ_CONCURRENCY_FACTOR, READ_CONCURRENCY_MAX = 5, 20

REDACTED = "***"


class Secret:
    """A secret value that never shows itself in ``str()``, ``repr()``, logs or exception messages."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The actual value: pass it to the credential API and nowhere else."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True, slots=True)
class CertificateCredential:
    """A PEM file holding the app's certificate and its private key (optionally encrypted with ``password``)."""

    path: Path
    password: Secret | None = None


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds for connecting and for reading an answer; ``$batch`` of 20 writes gets the longer ``batch_read``."""

    connect: float = 10.0
    read: float = 60.0
    batch_read: float = 120.0


@dataclass(frozen=True, slots=True)
class GraphConfig:
    """Everything the Graph client needs; no ``provisioning`` types.

    ``authority_host`` like ``https://login.microsoftonline.com``; ``graph_endpoint`` the Graph root like
    ``https://graph.microsoft.com`` (v1.0 is appended); ``scope`` the ``.default`` scope of that root;
    exactly one of ``client_secret`` and ``certificate``; ``ca_bundle`` a PEM file of CAs to trust instead
    of the system's (the sandbox's); ``concurrency`` batches in flight, more when they carry only reads
    (:attr:`read_concurrency`; the connection pool is sized for them).
    """

    authority_host: str
    tenant_id: str
    client_id: str
    graph_endpoint: str
    scope: str
    client_secret: Secret | None = None
    certificate: CertificateCredential | None = None
    ca_bundle: Path | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    concurrency: int = 4
    batch_size: int = 20
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    governor: GovernorConfig = field(default_factory=GovernorConfig)
    read_governor: GovernorConfig = READ_GOVERNOR
    api_version: str = "v1.0"
    user_agent: str = "entra-provision/1.0"

    def __post_init__(self) -> None:
        if (self.client_secret is None) == (self.certificate is None):
            raise ValueError("GraphConfig needs exactly one of client_secret and certificate")
        if not 1 <= self.batch_size <= 20:
            raise ValueError(f"batch_size must be between 1 and 20 (the Graph $batch limit), not {self.batch_size}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")

    @property
    def read_concurrency(self) -> int:
        """``$batch`` requests of reads only in flight at once (20 with the default ``concurrency`` of 4): they
        spend no write quota, and a lowered ``concurrency`` lowers them too."""
        return max(self.concurrency, min(READ_CONCURRENCY_MAX, READ_CONCURRENCY_FACTOR * self.concurrency))

    @property
    def authority(self) -> str:
        """The tenant's authority URL, as MSAL takes it."""
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    @property
    def base_url(self) -> str:
        """Graph's versioned root, e.g. ``https://graph.microsoft.com/v1.0``."""
        return f"{self.graph_endpoint.rstrip('/')}/{self.api_version}"

    @property
    def verify(self) -> str | bool:
        """The ``verify`` argument for requests: the CA bundle's path, or True for the system store."""
        return str(self.ca_bundle) if self.ca_bundle else True
