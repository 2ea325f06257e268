"""plan: pure, one action per row."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from provisioning.models import Issue, Severity
from provisioning.run.plan import Action, ActionKind, ExistingMode, make_plan


@dataclass(frozen=True)
class Row:
    row: int
    fields: dict[str, Any] = field(default_factory=dict)
    has_errors: bool = False


@dataclass(frozen=True)
class Existing:
    id: str
    userPrincipalName: str


ROWS = [
    Row(2, {"userPrincipalName": "new@contoso.com"}),
    Row(3, {"userPrincipalName": "Old@Contoso.com"}),
    Row(4, {"userPrincipalName": "bad@unverified.contoso.net"}, has_errors=True),
    Row(5, {}, has_errors=True),
]
ISSUES = [Issue(4, "UPN", "upn.domain_unverified", Severity.ERROR, "domain not verified"),
          Issue(2, "Mail", "mail.odd", Severity.WARNING, "odd")]
EXISTING = {"old@contoso.com": Existing("id-old", "old@contoso.com")}


def test_one_action_per_row_in_order() -> None:
    plan = make_plan(ROWS, EXISTING, issues=ISSUES)
    assert [(a.row, a.kind) for a in plan.actions] == [
        (2, ActionKind.CREATE), (3, ActionKind.SKIP), (4, ActionKind.INVALID), (5, ActionKind.INVALID)]
    assert plan.actions[1].object_id == "id-old"
    assert plan.actions[2].message == "domain not verified"
    assert plan.actions[0].issues == (ISSUES[1],)  # warnings travel with the row
    assert plan.counts() == {"create": 1, "skip": 1, "update": 0, "exists": 0, "invalid": 2}
    assert [a.row for a in plan.creates] == [2]


def test_existing_fail_mode() -> None:
    plan = make_plan(ROWS, EXISTING, issues=ISSUES, existing_mode="fail")
    assert plan.actions[1].kind is ActionKind.EXISTS
    assert plan.existing_mode is ExistingMode.FAIL


def test_existing_may_be_mappings_and_plan_is_pure() -> None:
    existing = {"old@contoso.com": {"id": "x"}}
    a = make_plan(ROWS, existing)
    b = make_plan(ROWS, existing)
    assert a == b and a.actions[1].object_id == "x"
    with pytest.raises(ValueError):
        make_plan(ROWS, existing, existing_mode="update-everything")


def test_action_repr_hides_the_row() -> None:
    class Secret:
        password = "P@ssw0rd-very-secret"
    action = Action(2, ActionKind.CREATE, "a@b", user=Secret())
    assert "P@ssw0rd" not in repr(action)
