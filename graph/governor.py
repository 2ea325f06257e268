"""Client-side write governor: a token bucket sized to Graph's per-app-per-tenant write quota.

Graph allows 3,000 writes per 150 s per app and tenant (graph-facts 3.2), i.e. 20 writes/s sustained, and keeps
counting while a client is throttled. Pacing writes below that line means a long run spends its time writing
instead of waiting out 429 penalties. The governor adapts AIMD-style: a 429 (or a throttle-limit percentage at
or above 1.0) pauses it until ``Retry-After`` and halves its rate (once per
throttling episode, however many items of a batch were refused); a percentage between 0.8 and 1.0 slows it
proportionally; each successful chunk adds back a little rate, up to the configured ceiling.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GovernorConfig:
    """Rate ceiling (writes/s), bucket size, floor, and the adaptation steps."""

    rate_per_s: float = 3000 / 150
    burst: float = 20.0
    min_rate_per_s: float = 0.5
    decrease_factor: float = 0.5
    increase_per_success: float = 0.25
    warn_percentage: float = 0.8
    #: 429s closer together than this are one throttling episode: the rate is cut once, not once per item.
    decrease_cooldown_s: float = 2.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.rate_per_s) or self.rate_per_s <= 0:
            raise ValueError(f"the write rate must be positive, not {self.rate_per_s}")
        if not math.isfinite(self.burst) or self.burst < 1:
            raise ValueError(f"the write burst must be at least 1, not {self.burst}")
        if not 0 < self.decrease_factor < 1:
            raise ValueError("decrease_factor must be between 0 and 1")


class WriteGovernor:
    """Thread-safe token bucket with adaptive rate. Clock (monotonic seconds) and sleep are injectable."""

    def __init__(self, config: GovernorConfig = GovernorConfig(), *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rate = config.rate_per_s
        # Graph's own bucket starts full for an app that has not written lately, so ours does too: a run may spend
        # the quota's initial allowance at once, then settles at the sustained rate.
        self._tokens = float(config.burst)
        self._updated = clock()
        self._paused_until = 0.0
        self._last_decrease = float("-inf")
        self.throttle_events = 0

    @property
    def rate(self) -> float:
        """The current rate (writes/s), between the floor and the configured ceiling."""
        with self._lock:
            return self._rate

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.config.burst, self._tokens + elapsed * self._rate)
        self._updated = now

    def try_acquire(self, n: int = 1) -> float:
        """Take ``n`` write tokens and return 0.0, or take nothing and return the seconds to wait first.

        A request larger than the bucket is granted once the bucket is full (the bucket may go negative), so a
        20-item chunk is never starved by a smaller burst setting.
        """
        if n <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return self._paused_until - now
            self._refill(now)
            need = min(float(n), self.config.burst)
            if self._tokens >= need:
                self._tokens -= n
                return 0.0
            return (need - self._tokens) / self._rate

    def wait_s(self, n: int = 1) -> float:
        """Seconds until ``n`` writes would be admitted (0.0: now), taking nothing: what a progress line shows."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return self._paused_until - now
            tokens = min(self.config.burst, self._tokens + max(0.0, now - self._updated) * self._rate)
            need = min(float(n), self.config.burst)
            return 0.0 if tokens >= need else (need - tokens) / self._rate

    def acquire(self, n: int = 1, *, stop: threading.Event | None = None) -> bool:
        """Block until ``n`` tokens are taken; False if ``stop`` was set while waiting."""
        while True:
            if stop is not None and stop.is_set():
                return False
            wait = self.try_acquire(n)
            if wait <= 0:
                return True
            self._sleep(min(wait, 0.5) if stop is not None else wait)

    def on_throttled(self, retry_after_s: float | None) -> None:
        """A write was answered 429: pause until its Retry-After and cut the rate (multiplicative decrease)."""
        with self._lock:
            now = self._clock()
            self.throttle_events += 1
            if retry_after_s:
                self._paused_until = max(self._paused_until, now + retry_after_s)
            if now - self._last_decrease >= self.config.decrease_cooldown_s:
                self._decrease(now)
        log.info("write governor: throttled, rate now %.2f writes/s", self._rate)

    def on_limit_percentage(self, percentage: float) -> None:
        """React to ``x-ms-throttle-limit-percentage`` (0.8 .. 1.8 as sent by Graph above 80 % usage)."""
        cfg = self.config
        with self._lock:
            now = self._clock()
            if percentage >= 1.0:
                if now - self._last_decrease >= cfg.decrease_cooldown_s:
                    self._decrease(now)
            elif percentage >= cfg.warn_percentage:
                # 0.8 -> full ceiling, 1.0 -> half of it: slow down before Graph starts refusing.
                span = 1.0 - cfg.warn_percentage
                scale = 1.0 - (1.0 - cfg.decrease_factor) * (percentage - cfg.warn_percentage) / span
                self._set_rate(now, min(self._rate, cfg.rate_per_s * scale))

    def on_success(self, writes: int = 1) -> None:
        """Writes went through unthrottled: recover slowly (additive increase), up to the ceiling."""
        cfg = self.config
        with self._lock:
            if self._rate < cfg.rate_per_s:
                self._set_rate(self._clock(), min(cfg.rate_per_s, self._rate + cfg.increase_per_success * writes))

    def _decrease(self, now: float) -> None:
        self._last_decrease = now
        self._set_rate(now, max(self.config.min_rate_per_s, self._rate * self.config.decrease_factor))

    def _set_rate(self, now: float, rate: float) -> None:
        self._refill(now)  # tokens earned so far at the old rate
        self._rate = rate
