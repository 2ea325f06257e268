"""``run`` end to end against the sandbox over real HTTPS: exact per-row statuses, dry run, faults, throttling,
short-lived tokens, fatal permission errors; journal == results.csv == tenant."""
from __future__ import annotations

import stat
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from provisioning.exitcodes import ExitStatus
from provisioning.store.journal import Journal, RowState

from .conftest import HEADER, read_results, tenant_users, write_roster

MIXED = HEADER + "".join([
    "Ada,Lovelace,Ada Lovelace,ada.lovelace@contoso.com,,E1\n",               # 2 create (generated password)
    "Alan,Turing,,alan.turing@contoso.com,Tur1ng!Machine-x,E2\n",              # 3 create (roster password)
    "Bad,Domain,Bad Domain,bad.domain@unverified.contoso.net,,E3\n",           # 4 invalid: unverified domain
    "Fed,User,Fed User,fed.user@federated.contoso.com,,E4\n",                  # 5 invalid: federated domain
    "Old,Timer,Old Timer,old.timer@contoso.com,,E5\n",                         # 6 skip: exists in the tenant
    "Grace,Hopper,Grace Hopper,,,E6\n",                                        # 7 create, UPN derived
    "Weak,Pw,Weak Pw,weak.pw@contoso.com,abc,E7\n",                            # 8 invalid: weak password
    "Dup,Licate,Dup Licate,ada.lovelace@contoso.com,,E8\n",                    # 9 invalid: duplicate UPN in file
])


def _precreate(sb: Any, upn: str) -> str:
    from provisioning.api import make_client
    from provisioning.settings import load_settings

    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sb.env())
    with make_client(settings) as client:
        resp = client.request("POST", "/users", json={
            "accountEnabled": True, "displayName": "Old Timer", "mailNickname": "old.timer",
            "userPrincipalName": upn, "passwordProfile": {"password": "Pre-Existing-9x"}})
        return resp.json()["id"]


def test_mixed_roster_exact_statuses_then_all_skipped(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    old_id = _precreate(sandbox, "old.timer@contoso.com")
    roster = tmp_path / "mixed.csv"
    roster.write_text(MIXED, encoding="utf-8")
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "run1", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, err
    res = read_results(tmp_path / "run1")
    assert {r: v["status"] for r, v in res.items()} == {
        2: "created", 3: "created", 4: "invalid", 5: "invalid", 6: "skipped", 7: "created", 8: "invalid",
        9: "invalid"}
    assert res[6]["objectId"] == old_id
    assert res[7]["userPrincipalName"] == "grace.hopper@contoso.com"
    assert res[4]["errorCode"] and res[8]["errorCode"] and res[9]["errorCode"]
    assert "created 3, skipped 1" in out and "invalid 4" in out

    # journal == results.csv == tenant
    users = tenant_users(sandbox)
    with Journal.open(tmp_path / "run1") as j:
        for rec in j.rows():
            assert res[rec.row]["objectId"] == rec.object_id
            if rec.state is RowState.CREATED:
                assert users[rec.upn.lower()]["id"] == rec.object_id
    assert set(users) == {"old.timer@contoso.com", "ada.lovelace@contoso.com", "alan.turing@contoso.com",
                          "grace.hopper@contoso.com"}
    assert sandbox.stats()["users_created"] == 4  # 3 by the run + the pre-existing one

    # secrets: generated passwords only in passwords.csv (0600); the roster password nowhere
    pw = tmp_path / "run1" / "passwords.csv"
    assert stat.S_IMODE(pw.stat().st_mode) == 0o600
    lines = pw.read_text().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["row", "2", "7"]
    generated = [ln.split(",", 2)[2] for ln in lines[1:]]
    for name in ("journal.sqlite", "results.csv", "summary.json", "run.log"):
        data = (tmp_path / "run1" / name).read_bytes()
        assert b"Tur1ng!Machine-x" not in data
        assert not any(g.encode() in data for g in generated), name

    # second run: nothing to create
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "run2", "--no-progress")
    res2 = read_results(tmp_path / "run2")
    assert {r for r, v in res2.items() if v["status"] == "skipped"} == {2, 3, 6, 7}
    assert sandbox.stats()["users_created"] == 4
    assert not (tmp_path / "run2" / "passwords.csv").exists()


