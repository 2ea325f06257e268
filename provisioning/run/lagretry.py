"""Send idempotent writes (follow-ups, update PATCHes) through ``$batch``, retrying through replication lag.

Right after a user is created, Graph's replicas may not know it yet: ``members/$ref``, ``assignLicense``,
``manager/$ref`` and ``PATCH`` answer 404 ``Request_ResourceNotFound``, and ``assignLicense`` answers 400 "License
assignment cannot be done for user with invalid usage location." (graph-facts 5, 9). These are not transient to
the graph client (it returns them as final answers), so they are retried here, with the backoff Microsoft
suggests: 1, 2, 4, 8, 16 s, within a bounded budget (60 s from an item's first send by default).

Every operation sent here is idempotent (adding a member twice answers "already a member", re-assigning a held
licence or re-setting the same manager succeeds, a PATCH sets the same values), so an answer that never arrived
(``ambiguous``) is simply sent again. Throttling (429 with Retry-After) is the graph client's job.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graph.batch import BatchRequest
from graph.errors import (
    AuthError,
    GraphError,
    NotFoundError,
    ServiceUnavailableError,
    UsageLocationError,
    parse_error_body,
)
from provisioning.run.permissions import explain_denied

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
BUDGET_S = 60.0


@dataclass(frozen=True, slots=True)
class Op:
    """One request to send: ``key`` identifies it to the caller. ``lag_retry`` False: a 404 or an answer that never
    arrived is final at once (a bulk request the caller splits up instead of retrying it whole)."""

    key: Hashable
    method: str
    url: str
    body: Mapping[str, Any] | None = field(default=None)
    lag_retry: bool = True


@dataclass(frozen=True, slots=True)
class Answer:
    """The final answer for one :class:`Op`. ``ok`` None: no final answer (the run stopped, or Graph stayed
    unavailable): the operation is still to do."""

    ok: bool | None
    status: int = 0
    code: str = ""
    message: str = ""
    request_id: str = ""
    attempts: int = 0
    body: Mapping[str, Any] | None = None


def error_fields(resp: Any) -> tuple[str, str, str]:
    """Graph's error code, message and request-id from a batch response."""
    return error_parts(getattr(resp, "body", None), getattr(resp, "error", None), getattr(resp, "headers", None))


def error_parts(body: Any, error: GraphError | None, headers: Mapping[str, Any] | None) -> tuple[str, str, str]:
    """Code, message and request-id of a Graph answer: from the error, else the body's envelope, else the headers."""
    code = getattr(error, "code", "") or ""
    message = getattr(error, "message", "") or ""
    request_id = getattr(error, "request_id", "") or ""
    parsed = parse_error_body(body)
    code, message, request_id = code or parsed.code, message or parsed.message, request_id or parsed.request_id
    if not request_id:
        lower = {str(k).lower(): v for k, v in (headers or {}).items()}
        request_id = str(lower.get("request-id", "") or "")
    return code, message, request_id


def is_lag(error: GraphError | None) -> bool:
    """True for the answers replication lag gives: 404 Request_ResourceNotFound, "invalid usage location"."""
    return isinstance(error, (NotFoundError, UsageLocationError))


