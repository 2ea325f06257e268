"""Undo a run: delete the users it created, revert its updates, remove the follow-ups it added to existing users.

The plan (:func:`plan_rollback`, from the run's journal alone) has one *step* per write to undo:

- ``delete``: a row the run *created* (its object id from the create's answer): ``DELETE /users/{id}``; the user goes
  to ``/directory/deletedItems`` and stays restorable for 30 days. Its memberships, licences and manager go with it,
  so they are no steps of their own. Skipped, failed, invalid and pre-existing rows are never deleted.
- ``revert``: one property an ``--existing update`` changed (the journal's old and new values): ``PATCH
  /users/{id}`` with the old value, only where the tenant still holds the value the run wrote; otherwise the step
  is a *conflict* and the property is left as it is. A password reset cannot be reverted (*left*).
- ``group``/``license``/``manager``: a follow-up the run did (state done) on a user it did not create: ``DELETE
  /groups/{g}/members/{id}/$ref``, ``assignLicense`` with ``removeLicenses``, ``DELETE /users/{id}/manager/$ref``.
  "Already a member" was not added by the run: no step. A licence of an updated row is *left*: Graph answers a
  licence the user already held with the same success, so the run cannot tell it added it. A manager is removed only
  while the tenant still shows the one the run set (the previous manager, if any, is not in the journal).

Every step is read before it is sent (:func:`check_steps`: batched GETs) and then sent through ``$batch`` and the
write governor (:class:`~provisioning.run.lagretry.LagRetrySender`). The steps live in the ``rollback_steps`` table of
the rollback folder's own journal; each is marked ``sending`` before its request leaves, so a rollback killed at any
instant is continued by ``resume``: a ``sending`` step is read again (a deleted user is gone, a reverted property
holds the old value) and only sent if its write did not happen: no write is sent twice.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.batch import BatchRequest
from graph.errors import GraphError, NotFoundError
from graph.odata import query_string
from provisioning.errors import RunFolderError
from provisioning.run.lagretry import Answer, LagRetrySender, Op, error_parts
from provisioning.run.updates import ORG, text
from provisioning.store.folder import RunFolder
from provisioning.store.journal import Journal, RowState, utcnow
from provisioning.store.records import FollowUpState

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

#: The journal meta ``kind`` of a rollback folder.
KIND = "rollback"
#: The rollback folder's name inside the run folder: ``rollback-<YYYYmmdd-HHMMSS>``.
PREFIX = "rollback-"
#: The run's client settings a rollback keeps (journal meta keys, as :func:`~provisioning.run.client.make_client`
#: takes them).
CLIENT_KEYS = ("batch_size", "max_writes_per_s", "write_burst")
#: How long Graph keeps a deleted user restorable (``/directory/deletedItems``).
RESTORE_DAYS = 30


class StepKind(str, Enum):
    """What one rollback step undoes."""

    REVERT = "revert"
    GROUP = "group"
    LICENSE = "license"
    MANAGER = "manager"
    DELETE = "delete"


class StepState(str, Enum):
    """Where one rollback step is."""

    PENDING = "pending"  # not read or not sent yet
    SENDING = "sending"  # its write may have left: resume reads the tenant before sending it again
    DONE = "done"  # undone by this rollback
    UNDONE = "already undone"  # the tenant already was as before the run: nothing sent
    CONFLICT = "conflict"  # the tenant changed since the run: left as it is
    FAILED = "failed"  # Graph refused the write
    LEFT = "left"  # cannot be undone (a password reset, a licence the user may have held before)
    PLANNED = "planned"  # dry run: would be sent


OPEN = frozenset({StepState.PENDING, StepState.SENDING})
#: The follow-up kinds a rollback removes from users the run did not create.
FOLLOWUP_KINDS = frozenset({StepKind.GROUP.value, StepKind.LICENSE.value, StepKind.MANAGER.value})
#: Steps whose outcome is a problem to report (exit 1).
TROUBLE = frozenset({StepState.CONFLICT, StepState.FAILED})

_TABLE = """
CREATE TABLE IF NOT EXISTS rollback_steps (
    step        INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    row         INTEGER NOT NULL,
    upn         TEXT NOT NULL DEFAULT '',
    object_id   TEXT NOT NULL,
    target      TEXT NOT NULL DEFAULT '',
    label       TEXT NOT NULL DEFAULT '',
    old         TEXT NOT NULL DEFAULT '',
    new         TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    error_code  TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL DEFAULT '',
    last_at     TEXT NOT NULL DEFAULT ''
)
"""


@dataclass(frozen=True, slots=True)
class Step:
    """One write to undo. ``target``: the property (revert), group id, skuId or manager id; ``label``: what the
    report shows for it (the group's name, the SKU's part number, the manager's UPN)."""

    step: int
    kind: StepKind
    row: int
    upn: str
    object_id: str
    target: str = ""
    label: str = ""
    old: str = ""
    new: str = ""
    state: StepState = StepState.PENDING
    attempts: int = 0
    http_status: int | None = None
    error_code: str = ""
    message: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A step's outcome as read or answered: its new state and why."""

    state: StepState
    message: str = ""
    http_status: int | None = None
    error_code: str = ""
    request_id: str = ""
    attempts: int = 0


# -- the steps in the rollback folder's journal --------------------------------------------------------------------


def add_steps(journal: Journal, steps: Iterable[Step]) -> None:
    """Record the plan's steps (in one transaction)."""
    now = utcnow()
    with journal.transaction() as cur:
        cur.execute(_TABLE)
        cur.executemany(
            "INSERT INTO rollback_steps(step, kind, row, upn, object_id, target, label, old, new, state, message,"
            " last_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(s.step, s.kind.value, s.row, s.upn, s.object_id, s.target, s.label, s.old, s.new, s.state.value,
              s.message, now) for s in steps])


