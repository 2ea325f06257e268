"""The reconcile wait of the create engine over real HTTPS, on an injected clock: a create answered "already exists"
whose user a lookup cannot see yet (replication lag) is looked up again with a growing pause, for at most
``conflict_lookup_s``, without the test waiting those 30 s."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from provisioning.run.creates import ApplyEngine, CreateItem
from provisioning.store.journal import Journal, RowSeed, RowState
from tests.followups.conftest import graph, precreate
from tests.helpers.fake_time import FakeTime

HOUR_MS = 3_600_000  # replication lag no test outlives: a new user stays invisible to lookups
UPN = "taken@contoso.com"
BODY = {"accountEnabled": True, "displayName": "Taken Again", "mailNickname": "taken", "userPrincipalName": UPN,
        "passwordProfile": {"password": "Xy9!kq2#Lm7z", "forceChangePasswordNextSignIn": True}}


def _create_taken(sb: Any, run_dir: Path, fake: FakeTime) -> tuple[Any, Any]:
    """Send one create for a UPN that already exists; return the engine's result and the journal's record."""
    run_dir.mkdir()
    with Journal.create(run_dir, {}) as journal, graph(sb) as client:
        journal.add_rows([RowSeed(row=2, upn=UPN, action="create", state=RowState.PENDING, password_source="roster",
                                  body=BODY, display_name="Taken Again")])
        engine = ApplyEngine(client, journal, sleep=fake.sleep, clock=fake.clock)
        result = engine.run([CreateItem(2, UPN, BODY)])
        return result, journal.get(2)


def test_existing_user_never_visible_ends_unknown_after_the_lookup_budget(sandbox_factory: Any,
                                                                          tmp_path: Path) -> None:
    sb = sandbox_factory(replication_lag_ms=HOUR_MS)
    precreate(sb, UPN, "Taken")
    fake = FakeTime()
    result, record = _create_taken(sb, tmp_path / "run", fake)
    # lookups at 0, 0.25, 0.75, 1.75, 3.75, then every 4 s; the one at 31.75 s is past the 30 s budget
    assert fake.sleeps == [0.25, 0.5, 1.0, 2.0] + [4.0] * 7
    assert (result.unknown, result.created, result.skipped, result.fatal) == (1, 0, 0, None)
    assert record.state is RowState.UNKNOWN
    assert record.message == ("Graph says the user exists but a lookup by userPrincipalName did not find it yet; "
                              "resume to check again")
    assert sb.stats()["users_created"] == 1  # only the pre-existing user


def test_existing_user_found_once_replicated_is_skipped(sandbox_factory: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(replication_lag_ms=HOUR_MS)
    existing = precreate(sb, UPN, "Taken")

    def replicate(n: int) -> None:
        if n == 2:  # the replicas catch up during the second pause
            sb.set_knobs(replication_lag_ms=0)

    fake = FakeTime(replicate)
    result, record = _create_taken(sb, tmp_path / "run", fake)
    assert fake.sleeps == [0.25, 0.5]
    assert (result.skipped, result.unknown, result.created) == (1, 0, 0)
    assert (record.state, record.object_id) == (RowState.SKIPPED, existing)
    assert sb.stats()["users_created"] == 1
