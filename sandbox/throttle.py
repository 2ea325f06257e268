"""Token-bucket throttling as graph-facts section 3 describes it.

Three buckets are consulted for every Graph request (and every ``$batch`` item):
- resource units per app+tenant (capacity by tenant size, refilled over 10 s; ``ru_quota`` overrides);
- writes per app+tenant (``write_quota``, Graph: 3,000 per 150 s);
- writes per tenant, all apps (``tenant_wide_write_quota``, Graph: 18,000 per 300 s).

Each bucket holds N tokens and refills continuously at N/SECONDS per second. A request is admitted only if every
bucket it draws from can pay its whole cost; otherwise nothing is taken and the answer is 429 with ``Retry-After``
(whole seconds until the short bucket holds enough), ``x-ms-throttle-scope`` and ``x-ms-throttle-information``.
Throttled requests are not charged (Graph says it keeps counting usage while throttled; that compounding is not
modelled, so a client that waits ``Retry-After`` always gets through).
``x-ms-throttle-limit-percentage`` is sent when a bucket is more than 80 % used (value = used/capacity, 1 decimal).
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


class Bucket:
    """A continuously refilled token bucket whose capacity/window may be read from a callable."""

    def __init__(self, quota: Callable[[], tuple[int, float]], clock: Callable[[], float] = time.monotonic):
        self._quota = quota
        self._clock = clock
        cap, _ = quota()
        self.tokens = float(cap)
        self.stamp = clock()

    def refill(self) -> tuple[int, float]:
        """Bring the token count up to date; return (capacity, refill rate per second)."""
        cap, window = self._quota()
        rate = cap / window
        now = self._clock()
        self.tokens = min(float(cap), self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        return cap, rate


@dataclass(frozen=True)
class Verdict:
    """The throttling decision for one request."""

    allowed: bool
    retry_after: int = 0
    scope: str = ""
    information: str = ""
    limit_percentage: float | None = None


@dataclass(frozen=True)
class Cost:
    """What a request costs: resource units and writes (graph-facts 3.3)."""

    ru: int
    writes: int


def request_cost(method: str, path: str, query: dict[str, str]) -> Cost:
    """Cost of an identity request: GET users 2 RU, other GETs 1 RU, writes 1 RU + 1 write; modifiers."""
    method = method.upper()
    if method != "GET":
        return Cost(1, 1)
    segments = [s for s in path.split("/") if s]
    if segments[-1:] == ["users"]:
        ru = 2
    elif segments[-1:] == ["subscribedSkus"] or segments[-3:-2] == ["groups"] and segments[-1:] == ["members"]:
        ru = 3
    else:
        ru = 1
    if "$select" in query:
        ru -= 1
    if "$expand" in query:
        ru += 1
    top = query.get("$top", "")
    if top.isdigit() and int(top) < 20:
        ru -= 1
    return Cost(max(1, ru), 0)


class Throttle:
    """The three buckets of one app in one tenant, behind one lock."""

    def __init__(self, ru: Callable[[], tuple[int, float]], writes: Callable[[], tuple[int, float]],
                 tenant_writes: Callable[[], tuple[int, float]], app_id: str, tenant_id: str):
        self._lock = threading.Lock()
        self._sources = (ru, writes, tenant_writes)
        self.app_id, self.tenant_id = app_id, tenant_id
        self.reset()

    def reset(self) -> None:
        """Fill every bucket (after a knob change or a reset)."""
        with self._lock:
            self.ru, self.writes, self.tenant_writes = (Bucket(q) for q in self._sources)

    def charge(self, cost: Cost) -> Verdict:
        """Admit and charge ``cost``, or refuse it with the 429 details."""
        with self._lock:
            parts = [(self.ru, cost.ru, f"Tenant_Application/ReadWrite/{self.app_id}/{self.tenant_id}",
                      "ResourceUnitLimitExceeded")]
            if cost.writes:
                parts.append((self.writes, cost.writes, f"Tenant_Application/Write/{self.app_id}/{self.tenant_id}",
                              "WriteLimitExceeded"))
                parts.append((self.tenant_writes, cost.writes, f"Tenant/Write/{self.app_id}/{self.tenant_id}",
                              "WriteLimitExceeded"))
            rates = [b.refill() for b, _, _, _ in parts]
            for (bucket, amount, scope, info), (cap, rate) in zip(parts, rates, strict=True):
                if bucket.tokens < amount:
                    wait = (min(amount, cap) - bucket.tokens) / rate
                    pct = round(1.0 + (amount - bucket.tokens) / cap, 1)
                    return Verdict(False, max(1, math.ceil(wait)), scope, info, max(1.0, pct))
            pct_used = 0.0
            for (bucket, amount, _, _), (cap, _) in zip(parts, rates, strict=True):
                bucket.tokens -= amount
                pct_used = max(pct_used, (cap - bucket.tokens) / cap)
            return Verdict(True, limit_percentage=round(pct_used, 1) if pct_used > 0.8 else None)