def read_steps(journal: Journal) -> list[Step]:
    """Every step, in plan order."""
    with journal.transaction() as cur:
        cur.execute(_TABLE)
        found = cur.execute("SELECT * FROM rollback_steps ORDER BY step").fetchall()
    return [Step(r["step"], StepKind(r["kind"]), r["row"], r["upn"], r["object_id"], r["target"], r["label"],
                 r["old"], r["new"], StepState(r["state"]), r["attempts"], r["http_status"], r["error_code"],
                 r["message"], r["request_id"]) for r in found]


def mark_sending(journal: Journal, steps: Sequence[int]) -> None:
    """Before their requests leave: the steps become ``sending`` and their attempt count goes up."""
    now = utcnow()
    with journal.transaction() as cur:
        cur.executemany("UPDATE rollback_steps SET state=?, attempts=attempts+1, last_at=? WHERE step=?",
                        [(StepState.SENDING.value, now, s) for s in steps])


def record(journal: Journal, verdicts: Mapping[int, Verdict]) -> None:
    """Store the steps' outcomes (``attempts``: requests sent for them beyond the one ``mark_sending`` counted)."""
    if not verdicts:
        return
    now = utcnow()
    with journal.transaction() as cur:
        cur.executemany(
            "UPDATE rollback_steps SET state=?, message=?, http_status=?, error_code=?, request_id=?,"
            " attempts=attempts+?, last_at=? WHERE step=?",
            [(v.state.value, v.message, v.http_status, v.error_code, v.request_id, v.attempts, now, s)
             for s, v in verdicts.items()])


def is_rollback_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a rollback's journal (not a run's): its meta read without opening the journal for
    writing (a run's journal is left for ``resume`` to open under the folder's lock); False when it cannot be read."""
    path = RunFolder(Path(folder)).journal
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            found = conn.execute("SELECT value FROM meta WHERE key='kind'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return found is not None and found[0] == json.dumps(KIND)


def new_rollback_folder(run_dir: Path, now: datetime | None = None) -> RunFolder:
    """A new, empty ``rollback-<YYYYmmdd-HHMMSS>`` folder inside the run folder (a second one in the same second
    gets a ``-2`` suffix)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    for n in range(1, 100):
        path = Path(run_dir) / f"{PREFIX}{stamp}{'' if n == 1 else f'-{n}'}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunFolderError(f"{path}: cannot create the rollback folder ({exc.strerror or exc})") from None
        return RunFolder(path)
    raise RunFolderError(f"{run_dir}: too many rollback folders in one second")