class LagRetrySender:
    """Sends :class:`Op` lists; ``done(key, answer)`` is called once per op with its final answer.

    ``accept(op, error)`` may declare a refusal a success (e.g. "already a member").
    """

    def __init__(self, client: GraphClient, *, stop: threading.Event | None = None, delays: Sequence[float] = DELAYS,
                 budget_s: float = BUDGET_S, accept: Callable[[Op, GraphError | None], bool] | None = None,
                 sleep: Callable[[float], Any] | None = None, clock: Callable[[], float] = time.monotonic,
                 guard: Callable[[], None] | None = None) -> None:
        self.client = client
        # ``sleep`` and ``clock`` (seconds) let tests spend the backoff without waiting; by default the waits are
        # on ``stop``, so that stopping the run ends them at once
        self.sleep = sleep
        self.clock = clock
        self.guard = guard  # raises (and so keeps the chunk from leaving) when the run can no longer record it
        self.stop = stop or threading.Event()
        self.delays = tuple(delays)
        self.budget_s = budget_s
        self.accept = accept
        self.fatal: str = ""

    def send(self, ops: Sequence[Op], done: Callable[[Hashable, Answer], None]) -> None:
        """Send ``ops`` until each has a final answer, the budget is spent, or the run must stop."""

        by_id = {str(i): op for i, op in enumerate(ops)}
        attempts = {i: 0 for i in by_id}
        first: dict[str, float] = {}
        due = {i: 0.0 for i in by_id}
        lock = threading.Lock()

        def on_send(chunk: Sequence[Any]) -> None:
            if self.guard is not None:
                self.guard()
            now = self.clock()
            with lock:
                for r in chunk:
                    attempts[r.id] += 1
                    first.setdefault(r.id, now)

        def on_result(resp: Any) -> None:
            i = str(resp.id)
            op = by_id[i]
            status = int(getattr(resp, "status", 0) or 0)
            code, message, rid = error_fields(resp)
            with lock:
                n = attempts[i]
            if 200 <= status < 300 and getattr(resp, "error", None) is None:
                self._final(due, i, op, done, Answer(True, status, "", "", rid, n, getattr(resp, "body", None)))
                return
            if self.accept is not None and self.accept(op, getattr(resp, "error", None)):
                self._final(due, i, op, done, Answer(True, status, code, message, rid, n))
                return
            retry = op.lag_retry and (getattr(resp, "ambiguous", False) or is_lag(getattr(resp, "error", None)))
            if retry:
                delay = self.delays[min(n - 1, len(self.delays) - 1)] if self.delays else 0.0
                now = self.clock()
                if now + delay - first.get(i, now) <= self.budget_s:
                    log.info("%s %s: %s %s, again in %.0f s (replication lag)", op.method, op.url, status,
                             code or "no answer", delay)
                    with lock:
                        due[i] = now + delay
                    return
                message = f"{message} (still refused after {n} attempts over {self.budget_s:.0f} s)"
            elif status in (0, 401, 429) or status >= 500:
                self._final(due, i, op, done, Answer(None, status, code, message or f"HTTP {status}", rid, n))
                return
            elif status == 403:  # a missing permission: say which, so the administrator can grant it and retry
                message = explain_denied(op.method, op.url, f"403 {code}: {message}".replace(" : ", ": "),
                                         password=isinstance(op.body, Mapping) and "passwordProfile" in op.body)
            self._final(due, i, op, done, Answer(False, status, code, message or f"HTTP {status}", rid, n))

        while due and not self.stop.is_set():
            now = self.clock()
            ready = sorted((i for i, t in due.items() if t <= now), key=int)
            if not ready:
                wait = max(min(due.values()) - now, 0.01)
                if self.sleep is None:
                    self.stop.wait(wait)
                else:
                    self.sleep(wait)
                continue
            for i in ready:
                due[i] = float("inf")  # in flight: on_result gives it a time again, or removes it
            requests = [BatchRequest(id=i, method=by_id[i].method, url=by_id[i].url,
                                     body=dict(body) if (body := by_id[i].body) is not None else None,
                                     headers={"Content-Type": "application/json"} if by_id[i].body is not None
                                     else None) for i in ready]
            try:
                left = self.client.run_batches(requests, on_send=on_send, on_result=on_result, stop=self.stop)
            except (AuthError, ServiceUnavailableError) as exc:
                self.fatal = str(exc)
                log.error("follow-up writes stopped: %s", exc)
                break
            for r in left or ():  # stopped while these waited out a 429: not executed, still to do
                due[r.id] = 0.0
            stuck = [i for i, t in due.items() if t == float("inf")]
            for i in stuck:  # no answer at all for these (should not happen): leave them to do
                due.pop(i, None)
                done(by_id[i].key, Answer(None, 0, "", "no answer", "", attempts[i]))
        for i in list(due):  # stopped: what is left is still to do
            done(by_id[i].key, Answer(None, 0, "", "not sent: the run stopped", "", attempts[i]))

    @staticmethod
    def _final(due: dict[str, float], i: str, op: Op, done: Callable[[Hashable, Answer], None],
               answer: Answer) -> None:
        due.pop(i, None)
        done(op.key, answer)
