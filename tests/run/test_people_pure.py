"""The pure side of matching people (provisioning.validation.people, provisioning.run.plan): employeeId before UPN,
conflicts, Deleted users (namesakes are not matches, one row per deleted user, an object-id-prefixed UPN)."""
from __future__ import annotations

from provisioning.models import DeletedUser, ExistingUser, UserRow
from provisioning.run.plan import ActionKind, make_plan
from provisioning.validation.people import BY_EMPLOYEE_ID, BY_UPN, match_deleted, match_existing

ANN = ExistingUser("id-ann", "ann.lee@contoso.com", "Ann Lee", "E1")
CY = ExistingUser("id-cy", "cy@contoso.com", "Cy", "E2")


def _row(row: int, upn: str, eid: str = "", nick: str = "") -> UserRow:
    fields = {"userPrincipalName": upn, "displayName": upn.split("@")[0], "employeeId": eid,
              "mailNickname": nick or upn.split("@")[0]}
    return UserRow(row, fields, "")


def test_employee_id_wins_over_upn_and_a_split_is_a_conflict() -> None:
    rows = [_row(2, "ann.smith@contoso.com", "E1"), _row(3, "ann.lee@contoso.com", "E2"),
            _row(4, "cy@contoso.com"), _row(5, "new@contoso.com", "E9")]
    matches, issues = match_existing(rows, {"ann.lee@contoso.com": ANN, "cy@contoso.com": CY},
                                     {"E1": ANN, "E2": CY}, columns={"employeeId": "Employee ID"})
    assert {r: (m.user.id, m.by) for r, m in matches.items()} == {2: ("id-ann", BY_EMPLOYEE_ID),
                                                                   4: ("id-cy", BY_UPN)}
    assert [(i.row, i.column, i.code) for i in issues] == [(3, "Employee ID", "employee-id-conflict")]


def test_plan_skips_or_updates_a_user_matched_by_employee_id() -> None:
    rows = [_row(2, "ann.smith@contoso.com", "E1")]
    matches, _ = match_existing(rows, {}, {"E1": ANN})
    skip = make_plan(rows, {}, matches=matches).actions[0]
    assert (skip.kind, skip.upn, skip.object_id) == (ActionKind.SKIP, "ann.lee@contoso.com", "id-ann")
    assert [i.code for i in skip.issues] == ["employee-id-matched"]
    update = make_plan(rows, {}, matches=matches, existing_mode="update").actions[0]
    assert (update.kind, update.upn, update.matched_by) == (ActionKind.UPDATE, "ann.smith@contoso.com", "employeeId")


def test_deleted_users_match_the_person_not_a_namesake() -> None:
    old = DeletedUser("d-1", "ann.lee@contoso.com", "Ann Lee", "ann.lee", "E1", "2026-01-02T00:00:00Z")
    older = DeletedUser("d-0", "ann.lee@contoso.com", "Ann Lee", "ann.lee", "E1", "2025-12-01T00:00:00Z")
    prefixed = DeletedUser("0b1c-2d", "0b1c2dbo@contoso.com", "Bo", "bo", "", "2026-01-01T00:00:00Z")
    assert prefixed.upn == "bo@contoso.com"
    rows = [_row(2, "ann.lee@contoso.com", "E7"),   # a namesake: another employeeId
            _row(3, "annie@contoso.com", "E1"),     # the person, by employeeId
            _row(4, "ann.l@contoso.com", "", "ann.lee"),  # the same deleted user again: already claimed
            _row(5, "bo@contoso.com")]
    found = match_deleted(rows, [old, prefixed, older])
    assert {r: (m.user.id, m.by, m.value) for r, m in found.items()} == {
        3: ("d-1", "employeeId", "E1"), 5: ("0b1c-2d", "userPrincipalName", "bo@contoso.com")}
    plan = make_plan(rows, {}, deleted=found)
    assert [a.kind for a in plan.actions] == [ActionKind.CREATE, ActionKind.INVALID, ActionKind.CREATE,
                                              ActionKind.INVALID]
    assert [i.code for i in plan.actions[1].issues] == ["user-deleted"]
    restore = make_plan(rows, {}, deleted=found, restore=True)
    assert [(a.kind, a.object_id) for a in restore.actions if a.kind is ActionKind.RESTORE] == [
        (ActionKind.RESTORE, "d-1"), (ActionKind.RESTORE, "0b1c-2d")]
