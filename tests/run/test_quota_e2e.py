"""``run`` with default options against sandbox quotas of every size: no flag needed, a tight quota is slow, not fatal.

The sandbox charges refused writes too (as Graph does), so a client that does not follow Graph's signals pays for
it in 429s and in time; the counters come from ``sb.stats()``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from provisioning.exitcodes import ExitStatus

from .conftest import read_results, write_roster

# end-to-end runs paced by real quota refills; tests/graph/test_governor.py drives the same governor on a fake clock
pytestmark = pytest.mark.slow


def _run(sb: Any, cli: Any, tmp_path: Path, n: int) -> tuple[float, dict[str, Any], dict[str, Any]]:
    roster = write_roster(tmp_path / "r.csv", n)
    started = time.monotonic()
    code, _, err = cli(sb, "run", roster, "--out", tmp_path / "run", "--no-progress")
    took = time.monotonic() - started
    assert code == ExitStatus.OK, err
    results = read_results(tmp_path / "run")
    assert [v["status"] for v in results.values()] == ["created"] * n
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    return took, sb.stats(), summary


def test_a_tight_quota_is_slow_never_fatal(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    # 3 writes per 1.5 s: the first $batch of 20 used to meet 17 refusals, and the run gave up with exit 4
    # ("still throttled after 8 attempts"); now it spends the 3, learns the bucket, and follows its refill.
    sb = sandbox_factory(write_quota=(3, 1.5), latency_ms=(20, 5), seed=5)
    took, stats, _ = _run(sb, cli, tmp_path, 12)
    assert stats["users_created"] == 12 == stats["users"] and stats["writes"] == 12
    assert stats["throttled"] <= 3, stats
    assert took >= (12 - 3) / 2 - 0.5  # the quota's own minimum: 4.5 s


def test_the_bucket_is_spent_then_its_refill_rate_followed(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    # a bucket of 100 refilled at 20/s (a thirtieth of Graph's window): 100 at once, then the refill rate; pacing at
    # 20/s from the first row (the old default) took 10 s
    sb = sandbox_factory(write_quota=(100, 5), latency_ms=(20, 5), seed=6)
    _, stats, summary = _run(sb, cli, tmp_path, 200)
    assert stats["users_created"] == 200 and stats["writes"] == 200
    assert stats["throttled"] <= 10, stats  # at most 5 % answered 429
    minimum = (200 - 100) / 20
    assert minimum - 0.5 <= summary["apply_duration_s"] <= 1.5 * minimum, summary


def test_a_roster_inside_graphs_bucket_goes_at_once(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    # Graph's default quota: 300 users fit in its 3,000-write bucket; pacing at 20/s would take 15 s
    sb = sandbox_factory(latency_ms=(20, 5), seed=7)
    _, stats, summary = _run(sb, cli, tmp_path, 300)
    assert stats["throttled"] == 0 and stats["users_created"] == 300
    assert summary["apply_duration_s"] < 7.5, summary
