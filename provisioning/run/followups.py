"""Follow-ups after the creates: group membership, licences, manager — planned (pure) and applied.

Planning (:func:`plan_followups`, pure): every row that ends with a user in the tenant (create, skip, update)
gets one follow-up per group, per licence and for its manager, with the ids pre-flight resolved
(:mod:`provisioning.validation.references`). A manager who is another row of the roster is referenced by row: its
id is only
known once its create answered.

Applying (:func:`apply_followups`): the journal's pending follow-ups of rows whose user exists go out after the
creates, through ``$batch`` (:class:`~provisioning.run.lagretry.LagRetrySender`: retried through replication lag):

- group: up to 20 new members of one group in one ``PATCH /groups/{id}`` with ``members@odata.bind`` (one write
  instead of 20); that form is all-or-nothing and does not say which member was bad (docs/graph-facts-local.md),
  so a ``PATCH`` that fails is sent again as one ``POST /groups/{id}/members/$ref`` per member, and each row gets
  its own answer; "already a member" counts as done;
- licence: ``POST /users/{id}/assignLicense`` with one SKU (re-assigning a held SKU is a success);
- manager: ``PUT /users/{id}/manager/$ref`` with ``users/{managerId}``; the manager's id comes from its create
  answer (or pre-flight when it already existed), never from a UPN;
- tap (``--credential tap``): ``POST /users/{id}/authentication/temporaryAccessPassMethods``; the pass in the
  answer goes to credentials.csv (:class:`provisioning.run.tap.TapFile`) before the journal records the follow-up
  done with the method's id, never the pass. A pass already in credentials.csv is not asked for again (Graph
  would replace it).

A ``delivery`` follow-up (``--deliver managers``) is planned here and sent by
:mod:`provisioning.report.deliver`, after every pass is in.

**Rule for existing users**: a skipped row (its user already exists, ``--existing skip``; also a ``retry`` of a
row whose follow-up failed) gets only the follow-ups its user does not have yet: pre-flight reads the user's
groups, licences and manager (:func:`held_for`) and the rest is recorded "already in place", never sent (a
skipped row sends no write at all when everything is there). An updated row (``--existing update``) still gets
every follow-up the roster asks for; those already in place answer "already a member" / succeed again and count
as done. A follow-up that fails leaves the user as it is and the row
"created, follow-up failed" (it appears on the Failed sheet too, so ``retry`` re-runs it: the user is skipped as
existing, the follow-ups are sent again).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from graph.errors import ConflictError, GraphError
from provisioning.run.lagretry import Answer, LagRetrySender, Op
from provisioning.run.progress import PhaseProgress
from provisioning.run.tap import TAP_KIND, TAP_TARGET, TapFile, TapOptions, issued_from
from provisioning.store.journal import Journal, RowState
from provisioning.store.records import FollowUpOutcome, FollowUpRecord, FollowUpSeed, FollowUpState
from provisioning.validation.references import References
from provisioning.validation.tenant import Held, Wanted, read_held

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

#: ``PATCH /groups/{id}``: up to 20 new members in one request (group-post-members page).
BIND = "members@odata.bind"
MAX_BIND = 20
#: Row states whose user exists in the tenant, so its follow-ups can go.
USER_EXISTS = frozenset({RowState.CREATED, RowState.SKIPPED, RowState.UPDATED, RowState.RESTORED})
#: Plan actions that end with a user in the tenant.
WITH_USER = frozenset({"create", "skip", "update", "restore"})


def plan_followups(actions: Iterable[Any], refs: References, *, dry_run: bool = False,
                   held: Mapping[int, Held] | None = None, tap_rows: Collection[int] = (),
                   deliver_rows: Collection[int] = ()) -> list[FollowUpSeed]:
    """One seed per group, licence and manager of every action that ends with a user (pure).

    ``actions`` are :class:`provisioning.run.plan.Action` (``kind``, ``row``, ``upn``, ``user``); the references
    must have been checked (:func:`provisioning.validation.references.check_references`): unresolvable rows are invalid.
    ``held``: by row, what a skipped row's existing user already has (:func:`held_for`); a follow-up it already
    has is recorded "already in place" and never sent. ``tap_rows`` get a Temporary Access Pass; ``deliver_rows``
    a delivery of their credential to their manager ("not delivered" when the row names none).
    """
    # only the rows that ask for something: most rosters have many rows and few follow-ups, or none
    tap_rows, deliver_rows = frozenset(tap_rows), frozenset(deliver_rows)
    actions = list(actions)
    asking = [a for a in actions if a.user is not None and (
        a.user.groups or a.user.licenses or a.user.manager or a.row in tap_rows or a.row in deliver_rows)]
    if not asking:
        return []
    row_of = {a.upn.lower(): a.row for a in actions if a.kind.value in WITH_USER and a.upn}
    existing_id = {a.row: str(a.object_id).lower() for a in actions
                   if a.kind.value in ("skip", "update", "restore") and a.object_id}
    state = FollowUpState.PLANNED if dry_run else FollowUpState.PENDING
    seeds: list[FollowUpSeed] = []
    for a in asking:
        user = a.user
        if a.kind.value not in WITH_USER or user is None:
            continue
        has = (held or {}).get(a.row) if a.kind.value == "skip" else None

        def seed(kind: str, target: str, target_id: str, target_row: int | None = None, *,
                 in_place: bool = False, row: int = a.row) -> None:
            seeds.append(FollowUpSeed(row, kind, target, target_id, target_row,
                                      state=FollowUpState.IN_PLACE if in_place else state))

        seen: set[str] = set()  # one follow-up per group / SKU, however often (and by name or id) it is given
        for name in (g.strip() for g in user.groups if g.strip()):
            group = refs.groups[name.lower()][0]
            if group.id not in seen:
                seen.add(group.id)
                seed("group", name, group.id, in_place=has is not None and has.group_ids is not None
                     and group.id.lower() in has.group_ids)
        for name in (n.strip() for n in user.licenses if n.strip()):
            sku = refs.skus[name.lower()]
            if sku.id not in seen:
                seen.add(sku.id)
                seed("license", sku.part or name, sku.id, in_place=has is not None and has.sku_ids is not None
                     and sku.id.lower() in has.sku_ids)
        manager = str(user.manager or "").strip()
        if manager:
            key = manager.lower()
            if key in row_of:
                boss_id = existing_id.get(row_of[key], "")
                seed("manager", manager, "", row_of[key], in_place=bool(boss_id) and has is not None
                     and has.manager_id == boss_id)
            else:
                boss_id = refs.managers.get(key, "")
                seed("manager", manager, boss_id, in_place=bool(boss_id) and has is not None
                     and has.manager_id == boss_id.lower())
        if a.row in tap_rows:
            seed(TAP_KIND, TAP_TARGET, "")
        if a.row in deliver_rows:
            if manager:
                seed("delivery", manager, "", row_of.get(manager.lower()))
            else:
                seeds.append(FollowUpSeed(a.row, "delivery", "", state=FollowUpState.NOT_DELIVERED))
    return seeds


def held_for(client: GraphClient, actions: Iterable[Any]) -> dict[int, Held]:
    """Pre-flight for skipped rows (their user exists): what each one's user already has of the groups, licences
    and manager its row asks for (batched reads), by row. Rows of other kinds are not read: a create has nothing
    yet, an update (``--existing update``) keeps sending its follow-ups."""
    wanted: dict[int, tuple[str, Wanted]] = {}
    for a in actions:
        user = a.user
        if a.kind.value != "skip" or user is None or not a.object_id:
            continue
        want = Wanted(any(g.strip() for g in user.groups), any(n.strip() for n in user.licenses),
                      bool(str(user.manager or "").strip()))
        if want.groups or want.licenses or want.manager:
            wanted[a.row] = (str(a.object_id), want)
    if not wanted:
        return {}
    found = read_held(client, {oid: want for oid, want in wanted.values()})
    log.info("pre-flight: read what %d existing users already have", len(found))
    return {row: found[oid] for row, (oid, _) in wanted.items() if oid in found}


def request_for(f: FollowUpRecord, user_id: str, manager_id: str, graph_root: str,
                tap: TapOptions | None = None) -> Op:
    """The Graph request for one follow-up (``graph_root``: e.g. ``https://graph.microsoft.com/v1.0``)."""
    key = (f.row, f.kind, f.target)
    if f.kind == TAP_KIND:
        return Op(key, "POST", f"/users/{user_id}/authentication/temporaryAccessPassMethods",
                  (tap or TapOptions()).body())
    if f.kind == "group":
        return Op(key, "POST", f"/groups/{f.target_id}/members/$ref",
                  {"@odata.id": f"{graph_root}/directoryObjects/{user_id}"})
    if f.kind == "license":
        return Op(key, "POST", f"/users/{user_id}/assignLicense",
                  {"addLicenses": [{"skuId": f.target_id, "disabledPlans": []}], "removeLicenses": []})
    if f.kind == "manager":
        return Op(key, "PUT", f"/users/{user_id}/manager/$ref", {"@odata.id": f"{graph_root}/users/{manager_id}"})
    raise ValueError(f"unknown follow-up kind {f.kind!r}")


def _keep_pass(credentials: TapFile | None, row: int, records: Mapping[int, Any],
               answer: Answer) -> tuple[str, str]:
    """Write the pass of a 201 to credentials.csv (before the journal records it): (method id, failure or "")."""
    body = answer.body or {}
    rec = records.get(row)
    if credentials is None or not body.get("temporaryAccessPass"):
        return str(body.get("id") or ""), "the answer held no pass"
    try:
        credentials.add(issued_from(row, rec.upn if rec is not None else "", body))
    except OSError as exc:
        return str(body.get("id") or ""), f"the pass could not be written to {credentials.path.name}: {exc}"
    return str(body.get("id") or ""), ""


def already_done(op: Op, error: GraphError | None) -> bool:
    """"Already a member" (400 "One or more added object references already exist ...") counts as done."""
    return isinstance(error, ConflictError) and "/members/" in op.url and error.on("members")


def _graph_root(client: GraphClient) -> str:
    config = getattr(client, "config", None)
    root = getattr(config, "base_url", None)
    if not root:
        raise TypeError("the Graph client has no config.base_url")
    return str(root).rstrip("/")


@dataclass(frozen=True, slots=True)
class Bulk:
    """One ``PATCH /groups/{id}`` adding several members, and the per-member requests it stands for (sent instead
    when the bulk request fails, so that each row gets its own answer)."""

    op: Op
    members: tuple[Op, ...]


def bulk_memberships(ops: Sequence[Op], graph_root: str, size: int = MAX_BIND) -> tuple[list[Bulk], list[Op]]:
    """Group the ``members/$ref`` requests of ``ops`` by group, ``size`` new members per ``PATCH`` (Graph's limit
    is 20); returns the bulk requests and every other op (a group's last single member goes as ``members/$ref``:
    the same one write, and its own answer). A member never appears twice in one bulk request."""
    by_group: dict[str, list[Op]] = {}
    rest: list[Op] = []
    for op in ops:
        if op.method == "POST" and op.url.endswith("/members/$ref") and op.url.startswith("/groups/"):
            by_group.setdefault(op.url[len("/groups/"):-len("/members/$ref")], []).append(op)
        else:
            rest.append(op)
    bulks: list[Bulk] = []
    singles: list[Op] = []
    for group_id, members in by_group.items():
        chunks: list[list[Op]] = []
        for op in members:
            member = str((op.body or {}).get("@odata.id", ""))
            home = next((c for c in chunks if len(c) < size
                         and all(str((o.body or {}).get("@odata.id", "")) != member for o in c)), None)
            if home is None:
                chunks.append([op])
            else:
                home.append(op)
        for chunk in chunks:
            if len(chunk) == 1:
                singles.append(chunk[0])
                continue
            urls = [str((o.body or {}).get("@odata.id", "")) for o in chunk]
            bulks.append(Bulk(Op(("bulk", group_id, len(bulks)), "PATCH", f"/groups/{group_id}",
                                 {BIND: urls}, lag_retry=False), tuple(chunk)))
    return bulks, singles + rest


def apply_followups(client: GraphClient, journal: Journal, *, stop: threading.Event | None = None,
                    delays: Sequence[float] | None = None, budget_s: float | None = None,
                    progress: PhaseProgress | None = None, tap: TapOptions | None = None,
                    credentials: TapFile | None = None) -> dict[str, int]:
    """Send every pending follow-up whose user exists; record each answer; return counts by final state.

    Follow-ups of rows whose create failed stay pending (the row itself is reported failed); a manager follow-up
    whose manager row was not created fails with that reason. New members of one group go 20 to a ``PATCH``;
    a ``PATCH`` that fails is sent again as one ``members/$ref`` per member. A pass (``tap``) needs
    ``credentials``: the file is created before the first pass is asked for, and a row it already holds a pass for
    is recorded done without asking again. Deliveries are left to :mod:`provisioning.report.deliver`.
    """
    pending = [f for f in journal.followups([FollowUpState.PENDING]) if f.kind != "delivery"]
    if not pending:
        return {}
    records = {r.row: r for r in journal.rows()}
    if any(f.kind == TAP_KIND for f in pending):
        if credentials is None:
            raise ValueError("Temporary Access Pass follow-ups need the run's credentials file")
        credentials.prepare()  # on disk, owner-only, before the first pass exists
        on_file = credentials.load()
        journal.record_followups([(f.row, f.kind, f.target, FollowUpOutcome(FollowUpState.DONE,
                                                                             message="found in credentials.csv"))
                                  for f in pending if f.kind == TAP_KIND and f.row in on_file])
        pending = [f for f in pending if not (f.kind == TAP_KIND and f.row in on_file)]
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
        op = request_for(f, rec.object_id, manager_id, root, tap)
        manager_ids[op.key] = manager_id if f.kind == "manager" else ""
        ops.append(op)
    journal.record_followups(now_failed)
    counts: dict[str, int] = {"failed": len(now_failed)} if now_failed else {}
    bulks, others = bulk_memberships(ops, root)
    by_bulk = {b.op.key: b for b in bulks}
    log.info("follow-ups: sending %d (%d could not be sent; %d group memberships in %d bulk requests)",
             len(ops), len(now_failed), sum(len(b.members) for b in bulks), len(bulks))
    if progress is not None:
        progress.start(len(ops) + len(now_failed))
        progress.advance(len(now_failed), failed=len(now_failed))
    fallback: list[Op] = []
    earlier: dict[Hashable, int] = {}  # attempts a member's bulk request already took

    def record(key: Hashable, answer: Answer) -> None:
        row, kind, target = cast(tuple[int, str, str], key)  # request_for's key
        if answer.ok is None:
            state = FollowUpState.PENDING
        else:
            state = FollowUpState.DONE if answer.ok else FollowUpState.FAILED
        message = answer.message
        if answer.ok and answer.status == 400:
            message = "already a member"
        target_id = manager_ids.get(key, "")
        if kind == TAP_KIND and answer.ok:
            target_id, failure = _keep_pass(credentials, row, records, answer)
            if failure:
                state, message = FollowUpState.FAILED, failure
        journal.record_followups([(row, kind, target, FollowUpOutcome(
            state, answer.attempts + earlier.get(key, 0), answer.status or None, "" if answer.ok else answer.code,
            "" if state is FollowUpState.DONE and answer.status != 400 else message, answer.request_id,
            target_id))])
        counts[state.value] = counts.get(state.value, 0) + 1
        if progress is not None:
            progress.advance(1, failed=int(state is FollowUpState.FAILED))
        log.info("row %d %s %s: %s %s %s request-id=%s", row, kind, target, state.value, answer.status,
                 answer.code, answer.request_id)

    def done(key: Hashable, answer: Answer) -> None:
        bulk = by_bulk.get(key)
        if bulk is None:
            record(key, answer)
            return
        if answer.ok:
            for member in bulk.members:
                record(member.key, replace(answer, body=None))
            return
        if answer.ok is None and (stop is not None and stop.is_set() or sender.fatal):
            return  # the run stops: the members stay pending for resume
        log.info("PATCH %s (%d members): %s %s %s; sending one members/$ref per member", bulk.op.url,
                 len(bulk.members), answer.status, answer.code, answer.message)
        for member in bulk.members:
            earlier[member.key] = answer.attempts
        fallback.extend(bulk.members)

    kwargs: dict[str, Any] = {}
    if delays is not None:
        kwargs["delays"] = delays
    if budget_s is not None:
        kwargs["budget_s"] = budget_s
    sender = LagRetrySender(client, stop=stop, accept=already_done, guard=journal.check_intact, **kwargs)
    if progress is not None:
        progress.watch(getattr(getattr(client, "governor", None), "wait_s", None))
    try:
        sender.send([b.op for b in bulks] + others, done)
        if fallback and not sender.fatal and not (stop is not None and stop.is_set()):
            sender.send(fallback, done)
    finally:
        if progress is not None:
            progress.close()
    return counts
