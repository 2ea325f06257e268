"""The Graph client facade: one object per run, owning the session, the token provider and the write governor.

Reads (``get``, paging, users, domains, organization, SKUs) retry transient failures on their own; writes go through
``run_batches`` (or ``request`` for a single one) and come back ambiguous when their outcome is unknown.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import requests

from .auth import Token, TokenProvider
from .batch import IN_CHUNK, BatchRequest, BatchResponse, BatchRunner, in_requests
from .config import GraphConfig
from .errors import GraphError
from .governor import WriteGovernor
from .http import GraphTransport
from .odata import DEFAULT_USER_SELECT, user_path
from .session import make_session

log = logging.getLogger(__name__)

PAGE_SIZE = 999


class GraphClient:
    """Microsoft Graph for one app in one tenant. Use as a context manager, or call :meth:`close`.

    ``sleep``/``clock``/``wall_clock``/``rng`` drive retries and the governor; ``token_clock`` ages tokens (tests).
    """

    def __init__(self, config: GraphConfig, *, session: requests.Session | None = None,
                 tokens: TokenProvider | None = None, governor: WriteGovernor | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 token_clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.tokens = tokens or TokenProvider(config, clock=token_clock)
        self.governor = governor or WriteGovernor(config.governor, clock=clock, sleep=sleep)
        self.read_governor = WriteGovernor(config.read_governor, clock=clock, sleep=sleep)
        self.transport = GraphTransport(config, self.tokens, session=session or make_session(config),
                                        governor=self.governor, read_governor=self.read_governor, sleep=sleep,
                                        clock=clock, wall_clock=wall_clock, rng=rng)
        self.batches = BatchRunner(self.transport)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pool (and let the token prefetch's log lines out if nothing waited for it)."""
        self.tokens.release_log()
        self.transport.session.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tokens ------------------------------------------------------------------------------------------------
    def token(self) -> Token:
        """A valid access token (acquired now if needed); raises :class:`AuthError` with the fix."""
        return self.tokens.token()

    def granted_roles(self) -> list[str]:
        """The application permissions (``roles`` claim) in the current token, sorted."""
        return sorted(str(r) for r in self.token().claims().get("roles", []))

    # -- single requests ---------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                headers: Mapping[str, str] | None = None) -> requests.Response:
        """One request with the retry policy; a write is paced by the governor and never blindly re-sent."""
        if method.upper() not in ("GET", "HEAD") and self.governor is not None:
            self.governor.acquire(1)
        return self.transport.request(method, path, json=json, params=params, headers=headers)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET a JSON resource (retried on throttling and transient failures)."""
        body: dict[str, Any] = self.transport.request("GET", path, params=params).json()
        return body

    def iter_pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Yield each page's ``value`` list, following ``@odata.nextLink`` until it is absent."""
        url: str | None = path
        query: Mapping[str, Any] | None = params
        while url:
            page = self.transport.request("GET", url, params=query).json()
            yield list(page.get("value", []))
            url, query = page.get("@odata.nextLink"), None  # the link carries the whole query (skip token)

    # -- users -------------------------------------------------------------------------------------------------
    def iter_users(self, filter: str | None = None, select: Sequence[str] | None = DEFAULT_USER_SELECT,
                   top: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every user (optionally ``$filter``-ed), ``top`` per page (max 999), with the ``$select``-ed properties."""
        params: dict[str, Any] = {"$top": str(top)}
        if select:
            params["$select"] = ",".join(select)
        if filter:
            params["$filter"] = filter
        for page in self.iter_pages("/users", params):
            yield from page

    def get_user(self, id_or_upn: str, select: Sequence[str] | None = None) -> dict[str, Any]:
        """One user by object id or UPN; raises :class:`NotFoundError` when absent (or not yet replicated)."""
        return self.get(user_path(id_or_upn), {"$select": ",".join(select)} if select else None)

    def find_users_by_upn(self, upns: Iterable[str], select: Sequence[str] = ("id", "userPrincipalName"),
                          ) -> dict[str, dict[str, Any]]:
        """Look many UPNs up at once: ``$filter=userPrincipalName in (...)`` items (15 UPNs each) inside ``$batch``.

        Returns the users found, keyed by lower-cased UPN. Raises the item's :class:`GraphError` if a lookup fails.
        """
        fields = list(dict.fromkeys(["userPrincipalName", *select]))
        reqs = in_requests("", "/users", "userPrincipalName", upns, select=fields, top=IN_CHUNK)
        found: dict[str, dict[str, Any]] = {}
        for answer in self.batches.send_batch(reqs):
            if answer.error is not None:
                raise answer.error
            for user in (answer.body or {}).get("value", []):
                found[str(user.get("userPrincipalName", "")).lower()] = user
        return found

    # -- tenant ------------------------------------------------------------------------------------------------
    def domains(self) -> list[dict[str, Any]]:
        """The tenant's domains (``id``, ``isVerified``, ``isDefault``, ``authenticationType``, ...)."""
        return [d for page in self.iter_pages("/domains") for d in page]

    def organization(self) -> dict[str, Any]:
        """The tenant's organization object (display name, id, verifiedDomains)."""
        values = self.get("/organization").get("value", [])
        return values[0] if values else {}

    def subscribed_skus(self) -> list[dict[str, Any]]:
        """The tenant's licence subscriptions (``skuPartNumber``, ``skuId``, ``prepaidUnits``, ``consumedUnits``)."""
        return [s for page in self.iter_pages("/subscribedSkus") for s in page]

    # -- batches -----------------------------------------------------------------------------------------------
    def run_batches(self, requests_: Iterable[BatchRequest], *, on_send: Callable[[list[BatchRequest]], None],
                    on_result: Callable[[BatchResponse], None],
                    stop: threading.Event | None = None) -> list[BatchRequest]:
        """See :meth:`graph.batch.BatchRunner.run_batches`."""
        return self.batches.run_batches(requests_, on_send=on_send, on_result=on_result, stop=stop)

    def send_batch(self, requests_: Iterable[BatchRequest]) -> list[BatchResponse]:
        """See :meth:`graph.batch.BatchRunner.send_batch`."""
        return self.batches.send_batch(requests_)


__all__ = ["DEFAULT_USER_SELECT", "GraphClient", "GraphError"]
