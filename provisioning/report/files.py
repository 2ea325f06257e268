"""The run folder's files for automation: ``results.csv`` and ``summary.json``.

Every CSV cell passes through :func:`provisioning.cells.csv_safe`. (``passwords.csv`` and ``run.log``, written while
the run sends, are :mod:`provisioning.store.secrets`.)
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from provisioning.cells import csv_safe
from provisioning.report.model import ReportRow, Status

RESULT_COLUMNS = ("row", "userPrincipalName", "displayName", "status", "objectId", "httpStatus", "errorCode",
                  "message", "requestId", "attempts", "firstAt", "lastAt", "followUps")


def result_lines(rows: Iterable[ReportRow]) -> list[dict[str, Any]]:
    """One dictionary per roster row with the ``results.csv`` columns (values not yet made spreadsheet-safe)."""
    lines = []
    for r in rows:
        code, message = r.error_code, r.message
        if r.status == Status.INVALID:
            errors = r.error_issues()
            code = code or ";".join(dict.fromkeys(i.code for i in errors))
            message = message or "; ".join(i.message for i in errors)
        lines.append({
            "row": r.row, "userPrincipalName": r.upn, "displayName": r.display_name, "status": r.status_text(),
            "objectId": r.object_id, "httpStatus": "" if r.http_status is None else r.http_status,
            "errorCode": code, "message": message, "requestId": r.request_id, "attempts": r.attempts,
            "firstAt": r.first_at, "lastAt": r.last_at, "followUps": r.followups,
        })
    return lines


def csv_lines(rows: Iterable[ReportRow]) -> dict[int, str]:
    """Each row's ``results.csv`` line (spreadsheet-safe, with its line end), by roster row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    out: dict[int, str] = {}
    for line in result_lines(rows):
        writer.writerow([csv_safe(line[k]) for k in RESULT_COLUMNS])
        out[int(line["row"])] = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    return out


def write_results_csv(path: Path, rows: Sequence[ReportRow], *, rendered: Mapping[int, str] | None = None) -> int:
    """Write ``results.csv`` (UTF-8 with BOM so Excel reads accents; formula cells neutralised); return rows.
    ``rendered``: lines of :func:`csv_lines` made already (the early reports'), by roster row."""
    rendered = rendered or {}
    missing = csv_lines(r for r in rows if r.row not in rendered)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh).writerow(RESULT_COLUMNS)
        fh.write("".join(rendered[r.row] if r.row in rendered else missing[r.row] for r in rows))
    os.replace(tmp, path)
    return len(rows)


def write_summary_json(path: Path, summary: Mapping[str, Any]) -> None:
    """Write ``summary.json`` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
