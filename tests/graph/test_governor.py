"""The write governor with a fake clock: pacing, pause on 429, AIMD adaptation."""
from __future__ import annotations

import threading

import pytest

from graph.governor import GovernorConfig, WriteGovernor


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


def test_default_is_graphs_write_quota():
    cfg = GovernorConfig()
    assert cfg.rate_per_s == 20.0  # 3000 writes / 150 s


def test_starts_with_a_full_bucket_like_graphs_own():
    # a 600-write burst (the sandbox's 600/3 s bucket, or a tenant's) is spendable at once, then 200/s
    gov, clock = make(rate_per_s=200, burst=600)
    for _ in range(30):
        assert gov.acquire(20)
    assert clock.slept == []
    assert gov.try_acquire(20) == pytest.approx(0.1)


def test_paces_to_the_rate_after_the_burst():
    gov, clock = make(rate_per_s=20, burst=20)
    for _ in range(5):
        assert gov.acquire(20)
    # 20 up front, then 4 x 20 more at 20/s = 4 s of waiting
    assert sum(clock.slept) == pytest.approx(4.0)


def test_try_acquire_reports_the_wait_and_takes_nothing():
    gov, clock = make(rate_per_s=10, burst=10)
    assert gov.try_acquire(10) == 0.0
    assert gov.try_acquire(5) == pytest.approx(0.5)
    clock.now += 0.5
    assert gov.try_acquire(5) == 0.0


def test_a_chunk_bigger_than_the_burst_is_not_starved():
    gov, clock = make(rate_per_s=5, burst=5)
    assert gov.acquire(20)
    assert gov.try_acquire(1) > 0  # went into debt: 15 writes owed at 5/s
    assert gov.try_acquire(1) == pytest.approx(3.2)


def test_429_pauses_until_retry_after_and_halves_the_rate():
    gov, clock = make(rate_per_s=20, burst=20)
    gov.on_throttled(7.0)
    assert gov.rate == 10.0
    assert gov.try_acquire(1) == pytest.approx(7.0)
    clock.now += 7.0
    assert gov.try_acquire(1) == 0.0
    assert gov.throttle_events == 1


def test_rate_never_drops_below_the_floor():
    gov, clock = make(rate_per_s=20, min_rate_per_s=2)
    for _ in range(10):
        gov.on_throttled(None)
        clock.now += 2.0
    assert gov.rate == 2


def test_many_429s_of_one_batch_cut_the_rate_once():
    gov, clock = make(rate_per_s=20, decrease_cooldown_s=2.0)
    for _ in range(20):
        gov.on_throttled(1.0)
    assert gov.rate == 10.0 and gov.throttle_events == 20
    clock.now += 2.0
    gov.on_throttled(1.0)
    assert gov.rate == 5.0


def test_additive_recovery_up_to_the_ceiling():
    gov, _ = make(rate_per_s=20, increase_per_success=0.25)
    gov.on_throttled(None)
    gov.on_success(20)
    assert gov.rate == 15.0
    gov.on_success(1000)
    assert gov.rate == 20.0


@pytest.mark.parametrize("pct, rate", [(0.5, 20.0), (0.8, 20.0), (0.9, 15.0), (0.99, pytest.approx(10.5)),
                                       (1.0, 10.0), (1.5, 10.0)])
def test_throttle_limit_percentage_slows_proportionally(pct, rate):
    gov, _ = make(rate_per_s=20)
    gov.on_limit_percentage(pct)
    assert gov.rate == rate


def test_stop_interrupts_a_wait():
    gov, _ = make(rate_per_s=1, burst=1)
    stop = threading.Event()
    assert gov.acquire(1, stop=stop)
    stop.set()
    assert gov.acquire(1, stop=stop) is False


@pytest.mark.parametrize("kw", [{"rate_per_s": 0}, {"burst": 0.5}, {"decrease_factor": 1.0}])
def test_invalid_configs(kw):
    with pytest.raises(ValueError):
        GovernorConfig(**kw)
