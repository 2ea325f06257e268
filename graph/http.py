"""The HTTP core: one pooled ``requests.Session``, a bearer token, a ``client-request-id`` and timeouts on every
call, non-2xx answers turned into :class:`GraphError`, and the retry loop for single requests.

Reads are retried on 429/5xx, resets and timeouts. A write is retried only when Graph certainly did not execute it
(429, 401 with a renewed token, a connection that never opened); any other failure of a write raises
:class:`TransportError` or :class:`ServiceUnavailableError` with ``ambiguous`` set, and the caller reconciles.
The ``Authorization`` header is never logged.
"""
from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from .auth import TokenProvider, _tls_error
from .config import GraphConfig
from .errors import GraphError, ServiceUnavailableError, ThrottledError, TransportError, error_from_response
from .governor import WriteGovernor
from .retry import RETRYABLE_READ_STATUSES, header, is_read
from .session import make_session

log = logging.getLogger(__name__)


class GraphTransport:
    """Sends requests to Graph with auth, ids, timeouts and the retry policy. Thread-safe.

    ``sleep``/``clock`` (monotonic) and ``wall_clock`` (epoch, for HTTP-date Retry-After) and ``rng`` are
    injectable so tests take no real time.
    """

    def __init__(self, config: GraphConfig, tokens: TokenProvider, *, session: requests.Session | None = None,
                 governor: WriteGovernor | None = None, read_governor: WriteGovernor | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.config = config
        self.tokens = tokens
        self.session = session or make_session(config)
        self.governor = governor
        self.read_governor = read_governor  # the resource-unit bucket, steered by the answers to reads
        self.sleep = sleep
        self.clock = clock
        self.wall_clock = wall_clock
        self.rng = rng or random.Random()

    def url(self, path_or_url: str) -> str:
        """An absolute URL for ``/users``-style paths (relative to the versioned root); absolute URLs pass through."""
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        return self.config.base_url + ("" if path_or_url.startswith("/") else "/") + path_or_url

    def check_same_origin(self, url: str) -> None:
        """Refuse to send the bearer token anywhere but the configured Graph root (e.g. a forged nextLink)."""
        if not url.startswith(self.config.graph_endpoint.rstrip("/") + "/"):
            raise GraphError(f"refusing to follow a link outside {self.config.graph_endpoint}: {url[:100]}")

    def send_once(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                  json: Any = None, headers: Mapping[str, str] | None = None,
                  read_timeout: float | None = None) -> requests.Response:
        """One attempt, any status returned as is; raises :class:`TransportError` when no answer arrived."""
        full = self.url(url)
        self.check_same_origin(full)
        token = self.tokens.token()
        request_id = str(uuid.uuid4())
        hdrs = {"Authorization": f"Bearer {token.value}", "client-request-id": request_id,
                "return-client-request-id": "true"}
        if json is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        timeout = (self.config.timeouts.connect, read_timeout or self.config.timeouts.read)
        started = self.clock()
        try:
            resp = self.session.request(method, full, params=params, json=json, headers=hdrs, timeout=timeout)
        except requests.exceptions.SSLError as exc:
            raise _tls_error(self.config.graph_endpoint, exc) from None
        except requests.exceptions.ConnectTimeout:
            raise TransportError(f"{method} {_path(full)}: could not connect within {timeout[0]:g} s",
                                 request_id=request_id, ambiguous=False) from None
        except requests.exceptions.ConnectionError as exc:
            # Refused before sending is safe; a reset after sending leaves a write's outcome unknown.
            never_sent = _never_connected(exc)
            raise TransportError(f"{method} {_path(full)}: connection failed ({_reason(exc)})",
                                 request_id=request_id, ambiguous=not never_sent and not is_read(method)) from None
        except requests.exceptions.Timeout:
            raise TransportError(f"{method} {_path(full)}: no answer within {timeout[1]:g} s",
                                 request_id=request_id, ambiguous=not is_read(method)) from None
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"{method} {_path(full)}: {_reason(exc)}", request_id=request_id,
                                 ambiguous=not is_read(method)) from None
        resp.token_used = token.value  # type: ignore[attr-defined]  # lets callers invalidate exactly this token
        log.debug("%s %s -> %s in %.0f ms (request-id %s)", method, _path(full), resp.status_code,
                  (self.clock() - started) * 1000, header(resp.headers, "request-id") or request_id)
        if not full.split("?", 1)[0].endswith("/$batch"):  # a $batch's items are told by graph.batch, one by one
            governor = self.read_governor if is_read(method) else self.governor
            if governor is not None:
                governor.on_answers([(resp.status_code, dict(resp.headers))])
        return resp

    def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                headers: Mapping[str, str] | None = None, read_timeout: float | None = None) -> requests.Response:
        """Send with retries; return the 2xx response or raise the matching :class:`GraphError`.

        Reads retry 429/5xx/timeouts/resets under the policy. Writes retry only 429 and 401 (not executed);
        anything else that leaves a write's outcome unknown raises with ``ambiguous=True``.
        """
        policy = self.config.retry
        read = is_read(method)
        started = self.clock()
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            try:
                resp = self.send_once(method, url, params=params, json=json, headers=headers,
                                      read_timeout=read_timeout)
            except TransportError as exc:
                if exc.ambiguous:
                    raise
                delay = policy.next_delay(attempt, None, now=self.wall_clock(), rng=self.rng)
                if not policy.allows(attempt, self.clock() - started, delay):
                    raise TransportError(f"{exc.message} (gave up after {attempt} attempts)",
                                         request_id=exc.request_id) from None
                log.info("%s; retrying in %.1f s", exc.message, delay)
                self.sleep(delay)
                continue
            if resp.status_code < 300:
                return resp
            if resp.status_code == 401 and not renewed:
                # An expired or revoked token: Graph did not execute the request; renew once and re-send.
                renewed = True
                self.tokens.invalidate(getattr(resp, "token_used", None))
                continue
            err = error_from_response(resp)
            retryable = resp.status_code == 429 or (read and resp.status_code in RETRYABLE_READ_STATUSES)
            err.call = f"{method.upper()} {_path(self.url(url))}"
            if not retryable:
                if resp.status_code >= 500 and not read:
                    err.ambiguous = True  # the write may have been executed before the failure
                raise err
            delay = policy.next_delay(attempt, resp, now=self.wall_clock(), rng=self.rng)
            governor = self.read_governor if read else self.governor
            if resp.status_code == 429 and governor is not None:
                # Graph did not execute it and is answering: wait as it says, as often as it says (a tight quota
                # is slow, not fatal); the governor was told in send_once and paces the other senders too.
                log.info("%s %s answered 429; retrying in %.1f s", method, _path(self.url(url)), delay)
                self.sleep(delay)
                if not read:  # a write is paced by the governor (GraphClient.request), its retry too
                    governor.acquire(1)
                continue
            if not policy.allows(attempt, self.clock() - started, delay):
                if isinstance(err, (ThrottledError, ServiceUnavailableError)):
                    err.message = f"{err.message} (gave up after {attempt} attempts)"
                    raise err
                raise ServiceUnavailableError(f"{err.message} (gave up after {attempt} attempts)",
                                              status=err.status, code=err.code, request_id=err.request_id,
                                              date=err.date)
            log.info("%s %s answered %s; retrying in %.1f s", method, _path(self.url(url)), resp.status_code, delay)
            self.sleep(delay)


def _path(url: str) -> str:
    """The URL without scheme, host or query (queries may hold UPNs: personal data stays out of logs)."""
    rest = url.split("://", 1)[-1]
    return "/" + rest.split("/", 1)[1].split("?", 1)[0] if "/" in rest else "/"


def _never_connected(exc: BaseException) -> bool:
    """Whether a connection failure came before anything was sent: the connection could not be made (urllib3's
    NewConnectionError, or a refusal), found among the exceptions ``exc`` wraps (args, ``reason``, causes)."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (NewConnectionError, ConnectionRefusedError)):
            return True
        todo.extend(x for x in (*e.args, getattr(e, "reason", None), e.__cause__, e.__context__)
                    if isinstance(x, BaseException))
    return False


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection reset", "Connection aborted", "Connection refused", "RemoteDisconnected",
                   "Read timed out", "IncompleteRead", "BadStatusLine"):
        if marker in text:
            return marker
    return type(exc).__name__
