"""JSON batching (``POST /$batch``): up to 20 requests per chunk, several chunks in flight, one final answer each.

Graph evaluates every item of a batch on its own (graph-facts 4): the outer answer is 200 while items inside may be
429, 5xx or errors, in any order. :class:`BatchRunner` correlates items by id and decides per item:

* 2xx and 4xx (other than 429) are final;
* 429: Graph did not execute it; re-queued after its own ``Retry-After``, as often as Graph answers 429 (a tight
  quota is slow, not fatal); the governors hold every chunk back meanwhile and steer by these answers;
* 5xx, or the whole batch lost (timeout, reset, outer 5xx): reads are retried with backoff; writes come back
  ``ambiguous=True`` and are never re-sent here: the caller looks them up before deciding.

``on_send`` and ``on_result`` are called only from the thread that called :meth:`BatchRunner.run_batches`, so they
may write to a SQLite connection owned by that thread. Worker threads only do the HTTP exchange.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import requests

from .errors import AuthError, GraphError, ThrottledError, TransportError, error_from_parts, error_from_response
from .http import GraphTransport
from .odata import in_, query_string
from .retry import RETRYABLE_READ_STATUSES, header, is_read

log = logging.getLogger(__name__)
MAX_BATCH = 20
#: Values per ``$filter=prop in (...)``: the directory counts each value as one of at most 15 ``or`` clauses.
IN_CHUNK = 15


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request inside a ``$batch``; ``url`` is relative to the version root (``/users``)."""

    id: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None

    @property
    def is_write(self) -> bool:
        """True for POST/PATCH/PUT/DELETE: one write of the quota, and not safely repeatable."""
        return not is_read(self.method)

    def to_json(self) -> dict[str, Any]:
        """The item as Graph's ``$batch`` body wants it (a body needs a Content-Type header)."""
        item: dict[str, Any] = {"id": self.id, "method": self.method.upper(), "url": self.url}
        headers = dict(self.headers or {})
        if self.body is not None:
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
            item["body"] = self.body
        if headers:
            item["headers"] = headers
        return item


@dataclass(frozen=True, slots=True)
class BatchResponse:
    """The final answer for one :class:`BatchRequest`.

    ``status`` 0 means no answer arrived. ``error`` is set for every non-2xx outcome. ``ambiguous``: a write whose
    outcome is unknown; the caller must reconcile (look the object up) before sending it again.
    """

    id: str
    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None
    attempts: int
    error: GraphError | None = None
    ambiguous: bool = False

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300


#: How often one item may be re-sent after a 401. A revoked credential fails at token acquisition (AuthError, final
#: at once); a 401 with a token just acquired means Graph rejects tokens for this app, so the item ends there.
MAX_TOKEN_RENEWALS = 2


@dataclass(eq=False)
class _Item:
    req: BatchRequest
    attempts: int = 0
    first_sent: float | None = None
    renewals: int = 0  # 401s answered by renewing the token, counted apart from throttling/transient attempts


@dataclass(frozen=True)
class _Outcome:
    response: requests.Response | None = None
    error: GraphError | None = None


@dataclass
class _State:
    source: Iterator[BatchRequest]
    exhausted: bool = False
    retry: list[tuple[float, int, _Item]] = field(default_factory=list)  # heap of (ready_at, seq, item)
    held: list[_Item] | None = None  # a chunk the governor did not let out yet
    pending: _Item | None = None  # taken from the source, waiting for room in a chunk
    seq: Iterator[int] = field(default_factory=itertools.count)


def in_requests(prefix: str, path: str, prop: str, values: Iterable[str], *, select: Sequence[str],
                top: int = 999) -> list[BatchRequest]:
    """``GET path?$filter=prop in (...)`` items of :data:`IN_CHUNK` distinct values each (empty values dropped),
    with ids ``prefix0``, ``prefix1``, ... in the values' order: many lookups packed into ``$batch`` requests."""
    unique = list(dict.fromkeys(v for v in values if v))
    return [BatchRequest(f"{prefix}{n}", "GET", f"{path}?" + query_string({
        "$filter": in_(prop, unique[i:i + IN_CHUNK]), "$select": ",".join(select), "$top": str(top)}))
        for n, i in enumerate(range(0, len(unique), IN_CHUNK))]


