"""The write governor with an injected clock: the bucket spent at start, Graph's signals steering it afterwards.

The settling tests drive the governor against the sandbox's own token buckets (``sandbox.throttle.Throttle``, the
code that answers the real sandbox) on the same fake clock: four ``$batch`` chunks in flight, a latency per round
trip, 429 items re-sent after their ``Retry-After``, as ``graph.batch`` does. No real time passes.
"""
from __future__ import annotations

import heapq
import math
import random
import threading

import pytest

from graph.governor import GovernorConfig, WriteGovernor
from sandbox.throttle import Cost, Throttle


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make(**kw):
    clock = FakeClock()
    return WriteGovernor(GovernorConfig(**kw), clock=clock, sleep=clock.sleep), clock


OK = (201, {})


def pct(p: str) -> tuple[int, dict[str, str]]:
    return 201, {"x-ms-throttle-limit-percentage": p}


def throttled(retry_after: str) -> tuple[int, dict[str, str]]:
    return 429, {"Retry-After": retry_after}


def run(writes: int, quota: tuple[int, float], *, latency: float = 0.1, jitter: float = 0.0,
        config: GovernorConfig | None = None, tenant_wide: tuple[int, float] = (18_000, 300.0)):
    """Send ``writes`` writes through the governor into the sandbox's buckets; (seconds taken, 429s, governor)."""
    clock = FakeClock()
    buckets = Throttle(lambda: (10**9, 10.0), lambda: quota, lambda: tenant_wide, "app", "tenant", clock)
    gov = WriteGovernor(config or GovernorConfig(), clock=clock, sleep=clock.sleep)
    rng = random.Random(7)
    start, fresh, done, refused, in_flight = clock.now, writes, 0, 0, 0
    retry: list[float] = []  # when each refused write may go again
    events: list[tuple[float, int, str, object]] = []
    seq = 0
    ready_at = clock.now
    while done < writes:
        while in_flight < 4 and clock.now >= ready_at:
            due = sum(1 for r in retry if r <= clock.now)
            if not fresh + due:
                break
            size = min(gov.chunk_size(20), fresh + due)
            wait = gov.try_acquire(size)
            if wait > 0:
                ready_at = clock.now + wait
                break
            retry.sort()
            again = min(size, due)
            del retry[:again]
            fresh -= size - again
            in_flight += 1
            seq += 1
            rtt = max(0.0, latency + rng.uniform(-jitter, jitter))
            heapq.heappush(events, (clock.now + rtt / 2, seq, "graph", (size, rtt)))
        times = [events[0][0]] if events else []
        times += [ready_at] if ready_at > clock.now else []
        times += [min(r for r in retry if r > clock.now)] if any(r > clock.now for r in retry) else []
        clock.now = max(clock.now, min(times)) if times else clock.now + 0.001
        if events and events[0][0] <= clock.now:
            _, _, kind, data = heapq.heappop(events)
            if kind == "graph":  # Graph charges each item on its own, in order
                size, rtt = data
                answers = []
                for _ in range(size):
                    v = buckets.charge(Cost(1, 1))
                    if v.allowed:
                        answers.append(OK if v.limit_percentage is None else pct(f"{v.limit_percentage:.1f}"))
                    else:
                        answers.append(throttled(str(v.retry_after)))
                seq += 1
                heapq.heappush(events, (clock.now + rtt / 2, seq, "answer", answers))
            else:
                in_flight -= 1
                gov.on_answers(data)
                for status, headers in data:
                    if status == 429:
                        refused += 1
                        retry.append(clock.now + float(headers["Retry-After"]))
                    else:
                        done += 1
    return clock.now - start, refused, gov


def quota_minimum(writes: int, quota: tuple[int, float]) -> float:
    n, s = quota
    return max(0, writes - n) / (n / s)


def test_defaults_are_graphs_documented_bucket_and_no_caps():
    cfg = GovernorConfig()
    assert (cfg.capacity, cfg.initial_rate, cfg.rate_per_s, cfg.burst) == (3000, 20.0, None, None)


