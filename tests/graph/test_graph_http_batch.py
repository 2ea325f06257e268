"""HTTP core, paging, lookups and $batch against the sandbox over HTTPS (no mocks)."""
from __future__ import annotations

import re
import threading
import time
from dataclasses import replace

import pytest

from graph.batch import BatchRequest
from graph.errors import BadRequestError, NotFoundError
from graph.governor import GovernorConfig, WriteGovernor
from sbclient import FAST_RETRY, client_for, new_user


class RecordingSleep:
    """Real sleep (the sandbox's buckets refill in real time), recorded for assertions."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        import time

        self.calls.append(seconds)
        time.sleep(seconds)


def domain(client) -> str:
    return next(d["id"] for d in client.domains() if d.get("isDefault"))


def test_graph_error_fields_for_a_missing_user(sandbox):
    with client_for(sandbox) as client, pytest.raises(NotFoundError) as exc:
        client.get_user("nobody@contoso.com")
    err = exc.value
    assert (err.status, err.code) == (404, "Request_ResourceNotFound")
    assert err.message.startswith("Resource 'nobody@contoso.com' does not exist")
    assert len(err.request_id) == 36 and err.date.startswith("20")
    assert str(err) == f"404 Request_ResourceNotFound: {err.message} (request-id {err.request_id}, date {err.date})"


def test_bad_filter_is_a_bad_request(sandbox):
    with client_for(sandbox) as client, pytest.raises(BadRequestError) as exc:
        list(client.iter_users(filter="nosuchprop eq 'x'"))
    assert exc.value.status == 400 and exc.value.code


def test_paging_over_2500_users_with_top_999(sandbox_factory):
    sb = sandbox_factory(users=2500)
    before = sb.stats()["by_status"].get("200", 0)
    with client_for(sb) as client:
        users = list(client.iter_users(select=("id", "userPrincipalName")))
    assert len(users) == 2500 and len({u["id"] for u in users}) == 2500
    assert set(users[0]) >= {"id", "userPrincipalName"} and "displayName" not in users[0]
    assert sb.stats()["by_status"]["200"] - before == 3 + 2  # 999 + 999 + 502, plus OIDC discovery and token


def test_throttled_reads_are_retried_after_retry_after(sandbox_factory):
    sb = sandbox_factory(ru_quota=(12, 2))  # GET /users costs 1-2 RU: a burst of reads runs out
    sleep = RecordingSleep()
    with client_for(sb, sleep=sleep) as client:
        for _ in range(15):
            client.get("/users", {"$top": "5", "$select": "id"})
    stats = sb.stats()
    assert stats["throttled"] >= 1 and stats["by_status"].get("429") == stats["throttled"]
    assert sleep.calls and all(1.0 <= s <= 5.0 and float(s).is_integer() for s in sleep.calls)


@pytest.mark.slow
def test_batch_partly_throttled_completes_exactly_once_per_item(sandbox_factory):
    sb = sandbox_factory(write_quota=(15, 1.5))
    # a governor that starts with three full batches in flight: the sandbox's bucket of 15 refuses part of them
    with client_for(sb, governor=WriteGovernor(GovernorConfig(first_probe=60))) as client:
        dom = domain(client)
        reqs = [BatchRequest(f"r{i}", "POST", "/users", new_user(f"bulk{i:03}@{dom}")) for i in range(60)]
        sent: list[str] = []
        results = {}
        caller = threading.get_ident()

        def on_result(resp):
            assert threading.get_ident() == caller and resp.id not in results
            results[resp.id] = resp

        def on_send(chunk):
            assert threading.get_ident() == caller and len(chunk) <= 20
            sent.extend(r.id for r in chunk)

        assert client.run_batches(reqs, on_send=on_send, on_result=on_result) == []
    assert sorted(results) == sorted(r.id for r in reqs)
    assert all(r.status == 201 and r.error is None and not r.ambiguous for r in results.values())
    stats = sb.stats()
    assert stats["users_created"] == 60 and stats["batch_by_status"].get("429", 0) >= 1
    retried = [r for r in results.values() if r.attempts > 1]
    assert retried and len(sent) == 60 + sum(r.attempts - 1 for r in results.values())


def test_on_send_raising_keeps_its_chunk_home_and_still_hands_over_the_answers_in_flight(sandbox):
    class Refused(Exception):
        pass

    with client_for(sandbox, batch_size=5) as client:
        dom = domain(client)
        reqs = [BatchRequest(f"r{i}", "POST", "/users", new_user(f"refused{i:03}@{dom}")) for i in range(30)]
        sent: list[str] = []
        results = {}

        def on_send(chunk):
            if len(sent) >= 10:  # the third chunk cannot be recorded: it must not leave
                raise Refused
            sent.extend(r.id for r in chunk)

        with pytest.raises(Refused):
            client.run_batches(reqs, on_send=on_send, on_result=lambda r: results.__setitem__(r.id, r))
    assert sorted(results) == sorted(sent) and len(sent) == 10
    assert all(r.status == 201 for r in results.values())
    assert sandbox.stats()["users_created"] == 10


def test_batch_item_errors_are_final_and_typed(sandbox):
    with client_for(sandbox) as client:
        dom = domain(client)
        first = client.send_batch([BatchRequest("a", "POST", "/users", new_user(f"dup@{dom}"))])[0]
        assert first.status == 201
        again, bad = client.send_batch([BatchRequest("a", "POST", "/users", new_user(f"dup@{dom}")),
                                        BatchRequest("b", "GET", "/users/nobody@contoso.com")])
    assert again.status == 400 and type(again.error).__name__ == "ConflictError" and not again.ambiguous
    assert again.error.message == "Another object with the same value for property userPrincipalName already exists."
    assert bad.status == 404 and isinstance(bad.error, NotFoundError) and bad.error.request_id


def test_lost_write_batch_is_ambiguous_and_not_resent(sandbox_factory):
    sb = sandbox_factory(faults={"lost": 1.0})
    with client_for(sb) as client:
        dom = domain(client)
        (resp,) = client.send_batch([BatchRequest("x", "POST", "/users", new_user(f"lost@{dom}"))])
        assert resp.ambiguous and resp.status == 0 and resp.attempts == 1 and resp.error.ambiguous
        sb.set_knobs(faults={"lost": 0.0})
        assert client.find_users_by_upn([f"lost@{dom}"])  # it was created: the caller reconciles by UPN
    assert sb.stats()["users_created"] == 1


def test_transient_503_on_reads_is_retried(sandbox_factory):
    sb = sandbox_factory(faults={"503": 0.5}, seed=7)
    sleep = RecordingSleep()
    # Retry-After (the sandbox says 503 + a few seconds) is clamped to max_retry_after_s: 0.1 s here.
    with client_for(sb, sleep=sleep, retry=replace(FAST_RETRY, max_retry_after_s=0.1)) as client:
        for _ in range(6):
            assert client.domains()
    assert sb.stats()["by_status"].get("503", 0) == len(sleep.calls) >= 1
    assert set(sleep.calls) == {0.1}


def test_find_users_by_upn_uses_batched_in_filters_and_quotes(sandbox):
    with client_for(sandbox) as client:
        dom = domain(client)
        upns = [f"o'brien@{dom}"] + [f"u{i}@{dom}" for i in range(19)]
        created = client.send_batch([BatchRequest(str(i), "POST", "/users", new_user(u)) for i, u in enumerate(upns)])
        assert [r.status for r in created] == [201] * 20
        before = sandbox.stats()["requests"]
        found = client.find_users_by_upn(upns + ["missing@" + dom, upns[0].upper()])
        assert sandbox.stats()["requests"] - before == 1  # two `in` filters inside one $batch
    assert set(found) == {u.lower() for u in upns}
    assert found[f"o'brien@{dom}"]["userPrincipalName"] == f"o'brien@{dom}"


def test_lookups_go_all_at_once_not_four_batches_at_a_time(sandbox_factory, caplog):
    # 3,000 UPNs: 200 filters in 10 $batch requests; 4 at a time they took 3 round trips, now one
    sb = sandbox_factory(latency_ms=(400, 0))
    with client_for(sb) as client:
        client.domains()  # the token, and a connection
        before = sb.stats()["requests"]
        start = time.perf_counter()
        found = client.find_users_by_upn([f"nobody{i:05d}@contoso.com" for i in range(3000)])
        took = time.perf_counter() - start
    assert found == {}
    assert sb.stats()["requests"] - before == 10
    assert took < 2 * 0.4, took
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_stop_sends_no_new_chunks(sandbox):
    stop = threading.Event()
    with client_for(sandbox) as client:
        dom = domain(client)
        reqs = (BatchRequest(str(i), "POST", "/users", new_user(f"s{i}@{dom}")) for i in range(100))
        results = []

        def on_result(r):
            results.append(r)
            stop.set()

        client.run_batches(reqs, on_send=lambda c: None, on_result=on_result, stop=stop)
    assert 1 <= len(results) <= 20 * client.config.concurrency
    assert sandbox.stats()["users_created"] == len(results)


def test_next_link_outside_graph_is_refused(sandbox):
    with client_for(sandbox) as client, pytest.raises(Exception) as exc:
        client.transport.send_once("GET", "https://example.invalid/v1.0/users")
    assert str(exc.value).startswith("refusing to follow a link outside")


def test_lost_read_batches_are_retried(sandbox_factory):
    sb = sandbox_factory(faults={"lost": 0.5}, seed=3)
    with client_for(sb) as client:
        for _ in range(4):
            assert client.find_users_by_upn(["nobody@contoso.com"]) == {}
    assert sb.stats()["requests"] > sb.stats()["by_status"].get("200", 0)  # some answers were lost, then re-asked


def test_single_write_with_5xx_is_ambiguous_and_sent_once(sandbox_factory):
    from graph.errors import ServiceUnavailableError

    sb = sandbox_factory(faults={"503": 1.0})
    with client_for(sb) as client:
        client.token()
        before = sb.stats()["requests"]
        with pytest.raises(ServiceUnavailableError) as exc:
            client.request("POST", "/users", json=new_user("once@contoso.com"))
    assert exc.value.ambiguous and exc.value.status == 503 and exc.value.code == "Request_ThrottledTemporarily"
    assert sb.stats()["requests"] - before == 1


def test_refused_credentials_end_every_item_at_once_without_backoff(sandbox):
    # a revoked secret is not transient: no sleeping through the retry budget, nothing sent, nothing ambiguous
    sleep = RecordingSleep()
    with client_for(sandbox, secret="not-the-secret", sleep=sleep) as client:
        answers = client.send_batch([BatchRequest(str(i), "POST", "/users", new_user(f"r{i}@contoso.com"))
                                     for i in range(3)])
    assert [(a.attempts, a.ambiguous, a.error.code) for a in answers] == [(1, False, "AADSTS7000215")] * 3
    assert type(answers[0].error).__name__ == "AuthError"
    assert sleep.calls == []
    assert sandbox.stats()["writes"] == 0


def test_every_item_carries_the_batch_request_id(sandbox):
    with client_for(sandbox) as client:
        ok, bad = client.send_batch([BatchRequest("a", "POST", "/users", new_user("rid.ok@contoso.com")),
                                     BatchRequest("b", "GET", "/users/nobody@contoso.com")])
    assert ok.status == 201 and bad.status == 404
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", ok.headers["request-id"])
    assert bad.error.request_id  # an error item keeps its own innerError request-id


@pytest.mark.slow  # waits a real Retry-After and a token expiry
def test_expired_token_after_a_throttled_attempt_is_renewed_not_fatal(sandbox_factory):
    # An item refused once (429), then sent again with a token that expired meanwhile: Graph answers the batch 401.
    # The item must be re-sent with a fresh token, however many attempts it had before.
    sb = sandbox_factory(token_lifetime=1, write_quota=(1, 2))
    frozen = lambda: 1_000_000.0  # the client believes its token fresh; the sandbox knows better  # noqa: E731
    with client_for(sb, token_clock=frozen) as client:
        answers = client.send_batch([BatchRequest(str(i), "POST", "/users", new_user(f"exp{i}@contoso.com"))
                                     for i in range(2)])
    assert [a.status for a in answers] == [201, 201]
    assert max(a.attempts for a in answers) >= 3  # 429, then 401, then created
    assert sb.stats()["by_status"].get("401", 0) >= 1
    assert sb.stats()["users_created"] == 2
