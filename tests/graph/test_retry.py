"""The retry policy is pure: no sleeping, fixed clock and random source."""
from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from graph.retry import RetryPolicy, next_delay, parse_retry_after

NOW = 1_700_000_000.0


class FixedRng(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_retry_after_seconds_wins_over_backoff():
    assert next_delay(1, {"Retry-After": "7"}, now=NOW, rng=FixedRng(0.0)) == 7.0


def test_retry_after_header_name_is_case_insensitive_as_in_batch_items():
    assert next_delay(3, {"retry-after": "2"}, now=NOW, rng=FixedRng(0.9)) == 2.0


def test_retry_after_http_date():
    date = formatdate(NOW + 12, usegmt=True)
    assert next_delay(1, {"Retry-After": date}, now=NOW) == pytest.approx(12.0)


def test_retry_after_in_the_past_is_zero_not_negative():
    assert next_delay(1, {"Retry-After": formatdate(NOW - 50, usegmt=True)}, now=NOW) == 0.0
    assert parse_retry_after("-5", now=NOW) == 0.0


def test_retry_after_is_clamped():
    policy = RetryPolicy(max_retry_after_s=300)
    assert policy.next_delay(1, {"Retry-After": "86400"}, now=NOW) == 300.0


def test_unparsable_retry_after_falls_back_to_backoff():
    assert next_delay(1, {"Retry-After": "soon"}, now=NOW, rng=FixedRng(1.0)) == 1.0


@pytest.mark.parametrize("attempt, low, high", [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (7, 30.0, 60.0),
                                                (40, 30.0, 60.0)])
def test_capped_exponential_backoff_with_jitter(attempt, low, high):
    policy = RetryPolicy(base_delay_s=1.0, cap_delay_s=60.0)
    assert policy.next_delay(attempt, None, rng=FixedRng(0.0)) == low
    assert policy.next_delay(attempt, None, rng=FixedRng(1.0)) == high


def test_a_response_object_is_read_through_its_headers():
    class Resp:
        headers = {"Retry-After": "3"}

    assert next_delay(1, Resp(), now=NOW) == 3.0


def test_budget_counts_attempts_and_total_time():
    policy = RetryPolicy(max_attempts=3, max_total_s=10)
    assert policy.allows(1, 0, 5)
    assert not policy.allows(3, 0, 0)
    assert not policy.allows(2, 6, 5)


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_delay_s": 5, "cap_delay_s": 1},
                                    {"max_retry_after_s": -1}])
def test_invalid_policies_are_refused(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
