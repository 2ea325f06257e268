"""The run folder's files for automation: ``results.csv`` and ``summary.json``.

Every CSV cell passes through :func:`provisioning.cells.csv_safe`. (``passwords.csv`` and ``run.log``, written while
the run sends, are :mod:`provisioning.run.secrets`.)
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from provisioning.cells import csv_safe
from provisioning.models import Issue, Severity
from provisioning.run.journal import RowRecord, RowState

RESULT_COLUMNS = ("row", "userPrincipalName", "displayName", "status", "objectId", "httpStatus", "errorCode",
                  "message", "requestId", "attempts", "firstAt", "lastAt", "followUps")

_STATUS = {
    RowState.CREATED: "created",
    RowState.SKIPPED: "skipped",
    RowState.FAILED: "failed",
    RowState.INVALID: "invalid",
    RowState.PENDING: "not sent",
    RowState.SENDING: "unknown",
    RowState.UNKNOWN: "unknown",
    RowState.UPDATED: "updated",
}
_PLANNED = {"create": "would create", "skip": "would skip", "exists": "would fail", "invalid": "invalid",
            "update": "would update"}
#: Row states whose user exists, so a follow-up state qualifies the status.
_WITH_USER = frozenset({RowState.CREATED, RowState.SKIPPED, RowState.UPDATED})


def status_of(record: RowRecord, followup: str = "") -> str:
    """The ``status`` column for a journal row; ``followup`` is the row's follow-up state ("failed", "pending",
    "done", "planned" or "": see :func:`provisioning.run.followups.row_followup_states`). A user that exists but whose
    follow-up failed is "created, follow-up failed" (or "skipped, ..."/"updated, ...")."""
    if record.state is RowState.PLANNED:
        return _PLANNED.get(record.action, record.action)
    base = _STATUS[record.state]
    if record.state in _WITH_USER and followup in ("failed", "pending"):
        return f"{base}, follow-up {followup}"
    return base


def result_lines(records: Iterable[RowRecord], issues: Mapping[int, Sequence[Issue]],
                 followups: Mapping[int, tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """One dictionary per roster row with the ``results.csv`` columns (values not yet made spreadsheet-safe).

    ``followups`` maps a row to its follow-up state and its one-line summary of every follow-up."""
    lines = []
    follow = followups or {}
    for r in records:
        fstate, ftext = follow.get(r.row, ("", ""))
        code, message = r.error_code, r.message
        if r.state is RowState.INVALID or (r.state is RowState.PLANNED and r.action == "invalid"):
            errors = [i for i in issues.get(r.row, ()) if i.severity is Severity.ERROR]
            code = code or ";".join(dict.fromkeys(i.code for i in errors))
            message = message or "; ".join(i.message for i in errors)
        lines.append({
            "row": r.row, "userPrincipalName": r.upn, "displayName": r.display_name,
            "status": status_of(r, fstate),
            "objectId": r.object_id, "httpStatus": "" if r.http_status is None else r.http_status,
            "errorCode": code, "message": message, "requestId": r.request_id, "attempts": r.attempts,
            "firstAt": r.first_at, "lastAt": r.last_at, "followUps": ftext,
        })
    return lines


def write_results_csv(path: Path, records: Iterable[RowRecord], issues: Mapping[int, Sequence[Issue]],
                      followups: Mapping[int, tuple[str, str]] | None = None) -> int:
    """Write ``results.csv`` (UTF-8 with BOM so Excel reads accents; formula cells neutralised); return rows."""
    lines = result_lines(records, issues, followups)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.DictWriter(fh, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        for line in lines:
            writer.writerow({k: csv_safe(v) for k, v in line.items()})
    os.replace(tmp, path)
    return len(lines)


def write_summary_json(path: Path, summary: Mapping[str, Any]) -> None:
    """Write ``summary.json`` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
