"""Retry as a policy: which answers are worth another attempt, and how long to wait first.

``next_delay`` is pure (clock and random source are arguments), so it is unit-tested without sleeping. The
callers (``graph.http`` for single requests, ``graph.batch`` for ``$batch`` items) own the loop; a write whose
outcome is unknown is never re-sent here: it is handed back as ambiguous and the caller reconciles first.
"""
from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Statuses that mean "try again later"; 429 and 503 carry Retry-After, 504 is a gateway timeout.
RETRYABLE_STATUSES = frozenset({429, 503, 504})
#: Statuses for which a *read* may be retried (500/502 included: a read has no side effect).
RETRYABLE_READ_STATUSES = frozenset({429, 500, 502, 503, 504})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Limits of the retry loop.

    ``max_attempts`` counts every send of one request (1 = no retry); ``max_total_s`` bounds the time one request
    may spend in retries; backoff without ``Retry-After`` is ``min(cap, base * 2**(attempt-1))`` with full jitter
    in its upper half; a server ``Retry-After`` is honoured but clamped to ``[0, max_retry_after_s]``.
    """

    max_attempts: int = 8
    max_total_s: float = 600.0
    base_delay_s: float = 1.0
    cap_delay_s: float = 60.0
    max_retry_after_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_delay_s < 0 or self.cap_delay_s < self.base_delay_s:
            raise ValueError(f"need 0 <= base_delay_s <= cap_delay_s, got {self.base_delay_s} and {self.cap_delay_s}")
        if self.max_retry_after_s < 0 or self.max_total_s < 0:
            raise ValueError("max_retry_after_s and max_total_s must not be negative")

    def next_delay(self, attempt: int, response_or_headers: Any = None, *, now: float | None = None,
                   rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``; see :func:`next_delay`."""
        return next_delay(attempt, response_or_headers, now=now, rng=rng, policy=self)

    def allows(self, attempt: int, elapsed_s: float, delay_s: float) -> bool:
        """True when attempt ``attempt + 1`` may still be made after waiting ``delay_s``."""
        return attempt < self.max_attempts and elapsed_s + delay_s <= self.max_total_s


DEFAULT_RETRY = RetryPolicy()


def _headers_of(response_or_headers: Any) -> Mapping[str, Any]:
    if response_or_headers is None:
        return {}
    headers = getattr(response_or_headers, "headers", response_or_headers)
    return headers if isinstance(headers, Mapping) else {}


def header(headers: Mapping[str, Any], name: str) -> str | None:
    """Case-insensitive header lookup in any mapping (``$batch`` items use lower-case names, responses any)."""
    value = headers.get(name)
    if value is None:
        lname = name.lower()
        for key, val in headers.items():
            if str(key).lower() == lname:
                value = val
                break
    return None if value is None else str(value)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from ``now`` (epoch seconds): delta-seconds or an HTTP-date (RFC 9110 10.2.3).

    Returns None when absent or unparsable; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    # email.utils (with calendar and locale) costs some 15 ms of every start-up: imported for an HTTP date only
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def next_delay(attempt: int, response_or_headers: Any = None, *, now: float | None = None,
               rng: random.Random | None = None, policy: RetryPolicy = DEFAULT_RETRY) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based) before sending again.

    ``response_or_headers`` is a ``requests.Response``, a header mapping, or None (no answer: reset/timeout).
    A ``Retry-After`` (seconds or HTTP-date, relative to ``now`` in epoch seconds) wins, clamped to
    ``[0, policy.max_retry_after_s]``; otherwise capped exponential backoff with jitter drawn from ``rng``:
    a value in ``[d/2, d]`` where ``d = min(cap, base * 2**(attempt-1))``.
    """
    retry_after = parse_retry_after(header(_headers_of(response_or_headers), "Retry-After"), now=now)
    if retry_after is not None:
        return min(policy.max_retry_after_s, retry_after)
    exp = min(policy.cap_delay_s, policy.base_delay_s * (1 << max(0, min(attempt - 1, 30))))
    draw = rng.random() if rng is not None else random.random()
    return exp / 2 + draw * exp / 2


def is_read(method: str) -> bool:
    """Reads have no side effect, so any transient failure may be retried."""
    return method.upper() in READ_METHODS
