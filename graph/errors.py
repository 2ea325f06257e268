"""The one exception root of ``graph``: every failure talking to Entra ID or Graph is a :class:`GraphError`."""
from __future__ import annotations


class GraphError(Exception):
    """A non-2xx answer or a transport failure.

    ``status`` is the HTTP status (0 when no answer arrived), ``code`` Graph's error code, ``message`` Graph's
    message, ``request_id`` and ``date`` from ``innerError`` or the response headers, for support tickets.
    """

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


class AuthError(GraphError):
    """The token could not be acquired or was refused; the message names the AADSTS code and the fix."""


class ServiceUnavailableError(GraphError):
    """The service kept failing (5xx, resets, timeouts, throttling) past the retry budget."""
