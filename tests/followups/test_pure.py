"""Pure parts: reference checks (seats, cascading managers), follow-up planning, update diff."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioning.run.followups import plan_followups
from provisioning.run.plan import Action, ActionKind
from provisioning.run.updates import diff
from provisioning.store.records import Change
from provisioning.validation.references import Group, References, Sku, check_references


@dataclass(frozen=True)
class Row:
    row: int
    upn: str
    groups: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    manager: str | None = None
    has_errors: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


E3 = Sku("e3-id", "ENTERPRISEPACK", 1)
REFS = References(groups={"sales": (Group("g1", "Sales"),), "dup": (Group("a", "Dup"), Group("b", "Dup"))},
                  skus={"enterprisepack": E3, "e3-id": E3}, managers={"boss@x.com": "boss-id"},
                  held={"has@x.com": frozenset({"e3-id"})})


def test_seats_last_rows_refused_holders_need_none() -> None:
    rows = [Row(2, "has@x.com", licenses=("ENTERPRISEPACK",)), Row(3, "a@x.com", licenses=("e3-id",)),
            Row(4, "b@x.com", licenses=("ENTERPRISEPACK",)), Row(5, "c@x.com", licenses=("ENTERPRISEPACK",))]
    issues = check_references(rows, REFS, columns={"licenses": "Licences"})
    assert [(i.row, i.column, i.code) for i in issues] == [(4, "Licences", "license-seats"),
                                                           (5, "Licences", "license-seats")]
    assert issues[0].message.startswith("licence ENTERPRISEPACK: 1 seats free, 3 rows ask for it; rows 4, 5 ")


def test_manager_chain_cascades_and_ambiguous_group() -> None:
    rows = [Row(2, "a@x.com", groups=("Nope",)), Row(3, "b@x.com", manager="a@x.com"),
            Row(4, "c@x.com", manager="b@x.com"), Row(5, "d@x.com", manager="boss@x.com", groups=("Dup",)),
            Row(6, "e@x.com", manager="BOSS@x.com", groups=("sales",))]
    codes = {(i.row, i.code) for i in check_references(rows, REFS)}
    assert codes == {(2, "group-not-found"), (3, "manager-not-found"), (4, "manager-not-found"),
                     (5, "group-ambiguous")}


def test_plan_followups_manager_by_row_or_id() -> None:
    @dataclass(frozen=True)
    class U:
        groups: tuple[str, ...] = ()
        licenses: tuple[str, ...] = ()
        manager: str | None = None

    actions = [Action(2, ActionKind.CREATE, "a@x.com", user=U(groups=("Sales", "sales"), licenses=("e3-id",))),
               Action(3, ActionKind.SKIP, "b@x.com", user=U(manager="A@x.com")),
               Action(4, ActionKind.INVALID, "c@x.com", user=U(manager="a@x.com")),
               Action(5, ActionKind.CREATE, "d@x.com", user=U(manager="boss@x.com"))]
    seeds = [(s.row, s.kind, s.target, s.target_id, s.target_row) for s in plan_followups(actions, REFS)]
    assert seeds == [(2, "group", "Sales", "g1", None), (2, "license", "ENTERPRISEPACK", "e3-id", None),
                     (3, "manager", "A@x.com", "", 2), (5, "manager", "boss@x.com", "boss-id", None)]


def test_diff_only_what_differs() -> None:
    want = {"jobTitle": "Lead", "department": "R&D", "usageLocation": "gb", "businessPhones": ["+1 1"],
            "employeeHireDate": "2024-01-02T00:00:00Z", "employeeOrgData": {"division": "X", "costCenter": "1"}}
    have = {"jobTitle": "Dev", "department": "R&D", "usageLocation": "GB", "businessPhones": [],
            "employeeHireDate": "2024-01-02T00:00:00Z", "employeeOrgData": {"division": "X", "costCenter": "2"}}
    body, changes = diff(7, want, have)
    assert body == {"jobTitle": "Lead", "businessPhones": ["+1 1"],
                    "employeeOrgData": {"division": "X", "costCenter": "1"}}
    assert changes == [Change(7, "jobTitle", "Dev", "Lead"), Change(7, "businessPhones", "", "+1 1"),
                       Change(7, "employeeOrgData.costCenter", "2", "1")]


def test_reference_messages_exactly() -> None:
    rows = [Row(2, "a@x.com", groups=("Nope",)), Row(3, "b@x.com", groups=("Dup",)),
            Row(4, "c@x.com", licenses=("E9",)), Row(5, "d@x.com", manager="ghost@x.com"),
            Row(6, "e@x.com", has_errors=True), Row(7, "f@x.com", manager="e@x.com"),
            Row(8, "g@x.com", licenses=("ENTERPRISEPACK",)), Row(9, "h@x.com", licenses=("ENTERPRISEPACK",))]
    cols = {"groups": "Groups", "licenses": "Licences", "manager": "Manager"}
    found = [(i.row, i.column, i.code, i.message) for i in check_references(rows, REFS, columns=cols)]
    assert found == [
        (2, "Groups", "group-not-found", "group 'Nope' was not found in the tenant (by displayName or id); check "
                                         "the spelling or give the group's object id"),
        (3, "Groups", "group-ambiguous", "group 'Dup': 2 groups have this name (a, b); give the object id of the "
                                         "one you mean"),
        (4, "Licences", "license-not-found", "licence 'E9' is not a SKU of this tenant; use a part number or skuId "
                                             "that `provision.py check` lists"),
        (5, "Manager", "manager-not-found", "manager 'ghost@x.com' is neither a user in the tenant nor a row of this "
                                            "roster; fix the manager's userPrincipalName or clear the cell"),
        (7, "Manager", "manager-not-found", "manager 'e@x.com' is row 6 of this roster, which is invalid; fix the "
                                            "manager's userPrincipalName or clear the cell"),
        (9, "Licences", "license-seats", "licence ENTERPRISEPACK: 1 seats free, 2 rows ask for it; rows 9 cannot "
                                         "get one (the last rows in roster order) — buy seats or remove the licence "
                                         "from those rows"),
    ]
