"""Transport-independent request/response types and Graph's error envelope (graph-facts 1.7).

Handlers see a :class:`Request` and return a :class:`Response`, whether the call came over HTTP or as a
``$batch`` item, so batching reuses every handler unchanged.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from re import Pattern
from typing import Any

GRAPH_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata"

# Messages pinned here so tests and handlers share one spelling.
MSG_NOT_FOUND = "Resource '{0}' does not exist or one of its queried reference-property objects are not present."
MSG_DENIED = "Insufficient privileges to complete the operation."
MSG_BAD_JSON = ("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
                "valid JSON format.")
MSG_SEGMENT = "Resource not found for the segment '{0}'."
# json-batching page, example item 4 (the older "...for the request uri." is not what Graph answers today)
MSG_METHOD = "Specified HTTP method is not allowed for the request target."


@dataclass
class Request:
    """One Graph request (HTTP or batch item). ``path`` is percent-decoded, without the query."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    raw_body: bytes = b""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    claims: dict[str, Any] = field(default_factory=dict)
    in_batch: bool = False

    @property
    def client_request_id(self) -> str:
        """The client's ``client-request-id`` or, when absent, the request id (graph-facts 1.6)."""
        return self.headers.get("client-request-id") or self.request_id


@dataclass
class Response:
    """A handler's answer; ``body`` is JSON-serialisable or None (204)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def graph_date() -> str:
    """``innerError.date``: ISO-8601 without timezone or fraction."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def error(req: Request, status: int, code: str, message: str, *, details: list[dict[str, Any]] | None = None,
          inner: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Response:
    """A Graph error envelope ``{"error": {code, message, [details], innerError}}``."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    inner_error = dict(inner or {})
    inner_error.update({"date": graph_date(), "request-id": req.request_id,
                        "client-request-id": req.client_request_id})
    body["innerError"] = inner_error
    return Response(status, {"error": body}, dict(headers or {}))


def not_found(req: Request, key: str) -> Response:
    """404 Request_ResourceNotFound for ``key``."""
    return error(req, 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(key))


Handler = Callable[["Request", "Any", "tuple[str, ...]"], Response]


@dataclass(frozen=True)
class Route:
    """``method`` + regex on the path (after ``/v1.0``) -> handler, with the app roles that allow it."""

    method: str
    pattern: Pattern[str]
    handler: Callable[..., Response]
    roles: frozenset[str]


class Router:
    """A small regex router; resource modules add their routes with :meth:`add`."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, roles: tuple[str, ...] | list[str],
            handler: Callable[..., Response]) -> None:
        """Register ``handler`` for ``method`` and a full-match ``pattern``."""
        self.routes.append(Route(method.upper(), re.compile(pattern), handler, frozenset(roles)))

    def unresolved_segment(self, path: str) -> str:
        """The segment Graph names in "Resource not found for the segment '...'": the first one when no resource
        starts with it (``/v1.0/users`` inside a batch item names 'v1.0'), otherwise the last one."""
        segments = path.strip("/").split("/")
        first = {r.pattern.pattern.lstrip("/").split("/")[0].split("(")[0] for r in self.routes}
        return segments[0] if segments[0] not in first else segments[-1]

    def match(self, method: str, path: str) -> tuple[Route | None, tuple[str, ...], bool]:
        """(route, groups, path_known): ``path_known`` is True when only the method did not match."""
        known = False
        for route in self.routes:
            m = route.pattern.fullmatch(path)
            if m:
                if route.method == method.upper():
                    return route, m.groups(), True
                known = True
        return None, (), known
