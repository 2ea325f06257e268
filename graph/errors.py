"""The one exception root of ``graph``: every failure talking to Entra ID or Graph is a :class:`GraphError`.

``str(err)`` is one line a person can act on: status, Graph's error code and message, and the request-id and date
that Microsoft support asks for. No token, secret or Authorization header ever goes into a message.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .retry import parse_retry_after


class GraphError(Exception):
    """A non-2xx answer or a transport failure.

    ``status`` is the HTTP status (0 when no answer arrived), ``code`` Graph's error code, ``message`` Graph's
    message, ``request_id`` and ``date`` from ``innerError`` or the response headers, for support tickets.
    """

    #: True when this failure leaves a write's outcome unknown (it may have taken effect): reconcile, don't re-send.
    ambiguous: bool = False
    #: The call that was answered, "METHOD /path" without the query (queries may hold personal data); "" if unknown.
    call: str = ""
    #: Graph's error ``details`` (JSON objects), set on errors built from an answer's body.
    details: list[Any]

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        request_id: str = "",
        date: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.date = date

    def __str__(self) -> str:
        head = " ".join(p for p in (str(self.status) if self.status else "", self.code) if p)
        text = f"{head}: {self.message}" if head else self.message
        support = ", ".join(p for p in (f"request-id {self.request_id}" if self.request_id else "",
                                         f"date {self.date}" if self.date else "") if p)
        return f"{text} ({support})" if support else text


class AuthError(GraphError):
    """The token could not be acquired or was refused; the message names the AADSTS code and the fix."""

    def __str__(self) -> str:  # the message is already complete and actionable
        return self.message


class TLSVerificationError(AuthError):
    """The server's TLS certificate could not be verified. Fixed in configuration (the CA bundle), hence AuthError."""


class ServiceUnavailableError(GraphError):
    """The service kept failing (5xx, resets, timeouts, throttling) past the retry budget."""


class ThrottledError(ServiceUnavailableError):
    """429 Too Many Requests past the retry budget; ``retry_after`` is the server's last hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class TransportError(ServiceUnavailableError):
    """No (complete) answer: connection refused or reset, timeout. ``ambiguous``: a write may have taken effect."""

    def __init__(self, message: str, *, ambiguous: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.ambiguous = ambiguous


class BadRequestError(GraphError):
    """400: the request was refused as invalid (Request_BadRequest, Request_UnsupportedQuery, ...)."""


class ConflictError(BadRequestError):
    """The object or reference already exists: 400 with ObjectConflict details or "Another object with the same
    value for property userPrincipalName already exists.", 400 "One or more added object references already exist
    for the following modified properties: 'members'.", or 409. ``properties``: the properties Graph names as
    taken (``("userPrincipalName",)``, ``("members",)``; empty when it names none)."""

    def __init__(self, message: str, *, properties: tuple[str, ...] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.properties = properties

    def on(self, prop: str) -> bool:
        """Whether ``prop`` is one of the properties in conflict (compared ignoring case)."""
        return prop.lower() in (p.lower() for p in self.properties)


class UsageLocationError(BadRequestError):
    """400 "License assignment cannot be done for user with invalid usage location.": the user has no
    usageLocation, or (right after it was set) a replica does not know it yet."""


class UnauthorizedError(AuthError):
    """401 from Graph: the token was missing, expired or invalid (InvalidAuthenticationToken)."""


class PermissionDeniedError(AuthError):
    """403: the app lacks an application permission (Authorization_RequestDenied) or a quota was hit."""


class NotFoundError(GraphError):
    """404 Request_ResourceNotFound (also what replication lag looks like right after a create)."""


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """Graph's error envelope, ``{"error": {"code", "message", "innerError": {"request-id", "date"}, "details"}}``,
    read in one place; every field is "" (or empty) when the body does not have it."""

    code: str = ""
    message: str = ""
    request_id: str = ""  # innerError's; the response headers carry it too
    date: str = ""
    details: list[Any] = field(default_factory=list)


def parse_error_body(body: Any) -> ErrorBody:
    """The :class:`ErrorBody` of a parsed answer body (a whole response's or a ``$batch`` item's)."""
    err = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(err, Mapping):
        return ErrorBody()
    inner = err.get("innerError") or err.get("innererror") or {}
    inner = inner if isinstance(inner, Mapping) else {}
    details = err.get("details") or []
    return ErrorBody(str(err.get("code") or ""), str(err.get("message") or ""), str(inner.get("request-id") or ""),
                     str(inner.get("date") or ""), details if isinstance(details, list) else [details])


# the only texts read to tell what kind of refusal an answer is (graph-facts 1.8, 9.1, 9.2): here, once
_CONFLICT_PROPERTY = re.compile(r"another object with the same value for property (\w+)", re.IGNORECASE)
_REFERENCES_EXIST = re.compile(r"added object references already exist for the following modified properties: "
                               r"'?(\w+)", re.IGNORECASE)
_USAGE_LOCATION = "invalid usage location"


def _conflicting(message: str, details: list[Any]) -> tuple[str, ...] | None:
    """The properties an answer names as taken (ObjectConflict details, or the text), None when it names no
    conflict."""
    found = [str(d.get("target") or "") for d in details
             if isinstance(d, Mapping) and d.get("code") == "ObjectConflict"]
    text = _CONFLICT_PROPERTY.search(message) or _REFERENCES_EXIST.search(message)
    if text is None and not found:
        return None
    return tuple(dict.fromkeys(p for p in (*found, text.group(1) if text else "") if p))


def _error_class(status: int, message: str, conflicting: tuple[str, ...] | None) -> type[GraphError]:
    if status == 400:
        if conflicting is not None:
            return ConflictError
        return UsageLocationError if _USAGE_LOCATION in message.lower() else BadRequestError
    return {401: UnauthorizedError, 403: PermissionDeniedError, 404: NotFoundError, 409: ConflictError,
            429: ThrottledError}.get(status) or (ServiceUnavailableError if status >= 500 else GraphError)


def _lower(headers: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def error_from_parts(status: int, headers: Mapping[str, Any] | None, body: Any) -> GraphError:
    """Build the right :class:`GraphError` subclass from a status, headers and a (parsed or raw) error body.

    Works for whole responses and for ``$batch`` items alike.
    """
    hdrs = _lower(headers)
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body or b"null")
        except ValueError:
            body = {"error": {"message": (body.decode("utf-8", "replace") if isinstance(body, bytes)
                                          else body)[:300]}}
    parsed = parse_error_body(body)
    message = parsed.message.strip() or _default_message(status)
    request_id = parsed.request_id or hdrs.get("request-id") or hdrs.get("client-request-id") or ""
    conflicting = _conflicting(message, parsed.details) if status in (400, 409) else None
    cls = _error_class(status, message, conflicting)
    kw: dict[str, Any] = dict(status=status, code=parsed.code, request_id=request_id,
                              date=parsed.date or hdrs.get("date") or "")
    if cls is ThrottledError:
        kw["retry_after"] = parse_retry_after(hdrs.get("retry-after"))
    elif cls is ConflictError:
        kw["properties"] = conflicting or ()
    error = cls(message, **kw)
    error.details = parsed.details
    return error


def error_from_response(response: Any) -> GraphError:
    """A :class:`GraphError` for a non-2xx ``requests.Response``."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.content
    return error_from_parts(response.status_code, response.headers, body)


def _default_message(status: int) -> str:
    return {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
            429: "Too many requests", 500: "Internal server error", 502: "Bad gateway",
            503: "Service unavailable", 504: "Gateway timeout"}.get(status, f"HTTP {status}")