class BatchRunner:
    """Runs :class:`BatchRequest` streams through ``$batch`` over a :class:`graph.http.GraphTransport`."""

    def __init__(self, transport: GraphTransport) -> None:
        self.t = transport
        self.config = transport.config

    # -- the loop ---------------------------------------------------------------------------------------------
    def run_batches(self, requests_: Iterable[BatchRequest], *, on_send: Callable[[list[BatchRequest]], None],
                    on_result: Callable[[BatchResponse], None], stop: threading.Event | None = None,
                    concurrency: int | None = None) -> list[BatchRequest]:
        """Send every request, ``on_send(chunk)`` right before each chunk leaves, ``on_result`` once per request.

        ``requests_`` may be a lazy iterable; it is consumed as chunks go out. When ``stop`` is set, no new chunk is
        sent, in-flight answers are awaited and handed to ``on_result``; the return value lists the requests that
        were sent but are waiting for a retry (their earlier attempt was 429 or a failed read), which got no
        ``on_result``. Items never taken from ``requests_`` are simply left in it. Without ``stop`` it returns [].
        ``concurrency``: chunks in flight at most (default: the configured ``concurrency``).
        An exception from ``on_send`` refuses its chunk (it does not leave) and stops the run like ``stop``: the
        answers in flight still reach ``on_result``, then the exception is raised.
        """
        state = _State(source=iter(requests_))
        in_flight: dict[Future[_Outcome], list[_Item]] = {}
        refused: Exception | None = None
        limit = concurrency or self.config.concurrency
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="graph-batch") as pool:
            while True:
                stopping = refused is not None or (stop is not None and stop.is_set())
                wait_s = 0.0
                while not stopping and len(in_flight) < limit:
                    chunk, wait_s = self._next_chunk(state)
                    if not chunk:
                        break
                    try:
                        on_send([i.req for i in chunk])
                    except Exception as exc:  # noqa: BLE001 - re-raised below, once the answers in flight are in
                        refused, stopping = exc, True
                        break
                    now = self.t.clock()
                    for item in chunk:
                        item.attempts += 1
                        item.first_sent = now if item.first_sent is None else item.first_sent
                    in_flight[pool.submit(self._post, chunk)] = chunk
                if not in_flight:
                    if stopping or (state.exhausted and not state.retry and not state.held):
                        break
                    wait_s = wait_s or self._until_next_retry(state)
                    self.t.sleep(min(wait_s, 0.5) if stop is not None else wait_s)
                    continue
                timeout = (wait_s or self._until_next_retry(state) or None) if not stopping else None
                done, _ = wait(list(in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
                for fut in done:
                    self._handle(in_flight.pop(fut), fut.result(), state, on_result)
        if refused is not None:
            raise refused
        left = [item.req for _, _, item in sorted(state.retry, key=lambda e: (e[0], e[1]))]
        left += [item.req for item in state.held or () if item.attempts]
        return left

    def send_batch(self, requests_: Iterable[BatchRequest]) -> list[BatchResponse]:
        """Run a few requests (any number; chunked by 20) and return their final answers in the given order. Reads
        only (pre-flight lookups) go ``read_concurrency`` chunks at a time: they wait on nobody's quota but Graph's
        resource units, which the read governor follows."""
        reqs = list(requests_)
        answers: dict[str, BatchResponse] = {}
        writes = any(r.is_write for r in reqs)
        limit = self.config.concurrency if writes else self.config.read_concurrency
        self.run_batches(reqs, on_send=lambda chunk: None, on_result=lambda r: answers.__setitem__(r.id, r),
                         concurrency=limit)
        return [answers[r.id] for r in reqs]

    # -- chunking and pacing -----------------------------------------------------------------------------------
    def _next_chunk(self, state: _State) -> tuple[list[_Item], float]:
        """The next chunk to send, or ([], seconds to wait) when nothing may leave yet."""
        chunk = state.held or []
        state.held = None
        writes_gov, reads_gov = self.t.governor, getattr(self.t, "read_governor", None)
        if not chunk:
            now = self.t.clock()
            size = self.config.batch_size
            # what Graph's buckets can admit now: no 20-item batch into a 5-token bucket
            max_writes = writes_gov.chunk_size(size) if writes_gov is not None else size
            max_reads = reads_gov.chunk_size(size) if reads_gov is not None else size
            counts = [0, 0]  # reads, writes

            def fits(req: BatchRequest) -> bool:
                return counts[1] < max_writes if req.is_write else counts[0] < max_reads

            def add(item: _Item) -> None:
                chunk.append(item)
                counts[item.req.is_write] += 1

            while state.retry and len(chunk) < size and state.retry[0][0] <= now and fits(state.retry[0][2].req):
                add(heapq.heappop(state.retry)[2])
            while not state.exhausted and len(chunk) < size:
                if state.pending is not None:
                    if not fits(state.pending.req):
                        break
                    item, state.pending = state.pending, None
                    add(item)
                    continue
                try:
                    req = next(state.source)
                except StopIteration:
                    state.exhausted = True
                    break
                state.pending = _Item(req)
            ids = [i.req.id for i in chunk]
            if len(set(ids)) != len(ids):
                raise ValueError(f"duplicate request ids in one batch: {sorted(ids)}")
        if not chunk:
            return [], 0.0
        writes = sum(1 for i in chunk if i.req.is_write)
        reads = len(chunk) - writes
        wait_s = 0.0
        if reads and reads_gov is not None:
            wait_s = reads_gov.wait_s(reads)
        if not wait_s and writes and writes_gov is not None:
            wait_s = writes_gov.try_acquire(writes)
        if not wait_s and reads and reads_gov is not None:
            wait_s = reads_gov.try_acquire(reads)
            if wait_s and writes and writes_gov is not None:
                writes_gov.release(writes)
        if wait_s > 0:
            state.held = chunk
            return [], wait_s
        return chunk, 0.0

    def _until_next_retry(self, state: _State) -> float:
        if not state.retry:
            return 0.0
        return max(0.001, state.retry[0][0] - self.t.clock())

    # -- one HTTP exchange (worker thread) ----------------------------------------------------------------------
    def _post(self, chunk: list[_Item]) -> _Outcome:
        body = {"requests": [i.req.to_json() for i in chunk]}
        try:
            return _Outcome(response=self.t.send_once("POST", "/$batch", json=body,
                                                      read_timeout=self.config.timeouts.batch_read))
        except GraphError as exc:
            return _Outcome(error=exc)

    # -- deciding (caller's thread) ------------------------------------------------------------------------------
    def _handle(self, chunk: list[_Item], outcome: _Outcome, state: _State,
                on_result: Callable[[BatchResponse], None]) -> None:
        resp = outcome.response
        self._feedback(chunk, resp)
        if resp is None:
            err = outcome.error or TransportError("the batch got no answer", ambiguous=True)
            if isinstance(err, AuthError):
                # The token (or TLS) was refused before the batch left: nothing was executed, and backing off
                # will not bring back a revoked secret. Final at once, so the caller can stop the run.
                for item in chunk:
                    on_result(self._final(item, err.status, {}, None, err))
                return
            for item in chunk:
                self._lost(item, err, None, state, on_result, maybe_executed=bool(err.ambiguous))
            return
        if resp.status_code == 401:
            self.t.tokens.invalidate(getattr(resp, "token_used", None))
            for item in chunk:  # not executed: re-send with a fresh token (a token can expire more than once)
                if item.renewals < MAX_TOKEN_RENEWALS:
                    item.renewals += 1
                    self._requeue(item, 0.0, state)
                else:
                    on_result(self._final(item, 401, dict(resp.headers), None, error_from_response(resp)))
            return
        if resp.status_code != 200:
            err = error_from_response(resp)
            for item in chunk:
                if resp.status_code == 429:  # the whole batch refused: nothing executed
                    self._throttled(item, dict(resp.headers), state)
                elif resp.status_code >= 500:
                    self._lost(item, err, dict(resp.headers), state, on_result, maybe_executed=True)
                else:
                    on_result(self._final(item, resp.status_code, dict(resp.headers), None, err))
            return
        try:
            answers = {str(a.get("id")): a for a in resp.json().get("responses", [])}
        except (ValueError, AttributeError):
            answers = {}
        for item in chunk:
            ans = answers.get(item.req.id)
            if ans is None:
                lost = TransportError(f"the $batch answer had no response for item {item.req.id}",
                                      request_id=header(resp.headers, "request-id") or "")
                self._lost(item, lost, None, state, on_result, maybe_executed=True)
                continue
            self._item(item, ans, resp, state, on_result)

    def _item(self, item: _Item, ans: dict[str, Any], resp: requests.Response, state: _State,
              on_result: Callable[[BatchResponse], None]) -> None:
        status = int(ans.get("status") or 0)
        headers = {str(k): str(v) for k, v in (ans.get("headers") or {}).items()}
        body = ans.get("body") if isinstance(ans.get("body"), dict) else None
        if "request-id" not in {k.lower() for k in headers} and header(resp.headers, "request-id"):
            # items carry no request-id of their own: the $batch's is what Microsoft support can trace
            headers["request-id"] = header(resp.headers, "request-id") or ""
        if 200 <= status < 300:
            on_result(self._final(item, status, headers, body, None))
            return
        err = error_from_parts(status, headers, ans.get("body"))
        err.call = f"{item.req.method.upper()} {item.req.url.split('?', 1)[0]}"
        if status == 429:
            self._throttled(item, headers, state)
        elif status >= 500 or status == 0:
            self._lost(item, err, headers, state, on_result, maybe_executed=True)
        else:
            on_result(self._final(item, status, headers, body, err))

    def _throttled(self, item: _Item, headers: dict[str, str], state: _State) -> None:
        # Graph did not execute it and is answering: a tight quota makes the run slow, never failed. The
        # governor (told in _feedback) holds every chunk back until Graph said it may go again.
        delay = self.config.retry.next_delay(item.attempts, headers, now=self.t.wall_clock(), rng=self.t.rng)
        self._requeue(item, delay, state)

    def _feedback(self, chunk: list[_Item], resp: requests.Response | None) -> None:
        """Tell the governors how Graph answered the writes and the reads of one chunk."""
        if resp is None:
            answers: list[tuple[int, dict[str, str]]] = [(0, {})] * len(chunk)
        elif resp.status_code != 200:
            answers = [(resp.status_code, dict(resp.headers))] * len(chunk)
        else:
            try:
                by_id = {str(a.get("id")): a for a in resp.json().get("responses", [])}
            except (ValueError, AttributeError):
                by_id = {}
            answers = []
            for item in chunk:
                ans = by_id.get(item.req.id) or {}
                try:
                    status = int(ans.get("status") or 0)
                except (TypeError, ValueError):
                    status = 0
                answers.append((status, {str(k): str(v) for k, v in (ans.get("headers") or {}).items()}))
        for governor, want_write in ((self.t.governor, True), (getattr(self.t, "read_governor", None), False)):
            if governor is not None:
                mine = [a for item, a in zip(chunk, answers, strict=True) if item.req.is_write == want_write]
                if mine:
                    governor.on_answers(mine)

    def _lost(self, item: _Item, err: GraphError, headers: dict[str, str] | None, state: _State,
              on_result: Callable[[BatchResponse], None], *, maybe_executed: bool) -> None:
        status = err.status
        if item.req.is_write and maybe_executed:
            err.ambiguous = True
            on_result(self._final(item, status, headers or {}, None, err, ambiguous=True))
            return
        retryable = status == 0 or status in RETRYABLE_READ_STATUSES
        delay = self.config.retry.next_delay(item.attempts, headers, now=self.t.wall_clock(), rng=self.t.rng)
        if retryable and self._may_retry(item, delay):
            log.info("batch item %s: %s; retrying in %.1f s", item.req.id, err.code or err.status or "no answer",
                     delay)
            self._requeue(item, delay, state)
        else:
            on_result(self._final(item, status, headers or {}, None, err))

    def _may_retry(self, item: _Item, delay: float) -> bool:
        elapsed = self.t.clock() - (item.first_sent or self.t.clock())
        return self.config.retry.allows(item.attempts, elapsed, delay)

    def _requeue(self, item: _Item, delay: float, state: _State) -> None:
        heapq.heappush(state.retry, (self.t.clock() + delay, next(state.seq), item))

    @staticmethod
    def _final(item: _Item, status: int, headers: dict[str, str], body: dict[str, Any] | None,
               error: GraphError | None, *, ambiguous: bool = False) -> BatchResponse:
        return BatchResponse(item.req.id, status, headers, body, item.attempts, error, ambiguous)


__all__ = ["BatchRequest", "BatchResponse", "BatchRunner", "MAX_BATCH", "ThrottledError"]