def test_the_start_grows_by_what_graph_provably_has_left_while_it_stays_silent():
    gov, clock = make()
    sizes = []
    for _ in range(6):
        sizes.append(gov.chunk_size(20))
        assert gov.try_acquire(sizes[-1]) == 0.0
        gov.on_answers([OK] * sizes[-1])
    # no percentage after A writes: more than A / 0.8 fit, so 4 + A / 4 may be in flight next
    assert sizes == [4, 5, 6, 7, 9, 11]
    assert clock.slept == []


def test_a_roster_inside_the_default_bucket_never_waits_on_the_quota():
    seconds, refused, gov = run(2000, (3000, 150.0), latency=0.15, jitter=0.05)
    assert refused == 0 and gov.capacity == 3000
    assert seconds < 0.06 * 100  # 100 s is what pacing at 20 writes/s from the first row took


def test_the_first_percentage_measures_the_bucket_and_the_batch_follows_it():
    gov, clock = make()
    assert gov.try_acquire(4) == 0.0
    gov.on_answers([OK, OK, OK, pct("0.8")])  # 4 writes took Graph to 80 %: its bucket holds 5
    assert gov.capacity == 5
    assert gov.chunk_size(20) == 1  # what Graph has left (a write) beyond the reserve
    assert gov.rate == 5.0  # a bucket refills in no less than a second, until Graph's answers measure it
    clock.now += 1.0
    assert gov.chunk_size(20) == 2  # half the bucket at most: no 20-item batch into a 5-token bucket


def test_429_pauses_until_the_longest_retry_after_once_per_episode():
    gov, clock = make()
    gov.try_acquire(4)
    gov.on_answers([OK, throttled("1"), throttled("3"), throttled("2")])
    assert gov.throttle_events == 1
    assert gov.try_acquire(1) == pytest.approx(3.0)
    assert gov.wait_s(1) == pytest.approx(3.0)
    clock.now += 3.0
    assert gov.wait_s(1) == 0.0 and gov.try_acquire(1) == 0.0


@pytest.mark.parametrize("quota, writes", [((5, 1.0), 200), ((3, 6.0), 12), ((600, 3.0), 6000),
                                           ((1000, 150.0), 3000)])
def test_settles_at_the_refill_rate_of_whatever_quota_with_few_429s(quota, writes):
    seconds, refused, gov = run(writes, quota, latency=0.2 if quota[0] < 10 else 0.08, jitter=0.0)
    efficiency = quota_minimum(writes, quota) / seconds
    assert efficiency >= 0.85 if writes > 100 else efficiency >= 0.6, (seconds, refused, gov.rate)
    assert refused <= max(4, 0.05 * writes), (seconds, refused)
    # measured from the start, whose refill it cannot tell apart: the right size within 60 %
    assert gov.capacity == pytest.approx(quota[0], rel=0.6)


def test_the_caps_hold():
    seconds, _, gov = run(300, (3000, 150.0), config=GovernorConfig(rate_per_s=10, burst=50))
    assert gov.capacity == 50 and gov.rate <= 10
    assert seconds >= (300 - 50) / 10 - 0.5
    gov, _ = make(burst=6)
    assert gov.chunk_size(20) == 3  # half the bucket at most


def test_wait_s_reports_and_takes_nothing():
    gov, clock = make(quota_writes=10, quota_window_s=1, first_probe=10)
    assert gov.try_acquire(10) == 0.0
    gov.on_answers([OK] * 9 + [pct("1.0")])  # Graph's bucket is empty now
    first = gov.wait_s(2)
    assert first > 0 and gov.wait_s(2) == first
    clock.now += first
    assert gov.try_acquire(2) == 0.0


def test_stop_interrupts_a_wait():
    gov, _ = make(quota_writes=1, quota_window_s=100)
    stop = threading.Event()
    assert gov.acquire(1, stop=stop)
    gov.on_answers([pct("1.0")])
    stop.set()
    assert gov.acquire(1, stop=stop) is False


@pytest.mark.parametrize("kw", [{"rate_per_s": 0}, {"burst": 0.5}, {"rate_per_s": math.nan},
                                {"burst": math.inf}, {"quota_writes": 0}, {"reserve": 1.0}])
def test_invalid_configs(kw):
    with pytest.raises(ValueError):
        GovernorConfig(**kw)
