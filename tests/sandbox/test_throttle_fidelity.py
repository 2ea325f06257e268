"""Throttling as Graph does it: refused requests still count, the percentage header from 80 % use, items on their own.

The bucket arithmetic is pinned with an injected clock (exact Retry-After and header values); one test drives the
real sandbox over HTTPS with a client that ignores Retry-After.
"""
from __future__ import annotations

import time
from typing import Any

import pytest
from sbtools import Graph, new_user

from sandbox.throttle import Cost, Throttle

WRITE = Cost(1, 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(writes: tuple[int, float], clock: Clock) -> Throttle:
    return Throttle(lambda: (100_000, 10.0), lambda: writes, lambda: (100_000, 10.0), "app", "tenant", clock)


def test_a_client_hammering_through_retry_after_stays_throttled_and_is_told_longer() -> None:
    clock = Clock()
    t = throttle((10, 5.0), clock)  # 2 writes/s
    assert all(t.charge(WRITE).allowed for _ in range(10))
    told = []
    for _ in range(20):  # one attempt every 0.25 s, never waiting: 4/s against a refill of 2/s
        v = t.charge(WRITE)
        assert not v.allowed
        told.append(v.retry_after)
        clock.now += 0.25
    # the debt grows by half a write with every refused attempt (1 write owed, 1.5, 2, ...), each told
    # (1 + debt) / 2 s rounded up, until the floor of 80 % of the bucket below zero: (1 + 8) / 2 = 4.5 s
    assert told == [1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5]
    assert t.writes.tokens == -8.0


def test_a_client_that_waits_retry_after_gets_through() -> None:
    clock = Clock()
    t = throttle((10, 5.0), clock)
    for _ in range(10):
        t.charge(WRITE)
    v = t.charge(WRITE)
    assert (v.allowed, v.retry_after) == (False, 1)  # 1 write owed + 1 needed, at 2/s
    clock.now += v.retry_after
    assert t.charge(WRITE).allowed


def test_limit_percentage_from_80_percent_use_then_share_throttled() -> None:
    clock = Clock()
    t = throttle((10, 1e9), clock)  # no refill within the test
    seen = [t.charge(WRITE).limit_percentage for _ in range(10)]
    assert seen == [None] * 7 + [0.8, 0.9, 1.0]
    refused = [t.charge(WRITE) for _ in range(5)]
    assert not any(v.allowed for v in refused)
    # 1.0 + the share of the bucket's recent writes that were refused: 1/11, 2/12, ... 5/15
    assert [v.limit_percentage for v in refused] == [1.1, 1.2, 1.2, 1.3, 1.3]


def test_batch_items_are_charged_one_by_one_refused_ones_included() -> None:
    clock = Clock()
    t = throttle((5, 2.0), clock)
    verdicts = [t.charge(WRITE) for _ in range(8)]  # a $batch of 8 writes is 8 charges
    assert [v.allowed for v in verdicts] == [True] * 5 + [False] * 3
    assert [v.retry_after for v in verdicts[5:]] == [1, 2, 2]
    assert t.writes.tokens == -3.0


@pytest.mark.slow  # real refill time; the fake-clock tests above pin the same rules
def test_sandbox_keeps_a_hammering_client_throttled(sandbox_factory: Any) -> None:
    sb = sandbox_factory(write_quota=(4, 2))  # 2 writes/s
    g = Graph(sb)
    assert [g.post("/users", new_user(i)).status_code for i in range(4)] == [201] * 4
    told = []
    deadline = time.monotonic() + 1.5
    i = 4
    while time.monotonic() < deadline:  # ~10 writes/s, ignoring Retry-After: a refill of 3 writes meanwhile
        r = g.post("/users", new_user(i))
        assert r.status_code == 429, f"a hammering client got through after {len(told)} refusals"
        told.append(int(r.headers["Retry-After"]))
        time.sleep(0.1)
    assert told[0] == 1 and told[-1] == 3  # (1 + the 3.2 writes owed at the floor) / 2 per s
    time.sleep(told[-1])
    assert g.post("/users", new_user(i)).status_code == 201
    stats = sb.stats()
    assert stats["throttled"] == len(told) and stats["users_created"] == 5
