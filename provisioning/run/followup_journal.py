"""The journal's follow-up and update records (schema version 2): one record per follow-up of a row (group
membership, licence, manager) and one per property an ``--existing update`` run changes.

Kept beside :mod:`provisioning.run.journal` (which owns the connection, the lock and the schema) so that the row
journal stays small; every function takes the open :class:`~provisioning.run.journal.Journal`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from provisioning.run.journal import Journal, utcnow


class FollowUpState(str, Enum):
    """Where one follow-up (group membership, licence, manager) of a row is."""

    PENDING = "pending"  # not done yet (the row's create may still be open, or the run was interrupted)
    DONE = "done"  # Graph confirmed it (or it was already so: "already a member")
    FAILED = "failed"  # Graph refused it, or replication never caught up within the retry budget
    PLANNED = "planned"  # dry run
    IN_PLACE = "already in place"  # the existing user already had it (read in pre-flight): nothing sent


#: Follow-up kinds, in the order they are applied and shown.
KINDS = ("group", "license", "manager")


@dataclass(frozen=True, slots=True)
class FollowUpSeed:
    """A follow-up as planned: ``target`` is what the roster says (group name, SKU part number, manager UPN);
    ``target_id`` the resolved object id (group id, skuId, the manager's id when it already exists);
    ``target_row`` the manager's roster row when the manager is created by this run."""

    row: int
    kind: str
    target: str
    target_id: str = ""
    target_row: int | None = None
    state: FollowUpState = FollowUpState.PENDING


@dataclass(frozen=True, slots=True)
class FollowUpRecord:
    """One follow-up as recorded."""

    row: int
    kind: str
    target: str
    target_id: str
    target_row: int | None
    state: FollowUpState
    attempts: int
    http_status: int | None
    error_code: str
    message: str
    request_id: str


@dataclass(frozen=True, slots=True)
class FollowUpOutcome:
    """The answer for one follow-up (``attempts``: requests sent for it in this session)."""

    state: FollowUpState
    attempts: int = 0
    http_status: int | None = None
    error_code: str = ""
    message: str = ""
    request_id: str = ""
    target_id: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """One property an update changes (values as text, as the report shows them)."""

    row: int
    property: str
    old: str
    new: str


def add_followups(journal: Journal, seeds: Iterable[FollowUpSeed]) -> None:
    """Record the planned follow-ups (a follow-up already recorded is left as it is)."""
    now = utcnow()
    with journal._tx() as cur:
        cur.executemany(
            "INSERT OR IGNORE INTO followups(row, kind, target, target_id, target_row, state, last_at)"
            " VALUES (?,?,?,?,?,?,?)",
            [(s.row, s.kind, s.target, s.target_id, s.target_row, FollowUpState(s.state).value, now)
             for s in seeds])


def record_followups(journal: Journal, outcomes: Sequence[tuple[int, str, str, FollowUpOutcome]]) -> None:
    """Store answers: ``(row, kind, target, outcome)``; attempts add up across sessions."""
    if not outcomes:
        return
    now = utcnow()
    with journal._tx() as cur:
        cur.executemany(
            "UPDATE followups SET state=?, attempts=attempts+?, http_status=?, error_code=?, message=?,"
            " request_id=?, target_id=CASE WHEN ?='' THEN target_id ELSE ? END, last_at=?"
            " WHERE row=? AND kind=? AND target=?",
            [(o.state.value, o.attempts, o.http_status, o.error_code, o.message, o.request_id, o.target_id,
              o.target_id, now, row, kind, target) for row, kind, target, o in outcomes])


def followups(journal: Journal, states: Iterable[FollowUpState] | None = None) -> list[FollowUpRecord]:
    """Follow-ups in roster order (then kind order), optionally only those in ``states``."""
    sql = "SELECT * FROM followups"
    params: list[str] = []
    if states is not None:
        wanted = [FollowUpState(s).value for s in states]
        sql += f" WHERE state IN ({','.join('?' * len(wanted))})"
        params = wanted
    order = " ORDER BY row, CASE kind WHEN 'group' THEN 0 WHEN 'license' THEN 1 ELSE 2 END, rowid"
    with journal._lock:
        found = journal._conn.execute(sql + order, params).fetchall()
    return [FollowUpRecord(r["row"], r["kind"], r["target"], r["target_id"], r["target_row"],
                           FollowUpState(r["state"]), r["attempts"], r["http_status"], r["error_code"],
                           r["message"], r["request_id"]) for r in found]


def by_row(records: Iterable[FollowUpRecord]) -> dict[int, list[FollowUpRecord]]:
    """Follow-ups grouped by row."""
    out: dict[int, list[FollowUpRecord]] = {}
    for f in records:
        out.setdefault(f.row, []).append(f)
    return out


def summary_text(records: Sequence[FollowUpRecord]) -> str:
    """One line per row for the reports: ``group Engineering: done; licence SPE_E5: failed (message)``."""
    parts = []
    for f in records:
        label = {"license": "licence"}.get(f.kind, f.kind)
        text = f"{label} {f.target}: {f.state.value}"
        if f.state is FollowUpState.FAILED and f.message:
            text += f" ({f.message})"
        parts.append(text)
    return "; ".join(parts)


def any_failed(records: Sequence[FollowUpRecord]) -> bool:
    """True when one of the row's follow-ups failed."""
    return any(f.state is FollowUpState.FAILED for f in records)


def add_changes(journal: Journal, changes: Iterable[Change]) -> None:
    """Record the properties an update changes (planned, or done: the row's state says which)."""
    with journal._tx() as cur:
        cur.executemany("INSERT OR REPLACE INTO updates(row, property, old, new) VALUES (?,?,?,?)",
                        [(c.row, c.property, c.old, c.new) for c in changes])


def changes(journal: Journal) -> dict[int, list[Change]]:
    """Recorded changes by row, in the order recorded."""
    with journal._lock:
        found = journal._conn.execute("SELECT * FROM updates ORDER BY row, rowid").fetchall()
    out: dict[int, list[Change]] = {}
    for r in found:
        out.setdefault(r["row"], []).append(Change(r["row"], r["property"], r["old"], r["new"]))
    return out


def row_states(records: Sequence[FollowUpRecord]) -> Mapping[int, str]:
    """Per row: "failed" if one follow-up failed, else "pending" if one is pending, else "done"."""
    out: dict[int, str] = {}
    for f in records:
        current = out.get(f.row, "done")
        if f.state is FollowUpState.FAILED or current == "failed":
            out[f.row] = "failed"
        elif f.state is FollowUpState.PENDING or current == "pending":
            out[f.row] = "pending"
        else:
            out[f.row] = current if f.state in (FollowUpState.DONE, FollowUpState.IN_PLACE) else "planned"
    return out


def row_view(journal: Journal) -> dict[int, tuple[str, str]]:
    """Per row with follow-ups: (state as :func:`row_states` gives it, one-line summary) for the reports."""
    grouped = by_row(followups(journal))
    states = row_states([f for fs in grouped.values() for f in fs])
    return {row: (states[row], summary_text(fs)) for row, fs in grouped.items()}
