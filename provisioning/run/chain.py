"""A person is bound to one account across a chain of runs (``run`` -> ``retry`` -> ``retry`` ...).

A roster row whose user a run of the chain created is bound to that object id for ever: a later ``retry`` never
creates for it again. Its cells, as edited in the Failed/Invalid sheet, are compared with the body it was created
with: an edited property is a PATCH of the bound object (``--existing update``) or an issue, never a new create;
a derived userPrincipalName is not derived again (an edited surname would give another one). Rows that are not
bound are checked for duplicates against the rows the chain created, which are not in the retry's roster.

:func:`read_chain` reads what an earlier run knows (its journal, with the bindings it inherited);
:func:`bind_validation` and :func:`bind_plan` are pure and used by ``run`` when it runs a retry roster, with
:func:`tenant_employee_ids` (the tenant's users holding the retry rows' employeeIds).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.batch import BatchRequest
from graph.errors import NotFoundError
from provisioning import codes
from provisioning.models import Issue, Severity, Validation
from provisioning.run.plan import Action, ActionKind, Plan, upn_of
from provisioning.run.updates import desired, diff
from provisioning.store.folder import RunFolder
from provisioning.store.journal import Binding, Journal, RowRecord, RowState
from provisioning.store.records import Change, FollowUpSeed, FollowUpState
from provisioning.validation.tenant import find_by_employee_id

if TYPE_CHECKING:
    from graph.client import GraphClient

#: The issue codes of a retry's chain (registered in :mod:`provisioning.validation.rules`).
CODES = ("retry-bound-edited", "retry-bound-missing", "retry-password-lost", "retry-formula-empty")
#: Warnings about a derived UPN that do not apply once the UPN is the bound account's.
_DERIVED_UPN_NOTES = frozenset({"upn-suffixed", "user-exists"})
#: The keys a person must not share with another row, as validation checks them within one file.
_KEYS = (("userPrincipalName", "duplicate-upn", True), ("mailNickname", "duplicate-mail-nickname", True),
         ("employeeId", "duplicate-employee-id", False))


@dataclass(frozen=True)
class Chain:
    """What a retry knows of the runs before it: the rows bound to accounts, and the issues found while the retry
    roster was built (a lost password, a formula without a value), by roster row."""

    bindings: Mapping[int, Binding] = field(default_factory=dict)
    issues: Sequence[Issue] = ()
    done_followups: frozenset[tuple[int, str, str]] = frozenset()  # (row, kind, target lower-case) already done
    meta: Mapping[str, Any] = field(default_factory=dict)  # recorded in the new journal under "retry"


@dataclass(frozen=True, slots=True)
class Parent:
    """An earlier run as a retry sees it."""

    run_dir: Path
    meta: Mapping[str, Any]
    records: Mapping[int, RowRecord]
    bindings: Mapping[int, Binding]  # inherited and created by this run
    unfinished: frozenset[int]  # rows whose follow-ups failed or are still pending
    done_followups: frozenset[tuple[int, str, str]]
    issues: Mapping[int, Sequence[Issue]] = field(default_factory=dict)  # its validation issues by roster row


def read_chain(run_dir: Path) -> Parent | None:
    """The earlier run of ``run_dir`` (None when it holds no journal)."""
    if not RunFolder(run_dir).journal.is_file():
        return None
    with Journal.open(run_dir) as journal:
        records = {r.row: r for r in journal.rows()}
        bindings = dict(journal.bindings())
        for r in records.values():
            if r.state is RowState.CREATED and r.object_id:
                bindings[r.row] = Binding(r.row, r.object_id, r.upn, str(r.body.get("mailNickname") or ""),
                                          str(r.body.get("employeeId") or ""), str(run_dir.resolve()), r.body)
            elif r.state is RowState.UPDATED and r.row in bindings:
                # the edits PATCHed onto the bound account are what the account now holds: no longer edits
                b = bindings[r.row]
                body = {**b.body, **r.body}
                bindings[r.row] = replace(b, upn=r.upn or b.upn, body=body,
                                          mail_nickname=str(body.get("mailNickname") or ""),
                                          employee_id=str(body.get("employeeId") or ""))
        view = journal.followup_view()
        unfinished = frozenset(row for row, (state, _) in view.items()
                               if state in (FollowUpState.FAILED, FollowUpState.PENDING))
        done = frozenset((f.row, f.kind, f.target.lower()) for f in journal.followups([FollowUpState.DONE]))
        return Parent(run_dir, journal.meta(), records, bindings, unfinished, done, journal.issues())


def bind_validation(validation: Validation, chain: Chain, *, update: bool, header_of: Mapping[str, str],
                    held: Mapping[str, str] | None = None) -> tuple[Validation, dict[int, list[Any]]]:
    """Apply the chain to the validated retry rows (pure); return them and the edits of each bound row.

    A bound row keeps its account's userPrincipalName (and mailNickname) where they were derived; an edited
    property is an issue unless ``update`` (then it is returned, to be PATCHed on the bound object). A row that is
    not bound must not share a key with a row the chain created, nor an employeeId with another user of the
    tenant (``held``: employeeId -> the UPN of a tenant user holding it, see :func:`tenant_employee_ids`).
    ``header_of``: canonical field -> roster header.
    """
    issues = [i for i in validation.issues if not (i.row in chain.bindings and i.code in _DERIVED_UPN_NOTES)]
    issues.extend(chain.issues)
    bad = {i.row for i in chain.issues if i.severity is Severity.ERROR}
    taken = _taken(chain.bindings.values())
    rows = []
    edits: dict[int, list[Any]] = {}
    for user in validation.rows:
        bound = chain.bindings.get(user.row)
        if bound is not None:
            user = _keep_identity(user, bound)
            if not user.has_errors:
                changes = _edits(user, bound)
                if changes and not update:
                    issues.append(_edited_issue(user.row, bound, changes, header_of))
                    bad.add(user.row)
                elif changes:
                    edits[user.row] = changes
        elif not user.has_errors:
            for name, code, folded in _KEYS:
                if name in user.derived and name != "userPrincipalName":
                    continue  # a mailNickname derived from the UPN: the UPN is checked
                value = str(user.fields.get(name) or "").strip()
                other = taken[name].get(value.lower() if folded else value) if value else None
                column = header_of.get(name, name)
                holder = (held or {}).get(value, "") if name == "employeeId" and value else ""
                if other is not None and other.row != user.row:
                    issues.append(codes.issue(user.row, column, code,
                                              f"{column} {value!r} is already used by roster row {other.row}, "
                                              f"created as {other.upn} by the run {other.run}; each user needs "
                                              f"their own"))
                    bad.add(user.row)
                elif holder and holder.lower() != upn_of(user).lower():
                    # another account has it (created by a retry this chain does not know of, or by hand)
                    issues.append(codes.issue(user.row, column, code,
                                              f"{column} {value!r} already belongs to {holder} in the tenant; "
                                              f"each user needs their own"))
                    bad.add(user.row)
        if user.row in bad and not user.has_errors:
            user = replace(user, has_errors=True)
        rows.append(user)
    return Validation(tuple(rows), tuple(sorted(issues, key=lambda i: i.row))), edits


def tenant_employee_ids(client: GraphClient, values: Iterable[str]) -> dict[str, str]:
    """employeeId -> the UPN of a tenant user holding it, among ``values`` (see
    :func:`provisioning.validation.tenant.find_by_employee_id`, which pre-flight's employeeId matching uses too)."""
    return {e: u.userPrincipalName for e, u in find_by_employee_id(client, values).items()}


def _taken(bindings: Iterable[Binding]) -> dict[str, dict[str, Binding]]:
    out: dict[str, dict[str, Binding]] = {name: {} for name, _, _ in _KEYS}
    for b in bindings:
        for name, value in (("userPrincipalName", b.upn.lower()), ("mailNickname", b.mail_nickname.lower()),
                            ("employeeId", b.employee_id)):
            if value:
                out[name].setdefault(value, b)
    return out


def _keep_identity(user: Any, bound: Binding) -> Any:
    """The bound account's UPN and mailNickname in place of derived ones (derived again, they could differ)."""
    derived = set(user.derived or ())
    fields = dict(user.fields)
    if "userPrincipalName" in derived or not fields.get("userPrincipalName"):
        fields["userPrincipalName"] = bound.upn
    if "mailNickname" in derived and bound.body.get("mailNickname"):
        fields["mailNickname"] = bound.body["mailNickname"]
    return replace(user, fields=fields)


def _edits(user: Any, bound: Binding) -> list[Any]:
    """The row's properties that differ from those its account was created with (derived ones excluded)."""

    _, changes = diff(user.row, desired(user), bound.body)
    upn = upn_of(user)
    if upn and upn.lower() != bound.upn.lower():
        changes.insert(0, Change(user.row, "userPrincipalName", bound.upn, upn))
    return changes


def _edited_issue(row: int, bound: Binding, changes: Sequence[Any], header_of: Mapping[str, str]) -> Issue:
    names = [header_of.get(c.property.partition(".")[2] or c.property, c.property) for c in changes]
    names = list(dict.fromkeys(names))
    what = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    plural = "were" if len(names) > 1 else "was"
    return codes.issue(row, names[0], "retry-bound-edited",
                       f"row {row} was created as {bound.upn} by the run {bound.run}; its {what} {plural} edited; "
                       f"use --existing update to change the account, or undo the edit")


def bound_accounts(client: GraphClient, chain: Chain, rows: Iterable[int]) -> dict[int, str]:
    """Row -> the current userPrincipalName of its bound account, for the bound ``rows`` whose account is still in
    the tenant (GET by object id, batched: an account renamed since is still the row's)."""

    reqs = [BatchRequest(str(row), "GET", f"/users/{chain.bindings[row].object_id}?$select=id,userPrincipalName")
            for row in sorted(set(rows)) if row in chain.bindings]
    found: dict[int, str] = {}
    for answer in client.send_batch(reqs) if reqs else ():
        if isinstance(answer.error, NotFoundError):
            continue
        if answer.error is not None:
            raise answer.error
        found[int(answer.id)] = str((answer.body or {}).get("userPrincipalName") or "")
    return found


def bind_plan(plan: Plan, chain: Chain, present: Mapping[int, str], edits: Mapping[int, Sequence[Any]]) -> Plan:
    """Bound rows act on their account (pure): SKIP (its follow-ups go again) or, with edits, UPDATE; never CREATE
    or EXISTS. A bound account that is not in the tenant any more (``present``: see :func:`bound_accounts`) makes
    the row invalid."""
    actions: list[Action] = []
    for a in plan.actions:
        bound = chain.bindings.get(a.row)
        if bound is None or a.kind is ActionKind.INVALID:
            actions.append(a)
            continue
        if a.row not in present:
            issue = codes.issue(a.row, "", "retry-bound-missing",
                                f"row {a.row} was created as {bound.upn} (object id {bound.object_id}) by the run "
                                f"{bound.run}, but the tenant has no such user now; restore it from Deleted users "
                                f"and retry again (a new account is not created for a row that had one)")
            actions.append(replace(a, kind=ActionKind.INVALID, message=issue.message, object_id="",
                                   issues=(*a.issues, issue)))
        elif a.row in edits:
            actions.append(replace(a, kind=ActionKind.UPDATE, object_id=bound.object_id, message=""))
        else:
            actions.append(replace(a, kind=ActionKind.SKIP, object_id=bound.object_id,
                                   message=f"created by the run {bound.run}; only its unfinished follow-ups are "
                                           f"sent again"))
    return Plan(tuple(actions), plan.existing_mode)


def renames(edits: Mapping[int, Sequence[Any]]) -> dict[int, dict[str, str]]:
    """The edited userPrincipalNames of bound rows, to be PATCHed with the rest (``--existing update``)."""
    return {row: {"userPrincipalName": c.new} for row, changes in edits.items() for c in changes
            if c.property == "userPrincipalName"}


def drop_done(seeds: Iterable[FollowUpSeed], chain: Chain) -> list[FollowUpSeed]:
    """The follow-ups to send: those of bound rows that an earlier run already did are left out."""
    done = chain.done_followups
    return [s for s in seeds if (s.row, s.kind, s.target.lower()) not in done]
