"""Plan a run (pure): validated rows + a snapshot of the tenant -> one :class:`Action` per roster row.

No I/O here: the tenant snapshot is a mapping of the existing users found by UPN during pre-flight (or the
matches of :func:`provisioning.validation.people.match_existing`: by employeeId, else by UPN) and the rows' users
in Deleted users (:func:`provisioning.validation.people.match_deleted`), so the plan can be computed, tested and
shown (``--dry-run``) without a network.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from provisioning import codes
from provisioning.models import Issue, Severity
from provisioning.validation.people import BY_EMPLOYEE_ID, BY_UPN, DeletedMatch, TenantMatch, deleted_message


class ActionKind(str, Enum):
    """What the run will do with one roster row."""

    CREATE = "create"  # POST /users
    SKIP = "skip"  # a user with this UPN already exists (``--existing skip``, the default)
    UPDATE = "update"  # a user with this UPN exists and ``--existing update`` PATCHes what differs
    EXISTS = "exists"  # a user with this UPN already exists and ``--existing fail`` makes that a failure
    INVALID = "invalid"  # validation excluded the row; nothing is sent
    RESTORE = "restore"  # a user in Deleted users is this row's person and ``--restore-deleted`` brings it back


class ExistingMode(str, Enum):
    """``--existing``: what to do with a row whose UPN is already taken in the tenant."""

    SKIP = "skip"
    FAIL = "fail"
    UPDATE = "update"


class PlannedRow(Protocol):
    """What the plan needs from a validated row (``provisioning.validation.engine.UserRow`` satisfies it)."""

    @property
    def row(self) -> int: ...

    @property
    def fields(self) -> Mapping[str, Any]: ...

    @property
    def has_errors(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Action:
    """One roster row's planned action. ``user`` is the validated row (its password is never in a repr)."""

    row: int
    kind: ActionKind
    upn: str
    message: str = ""
    object_id: str = ""  # the existing user's id for SKIP/EXISTS/UPDATE, the deleted user's for RESTORE
    issues: tuple[Issue, ...] = ()
    user: Any = field(default=None, repr=False, compare=False)
    matched_by: str = ""  # how an existing user was matched: "employeeId" or "userPrincipalName"


@dataclass(frozen=True, slots=True)
class Plan:
    """The actions of a run, in roster order."""

    actions: tuple[Action, ...]
    existing_mode: ExistingMode = ExistingMode.SKIP

    def count(self, kind: ActionKind) -> int:
        """How many actions are of ``kind``."""
        return sum(1 for a in self.actions if a.kind is kind)

    @property
    def creates(self) -> tuple[Action, ...]:
        """The rows that will be sent."""
        return tuple(a for a in self.actions if a.kind is ActionKind.CREATE)

    def counts(self) -> dict[str, int]:
        """Number of actions per kind (every kind present, zeros included; ``restore`` only when there are any)."""
        counts = {k.value: self.count(k) for k in ActionKind}
        if not counts[ActionKind.RESTORE.value]:
            del counts[ActionKind.RESTORE.value]
        return counts


def upn_of(user: PlannedRow) -> str:
    """The row's userPrincipalName as it will be sent ('' when it has none)."""
    value = user.fields.get("userPrincipalName") if user.fields else None
    return str(value).strip() if value else ""


def _issue_text(issues: Sequence[Issue]) -> str:
    errors = [i for i in issues if i.severity is Severity.ERROR] or list(issues)
    return "; ".join(i.message for i in errors)


