"""A rollback's own reports, in its folder: ``results.csv`` and ``results.xlsx`` (one line per step: what was undone,
already undone, left as it is because the tenant changed since, refused by Graph, or cannot be undone) and
``summary.json``; and the lines the console shows (the plan before it is confirmed, the summary after).

Every CSV cell passes through :func:`provisioning.cells.csv_safe`; the workbook's cells too.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provisioning.cells import csv_safe
from provisioning.report.files import write_summary_json
from provisioning.run.rollback import (
    RESTORE_DAYS,
    Step,
    StepKind,
    StepState,
    describe,
    plan_counts,
)
from provisioning.store.folder import RunFolder

COLUMNS = ("step", "row", "userPrincipalName", "objectId", "action", "target", "runValue", "restoredValue",
           "outcome", "httpStatus", "errorCode", "message", "requestId", "attempts")
ACTIONS = {StepKind.DELETE: "delete user", StepKind.REVERT: "revert property", StepKind.GROUP: "remove from group",
           StepKind.LICENSE: "remove licence", StepKind.MANAGER: "remove manager"}
#: How a dry run shows the steps it would send.
PLANNED_TEXT = "would undo"


def lines(steps: Sequence[Step]) -> list[dict[str, Any]]:
    """One dictionary per step with the report's columns."""
    return [{"step": s.step, "row": s.row, "userPrincipalName": s.upn, "objectId": s.object_id,
             "action": ACTIONS[s.kind], "target": s.label if s.kind is not StepKind.REVERT else s.target,
             "runValue": s.new if s.kind is StepKind.REVERT else "",
             "restoredValue": s.old if s.kind is StepKind.REVERT else "",
             "outcome": PLANNED_TEXT if s.state is StepState.PLANNED else s.state.value,
             "httpStatus": "" if s.http_status is None else s.http_status, "errorCode": s.error_code,
             "message": s.message, "requestId": s.request_id, "attempts": s.attempts} for s in steps]


def restorable_until(now: datetime | None = None) -> str:
    """The day until which the users deleted now can be restored (Graph keeps them 30 days)."""
    return ((now or datetime.now(UTC)) + timedelta(days=RESTORE_DAYS)).strftime("%Y-%m-%d")


def summary(steps: Sequence[Step], meta: Mapping[str, Any], *, dry_run: bool) -> dict[str, Any]:
    """``summary.json``: the plan's counts, the outcome of the steps by kind, and until when the deleted users can be
    restored."""
    outcomes: dict[str, dict[str, int]] = {}
    for s in steps:
        by = outcomes.setdefault(s.kind.value, {})
        state = PLANNED_TEXT if s.state is StepState.PLANNED else s.state.value
        by[state] = by.get(state, 0) + 1
    deleted = sum(1 for s in steps if s.kind is StepKind.DELETE and s.state is StepState.DONE)
    return {"kind": "rollback", "run_dir": meta.get("run_dir"), "dry_run": dry_run, "plan": plan_counts(steps),
            "outcomes": outcomes, "deleted": deleted,
            "restorable_until": restorable_until() if deleted else None, "finished": datetime.now(UTC).isoformat()}


def write_reports(folder: RunFolder, steps: Sequence[Step], meta: Mapping[str, Any], *, dry_run: bool) -> None:
    """``results.csv``, ``results.xlsx`` and ``summary.json`` of a rollback folder (each written atomically)."""
    rows = lines(steps)
    tmp = folder.results_csv.with_name(folder.results_csv.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for line in rows:
            writer.writerow({k: csv_safe(v) for k, v in line.items()})
    os.replace(tmp, folder.results_csv)
    _write_workbook(folder.results_xlsx, rows, summary_lines(steps, dry_run=dry_run))
    write_summary_json(folder.summary_json, summary(steps, meta, dry_run=dry_run))


def _write_workbook(path: Path, rows: Sequence[Mapping[str, Any]], overview: Sequence[str]) -> None:
    from openpyxl import Workbook  # deferred: openpyxl stays off the start-up path

    book = Workbook(write_only=True)
    head = book.create_sheet("Summary")
    for text in overview:
        head.append([csv_safe(text)])
    sheet = book.create_sheet("Rollback")
    sheet.append(list(COLUMNS))
    for line in rows:
        sheet.append([csv_safe(line[c]) for c in COLUMNS])
    tmp = path.with_name(path.name + ".tmp")
    book.save(tmp)
    os.replace(tmp, path)


def plan_lines(steps: Sequence[Step], limit: int = 50) -> list[str]:
    """What the rollback will do, as shown before it asks: the counts, then one line per step (up to ``limit``)."""
    c = plan_counts(steps)
    out = [f"rollback plan: {c['delete']} user(s) the run created to delete; {c['revert_properties']} "
           f"propert(y/ies) of {c['revert_users']} updated user(s) to revert to their recorded old values; "
           f"follow-ups to remove: {c['group']} group membership(s), {c['license']} licence(s), "
           f"{c['manager']} manager(s)"]
    if c["left"]:
        out.append(f"{c['left']} change(s) of the run cannot be undone and are left (see the report)")
    todo = [s for s in steps if s.state is not StepState.LEFT]
    out.extend("  " + describe(s) for s in todo[:limit])
    if len(todo) > limit:
        out.append(f"  ... and {len(todo) - limit} more (results.csv of the rollback folder)")
    if c["delete"]:
        out.append(f"deleted users stay restorable for {RESTORE_DAYS} days (Entra admin center, Deleted users; or "
                   "POST /directory/deletedItems/{id}/restore)")
    return out


def summary_lines(steps: Sequence[Step], *, dry_run: bool) -> list[str]:
    """The summary after the rollback (or its dry run)."""
    def n(kind: StepKind, *states: StepState) -> int:
        return sum(1 for s in steps if s.kind is kind and s.state in states)

    done = (StepState.PLANNED,) if dry_run else (StepState.DONE,)
    verb = "would be " if dry_run else ""
    follow = sum(n(k, *done) for k in (StepKind.GROUP, StepKind.LICENSE, StepKind.MANAGER))
    out = [f"rollback{' (dry run)' if dry_run else ''}: {n(StepKind.DELETE, *done)} user(s) {verb}deleted, "
           f"{n(StepKind.REVERT, *done)} propert(y/ies) {verb}reverted, {follow} follow-up(s) {verb}removed"]
    already = sum(1 for s in steps if s.state is StepState.UNDONE)
    if already:
        out.append(f"{already} step(s) already undone in the tenant: nothing sent for them")
    for state, what in ((StepState.CONFLICT, "conflict(s): the tenant changed since the run; left as it is"),
                        (StepState.FAILED, "failed"), (StepState.LEFT, "cannot be undone (left)"),
                        (StepState.PENDING, "not sent yet"), (StepState.SENDING, "in doubt")):
        count = sum(1 for s in steps if s.state is state)
        if count:
            out.append(f"{count} {what}")
            out.extend("  " + describe(s) + (f": {s.message}" if s.message else "")
                       for s in steps if s.state is state and state in (StepState.CONFLICT, StepState.FAILED))
    deleted = n(StepKind.DELETE, StepState.DONE)
    if deleted and not dry_run:
        out.append(f"the {deleted} deleted user(s) stay restorable for {RESTORE_DAYS} days, until about "
                   f"{restorable_until()} (Entra admin center, Deleted users; POST /directory/deletedItems/{{id}}"
                   "/restore); then Graph removes them for good")
    return out
