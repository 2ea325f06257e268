"""Plan a run (pure): validated rows + a snapshot of the tenant -> one :class:`Action` per roster row.

No I/O here: the tenant snapshot is a mapping of the existing users found by UPN during pre-flight, so the plan
can be computed, tested and shown (``--dry-run``) without a network.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from provisioning.models import Issue, Severity


class ActionKind(str, Enum):
    """What the run will do with one roster row."""

    CREATE = "create"  # POST /users
    SKIP = "skip"  # a user with this UPN already exists (``--existing skip``, the default)
    UPDATE = "update"  # a user with this UPN exists and ``--existing update`` PATCHes what differs
    EXISTS = "exists"  # a user with this UPN already exists and ``--existing fail`` makes that a failure
    INVALID = "invalid"  # validation excluded the row; nothing is sent


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
    object_id: str = ""  # the existing user's id for SKIP/EXISTS
    issues: tuple[Issue, ...] = ()
    user: Any = field(default=None, repr=False, compare=False)


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
        """Number of actions per kind (every kind present, zeros included)."""
        return {k.value: self.count(k) for k in ActionKind}


def upn_of(user: PlannedRow) -> str:
    """The row's userPrincipalName as it will be sent ('' when it has none)."""
    value = user.fields.get("userPrincipalName") if user.fields else None
    return str(value).strip() if value else ""


def _issue_text(issues: Sequence[Issue]) -> str:
    errors = [i for i in issues if i.severity is Severity.ERROR] or list(issues)
    return "; ".join(i.message for i in errors)


def make_plan(rows: Iterable[PlannedRow], existing: Mapping[str, Any], *,
              issues: Iterable[Issue] = (), existing_mode: ExistingMode | str = ExistingMode.SKIP) -> Plan:
    """One action per row: INVALID (validation errors), SKIP/EXISTS/UPDATE (the UPN is taken), else CREATE.

    ``existing`` maps lower-cased UPNs to the tenant's users (objects with an ``id``), as found by pre-flight.
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
        found = existing.get(upn.lower()) if upn else None
        if found is not None:
            object_id = str(getattr(found, "id", "") or (found.get("id", "") if isinstance(found, Mapping) else ""))
            if mode is ExistingMode.UPDATE:
                actions.append(Action(user.row, ActionKind.UPDATE, upn, "", object_id, row_issues, user))
            elif mode is ExistingMode.SKIP:
                actions.append(Action(user.row, ActionKind.SKIP, upn, "a user with this userPrincipalName "
                                      "already exists", object_id, row_issues, user))
            else:
                actions.append(Action(user.row, ActionKind.EXISTS, upn, "a user with this userPrincipalName "
                                      "already exists (--existing fail)", object_id, row_issues, user))
            continue
        actions.append(Action(user.row, ActionKind.CREATE, upn, "", "", row_issues, user))
    return Plan(tuple(actions), mode)
