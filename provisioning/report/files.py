"""The run folder's files for automation: ``results.csv`` and ``summary.json``.

Every CSV cell passes through :func:`provisioning.cells.csv_safe`. (``passwords.csv`` and ``run.log``, written while
the run sends, are :mod:`provisioning.store.secrets`.)
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping
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


def write_results_csv(path: Path, rows: Iterable[ReportRow]) -> int:
    """Write ``results.csv`` (UTF-8 with BOM so Excel reads accents; formula cells neutralised); return rows."""
    lines = result_lines(rows)
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
