"""Pre-flight's people: match the valid rows to the tenant's users by employeeId (else by UPN), and find the rows
still to create among Deleted users. The reads are the tenant view's
(:meth:`provisioning.validation.tenant.GraphTenantView.look_up`, one wave of batched ``in`` filters for UPNs and
employeeIds, and :meth:`~provisioning.validation.tenant.GraphTenantView.deleted`); the matching is
:mod:`provisioning.validation.people` (pure); :func:`provisioning.run.plan.make_plan` turns it into actions.
"""
from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from provisioning.models import ExistingUser, Issue, UserRow
from provisioning.run.plan import upn_of
from provisioning.validation.people import (
    BY_UPN,
    DeletedMatch,
    TenantMatch,
    match_deleted,
    match_existing,
)

if TYPE_CHECKING:
    from provisioning.validation.tenant import GraphTenantView

log = logging.getLogger(__name__)


def employee_id(row: UserRow) -> str:
    """The row's employeeId as it is looked up and matched."""
    return str(row.fields.get("employeeId") or "").strip()


@dataclass(frozen=True, slots=True)
class People:
    """The rows (conflicting ones now with errors), the issues, and each row's match in the tenant and in Deleted
    users."""

    rows: list[UserRow]
    issues: list[Issue]
    matches: dict[int, TenantMatch]
    deleted: dict[int, DeletedMatch]


def match_people(tenant: GraphTenantView, rows: Sequence[UserRow], issues: Sequence[Issue],
                 existing: Mapping[str, ExistingUser], *, bound: Collection[int] = (),
                 columns: Mapping[str, str] | None = None) -> People:
    """Match ``rows`` (``existing``: the tenant's users by lower-case UPN, as pre-flight found them). Rows of a
    retry bound to their account (``bound``) are matched by UPN only: the chain decides what they are. ``columns``:
    field -> the roster's header. The employeeIds are looked up now unless an earlier
    :meth:`~provisioning.validation.tenant.GraphTenantView.look_up` asked for them with the UPNs."""
    bound = set(bound)
    valid = [r for r in rows if not r.has_errors and r.row not in bound]
    by_eid = tenant.look_up((), (employee_id(r) for r in valid))[1]
    matches, conflicts = match_existing(valid, existing, by_eid, columns=columns)
    for r in rows:
        found = existing.get(upn_of(r).lower()) if r.row in bound and upn_of(r) else None
        if found is not None:
            matches[r.row] = TenantMatch(found, BY_UPN)
    bad = {i.row for i in conflicts}
    out = [replace(r, has_errors=True) if r.row in bad else r for r in rows]
    new = [r for r in valid if r.row not in matches and r.row not in bad]
    gone = tenant.deleted(upns=(upn_of(r).lower() for r in new),
                          nicknames=(str(r.fields.get("mailNickname") or "").strip() for r in new),
                          employee_ids=(employee_id(r) for r in new)) if new else []
    deleted = match_deleted(new, gone)
    log.info("pre-flight people: %d matched (%d by employeeId), %d conflicts, %d of %d new rows in Deleted users",
             len(matches), sum(1 for m in matches.values() if m.by != BY_UPN), len(conflicts), len(deleted),
             len(new))
    return People(out, sorted([*issues, *conflicts], key=lambda i: i.row), matches, deleted)