def make_plan(rows: Iterable[PlannedRow], existing: Mapping[str, Any], *,
              issues: Iterable[Issue] = (), existing_mode: ExistingMode | str = ExistingMode.SKIP,
              matches: Mapping[int, TenantMatch] | None = None, deleted: Mapping[int, DeletedMatch] | None = None,
              restore: bool = False, columns: Mapping[str, str] | None = None) -> Plan:
    """One action per row: INVALID (validation errors), SKIP/EXISTS/UPDATE (a tenant user is the row's person),
    RESTORE or INVALID (a deleted user is), else CREATE.

    ``existing`` maps lower-cased UPNs to the tenant's users (objects with an ``id``), as found by pre-flight;
    ``matches`` (row -> match), when given, replaces it. ``deleted``: row -> its user in Deleted users, restored
    with ``restore`` (``--restore-deleted``), else a ``user-deleted`` issue. ``columns``: field -> the roster's
    header, for the issues' column.
    ``issues`` are the validation's issues; each action carries those of its row (warnings included).
    """
    mode = ExistingMode(existing_mode)
    by_row: dict[int, list[Issue]] = {}
    for issue in issues:
        by_row.setdefault(issue.row, []).append(issue)
    actions: list[Action] = []
    for user in rows:
        upn = upn_of(user)
        row_issues = tuple(by_row.get(user.row, ()))
        if user.has_errors:
            actions.append(Action(user.row, ActionKind.INVALID, upn, _issue_text(row_issues), issues=row_issues,
                                  user=user))
            continue
        if matches is not None:
            match = matches.get(user.row)
        else:
            found = existing.get(upn.lower()) if upn else None
            match = TenantMatch(found, BY_UPN) if found is not None else None
        if match is not None:
            actions.append(_existing_action(user, upn, match, mode, row_issues, columns or {}))
            continue
        gone = (deleted or {}).get(user.row)
        if gone is not None and restore:
            actions.append(Action(user.row, ActionKind.RESTORE, upn,
                                  f"restored from Deleted users (deleted {gone.user.deleted}; matched by {gone.by})",
                                  gone.user.id, row_issues, user))
            continue
        if gone is not None:
            issue = codes.issue(user.row, (columns or {}).get(gone.by, gone.by), "user-deleted", deleted_message(gone))
            actions.append(Action(user.row, ActionKind.INVALID, upn, issue.message, issues=(*row_issues, issue),
                                  user=user))
            continue
        actions.append(Action(user.row, ActionKind.CREATE, upn, "", "", row_issues, user))
    return Plan(tuple(actions), mode)


def _existing_action(user: PlannedRow, upn: str, match: TenantMatch, mode: ExistingMode,
                     row_issues: tuple[Issue, ...], columns: Mapping[str, str]) -> Action:
    """The action of a row matched to a tenant user: SKIP, UPDATE or EXISTS, saying how it was matched. Matched by
    employeeId to a user with another UPN: skipped as that UPN (with an ``employee-id-matched`` warning), or
    updated to the row's UPN."""
    found = match.user
    object_id = str(getattr(found, "id", "") or (found.get("id", "") if isinstance(found, Mapping) else ""))
    theirs = str(getattr(found, "userPrincipalName", "") or
                 (found.get("userPrincipalName", "") if isinstance(found, Mapping) else "") or upn)
    if match.by == BY_EMPLOYEE_ID:
        eid = str(user.fields.get("employeeId") or "").strip()
        how = f"matched by employeeId {eid!r}"
        if theirs.lower() != upn.lower():
            how += f" to {theirs} (the row's userPrincipalName is {upn!r})"
            row_issues = (*row_issues, codes.issue(
                user.row, columns.get("employeeId", "employeeId"), "employee-id-matched",
                f"employeeId {eid!r} belongs to {theirs} in the tenant; the row is matched to that user "
                f"(skipped, or renamed to {upn!r} and updated with --existing update)"))
        skip = f"a user with this employeeId already exists ({how})"
    else:
        how, skip = "matched by userPrincipalName", "a user with this userPrincipalName already exists " \
                                                    "(matched by userPrincipalName)"
    if mode is ExistingMode.UPDATE:
        return Action(user.row, ActionKind.UPDATE, upn, "", object_id, row_issues, user, match.by)
    if mode is ExistingMode.SKIP:
        return Action(user.row, ActionKind.SKIP, theirs, skip, object_id, row_issues, user, match.by)
    message = ("a user with this userPrincipalName already exists (--existing fail)" if match.by == BY_UPN
               else f"{skip[:-1]}; --existing fail)")
    return Action(user.row, ActionKind.EXISTS, theirs, message, object_id, row_issues, user, match.by)


def upn_renames(plan: Plan) -> dict[int, dict[str, str]]:
    """The rows updated to a user matched by employeeId: their userPrincipalName is compared (and PATCHed) too."""
    return {a.row: {"userPrincipalName": a.upn} for a in plan.actions
            if a.kind is ActionKind.UPDATE and a.matched_by == BY_EMPLOYEE_ID and a.upn}
