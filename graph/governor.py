"""Client-side write governor: spends the write bucket Graph is believed to hold, then steers by Graph's own signals.

Graph's identity write quota is a token bucket per app and tenant: 3,000 writes refilled over 150 s (graph-facts
3.2), 20 writes/s sustained, and Graph keeps charging a client while it throttles it, so every 429 costs a write of
the quota as well as the wait. A tenant may have another limit (raised, lowered; the sandbox scales it down), and
no flag should be needed for it. The governor keeps a model of Graph's bucket (capacity ``C``, refill rate ``r``,
tokens ``T``) and corrects it from the answers:

* **Start**: the bucket is believed full (``quota_writes``, default 3,000), but writes go out like TCP's slow
  start: a few at first, then a quarter of what went in without a throttling header, so a 2,000-user roster
  goes out in seconds while a 5-write bucket sees only a handful of 429s.
* ``x-ms-throttle-limit-percentage`` (Graph sends it from 80 % use) says where Graph's bucket really is: the first
  one ends the start (``C`` = writes admitted so far / that share) and every later one pins ``T`` to the band it
  names (0.9: about a tenth of ``C`` left, minus the writes still in flight). An answer without it means Graph's
  bucket is less than 80 % used: ``T`` is at least a fifth of ``C``.
* ``r`` and ``C`` are measured where Graph's level crosses a border between two bands it names (under 0.8 / 0.8,
  0.8 / 0.9 at 0.85 used, 0.9 / 1.0 at 0.95, 1.0 / refused). Every crossing of one border is at the same level, so
  between two of them the refill equals the writes charged (refused ones count: Graph charges them): a line through
  the crossings (writes charged against time, one offset per border) gives ``r`` within a second or two of the
  start, free of the tenth-of-a-bucket rounding of a single percentage, and the offsets of two borders give ``C``
  (the start's ``C`` counts the refill during the start as capacity). ``r`` then depends on no belief about where
  the borders lie, ``C`` on their spacing. A long spell under 80 % used, in which Graph's bucket may have filled
  (refill lost, the count broken), discards the crossings before it; a 429 puts the measurement in doubt.
* Until ``r`` is measured, it is corrected by how far the model was from each percentage and leans upwards until
  Graph says 1.0, and a tenth of ``C`` is kept in reserve: Graph's bucket hovers between 80 and 90 % used, never
  full (refill wasted), rarely empty (429s). Once measured, ``r`` is held there, the reserve is a twentieth of
  ``C``, and the model refills 5 % faster than measured, so that Graph's level sinks until it says 1.0 and the
  model is pinned: the level keeps to the border between 0.9 and 1.0, crossing it (which keeps the measurement
  fresh) without idling on a tenth of the bucket that would be left unspent when the writes end.
* **429**: nothing leaves until the longest ``Retry-After`` of the answer, after which ``T`` is about what Graph
  holds then (a write); the rate is cut once per throttling episode and bounded by what the ``Retry-After`` implies.
* The chunk of a ``$batch`` follows what the bucket can admit: at most half of ``C`` (no 20-item batch into a
  5-token bucket).

``rate_per_s`` (``--max-writes-per-s``) and ``burst`` (``--write-burst``) are caps on ``r`` and ``C``, never
targets. Clock (monotonic seconds) and sleep are injectable; every method is thread-safe.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: Graph's documented write quota per app and tenant (graph-facts 3.2).
GRAPH_WRITE_QUOTA = (3000.0, 150.0)
#: Seconds over which the admitted flow is averaged; the believed rate never climbs above twice that flow.
FLOW_S = 3.0
#: The shortest refill window assumed for a bucket smaller than believed, until percentages measure its rate.
MIN_WINDOW_S = 1.0
#: Share of Graph's bucket used at the border below each band an answer names: 0 no percentage (under 0.8 used),
#: 1 "0.8", 2 "0.9", 3 "1.0" (named to a tenth: 0.85 is the border between 0.8 and 0.9), 4 refused (empty).
BORDERS = (0.8, 0.85, 0.95, 1.0)
#: Two answers further apart than this place a border crossed between them too loosely (refill meanwhile) to count.
CROSSING_GAP_S = 0.2
#: Border crossings kept for the measurement of the refill rate and the bucket size (the most recent ones).
CROSSINGS = 64
#: Least seconds spanned by the crossings of one border before they measure the refill rate.
MEASURE_S = 0.5
#: The refill rate is taken from the crossings once its standard error is under this share of it.
MEASURE_ERROR = 0.1
#: Once the refill is measured, the model refills this much faster than measured, so that the level it keeps sinks
#: until Graph says 1.0 and pins it: the level finds the border between 0.9 and 1.0 and crosses it, again and again.
SEEK = 0.05
#: With nothing in flight, the longest the model may hold writes back before sending one to ask Graph again.
PROBE_S = 2.0


@dataclass(frozen=True, slots=True)
class GovernorConfig:
    """The bucket believed to be there, the caps, and the controller's constants."""

    quota_writes: float = GRAPH_WRITE_QUOTA[0]
    quota_window_s: float = GRAPH_WRITE_QUOTA[1]
    #: cap on the rate (writes/s), ``--max-writes-per-s``; None: only Graph's answers limit it
    rate_per_s: float | None = None
    #: cap on the writes sent at once, ``--write-burst``; None: the bucket's size
    burst: float | None = None
    min_rate_per_s: float = 0.05
    #: writes in flight before any answer came back (the start then grows by a quarter of what went in unremarked)
    first_probe: int = 4
    #: share of the bucket kept unspent once Graph's feedback drives the pace, until the refill rate is measured
    reserve: float = 0.1
    #: the same once the crossings measured the refill rate and the bucket (the model then knows Graph's level better)
    measured_reserve: float = 0.05
    #: 429s closer together than this are one throttling episode: the rate is cut once, not once per item.
    decrease_cooldown_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("quota_writes", "quota_window_s", "min_rate_per_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value}")
        if self.rate_per_s is not None and not (math.isfinite(self.rate_per_s) and self.rate_per_s > 0):
            raise ValueError(f"the write rate must be positive, not {self.rate_per_s}")
        if self.burst is not None and not (math.isfinite(self.burst) and self.burst >= 1):
            raise ValueError(f"the write burst must be at least 1, not {self.burst}")
        if self.first_probe < 1 or not (0 <= self.reserve < 1 and 0 <= self.measured_reserve < 1):
            raise ValueError("first_probe must be at least 1 and the reserves between 0 and 1")

    @property
    def capacity(self) -> float:
        """The bucket believed at start, under the caps: ``burst``, else one second's worth of ``rate_per_s``
        (at most R writes in any second, as ``--max-writes-per-s R`` says)."""
        return min(self.quota_writes, self.burst_cap)

    @property
    def burst_cap(self) -> float:
        """The most writes ever sent at once."""
        if self.burst is not None:
            return self.burst
        return max(1.0, self.rate_per_s) if self.rate_per_s is not None else math.inf

    @property
    def initial_rate(self) -> float:
        """The refill rate believed at start, under the rate cap."""
        rate = self.quota_writes / self.quota_window_s
        return min(rate, self.rate_per_s) if self.rate_per_s is not None else rate


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if str(key).lower() == name:
            return str(value)
    return None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class WriteGovernor:
    """A model of Graph's write bucket, spent and corrected from Graph's answers."""

    def __init__(self, config: GovernorConfig = GovernorConfig(), *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._cap = config.capacity
        self._rate = config.initial_rate
        self._rate_cap = config.rate_per_s if config.rate_per_s is not None else math.inf
        self._burst_cap = config.burst_cap
        # Graph's own bucket starts full for an app that has not written lately, so ours does too.
        self._tokens = self._cap
        self._updated = clock()
        self._rate_updated = self._updated
        self._paused_until = 0.0
        self._last_decrease = -math.inf
        self._starting = True  # until Graph first says how full its bucket is
        self._window = float(config.first_probe)  # writes that may be in flight while starting
        self._admitted = 0  # writes admitted while starting
        self._outstanding = 0  # writes taken and not yet answered
        self._flow = 0.0  # admitted writes per second, decaying over FLOW_S: what Graph actually lets through
        self._flow_updated = self._updated
        self._charged = 0  # writes Graph charged: admitted ones and refused ones (it logs usage while throttling)
        # Where Graph's level crossed a border between two bands it named: (time, writes charged then, share used).
        # At every crossing of one border the level is the same, so between two of them the refill equals what
        # was charged: the rate, without the tenth-of-a-bucket rounding of a single percentage.
        self._crossings: deque[tuple[float, float, float]] = deque(maxlen=CROSSINGS)
        self._band: tuple[int, float] | None = None  # (band, time) of the last charged write answered
        self._named_at = self._updated  # when Graph last named a percentage (or refused): its level was known
        self._measured: float | None = None  # the refill rate measured from the crossings, once precise enough
        self._sized = False  # the crossings measured the bucket too: the model knows Graph's level in writes
        # what the start found: the bucket, from the writes admitted in how many seconds up to a share used
        self._start_cap = self._cap
        self._start_admitted, self._start_s, self._start_used = 0, 0.0, 1.0
        self._first_sent: float | None = None
        self._last_answer = self._updated
        self.throttle_events = 0

    # -- what callers read -------------------------------------------------------------------------------------
    @property
    def rate(self) -> float:
        """The refill rate (writes/s) the governor believes Graph's bucket has."""
        with self._lock:
            return self._rate

    @property
    def capacity(self) -> float:
        """The bucket size (writes) the governor believes Graph has."""
        with self._lock:
            return self._cap

    def chunk_size(self, limit: int) -> int:
        """How many writes the next ``$batch`` should carry (at most ``limit``): what the bucket can admit."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            size = min(float(limit), max(1.0, math.floor(self._cap / 2)))
            if self._starting:
                size = min(size, self._window - self._outstanding)
            else:
                size = min(size, self._tokens - self._reserve())
            return int(max(1.0, size))

    # -- taking tokens -----------------------------------------------------------------------------------------
    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        # once measured, the model runs a little fast: see SEEK
        rate = self._rate * (1.0 + SEEK) if self._measured is not None else self._rate
        self._tokens = min(self._cap, self._tokens + elapsed * rate)
        self._updated = now

    def _wait(self, n: int, now: float) -> float:
        """Seconds until ``n`` writes may leave (0.0: now); the lock is held and tokens are refilled."""
        if now < self._paused_until:
            return self._paused_until - now
        need = min(float(n), self._cap, self._burst_cap)
        if not self._starting:
            need += self._reserve()
        elif self._outstanding and self._outstanding + n > self._window:
            return 0.05  # the start waits for answers, not for time: look again shortly
        if self._tokens >= need - 1e-9:
            return 0.0
        wait = (need - self._tokens) / self._rate
        if not self._starting and not self._outstanding:
            # a rate believed too low must not starve the feedback that would correct it
            wait = min(wait, max(0.0, self._last_answer + PROBE_S - now))
        return wait

    def try_acquire(self, n: int = 1) -> float:
        """Take ``n`` write tokens and return 0.0, or take nothing and return the seconds to wait first."""
        if n <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._refill(now)
            wait = self._wait(n, now)
            if wait <= 0:
                self._tokens -= n
                self._outstanding += n
                if self._first_sent is None:
                    self._first_sent = now
            return wait

    def _settled(self) -> bool:
        """Whether the crossings measured both the refill rate and the bucket (lock held)."""
        return self._measured is not None and self._sized

    def _reserve(self) -> float:
        """The writes kept unspent in Graph's bucket once its answers drive the pace."""
        return (self.config.measured_reserve if self._settled() else self.config.reserve) * self._cap

    def release(self, n: int) -> None:
        """Give back ``n`` tokens taken for writes that did not leave after all."""
        with self._lock:
            self._tokens = min(self._cap, self._tokens + n)
            self._outstanding = max(0, self._outstanding - n)

    def wait_s(self, n: int = 1) -> float:
        """Seconds until ``n`` writes would be admitted (0.0: now), taking nothing: what a progress line shows."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            return max(0.0, self._wait(n, now))

    def acquire(self, n: int = 1, *, stop: threading.Event | None = None) -> bool:
        """Block until ``n`` tokens are taken; False if ``stop`` was set while waiting."""
        while True:
            if stop is not None and stop.is_set():
                return False
            wait = self.try_acquire(n)
            if wait <= 0:
                return True
            self._sleep(min(wait, 0.5) if stop is not None else wait)

    # -- Graph's answers ---------------------------------------------------------------------------------------
    def on_answers(self, answers: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
        """The answers (status, headers) to writes sent together: status 0 when no answer came (lost)."""
        answered = ok = refused = 0
        pct: float | None = None
        retry_after: float | None = None
        throttled = False
        bands: list[int] = []  # of the charged writes: see BORDERS
        for status, headers in answers:
            answered += 1
            if status == 429:
                throttled = True
                refused += 1
                bands.append(4)
                ra = _number(_header(headers, "retry-after"))
                if ra is not None:
                    retry_after = max(retry_after or 0.0, ra)
            elif 200 <= status < 300:
                ok += 1
                p = _number(_header(headers, "x-ms-throttle-limit-percentage"))
                if p is not None:
                    pct = max(pct or 0.0, p)
                bands.append(0 if p is None else 1 if p < 0.85 else 2 if p < 0.95 else 3)
        if not answered:
            return
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._outstanding = max(0, self._outstanding - answered)
            if bands:
                self._cross(now, bands)
            self._charged += ok + refused
            self._last_answer = now
            decay = math.exp(-max(0.0, now - self._flow_updated) / FLOW_S)
            self._flow = self._flow * decay + ok / FLOW_S
            self._flow_updated = now
            if self._starting:
                self._admitted += ok
                if pct is None and not throttled:
                    # No percentage after A writes: Graph's bucket held more than A / 0.8, so A / 4 more fit
                    # for sure. The start grows by that much per round trip (a quarter), never into a 429.
                    self._window = self.config.first_probe + self._admitted / 4
                    if self._admitted > 0.8 * self._cap:  # more than 80 % of our belief went in unremarked
                        self._grow(self._admitted / 0.8)
                    return
                if pct is not None or self._admitted:
                    self._end_start(now, pct)
                    if throttled:
                        self._throttled(now, retry_after)
                    return
                # refused before anything went in (another app emptied the bucket): start again after it
                self._window = float(self.config.first_probe)
            if throttled:
                self._throttled(now, retry_after)
            elif pct is not None:
                self._pin(now, pct)
            elif ok:
                self._pin(now, None)
        if throttled:
            log.info("write governor: throttled, %.2f writes/s, bucket %.0f", self._rate, self._cap)

    def on_throttled(self, retry_after_s: float | None) -> None:
        """A single write was answered 429 (its ``Retry-After`` in seconds)."""
        headers = {} if retry_after_s is None else {"Retry-After": str(retry_after_s)}
        self.on_answers([(429, headers)])

    def on_limit_percentage(self, percentage: float) -> None:
        """A single write went through with ``x-ms-throttle-limit-percentage``."""
        self.on_answers([(200, {"x-ms-throttle-limit-percentage": str(percentage)})])

    def on_success(self, writes: int = 1) -> None:
        """Single writes went through without a throttling header."""
        self.on_answers([(200, {})] * writes)

    # -- the model's corrections (lock held) -------------------------------------------------------------------
    def _end_start(self, now: float, pct: float | None) -> None:
        self._starting = False
        used = min(pct, 1.0) if pct is not None else 1.0
        believed = self._cap
        cap = max(1.0, self._admitted / used)
        self._cap = self._start_cap = min(cap, self._burst_cap)
        self._start_admitted, self._start_used = self._admitted, used
        self._start_s = now - (self._first_sent if self._first_sent is not None else now)
        if self._cap < believed:
            # No Graph bucket refills in less than a second (Graph's windows are 10 to 300 s): a first bound on the
            # rate of a small bucket until two percentages measure it.
            self._rate = self._clamp_rate(min(self._rate, self._cap / MIN_WINDOW_S))
        used_now = pct if pct is not None else 1.0
        self._tokens = min(self._tokens, (1.0 - min(used_now, 1.0)) * self._cap - self._outstanding)
        self._rate_updated = now
        log.info("write governor: Graph's bucket holds about %.0f writes; %.2f writes/s to start with",
                 self._cap, self._rate)

    def _grow(self, cap: float) -> None:
        cap = min(cap, self._burst_cap)
        if cap > self._cap:
            self._tokens += cap - self._cap
            self._rate = self._clamp_rate(self._rate * cap / self._cap)
            self._cap = cap

    def _pin(self, now: float, pct: float | None) -> None:
        """Bring T into the band Graph names (a percentage, or None: under 80 % used) and steer the rate."""
        cap, inflight = self._cap, self._outstanding
        if pct is None:
            low, high = 0.2 * cap - inflight, math.inf
        else:
            used = min(pct, 1.0)
            low, high = (1.0 - used - 0.05) * cap - inflight, (1.0 - used + 0.05) * cap - inflight
        error = 0.0  # how far the model was from what Graph says: a rate error, accumulated since the last answer
        if self._tokens < low:
            error = min(low, self._cap) - self._tokens
        elif self._tokens > high:
            error = high - self._tokens
        self._tokens += error
        dt = max(0.25, min(2.0, now - self._rate_updated))
        self._rate_updated = now
        if self._measured is not None:
            # the crossings measured the refill: a level off the band is the model's level, not its rate
            self._rate = self._clamp_rate(self._measured)
            return
        rate = self._rate
        if error:
            rate += 0.5 * error / dt
        # Graph names its level in tenths of the bucket, so a rate a little below its refill shows only slowly; lean
        # upwards until it says 1.0: under 80 % used by far the most, at 80 % a little, at 90 % barely.
        lean = 0.7 if pct is None else 0.3 if pct < 0.85 else 0.1 if pct < 0.95 else 0.0
        rate *= math.exp(lean * dt)
        # climbing is bounded by what Graph admitted lately: a rate it never let through is not evidence
        if rate > self._rate:
            rate = max(self._rate, min(rate, 1.5 * self._rate, 2.0 * self._flow))
        self._rate = self._clamp_rate(max(rate, 0.5 * self._rate))

    def _cross(self, now: float, bands: list[int]) -> None:
        """Note the borders Graph's level crossed, from the bands named for the charged writes of one answer."""
        # Graph charges the writes of a $batch one after the other in a few milliseconds, each taking a token:
        # in order of use their bands never fall, whatever order the answers list them in.
        bands.sort()
        if bands[-1] and self._band is not None and self._band[0] == 0:
            # Graph named a level again after a spell under 80 % used: if its bucket could have filled meanwhile
            # (the refill it then loses breaks the count), the crossings before say nothing about those after.
            silent = now - self._named_at
            if silent * max(self._rate, self._measured or 0.0) > 0.5 * self._cap:
                self._crossings.clear()
                self._measured = None
        if bands[-1]:
            self._named_at = now
        found = False
        prev = self._band
        if prev is not None and abs(bands[0] - prev[0]) == 1 and now - prev[1] <= CROSSING_GAP_S:
            self._crossings.append((0.5 * (now + prev[1]), self._charged + 0.5, BORDERS[min(bands[0], prev[0])]))
            found = True
        for i in range(1, len(bands)):
            if bands[i] == bands[i - 1] + 1:
                self._crossings.append((now, self._charged + i + 0.5, BORDERS[bands[i - 1]]))
                found = True
        self._band = (bands[-1], now)
        if found:
            self._measure()

    def _measure(self) -> None:
        """The refill rate from the crossings, once its standard error allows: writes charged = a + r * t at the
        crossings of each border, with an offset ``a`` of its own (and the bucket size then, if it can be had)."""
        groups: dict[float, list[tuple[float, float]]] = {}
        for t, n, border in self._crossings:
            groups.setdefault(border, []).append((t, n))
        sxx = sxy = 0.0
        means: dict[float, tuple[float, float, int]] = {}
        for border, points in groups.items():
            mt = sum(t for t, _ in points) / len(points)
            mn = sum(n for _, n in points) / len(points)
            means[border] = (mt, mn, len(points))
            sxx += sum((t - mt) ** 2 for t, _ in points)
            sxy += sum((t - mt) * (n - mn) for t, n in points)
        dof = len(self._crossings) - len(groups) - 1
        span = max((max(t for t, _ in p) - min(t for t, _ in p) for p in groups.values()), default=0.0)
        if dof < 1 or sxx <= 0 or span < MEASURE_S:
            return
        rate = sxy / sxx
        ssr = sum((n - means[b][1] - rate * (t - means[b][0])) ** 2 for t, n, b in self._crossings)
        if rate <= 0 or math.sqrt(ssr / dof / sxx) > MEASURE_ERROR * rate:
            return
        first = self._measured is None
        self._measured = rate
        cap = self._fit_capacity(rate)
        if cap is not None:
            self._tokens *= cap / self._cap
            self._cap, self._sized = cap, True
        if first:
            log.info("write governor: Graph's bucket refills at %.2f writes/s and holds about %.0f writes (measured)",
                     rate, self._cap)

    def _fit_capacity(self, rate: float) -> float | None:
        """The bucket size from the crossings of two borders or more, once precise enough (None: not yet)."""
        # At a crossing of border b: charged = (level at time 0 - C) + r * t + b * C, one line through all borders.
        # r is taken from the slopes alone (above, robust to where the borders lie); C needs their spacing, and
        # its error grows with that of r times the time between the crossings of different borders, so it comes
        # from the joint fit, with its own standard error.
        points = list(self._crossings)
        n = len(points)
        if n < 4 or len({b for _, _, b in points}) < 2:
            return None
        mt = sum(t for t, _, _ in points) / n
        mn = sum(c for _, c, _ in points) / n
        mb = sum(b for _, _, b in points) / n
        stt = sum((t - mt) ** 2 for t, _, _ in points)
        sbb = sum((b - mb) ** 2 for _, _, b in points)
        stb = sum((t - mt) * (b - mb) for t, _, b in points)
        stn = sum((t - mt) * (c - mn) for t, c, _ in points)
        sbn = sum((b - mb) * (c - mn) for _, c, b in points)
        det = stt * sbb - stb * stb
        if det <= 1e-12 * max(stt * sbb, 1e-300):
            return None
        r = (stn * sbb - stb * sbn) / det
        cap = (stt * sbn - stb * stn) / det
        ssr = sum((c - mn - r * (t - mt) - cap * (b - mb)) ** 2 for t, c, b in points)
        if cap <= 0 or math.sqrt(ssr / (n - 3) * stt / det) > MEASURE_ERROR * cap:
            return None
        # Within what the start allows: its first percentage p (to a tenth) after A writes in S seconds means that
        # p * C is A minus the refill meanwhile, which is at least nothing and at most r * S.
        high = 1.1 * self._start_cap
        low = max(1.0, (self._start_admitted - rate * self._start_s) / min(1.0, self._start_used + 0.05))
        return min(max(cap, low), high, self._burst_cap)

    def _throttled(self, now: float, retry_after: float | None) -> None:
        self.throttle_events += 1
        # Graph refused what the model believed it held: the measured rate is in doubt until crossings confirm it
        self._measured = None
        wait = retry_after if retry_after is not None else 1.0
        self._paused_until = max(self._paused_until, now + wait)
        # When the pause ends Graph holds about one write (that is what Retry-After promised), whatever the rate.
        self._tokens = min(self._tokens, 1.0 - wait * self._rate)
        if now - self._last_decrease >= self.config.decrease_cooldown_s:
            self._last_decrease = now
            self._rate = self._clamp_rate(self._rate * 0.7)
        if retry_after is not None and retry_after > 1:
            # Graph needs more than Retry-After - 1 s (it rounds up) to refill what it is owed plus one write, and it
            # is owed at most 80 % of its bucket (its percentage tops out at 1.8): a bound on its refill rate
            self._rate = self._clamp_rate(min(self._rate, (1.0 + 0.8 * self._cap) / (retry_after - 1.0)))
        self._rate_updated = now

    def _clamp_rate(self, rate: float) -> float:
        return max(self.config.min_rate_per_s, min(self._rate_cap, rate))
