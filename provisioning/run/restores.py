"""``--restore-deleted``: a row whose person is in Deleted users gets that account back instead of a new one.

Per row (plan action ``restore``, journal action ``restore``): ``POST /directory/deletedItems/{id}/restore`` with
``newUserPrincipalName`` (the row's UPN) and ``autoReconcileProxyConflict`` (a proxy address an active user took
meanwhile is dropped instead of failing the restore), then ``PATCH /users/{id}`` with the roster's values that
differ from the deleted user's (computed in pre-flight like ``--existing update``'s, from
``GET /directory/deletedItems/{id}``), then the row's follow-ups like any user's. The row ends *restored* (or
*failed*, with Graph's answer).

Never twice: the row is *sending* before its restore leaves; a row found *sending*, or *pending* after an attempt,
or answered 404 or nothing at all, is looked up first (``GET /users/{id}``): a user already back is only PATCHed,
so a kill and ``resume`` never restore an account twice (Graph would answer 404 to a second restore anyway).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING

from graph.batch import BatchRequest
from graph.errors import NotFoundError
from provisioning.run.lagretry import Answer, LagRetrySender, Op
from provisioning.run.plan import Action, ActionKind
from provisioning.run.updates import UserUpdate, desired, diff, fetch_current, select_for, text
from provisioning.store.journal import OPEN_STATES, Journal, Outcome, RowRecord, RowState
from provisioning.store.records import Change

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

ACTION = ActionKind.RESTORE.value
DELETED_ITEMS = "/directory/deletedItems"


def plan_restores(client: GraphClient, actions: Sequence[Action]) -> dict[int, UserUpdate]:
    """The PATCH of each RESTORE action: the roster's values that differ from the deleted user's (its UPN is set
    by the restore itself and only listed as a change). ``accountEnabled`` is compared even when it is the
    roster's default: an account disabled before it was deleted comes back as a new hire's would."""
    todo = [a for a in actions if a.kind is ActionKind.RESTORE and a.object_id]
    if not todo:
        return {}
    select = sorted({*select_for(a.user for a in todo), "accountEnabled"})
    current = fetch_current(client, {a.row: a.object_id for a in todo}, select, base=DELETED_ITEMS)
    out: dict[int, UserUpdate] = {}
    for a in todo:
        have = current.get(a.row, {})
        want = desired(a.user)
        enabled = a.user.graph_body().get("accountEnabled")
        if isinstance(enabled, bool):
            want["accountEnabled"] = enabled
        body, changes = diff(a.row, want, have)
        old = str(have.get("userPrincipalName") or "")
        if old.lower() != a.upn.lower():
            changes.insert(0, Change(a.row, "userPrincipalName", text(old), a.upn))
        out[a.row] = UserUpdate(a.row, a.object_id, body, tuple(changes))
    return out


def pending_restores(journal: Journal) -> list[RowRecord]:
    """The restore rows still to do, from the journal."""
    return [r for r in journal.rows(OPEN_STATES) if r.action == ACTION and r.object_id]


def _back(client: GraphClient, rows: Iterable[RowRecord]) -> set[int]:
    """The rows whose user is back under ``/users`` already (restored by an earlier attempt)."""
    reqs = [BatchRequest(str(r.row), "GET", f"/users/{r.object_id}?$select=id") for r in rows]
    found: set[int] = set()
    for answer in client.send_batch(reqs) if reqs else ():
        if isinstance(answer.error, NotFoundError):
            continue
        if answer.error is not None:
            raise answer.error
        found.add(int(answer.id))
    return found


def apply_restores(client: GraphClient, journal: Journal, *, stop: threading.Event | None = None) -> dict[str, int]:
    """Restore every pending restore row, then PATCH it; record *restored* / *failed* per row (a row with no final
    answer stays *pending* for ``resume``). Returns counts by state."""
    rows = pending_restores(journal)
    if not rows:
        return {}
    by_row = {r.row: r for r in rows}
    back = _back(client, [r for r in rows if r.state is not RowState.PENDING or r.attempts > 0])
    todo = [r for r in rows if r.row not in back]
    counts: dict[str, int] = {}
    unsure: dict[int, Answer] = {}

    def record(row: int, outcome: Outcome) -> None:
        journal.record(row, outcome)
        counts[outcome.state.value] = counts.get(outcome.state.value, 0) + 1
        log.info("row %d restore: %s %s %s %s", row, outcome.state.value, outcome.http_status or "",
                 outcome.error_code, outcome.request_id)

    def restored(key: Hashable, answer: Answer) -> None:
        assert isinstance(key, int)  # the ops' keys are row numbers
        if answer.ok:
            back.add(key)
        elif answer.ok is None or answer.status == 404:
            unsure[key] = answer  # no answer, or gone from Deleted users: restored by the attempt before?
        else:
            rec = by_row[key]
            record(key, Outcome(RowState.FAILED, rec.object_id, answer.status, answer.code,
                                f"restore refused: {answer.message}", answer.request_id))

    if todo:
        journal.mark_sending([r.row for r in todo])
        ops = [Op(r.row, "POST", f"{DELETED_ITEMS}/{r.object_id}/restore",
                  {"newUserPrincipalName": r.upn, "autoReconcileProxyConflict": True}, lag_retry=False)
               for r in todo]
        LagRetrySender(client, stop=stop, guard=journal.check_intact).send(ops, restored)
    if unsure:
        found = _back(client, [by_row[row] for row in unsure])
        back.update(found)
        for row in sorted(set(unsure) - found):
            rec = by_row[row]
            if unsure[row].status != 404:  # not sent, or sent without an answer: resume looks again
                record(row, Outcome(RowState.PENDING, rec.object_id, message=rec.message))
            else:
                record(row, Outcome(RowState.FAILED, by_row[row].object_id, 404, "Request_ResourceNotFound",
                                    "the deleted user is no longer in Deleted users (restored or deleted "
                                    "permanently since pre-flight)"))
    _update(client, journal, [by_row[row] for row in sorted(back)], record, stop)
    return counts


def _update(client: GraphClient, journal: Journal, rows: Sequence[RowRecord],
            record: Callable[[int, Outcome], None], stop: threading.Event | None) -> None:
    """PATCH each restored row's user to the roster's values; the row ends *restored*, *failed* or *pending*."""
    message = {r.row: r.message for r in rows}
    ops = [Op(r.row, "PATCH", f"/users/{r.object_id}", dict(r.body)) for r in rows if r.body]
    for r in rows:
        if not r.body:
            record(r.row, Outcome(RowState.RESTORED, r.object_id, 200, message=r.message))
    if not ops:
        return
    oid = {r.row: r.object_id for r in rows}

    def patched(key: Hashable, answer: Answer) -> None:
        assert isinstance(key, int)
        if answer.ok:
            record(key, Outcome(RowState.RESTORED, oid[key], answer.status, message=message[key],
                                request_id=answer.request_id))
        elif answer.ok is None:  # resume finds the user back and sends the PATCH again
            record(key, Outcome(RowState.PENDING, oid[key], answer.status or None, answer.code, message[key],
                                answer.request_id))
        else:
            record(key, Outcome(RowState.FAILED, oid[key], answer.status, answer.code,
                                f"restored, but the update failed: {answer.message}", answer.request_id))

    LagRetrySender(client, stop=stop, guard=journal.check_intact).send(ops, patched)

