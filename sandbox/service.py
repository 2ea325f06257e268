"""The Graph dispatcher: auth, per-request faults, throttling, roles, routing, and the sandbox's counters.

One :class:`Service` per running sandbox. The HTTP layer (:mod:`sandbox.server`) handles the transport faults
(``reset``, ``slow``, ``lost``) and latency; this layer draws the ``503`` fault per request *and* per ``$batch``
item. A 503 answer uses the legacy directory code graph-facts lists for 503, ``Request_ThrottledTemporarily``
("Your request is throttled temporarily. Please try after {n} seconds."), with ``Retry-After``.

Order for each request or batch item: 503 fault -> route (400 unknown segment / 405) -> throttling (429) ->
roles (403 Authorization_RequestDenied) -> handler. Every answer carries ``x-ms-resource-unit``; answers that
leave a bucket at least 80 % used carry ``x-ms-throttle-limit-percentage``.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

from . import deleted, directory, groups, licenses, mail, manager, tap, users
from .auth import Authority
from .batch import handle_batch
from .config import CLIENT_ID, FAULT_KINDS, TENANT_ID, Knobs
from .keys import KeyMaterial
from .store import Store, UserRow
from .throttle import Throttle, request_cost
from .wire import MSG_DENIED, MSG_METHOD, MSG_SEGMENT, Request, Response, Router, error

FAULT_RETRY_AFTER_S = 1


class Service:
    """State and request handling of one sandbox tenant."""

    def __init__(self, store: Store, keys: KeyMaterial, knobs: Knobs, base_url: str):
        self.store = store
        self.keys = keys
        self.knobs = knobs
        self.base_url = base_url
        self.tenant_id = TENANT_ID
        self.domains = directory.domain_index()
        self.router = Router()
        users.register(self.router)
        directory.register(self.router)
        groups.register(self.router)
        licenses.register(self.router)
        manager.register(self.router)
        mail.register(self.router)
        deleted.register(self.router)
        tap.register(self.router)
        self.authority = Authority(keys, base_url, clock=lambda: time.time() + self.knobs.clock_offset_s)
        self.throttle = Throttle(lambda: self.knobs.ru_for_size(self.store.count()),
                                 lambda: self.knobs.write_quota, lambda: self.knobs.tenant_wide_write_quota,
                                 CLIENT_ID, TENANT_ID)
        self._rng = random.Random(knobs.seed)
        self._rng_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.reset_stats()

    # -- knobs, randomness, counters ---------------------------------------------------------------------
    def set_knobs(self, knobs: Knobs) -> None:
        """Swap the knobs; quotas changes refill the buckets, a new seed reseeds the RNG."""
        old, self.knobs = self.knobs, knobs
        if (old.write_quota, old.ru_quota, old.tenant_wide_write_quota, old.tenant_size) != \
                (knobs.write_quota, knobs.ru_quota, knobs.tenant_wide_write_quota, knobs.tenant_size):
            self.throttle.reset()
        if knobs.seed != old.seed:
            with self._rng_lock:
                self._rng.seed(knobs.seed)

    def draw(self, kind: str) -> bool:
        """Whether fault ``kind`` strikes this request."""
        rate = self.knobs.fault_rate(kind)
        if rate <= 0.0:
            return False
        with self._rng_lock:
            hit = self._rng.random() < rate
        if hit:
            with self._stats_lock:
                self._faults[kind] += 1
        return hit

    def latency_s(self) -> float:
        """A latency draw: mean +- uniform jitter, never negative."""
        mean, jitter = self.knobs.latency_ms
        if mean <= 0 and jitter <= 0:
            return 0.0
        with self._rng_lock:
            j = self._rng.uniform(-jitter, jitter) if jitter else 0.0
        return max(0.0, mean + j) / 1000.0

    def shuffle(self, items: list[Any]) -> None:
        """Shuffle with the seeded RNG ($batch answers are not in request order)."""
        with self._rng_lock:
            self._rng.shuffle(items)

    def reset_stats(self) -> None:
        """Zero every counter."""
        with self._stats_lock:
            self._counters: Counter[str] = Counter()
            self._by_status: Counter[str] = Counter()
            self._batch_by_status: Counter[str] = Counter()
            self._faults: Counter[str] = Counter({k: 0 for k in FAULT_KINDS})

    def count(self, key: str, n: int = 1) -> None:
        """Increment a named counter (``users_created``, ``writes``, ...)."""
        with self._stats_lock:
            self._counters[key] += n

    def count_response(self, status: int, *, token: bool = False) -> None:
        """Count one HTTP answer."""
        with self._stats_lock:
            self._counters["requests"] += 1
            self._by_status[str(status)] += 1
            if token:
                self._counters["token_requests"] += 1
            if status == 429:
                self._counters["throttled"] += 1

    def count_batch_item(self, status: int) -> None:
        """Count one $batch item's answer."""
        with self._stats_lock:
            self._counters["batch_items"] += 1
            self._batch_by_status[str(status)] += 1
            if status == 429:
                self._counters["throttled"] += 1

    def stats(self) -> dict[str, Any]:
        """The ``/_sandbox/stats`` document."""
        with self._stats_lock:
            c = self._counters
            return {
                "requests": c["requests"], "by_status": dict(sorted(self._by_status.items())),
                "throttled": c["throttled"], "users_created": c["users_created"], "writes": c["writes"],
                "users": self.store.count(), "faults": {k: self._faults[k] for k in FAULT_KINDS},
                "token_requests": c["token_requests"], "batch_items": c["batch_items"],
                "batch_by_status": dict(sorted(self._batch_by_status.items())),
                "members_added": c["members_added"], "licenses_assigned": c["licenses_assigned"],
                "managers_set": c["managers_set"], "mail_sent": c["mail_sent"],
                "users_deleted": c["users_deleted"], "members_removed": c["members_removed"],
                "licenses_removed": c["licenses_removed"], "managers_removed": c["managers_removed"],
                "users_restored": c["users_restored"], "restore_requests": c["restore_requests"],
                "taps_issued": c["taps_issued"], "taps_replaced": c["taps_replaced"], "taps_deleted": c["taps_deleted"],
            }

    def visible(self, row: UserRow) -> bool:
        """Whether replication has caught up with ``row`` (replication-lag knob)."""
        lag = self.knobs.replication_lag_ms
        return lag <= 0 or time.time() - row.created >= lag / 1000.0

    # -- requests ----------------------------------------------------------------------------------------
    def handle_graph(self, req: Request) -> Response:
        """An HTTP request under ``/v1.0``: authenticate, then a single request or a ``$batch``."""
        claims = self.authority.check_bearer(req)
        if isinstance(claims, Response):
            return claims
        req.claims = claims
        try:
            if req.path == "/v1.0/$batch":
                if req.method != "POST":
                    return error(req, 405, "Request_BadRequest", MSG_METHOD)
                if self.draw("503"):
                    return self._unavailable(req)
                return handle_batch(req, self)
            return self.dispatch(req)
        finally:
            self.store.commit()

    def _unavailable(self, req: Request) -> Response:
        return error(req, 503, "Request_ThrottledTemporarily",
                     f"Your request is throttled temporarily. Please try after {FAULT_RETRY_AFTER_S} seconds.",
                     headers={"Retry-After": str(FAULT_RETRY_AFTER_S)})

    def dispatch(self, req: Request) -> Response:
        """One Graph request or batch item (``req.path`` starts with ``/v1.0``)."""
        if self.draw("503"):
            return self._unavailable(req)
        sub = req.path[len("/v1.0"):] or "/"
        route, groups, known = self.router.match(req.method, sub)
        if route is None:
            if known:
                return error(req, 405, "Request_BadRequest", MSG_METHOD)
            return error(req, 400, "BadRequest", MSG_SEGMENT.format(self.router.unresolved_segment(sub)))
        cost = request_cost(req.method, sub, req.query)
        verdict = self.throttle.charge(cost)
        if not verdict.allowed:
            resp = error(req, 429, self.knobs.throttle_code, "Please retry again later.",
                         inner={"code": "429", "message": "Please retry after", "status": "429"},
                         headers={"Retry-After": str(verdict.retry_after), "x-ms-throttle-scope": verdict.scope,
                                  "x-ms-throttle-information": verdict.information,
                                  "x-ms-throttle-limit-percentage": f"{verdict.limit_percentage:.1f}"})
        elif not route.roles & set(req.claims.get("roles") or ()):
            resp = error(req, 403, "Authorization_RequestDenied", MSG_DENIED)
        else:
            if cost.writes:
                self.count("writes")
            resp = route.handler(req, self, groups)
            if verdict.limit_percentage is not None:
                resp.headers["x-ms-throttle-limit-percentage"] = f"{verdict.limit_percentage:.1f}"
        resp.headers["x-ms-resource-unit"] = str(cost.ru)
        return resp

    def seed_users(self, wanted: int) -> None:
        """Make sure ``wanted`` pre-seeded users exist (idempotent across restarts)."""
        have = self.store.seeded_count()
        if wanted > have:
            docs = users.seed_documents(have, wanted)
            self.store.add_users([d for d in docs if d["userPrincipalName"].lower() not in self.store.by_upn])
