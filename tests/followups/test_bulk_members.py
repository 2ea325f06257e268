"""Group memberships in bulk against the sandbox: up to 20 new members of one group in one ``PATCH /groups/{id}``
(``members@odata.bind``), and the per-member fallback when such a request fails."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from provisioning.run.followups import apply_followups
from provisioning.store.journal import Journal, RowSeed, RowState
from provisioning.store.records import FollowUpSeed, FollowUpState

from .conftest import graph, members

GHOST = "99999999-2222-4333-8444-555555555555"  # no such user: a bad member


def _users(client: Any, n: int) -> list[str]:
    ids = []
    for i in range(n):
        upn = f"bulk{i}@contoso.com"
        resp = client.request("POST", "/users", json={
            "accountEnabled": True, "displayName": f"Bulk {i}", "mailNickname": f"bulk{i}",
            "userPrincipalName": upn, "passwordProfile": {"password": "Pre-Existing-9x"}})
        ids.append(str(resp.json()["id"]))
    return ids


def _journal(path: Path, ids: list[str], group: str, group_id: str) -> Journal:
    """A journal whose rows 2.. were created with ``ids`` and each wants ``group``."""
    path.mkdir()
    journal = Journal.create(path, {})
    journal.add_rows([RowSeed(i + 2, f"bulk{i}@contoso.com", "create", RowState.CREATED, object_id=uid)
                      for i, uid in enumerate(ids)])
    journal.add_followups([FollowUpSeed(i + 2, "group", group, group_id) for i in range(len(ids))])
    return journal


def test_25_members_of_one_group_go_in_two_patches(sandbox: Any, tmp_path: Path) -> None:
    group_id = sandbox.groups["Sales"]
    with graph(sandbox) as client:
        ids = _users(client, 25)
        before = sandbox.stats()
        with _journal(tmp_path / "run", ids, "Sales", group_id) as journal:
            counts = apply_followups(client, journal)
            recorded = journal.followups()
        after = sandbox.stats()
        assert members(client, group_id) == set(ids)
    assert counts == {"done": 25}
    assert [(f.row, f.state, f.http_status, f.attempts) for f in recorded] == \
        [(row, FollowUpState.DONE, 204, 1) for row in range(2, 27)]
    # 2 writes: PATCH with 20 members, PATCH with 5 (no members/$ref at all)
    assert after["writes"] - before["writes"] == 2
    assert after["members_added"] - before["members_added"] == 25
    assert after["batch_items"] - before["batch_items"] == 2


def test_a_20_member_patch_with_one_bad_and_one_existing_member_falls_back_per_member(sandbox: Any,
                                                                                     tmp_path: Path) -> None:
    group_id = sandbox.groups["Engineering"]
    with graph(sandbox) as client:
        ids = _users(client, 19)
        client.request("POST", f"/groups/{group_id}/members/$ref",
                       json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{ids[3]}"})
        before = sandbox.stats()
        with _journal(tmp_path / "run", [*ids[:10], GHOST, *ids[10:]], "Engineering", group_id) as journal:
            counts = apply_followups(client, journal, delays=(1.0,), budget_s=0.0)
            recorded = {f.row: f for f in journal.followups()}
        after = sandbox.stats()
        assert members(client, group_id) == set(ids)
    assert counts == {"done": 19, "failed": 1}
    ghost = recorded[12]  # row 12 holds the ghost
    assert (ghost.state, ghost.http_status, ghost.error_code) == (FollowUpState.FAILED, 404,
                                                                  "Request_ResourceNotFound")
    assert ghost.message.startswith(f"Resource '{GHOST}' does not exist") and ghost.attempts == 2
    existing = recorded[5]  # ids[3]: already a member before the run
    assert (existing.state, existing.http_status, existing.message) == (FollowUpState.DONE, 400, "already a member")
    others = [f for row, f in recorded.items() if row not in (5, 12)]
    assert len(others) == 18
    assert all((f.state, f.http_status, f.message, f.attempts) == (FollowUpState.DONE, 204, "", 2) for f in others)
    # one refused PATCH (all-or-nothing: nothing applied), then 20 members/$ref, each its own answer
    assert after["batch_items"] - before["batch_items"] == 21
    assert after["members_added"] - before["members_added"] == 18