def unfinished_rollbacks(run_dir: Path) -> list[Path]:
    """The rollback folders of ``run_dir`` (not dry runs) that still have steps to send: ``resume`` them instead of
    starting another rollback."""
    out = []
    for path in sorted(Path(run_dir).glob(PREFIX + "*")):
        if not RunFolder(path).journal.is_file():
            continue
        with Journal.open(path) as journal:
            if journal.meta().get("dry_run"):
                continue
            if any(s.state in OPEN for s in read_steps(journal)):
                out.append(path)
    return out


# -- the plan ------------------------------------------------------------------------------------------------------


def plan_rollback(journal: Journal) -> list[Step]:
    """The steps that undo the run of ``journal`` (pure reading of the journal; nothing is asked of the tenant).

    Refuses (``RunFolderError``, exit 2) a dry run, a rollback folder, and a run with creates still in doubt
    (``sending``/``unknown``: whether those users exist is only known once ``resume`` has looked them up)."""
    meta = journal.meta()
    if meta.get("kind") == KIND:
        raise RunFolderError(f"{journal.path.parent} is a rollback folder, not a run: `resume` continues it")
    if meta.get("dry_run"):
        raise RunFolderError(f"{journal.path.parent} is a dry run: it wrote nothing to the tenant, there is nothing "
                             "to roll back")
    rows = journal.rows()
    doubt = [r.row for r in rows if r.action == "create" and r.state in (RowState.SENDING, RowState.UNKNOWN)]
    if doubt:
        shown = ", ".join(map(str, doubt[:10])) + (" ..." if len(doubt) > 10 else "")
        raise RunFolderError(f"{journal.path.parent}: the creates of {len(doubt)} row(s) are in doubt (rows {shown}); "
                             "`resume` the run first so that it looks them up, then roll it back")
    created = {r.row: r for r in rows if r.state is RowState.CREATED and r.object_id}
    by_row = {r.row: r for r in rows}
    steps: list[Step] = []

    def add(kind: StepKind, row: int, **values: Any) -> None:
        rec = by_row[row]
        steps.append(Step(len(steps) + 1, kind, row, rec.upn, rec.object_id, **values))

    changes = journal.changes()
    for row, rec in by_row.items():
        if rec.action != "update" or not rec.object_id or rec.state in (RowState.FAILED, RowState.PLANNED):
            continue
        if rec.state is RowState.PENDING and rec.attempts == 0:
            continue  # its PATCH never left
        for c in changes.get(row, ()):
            if c.property == "passwordProfile":
                add(StepKind.REVERT, row, target=c.property, label=c.property, old=c.old, new=c.new,
                    state=StepState.LEFT, message="a password reset cannot be undone")
            else:
                add(StepKind.REVERT, row, target=c.property, label=c.property, old=c.old, new=c.new)
    for f in journal.followups([FollowUpState.DONE]):
        found = by_row.get(f.row)
        if found is None or f.row in created or not found.object_id or f.message == "already a member" or \
                f.kind not in FOLLOWUP_KINDS:
            continue  # a created user's follow-ups go with its deletion; other kinds are not the run's to undo
        kind = StepKind(f.kind)
        target = f.target_id
        if kind is StepKind.MANAGER and not target and f.target_row in by_row:
            target = by_row[f.target_row].object_id
        if not target:
            add(kind, f.row, label=f.target, state=StepState.LEFT, message="not removed: its object id is not in "
                                                                           "the journal")
        elif kind is StepKind.LICENSE and found.action != "skip":
            add(kind, f.row, target=target, label=f.target, state=StepState.LEFT,
                message="not removed: Graph answers a licence the user already held like a new one, so the run "
                        "cannot tell whether it added it")
        else:
            add(kind, f.row, target=target, label=f.target)
    for row, rec in created.items():
        add(StepKind.DELETE, row, label=rec.display_name)
    return steps


