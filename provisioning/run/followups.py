"""Follow-ups after the creates: group membership, licences, manager — planned (pure) and applied.

Planning (:func:`plan_followups`, pure): every row that ends with a user in the tenant (create, skip, update)
gets one follow-up per group, per licence and for its manager, with the ids pre-flight resolved
(:mod:`provisioning.validation.references`). A manager who is another row of the roster is referenced by row: its
id is only
known once its create answered.

Applying (:func:`apply_followups`): the journal's pending follow-ups of rows whose user exists go out after the
creates, through ``$batch`` (:class:`~provisioning.run.lagretry.LagRetrySender`: retried through replication lag):

- group: ``POST /groups/{id}/members/$ref`` (one per membership, so each row gets its own answer; the
  ``members@odata.bind`` bulk form is all-or-nothing and would blame 20 rows for one bad member); "already a
  member" counts as done;
- licence: ``POST /users/{id}/assignLicense`` with one SKU (re-assigning a held SKU is a success);
- manager: ``PUT /users/{id}/manager/$ref`` with ``users/{managerId}``; the manager's id comes from its create
  answer (or pre-flight when it already existed), never from a UPN.

**Rule for existing users**: on any run, a row whose user already exists (skipped, updated, or a ``retry`` of a
row whose follow-up failed) still gets the follow-ups the roster asks for; those already in place answer
"already a member" / succeed again and count as done. A follow-up that fails leaves the user as it is and the row
"created, follow-up failed" (it appears on the Failed sheet too, so ``retry`` re-runs it: the user is skipped as
existing, the follow-ups are sent again).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from provisioning.run.followup_journal import (
    FollowUpOutcome,
    FollowUpRecord,
    FollowUpSeed,
    FollowUpState,
)
from provisioning.run.journal import Journal, RowState
from provisioning.run.lagretry import Answer, LagRetrySender, Op
from provisioning.validation.references import References

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

ALREADY_MEMBER_TEXT = "already exist"
#: Row states whose user exists in the tenant, so its follow-ups can go.
USER_EXISTS = frozenset({RowState.CREATED, RowState.SKIPPED, RowState.UPDATED})
#: Plan actions that end with a user in the tenant.
WITH_USER = frozenset({"create", "skip", "update"})


def plan_followups(actions: Iterable[Any], refs: References, *, dry_run: bool = False) -> list[FollowUpSeed]:
    """One seed per group, licence and manager of every action that ends with a user (pure).

    ``actions`` are :class:`provisioning.run.plan.Action` (``kind``, ``row``, ``upn``, ``user``); the references
    must have been checked (:func:`provisioning.validation.references.check_references`): unresolvable rows are invalid.
    """
    actions = list(actions)
    row_of = {a.upn.lower(): a.row for a in actions if a.kind.value in WITH_USER and a.upn}
    state = FollowUpState.PLANNED if dry_run else FollowUpState.PENDING
    seeds: list[FollowUpSeed] = []
    for a in actions:
        user = a.user
        if a.kind.value not in WITH_USER or user is None:
            continue
        seen: set[str] = set()  # one follow-up per group / SKU, however often (and by name or id) it is given
        for name in (g.strip() for g in user.groups if g.strip()):
            group = refs.groups[name.lower()][0]
            if group.id not in seen:
                seen.add(group.id)
                seeds.append(FollowUpSeed(a.row, "group", name, group.id, state=state))
        for name in (n.strip() for n in user.licenses if n.strip()):
            sku = refs.skus[name.lower()]
            if sku.id not in seen:
                seen.add(sku.id)
                seeds.append(FollowUpSeed(a.row, "license", sku.part or name, sku.id, state=state))
        manager = str(user.manager or "").strip()
        if manager:
            key = manager.lower()
            if key in row_of:
                seeds.append(FollowUpSeed(a.row, "manager", manager, "", row_of[key], state=state))
            else:
                seeds.append(FollowUpSeed(a.row, "manager", manager, refs.managers.get(key, ""), state=state))
    return seeds


def request_for(f: FollowUpRecord, user_id: str, manager_id: str, graph_root: str) -> Op:
    """The Graph request for one follow-up (``graph_root``: e.g. ``https://graph.microsoft.com/v1.0``)."""
    key = (f.row, f.kind, f.target)
    if f.kind == "group":
        return Op(key, "POST", f"/groups/{f.target_id}/members/$ref",
                  {"@odata.id": f"{graph_root}/directoryObjects/{user_id}"})
    if f.kind == "license":
        return Op(key, "POST", f"/users/{user_id}/assignLicense",
                  {"addLicenses": [{"skuId": f.target_id, "disabledPlans": []}], "removeLicenses": []})
    if f.kind == "manager":
        return Op(key, "PUT", f"/users/{user_id}/manager/$ref", {"@odata.id": f"{graph_root}/users/{manager_id}"})
    raise ValueError(f"unknown follow-up kind {f.kind!r}")


def already_done(op: Op, status: int, code: str, message: str) -> bool:
    """"Already a member" (400 "One or more added object references already exist ...") counts as done."""
    return status == 400 and "/members/" in op.url and ALREADY_MEMBER_TEXT in message.lower()


def _graph_root(client: GraphClient) -> str:
    config = getattr(client, "config", None)
    root = getattr(config, "base_url", None)
    if not root:
        raise TypeError("the Graph client has no config.base_url")
    return str(root).rstrip("/")


def apply_followups(client: GraphClient, journal: Journal, *, stop: threading.Event | None = None,
                    delays: Sequence[float] | None = None, budget_s: float | None = None) -> dict[str, int]:
    """Send every pending follow-up whose user exists; record each answer; return counts by final state.

    Follow-ups of rows whose create failed stay pending (the row itself is reported failed); a manager follow-up
    whose manager row was not created fails with that reason.
    """
    pending = journal.followups([FollowUpState.PENDING])
    if not pending:
        return {}
    records = {r.row: r for r in journal.rows()}
    root = _graph_root(client)
    ops: list[Op] = []
    now_failed: list[tuple[int, str, str, FollowUpOutcome]] = []
    manager_ids: dict[Hashable, str] = {}
    for f in pending:
        rec = records.get(f.row)
        if rec is None or rec.state not in USER_EXISTS or not rec.object_id:
            continue
        manager_id = f.target_id
        if f.kind == "manager" and f.target_row is not None:
            mrec = records.get(f.target_row)
            if mrec is not None and mrec.state in USER_EXISTS and mrec.object_id:
                manager_id = mrec.object_id
            elif mrec is not None and mrec.state in (RowState.PENDING, RowState.SENDING, RowState.UNKNOWN):
                continue  # the manager's create is still open: resume sends both
            else:
                state = mrec.state.value if mrec is not None else "missing"
                now_failed.append((f.row, f.kind, f.target, FollowUpOutcome(
                    FollowUpState.FAILED, message=f"the manager (row {f.target_row}) was not created ({state})")))
                continue
        if f.kind == "manager" and not manager_id:
            now_failed.append((f.row, f.kind, f.target, FollowUpOutcome(
                FollowUpState.FAILED, message="the manager's object id is not known")))
            continue
        op = request_for(f, rec.object_id, manager_id, root)
        manager_ids[op.key] = manager_id if f.kind == "manager" else ""
        ops.append(op)
    journal.record_followups(now_failed)
    counts: dict[str, int] = {"failed": len(now_failed)} if now_failed else {}
    log.info("follow-ups: sending %d (%d could not be sent)", len(ops), len(now_failed))

    def done(key: Hashable, answer: Answer) -> None:
        row, kind, target = cast(tuple[int, str, str], key)  # request_for's key
        if answer.ok is None:
            state = FollowUpState.PENDING
        else:
            state = FollowUpState.DONE if answer.ok else FollowUpState.FAILED
        message = answer.message
        if answer.ok and answer.status == 400:
            message = "already a member"
        journal.record_followups([(row, kind, target, FollowUpOutcome(
            state, answer.attempts, answer.status or None, "" if answer.ok else answer.code,
            "" if answer.ok and answer.status != 400 else message, answer.request_id,
            manager_ids.get(key, "")))])
        counts[state.value] = counts.get(state.value, 0) + 1
        log.info("row %d %s %s: %s %s %s request-id=%s", row, kind, target, state.value, answer.status,
                 answer.code, answer.request_id)

    kwargs: dict[str, Any] = {}
    if delays is not None:
        kwargs["delays"] = delays
    if budget_s is not None:
        kwargs["budget_s"] = budget_s
    sender = LagRetrySender(client, stop=stop, accept=already_done, guard=journal.check_intact, **kwargs)
    sender.send(ops, done)
    return counts
