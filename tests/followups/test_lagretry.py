"""The replication-lag retry of follow-ups and PATCHes (``LagRetrySender``) over real HTTPS, on an injected clock:
the 1, 2, 4, 8, 16 s backoff and the 60 s budget are spent without waiting for them."""
from __future__ import annotations

from typing import Any

from provisioning.run.lagretry import Answer, LagRetrySender, Op
from tests.helpers.fake_time import FakeTime

from .conftest import graph, precreate

HOUR_MS = 3_600_000  # replication lag no test outlives: a new user stays invisible to PATCH (404)


def _send(sb: Any, user_id: str, fake: FakeTime, **kw: Any) -> list[tuple[Any, Answer]]:
    answers: list[tuple[Any, Answer]] = []
    op = Op("title", "PATCH", f"/users/{user_id}", {"jobTitle": "Engineer"})
    with graph(sb) as client:
        LagRetrySender(client, sleep=fake.sleep, clock=fake.clock, **kw).send([op], lambda k, a: answers.append((k, a)))
    return answers


def test_lag_outlasting_the_budget_fails_after_the_full_backoff(sandbox_factory: Any) -> None:
    sb = sandbox_factory(replication_lag_ms=HOUR_MS)
    user_id = precreate(sb, "lagged@contoso.com", "Lagged")
    fake = FakeTime()
    answers = _send(sb, user_id, fake)
    # sends at 0, 1, 3, 7, 15, 31, 47 s; another 16 s would end at 63 s, beyond the 60 s budget
    assert fake.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 16.0]
    [(key, answer)] = answers
    assert key == "title"
    assert (answer.ok, answer.status, answer.code, answer.attempts) == (False, 404, "Request_ResourceNotFound", 7)
    assert answer.message.endswith("(still refused after 7 attempts over 60 s)")
    assert sb.stats()["batch_by_status"].get("404") == 7


def test_lag_that_ends_within_the_budget_succeeds_on_the_next_send(sandbox_factory: Any) -> None:
    sb = sandbox_factory(replication_lag_ms=HOUR_MS)
    user_id = precreate(sb, "catching.up@contoso.com", "Catching Up")

    def replicate(n: int) -> None:
        if n == 3:  # the replicas catch up while the sender waits its third delay (4 s)
            sb.set_knobs(replication_lag_ms=0)

    fake = FakeTime(replicate)
    answers = _send(sb, user_id, fake)
    assert fake.sleeps == [1.0, 2.0, 4.0]
    [(_, answer)] = answers
    assert (answer.ok, answer.status, answer.attempts) == (True, 204, 4)
    with graph(sb) as client:
        assert client.get(f"/users/{user_id}", {"$select": "jobTitle"})["jobTitle"] == "Engineer"


def test_given_delays_and_budget_are_the_ones_spent(sandbox_factory: Any) -> None:
    sb = sandbox_factory(replication_lag_ms=HOUR_MS)
    user_id = precreate(sb, "short.budget@contoso.com", "Short Budget")
    fake = FakeTime()
    [(_, answer)] = _send(sb, user_id, fake, delays=(0.5, 3.0), budget_s=5.0)
    assert fake.sleeps == [0.5, 3.0]  # 0, 0.5, 3.5 s; 3.5 + 3 > 5
    assert (answer.ok, answer.attempts) == (False, 3)
    assert answer.message.endswith("(still refused after 3 attempts over 5 s)")