def test_dry_run_sends_no_write(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "r.csv", 30)
    before = sandbox.stats()["writes"]
    code, out, _ = cli(sandbox, "run", roster, "--dry-run", "--out", tmp_path / "dry")
    assert code == ExitStatus.OK
    assert sandbox.stats()["writes"] == before == 0 and sandbox.stats()["users"] == 0
    assert {v["status"] for v in read_results(tmp_path / "dry").values()} == {"would create"}
    assert "would create 30" in out
    assert not (tmp_path / "dry" / "passwords.csv").exists()


@pytest.mark.slow
def test_faults_end_with_no_duplicates_and_no_spurious_failures(sandbox_factory: Any, cli: Any,
                                                               tmp_path: Path) -> None:
    sb = sandbox_factory(faults={"503": 0.08, "reset": 0.04, "lost": 0.08}, replication_lag_ms=300,
                         latency_ms=(5, 3), seed=7)
    roster = write_roster(tmp_path / "r.csv", 200)
    code, _, err = cli(sb, "run", roster, "--out", tmp_path / "run", "--max-writes-per-s", "400")
    assert code == ExitStatus.OK, err
    res = read_results(tmp_path / "run")
    assert {v["status"] for v in res.values()} == {"created"}
    ids = {v["objectId"] for v in res.values()}
    stats = sb.stats()
    assert len(ids) == 200 and stats["users"] == 200 and stats["users_created"] == 200
    assert sum(stats["faults"].values()) > 0, stats  # the faults did happen
    time.sleep(0.4)  # replication lag: the newest users are not readable yet
    users = tenant_users(sb)
    assert {u["id"] for u in users.values()} == ids


@pytest.mark.slow  # waits out real Retry-After; tests/graph/test_governor.py covers the steering on a fake clock
def test_throttled_run_completes(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    # 10 writes/s allowed (bucket of 20), the client asks for 40/s: some items get 429 and are retried.
    sb = sandbox_factory(write_quota=(20, 2), latency_ms=(10, 5), seed=3)
    roster = write_roster(tmp_path / "r.csv", 40)
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "run", "--max-writes-per-s", "40")
    assert code == ExitStatus.OK, err
    stats = sb.stats()
    assert stats["throttled"] > 0 and stats["users_created"] == 40 == stats["users"]
    assert {v["status"] for v in read_results(tmp_path / "run").values()} == {"created"}


@pytest.mark.slow
def test_token_lifetime_shorter_than_the_run(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(token_lifetime=20, latency_ms=(10, 5), seed=4)
    roster = write_roster(tmp_path / "r.csv", 230)
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "run", "--max-writes-per-s", "10")
    assert code == ExitStatus.OK, err
    stats = sb.stats()
    assert stats["users_created"] == 230 and stats["token_requests"] >= 2, stats
    assert {v["status"] for v in read_results(tmp_path / "run").values()} == {"created"}


class AdvancingTime:
    """Simulated time shared by the tool's token clock and the sandbox's: each chunk sent moves both on by the
    time its creates take at ``per_s`` users per second, so a run outlives its tokens without waiting."""

    def __init__(self, sb: Any, client: Any, per_s: float) -> None:
        self.sb, self.client, self.per_s = sb, client, per_s
        self.offset = 0.0

    def token_clock(self) -> float:
        return time.time() + self.offset

    def run_batches(self, requests: Any, *, on_send: Any, **kw: Any) -> Any:
        def advance(chunk: Any) -> None:
            on_send(chunk)
            self.offset += len(chunk) / self.per_s
            self.sb.set_knobs(clock_offset_s=self.offset)

        return self.client.run_batches(requests, on_send=advance, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_token_lifetime_shorter_than_the_run_on_a_simulated_clock(sandbox_factory: Any, tmp_path: Path) -> None:
    """The behaviour of the real-time test above in simulated time: 230 creates at 10 users/s take 23 s, the
    tokens last 20 s; the held token is renewed before the sandbox would refuse it."""
    from graph.client import GraphClient
    from provisioning.run.client import graph_config
    from provisioning.run.creates import ApplyEngine, CreateItem
    from provisioning.settings import load_settings
    from provisioning.store.journal import RowSeed

    sb = sandbox_factory(token_lifetime=20, seed=4)
    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sb.env())
    config = graph_config(settings)
    fast = replace(config, governor=replace(config.governor, rate_per_s=1000.0, burst=100.0))  # no real pacing
    bodies = {r: {"accountEnabled": True, "displayName": f"U {r}", "mailNickname": f"u{r}",
                  "userPrincipalName": f"u{r}@contoso.com",
                  "passwordProfile": {"password": f"Xy9!kq2#Lm7z-{r}", "forceChangePasswordNextSignIn": True}}
              for r in range(2, 232)}
    holder: list[AdvancingTime] = []
    (tmp_path / "run").mkdir()
    with Journal.create(tmp_path / "run", {}) as journal, \
            GraphClient(fast, token_clock=lambda: holder[0].token_clock()) as client:
        holder.append(AdvancingTime(sb, client, per_s=10))
        journal.add_rows([RowSeed(row=r, upn=b["userPrincipalName"], action="create", state=RowState.PENDING,
                                  password_source="roster", body=b) for r, b in bodies.items()])
        result = ApplyEngine(holder[0], journal).run([CreateItem(r, b["userPrincipalName"], b)
                                                      for r, b in bodies.items()])
        states = {rec.state for rec in journal.rows()}
    assert holder[0].offset == pytest.approx(23.0)  # the run lasted 23 s by both clocks
    assert (result.created, result.fatal) == (230, None) and states == {RowState.CREATED}
    stats = sb.stats()
    assert stats["users_created"] == 230
    # renewed once, 15 s in (a quarter of the lifetime before expiry), before any request carried an expired token
    assert stats["token_requests"] == 2 and "401" not in stats["by_status"], stats


