"""Token-bucket throttling as graph-facts section 3 (and its addendum) describes it.

Three buckets are consulted for every Graph request (and every ``$batch`` item, each charged on its own):
- resource units per app+tenant (capacity by tenant size, refilled over 10 s; ``ru_quota`` overrides);
- writes per app+tenant (``write_quota``, Graph: 3,000 per 150 s);
- writes per tenant, all apps (``tenant_wide_write_quota``, Graph: 18,000 per 300 s).

Each bucket holds N tokens and refills continuously at N/SECONDS per second. A request is admitted only if every
bucket it draws from can pay its whole cost; otherwise the answer is 429 with ``Retry-After`` (whole seconds until
the refusing bucket holds enough again), ``x-ms-throttle-scope`` and ``x-ms-throttle-information``.

Graph "continues to log resource usage while a client is being throttled": a refused request is charged too, so a
bucket may go into debt (down to 80 % of its capacity below zero, where Graph's percentage header tops out at 1.8).
A client that waits ``Retry-After`` gets through; one that keeps sending deepens the debt, stays throttled and is
told a longer ``Retry-After`` each time.

``x-ms-throttle-limit-percentage`` is sent once a bucket is 80 % used: on an admitted request it is the share used
(0.8, 0.9, 1.0 when the request took the last token), on a refused one 1.0 plus the share of that bucket's recent
requests that were refused (1.2 = 20 % throttled, at most 1.8), to one decimal.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: How far below zero a bucket's debt may go, as a share of its capacity (Graph's percentage header tops out at 1.8).
MAX_DEBT = 0.8


class Bucket:
    """A continuously refilled token bucket whose capacity/window may be read from a callable.

    ``admitted`` and ``refused`` are the costs of recent requests, decaying over the bucket's window: what the
    percentage header of a refused request reports.
    """

    def __init__(self, quota: Callable[[], tuple[int, float]], clock: Callable[[], float] = time.monotonic):
        self._quota = quota
        self._clock = clock
        cap, _ = quota()
        self.tokens = float(cap)
        self.stamp = clock()
        self.admitted = 0.0
        self.refused = 0.0

    def refill(self) -> tuple[int, float]:
        """Bring the token count up to date; return (capacity, refill rate per second)."""
        cap, window = self._quota()
        rate = cap / window
        now = self._clock()
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(float(cap), self.tokens + elapsed * rate)
        decay = math.exp(-elapsed / window)
        self.admitted *= decay
        self.refused *= decay
        self.stamp = now
        return cap, rate

    def take(self, amount: int, cap: int, *, refused: bool) -> None:
        """Charge ``amount`` (admitted or not: Graph logs usage while it throttles), never below the debt floor."""
        self.tokens = max(-MAX_DEBT * cap, self.tokens - amount)
        if refused:
            self.refused += amount
        else:
            self.admitted += amount


def _tenths(value: float) -> float:
    """``value`` to one decimal, halves up (0.85 -> 0.9), as the header carries it."""
    return math.floor(value * 10 + 0.5 + 1e-9) / 10


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
                 tenant_writes: Callable[[], tuple[int, float]], app_id: str, tenant_id: str,
                 clock: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self._sources = (ru, writes, tenant_writes)
        self.app_id, self.tenant_id = app_id, tenant_id
        self.reset()

    def reset(self) -> None:
        """Fill every bucket (after a knob change or a reset)."""
        with self._lock:
            self.ru, self.writes, self.tenant_writes = (Bucket(q, self._clock) for q in self._sources)

    def charge(self, cost: Cost) -> Verdict:
        """Charge ``cost`` and admit it, or charge it anyway and refuse it with the 429 details."""
        with self._lock:
            parts = [(self.ru, cost.ru, f"Tenant_Application/ReadWrite/{self.app_id}/{self.tenant_id}",
                      "ResourceUnitLimitExceeded")]
            if cost.writes:
                parts.append((self.writes, cost.writes, f"Tenant_Application/Write/{self.app_id}/{self.tenant_id}",
                              "WriteLimitExceeded"))
                parts.append((self.tenant_writes, cost.writes, f"Tenant/Write/{self.app_id}/{self.tenant_id}",
                              "WriteLimitExceeded"))
            rates = [b.refill() for b, _, _, _ in parts]
            short = [i for i, (bucket, amount, _, _) in enumerate(parts) if bucket.tokens < amount]
            for (bucket, amount, _, _), (cap, _) in zip(parts, rates, strict=True):
                bucket.take(amount, cap, refused=bool(short))
            if short:
                waits = {i: (min(parts[i][1], rates[i][0]) - parts[i][0].tokens) / rates[i][1] for i in short}
                worst = max(short, key=lambda i: waits[i])
                bucket, _, scope, info = parts[worst]
                share = bucket.refused / max(bucket.admitted + bucket.refused, 1e-9)
                return Verdict(False, max(1, math.ceil(waits[worst] - 1e-9)), scope, info,
                               min(1.8, max(1.0, _tenths(1.0 + share))))
            used = max((cap - bucket.tokens) / cap for (bucket, _, _, _), (cap, _) in zip(parts, rates, strict=True))
            return Verdict(True, limit_percentage=_tenths(used) if used >= 0.8 - 1e-9 else None)