def plan_counts(steps: Sequence[Step]) -> dict[str, int]:
    """The plan's summary: users to delete, users (and properties) to revert, follow-ups to remove, left alone."""
    todo = [s for s in steps if s.state is not StepState.LEFT]
    return {"delete": sum(1 for s in todo if s.kind is StepKind.DELETE),
            "revert_users": len({s.row for s in todo if s.kind is StepKind.REVERT}),
            "revert_properties": sum(1 for s in todo if s.kind is StepKind.REVERT),
            "group": sum(1 for s in todo if s.kind is StepKind.GROUP),
            "license": sum(1 for s in todo if s.kind is StepKind.LICENSE),
            "manager": sum(1 for s in todo if s.kind is StepKind.MANAGER),
            "left": sum(1 for s in steps if s.state is StepState.LEFT)}


def describe(step: Step) -> str:
    """One line of the plan or the report for a step."""
    who = f"row {step.row} {step.upn}"
    if step.kind is StepKind.DELETE:
        return f"delete {who} (created by the run, id {step.object_id})"
    if step.kind is StepKind.REVERT:
        return f"revert {who}: {step.target}: {step.new!r} -> {step.old!r}"
    what = {StepKind.GROUP: f"remove from group {step.label}", StepKind.LICENSE: f"remove licence {step.label}",
            StepKind.MANAGER: f"remove manager {step.label}"}[step.kind]
    return f"{what}: {who}"


# -- reading the tenant before sending ----------------------------------------------------------------------------


def _read_request(step: Step) -> BatchRequest:
    oid = step.object_id
    if step.kind is StepKind.DELETE:
        return BatchRequest(str(step.step), "GET", f"/users/{oid}?$select=id")
    if step.kind is StepKind.REVERT:
        prop = ORG if step.target.startswith(ORG + ".") else step.target
        return BatchRequest(str(step.step), "GET", f"/users/{oid}?" + query_string({"$select": f"id,{prop}"}))
    if step.kind is StepKind.GROUP:
        return BatchRequest(str(step.step), "GET", f"/users/{oid}/memberOf?$select=id&$top=999")
    if step.kind is StepKind.LICENSE:
        return BatchRequest(str(step.step), "GET", f"/users/{oid}?$select=id,assignedLicenses")
    return BatchRequest(str(step.step), "GET", f"/users/{oid}/manager?$select=id")


def current_value(step: Step, user: Mapping[str, Any]) -> Any:
    """The tenant's value of a revert step's property in ``user`` (a nested ``employeeOrgData.x`` included)."""
    if step.target.startswith(ORG + "."):
        return dict(user.get(ORG) or {}).get(step.target[len(ORG) + 1:])
    return user.get(step.target)


def holds(prop: str, value: Any, recorded: str) -> bool:
    """Whether the tenant's ``value`` is the text the journal recorded (dates by day, countries by case)."""
    shown = text(value)
    if prop == "employeeHireDate":
        return shown[:10] == recorded[:10]
    if prop == "usageLocation":
        return shown.upper() == recorded.upper()
    return shown == recorded