def test_permission_denied_stops_cleanly_then_resume(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    read_only = ("User.Read.All", "Domain.Read.All", "Organization.Read.All")
    sb = sandbox_factory(roles=read_only)
    roster = write_roster(tmp_path / "r.csv", 50)
    code, _, err = cli(sb, "run", roster, "--out", tmp_path / "run")
    assert code == ExitStatus.CONFIG, err
    assert "Insufficient privileges" in err or "403" in err
    assert "to continue: python provision.py resume" in err
    with Journal.open(tmp_path / "run") as j:
        counts = j.counts()
    assert counts == {"pending": 50}, counts
    assert sb.stats()["users_created"] == 0

    from sandbox.config import DEFAULT_ROLES

    sb.set_knobs(roles=DEFAULT_ROLES)
    code, out, err = cli(sb, "resume", tmp_path / "run")
    assert code == ExitStatus.OK, err
    assert {v["status"] for v in read_results(tmp_path / "run").values()} == {"created"}
    assert sb.stats()["users_created"] == 50
    assert len((tmp_path / "run" / "passwords.csv").read_text().splitlines()) == 51


def test_sample_roster_with_in_process_sandbox_twice(cli: Any, tmp_path: Path) -> None:
    """The README's first command: the sample users are created, and skipped the second time."""
    sample = Path(__file__).resolve().parents[2] / "samples" / "roster.csv"

    class NoEnv:
        @staticmethod
        def env() -> dict[str, str]:
            return {}

    sbdir = tmp_path / "sbstate"
    code, out, err = cli(NoEnv, "run", sample, "--sandbox", "--sandbox-dir", sbdir, "--out", tmp_path / "a")
    assert code == ExitStatus.OK, err
    first = read_results(tmp_path / "a")
    assert first and {v["status"] for v in first.values()} == {"created"}
    code, out, err = cli(NoEnv, "run", sample, "--sandbox", "--sandbox-dir", sbdir, "--out", tmp_path / "b")
    assert code == ExitStatus.OK, err
    assert {v["status"] for v in read_results(tmp_path / "b").values()} == {"skipped"}


def test_the_token_prefetchs_retries_are_in_run_log(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    """``run`` asks for its token before run.log opens (TokenProvider.prefetch); the retries of that request are
    held and written to run.log once the run waits for the token, with the times they happened at."""
    sb = sandbox_factory(faults={"token500": 0.5}, seed=3)
    roster = write_roster(tmp_path / "r.csv", 3)
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    failed = sb.stats()["faults"]["token500"]
    assert failed >= 1 and sb.stats()["token_requests"] == failed + 1
    lines = (tmp_path / "run" / "run.log").read_text(encoding="utf-8").splitlines()
    retries = [line for line in lines if "graph.auth [token-prefetch] token endpoint of " in line]
    assert [line.rsplit("; ", 1)[1].split(" in ")[0] for line in retries] == [
        f"retry {n}" for n in range(1, failed + 1)]
    assert all("HTTP 500" in line for line in retries)
    # let out when the first read waited for the token: before that read's line, after run.log's first
    first = next(i for i, line in enumerate(lines) if " run " in line and "roster" in line)
    domains = next(i for i, line in enumerate(lines) if "tenant domains: verified" in line)
    assert first < lines.index(retries[0]) and lines.index(retries[-1]) < domains
