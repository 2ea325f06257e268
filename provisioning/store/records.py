"""The types of the journal's follow-up and update records (schema version 2): one record per follow-up of a row
(group membership, licence, manager) and one per property an ``--existing update`` run changes, and the pure
helpers that summarise them. :class:`provisioning.store.journal.Journal` stores and reads them.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum


class FollowUpState(str, Enum):
    """Where one follow-up (group membership, licence, manager) of a row is."""

    PENDING = "pending"  # not done yet (the row's create may still be open, or the run was interrupted)
    DONE = "done"  # Graph confirmed it (or it was already so: "already a member")
    FAILED = "failed"  # Graph refused it, or replication never caught up within the retry budget
    PLANNED = "planned"  # dry run
    IN_PLACE = "already in place"  # the existing user already had it (read in pre-flight): nothing sent
    NOT_DELIVERED = "not delivered"  # a delivery that has nobody to go to (no manager): the file keeps it


#: Follow-up kinds, in the order they are applied and shown: ``tap`` is a row's Temporary Access Pass (its
#: target_id the method id, never the pass), ``delivery`` the mail of its credential to its manager (the target).
KINDS = ("group", "license", "manager", "tap", "delivery")


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
        if f.kind == "delivery":
            parts.append(_delivery_text(f))
            continue
        label = {"license": "licence"}.get(f.kind, f.kind)
        text = f"Temporary Access Pass: {f.state.value}" if f.kind == "tap" else f"{label} {f.target}: {f.state.value}"
        if f.state is FollowUpState.FAILED and f.message:
            text += f" ({f.message})"
        parts.append(text)
    return "; ".join(parts)


def _delivery_text(f: FollowUpRecord) -> str:
    """``delivered to boss@contoso.com``, ``not delivered: no manager``, ``delivery to X: failed (why)``."""
    if f.state is FollowUpState.DONE:
        return f"delivered to {f.target}"
    if f.state is FollowUpState.NOT_DELIVERED:
        return f"not delivered: {f.message or 'no manager'}"
    text = f"delivery to {f.target}: {f.state.value}"
    return text + (f" ({f.message})" if f.state is FollowUpState.FAILED and f.message else "")


def row_states(records: Iterable[FollowUpRecord]) -> dict[int, FollowUpState]:
    """Per row: failed if one follow-up failed, else pending if one is pending, else done (planned: a dry run)."""
    out: dict[int, FollowUpState] = {}
    for f in records:
        current = out.get(f.row, FollowUpState.DONE)
        if f.state is FollowUpState.FAILED or current is FollowUpState.FAILED:
            out[f.row] = FollowUpState.FAILED
        elif f.state is FollowUpState.PENDING or current is FollowUpState.PENDING:
            out[f.row] = FollowUpState.PENDING
        else:
            settled = (FollowUpState.DONE, FollowUpState.IN_PLACE, FollowUpState.NOT_DELIVERED)
            out[f.row] = current if f.state in settled else FollowUpState.PLANNED
    return out