def _judge(step: Step, status: int, body: Mapping[str, Any] | None, error: GraphError | None) -> Verdict | None:
    """What a read says about a step: None when its write is still to send, else its final verdict."""
    body = body or {}
    gone = isinstance(error, NotFoundError) or status == 404
    if step.kind is StepKind.DELETE:
        return Verdict(StepState.UNDONE, "the user is already deleted") if gone else None
    if step.kind is StepKind.MANAGER and gone and "'manager'" in (getattr(error, "message", "") or ""):
        return Verdict(StepState.UNDONE, "the user has no manager any more")
    if gone:
        return Verdict(StepState.CONFLICT, "the user no longer exists", 404, getattr(error, "code", "") or "")
    if error is not None or not 200 <= status < 300:
        code, message, rid = error_parts(body, error, None)
        # Graph unavailable or throttled past the client's retries: the step stays to do (resume reads it again)
        state = StepState.PENDING if status in (0, 429) or status >= 500 else StepState.FAILED
        return Verdict(state, f"could not read the tenant: {message or f'HTTP {status}'}", status or None, code, rid)
    if step.kind is StepKind.REVERT:
        value = current_value(step, body)
        if holds(step.target, value, step.new):
            return None
        if holds(step.target, value, step.old):
            return Verdict(StepState.UNDONE, "the tenant already holds the old value")
        return Verdict(StepState.CONFLICT, f"changed since the run: the tenant holds {text(value)!r}, the run wrote "
                                           f"{step.new!r}; left as it is")
    if step.kind is StepKind.GROUP:
        ids = {str(g.get("id", "")).lower() for g in body.get("value") or ()}
        if step.target.lower() in ids or body.get("@odata.nextLink"):
            return None  # a member (or more than 999 groups: the DELETE tells, a 404 there is "not a member")
        return Verdict(StepState.UNDONE, "not a member any more")
    if step.kind is StepKind.LICENSE:
        skus = {str(a.get("skuId", "")).lower() for a in body.get("assignedLicenses") or ()}
        return None if step.target.lower() in skus else Verdict(StepState.UNDONE, "the licence is not assigned any "
                                                                                  "more")
    manager = str(body.get("id", "")).lower()
    if manager == step.target.lower():
        return None
    return Verdict(StepState.CONFLICT, "changed since the run: the user has another manager now; left as it is")


def check_steps(client: GraphClient, steps: Sequence[Step]) -> tuple[dict[int, Verdict], dict[int, Any]]:
    """Read the tenant for each step (batched GETs): the steps already settled (undone, conflict, a failed read)
    and, for the steps still to send, what was read (a revert's user, to build its PATCH)."""
    if not steps:
        return {}, {}
    by_id = {s.step: s for s in steps}
    settled: dict[int, Verdict] = {}
    read: dict[int, Any] = {}
    for answer in client.send_batch([_read_request(s) for s in steps]):
        step = by_id[int(answer.id)]
        verdict = _judge(step, answer.status, answer.body, answer.error)
        if verdict is None:
            read[step.step] = answer.body or {}
        else:
            settled[step.step] = verdict
    return settled, read


# -- sending --------------------------------------------------------------------------------------------------------


def _typed(step: Step, current: Any) -> Any:
    """A revert's old value as Graph takes it, in the type the tenant's current value has."""
    old = step.old
    if isinstance(current, bool):
        return old == "true"
    if isinstance(current, list):
        return old.split("; ") if old else []
    if isinstance(current, int):
        return int(old) if old else None
    return old if old != "" else None


def _ops(steps: Sequence[Step], read: Mapping[int, Any]) -> list[Op]:
    """The writes of the steps to send: one PATCH per user for its reverts, one request per other step. An op's key
    is the tuple of its step numbers."""
    ops: list[Op] = []
    reverts: dict[str, list[Step]] = {}
    for s in steps:
        oid = s.object_id
        if s.kind is StepKind.REVERT:
            reverts.setdefault(oid, []).append(s)
        elif s.kind is StepKind.DELETE:
            ops.append(Op((s.step,), "DELETE", f"/users/{oid}"))
        elif s.kind is StepKind.GROUP:
            ops.append(Op((s.step,), "DELETE", f"/groups/{s.target}/members/{oid}/$ref"))
        elif s.kind is StepKind.LICENSE:
            ops.append(Op((s.step,), "POST", f"/users/{oid}/assignLicense",
                          {"addLicenses": [], "removeLicenses": [s.target]}))
        else:
            ops.append(Op((s.step,), "DELETE", f"/users/{oid}/manager/$ref"))
    for oid, group in reverts.items():
        body: dict[str, Any] = {}
        for s in group:
            user = read[s.step]
            if s.target.startswith(ORG + "."):
                org = dict(body.get(ORG) or user.get(ORG) or {})
                key = s.target[len(ORG) + 1:]
                org[key] = _typed(s, org.get(key))
                body[ORG] = org
            else:
                body[s.target] = _typed(s, current_value(s, user))
        ops.insert(0, Op(tuple(s.step for s in group), "PATCH", f"/users/{oid}", body))
    return ops


def _gone(op: Op, error: GraphError | None) -> bool:
    """A DELETE answered 404: what it removes is already gone (the read before it raced with someone else)."""
    return op.method == "DELETE" and isinstance(error, NotFoundError)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one session of sending did: the final state of the steps it settled, and why sending stopped early
    (``fatal``: Graph unavailable or the token refused; the open steps stay for ``resume``)."""

    counts: Mapping[str, int]
    fatal: str = ""


def send_steps(client: GraphClient, journal: Journal, *, stop: threading.Event | None = None) -> SendResult:
    """Read the tenant for every open step, settle those already undone or in conflict, then send the rest (marked
    ``sending`` first) and record each answer. Reverts and follow-ups go before the deletes."""
    stop = stop or threading.Event()
    counts: dict[str, int] = {}
    fatal = ""
    for phase in ((StepKind.REVERT, StepKind.GROUP, StepKind.LICENSE, StepKind.MANAGER), (StepKind.DELETE,)):
        if stop.is_set() or fatal:
            break
        todo = [s for s in read_steps(journal) if s.state in OPEN and s.kind in phase]
        settled, read = check_steps(client, todo)
        for s in todo:  # a write that left before the process died and that the tenant shows done: done by us
            if s.state is StepState.SENDING and s.step in settled and settled[s.step].state is StepState.UNDONE:
                settled[s.step] = Verdict(StepState.DONE, "its answer was lost; the tenant shows it done")
        record(journal, settled)
        for v in settled.values():
            counts[v.state.value] = counts.get(v.state.value, 0) + 1
        to_send = [s for s in todo if s.step in read]
        if not to_send or stop.is_set():
            continue
        ops = _ops(to_send, read)
        mark_sending(journal, [s.step for s in to_send])

        def done(key: Hashable, answer: Answer) -> None:
            assert isinstance(key, tuple)  # _ops' keys: the step numbers
            if answer.ok is None:
                verdict = Verdict(StepState.PENDING, answer.message, answer.status or None, answer.code,
                                  answer.request_id, max(answer.attempts - 1, 0))
            elif answer.ok:
                verdict = Verdict(StepState.DONE, "already gone" if answer.status == 404 else "",
                                  answer.status, "", answer.request_id, max(answer.attempts - 1, 0))
            else:
                verdict = Verdict(StepState.FAILED, answer.message, answer.status, answer.code, answer.request_id,
                                  max(answer.attempts - 1, 0))
            record(journal, {int(s): verdict for s in key})
            if verdict.state is not StepState.PENDING:
                counts[verdict.state.value] = counts.get(verdict.state.value, 0) + len(key)
            log.info("rollback steps %s: %s %s %s request-id=%s", ",".join(map(str, key)), verdict.state.value,
                     answer.status, answer.code, answer.request_id)

        sender = LagRetrySender(client, stop=stop, accept=_gone, guard=journal.check_intact)
        sender.send(ops, done)
        fatal = sender.fatal
    return SendResult(counts, fatal)


def dry_run_steps(client: GraphClient, steps: Sequence[Step]) -> list[Step]:
    """The plan as a dry run records it: each step read in the tenant, *planned* where it would be sent."""
    settled, read = check_steps(client, [s for s in steps if s.state in OPEN])
    out = []
    for s in steps:
        v = settled.get(s.step)
        if v is not None:
            out.append(replace(s, state=v.state, message=v.message))
        elif s.step in read:
            out.append(replace(s, state=StepState.PLANNED))
        else:
            out.append(s)
    return out


def meta_of(run_journal: Journal, run_dir: Path, *, dry_run: bool, command_line: str) -> dict[str, Any]:
    """The rollback journal's meta: its kind, the run it undoes, that run's tenant (the same binding) and its
    ``--batch-size``, ``--max-writes-per-s`` and ``--write-burst`` (a rollback writes at the pace its run did)."""
    meta = run_journal.meta()
    return {"kind": KIND, "run_dir": str(Path(run_dir).resolve()), "dry_run": dry_run,
            **{k: meta.get(k) for k in CLIENT_KEYS},
            "tenant": meta.get("tenant"), "settings": meta.get("settings"), "command_line": command_line,
            "run_started": meta.get("started"), "roster_path": meta.get("roster_path")}
