#!/usr/bin/env python3
"""Benchmark: write results.xlsx for 100,000 rows vs. a raw openpyxl write-only dump of the same cells.

Both writers run in the same process, on the same prebuilt rows, and both save a complete workbook. The
ratio (ours / raw) is printed beside the target; the exit status is non-zero when the target is missed.

    python bench/report_scale.py [--rows N] [--target 1.5] [--keep DIR] [--libreoffice]

``--libreoffice`` (a dev check, not part of the test suite) also opens the written workbook with LibreOffice
(``soffice --headless --convert-to csv``, every sheet), checks each sheet's row count and that no formula was
evaluated.
"""
from __future__ import annotations

import argparse
import csv
import gc
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openpyxl import Workbook  # noqa: E402

from provisioning.models import Issue, Severity  # noqa: E402
from provisioning.report.model import (
    CREATED_COLUMNS,
    LEAD_COLUMNS,
    SKIPPED_COLUMNS,
    TRAIL_COLUMNS,
    UPDATED_COLUMNS,
    ReportRow,
    ReportSummary,
)
from provisioning.report.workbook import write_results_workbook  # noqa: E402

HEADERS = ("givenName", "surname", "displayName", "userPrincipalName", "department", "jobTitle", "employeeId",
           "mobilePhone", "usageLocation", "city", "groups", "manager")


def make_rows(n: int) -> list[ReportRow]:
    """A realistic mix: 90% created, 3% skipped, 4% failed, 3% invalid; 1% of cells look like formulas."""
    rows = []
    for i in range(n):
        row = i + 2
        given, surname = f"Given{i}", f"Surname{i}"
        upn = f"given{i}.surname{i}@contoso.example"
        cells = (given, surname, f"{given} {surname}", upn, "=HYPERLINK(\"x\")" if i % 100 in (7, 95) else "Finance",
                 "Analyst", f"{i:06d}", "+44 20 7946 0000", "GB", "London", "Staff;All", "")
        kind = i % 100
        if kind < 90:
            rows.append(ReportRow(row=row, status="created", upn=upn, display_name=f"{given} {surname}",
                                  object_id=f"{i:08x}-0000-4000-8000-000000000000", attempts=1, cells=cells,
                                  followups="groups: added to 2", password_generated=True))
        elif kind < 93:
            rows.append(ReportRow(row=row, status="skipped", upn=upn, display_name=f"{given} {surname}",
                                  object_id=f"{i:08x}-1111-4000-8000-000000000000", cells=cells,
                                  message="already exists in the tenant"))
        elif kind < 97:
            rows.append(ReportRow(row=row, status="failed", upn=upn, http_status=400,
                                  error_code="Request_BadRequest", message="-Invalid value specified for property",
                                  request_id=f"{i:08x}-2222-4000-8000-000000000000", attempts=3, cells=cells))
        else:
            rows.append(ReportRow(row=row, status="invalid", upn=upn, cells=cells, issues=(
                Issue(row, "usageLocation", "usage_location", Severity.ERROR, "not an ISO 3166 code"),
                Issue(row, "employeeId", "duplicate", Severity.ERROR, "duplicate employeeId"))))
    return rows


def plain_cells(rows: list[ReportRow]) -> dict[str, list[list[Any]]]:
    """The same cells as the report's sheets, as plain values (built before timing)."""
    sheets: dict[str, list[list[Any]]] = {"Created": [list(CREATED_COLUMNS)], "Updated": [list(UPDATED_COLUMNS)],
                                          "Skipped": [list(SKIPPED_COLUMNS)],
                                          "Failed": [list(LEAD_COLUMNS + HEADERS + TRAIL_COLUMNS)],
                                          "Invalid": [list(LEAD_COLUMNS + HEADERS + TRAIL_COLUMNS)]}
    for r in rows:
        if r.status == "created":
            sheets["Created"].append([r.row, r.status, r.upn, r.display_name, r.object_id, r.followups,
                                      "generated: see passwords.csv", None])
        elif r.status == "skipped":
            sheets["Skipped"].append([r.row, r.status, r.upn, r.display_name, r.object_id, r.message])
        else:
            sheet = "Failed" if r.status == "failed" else "Invalid"
            sheets[sheet].append([r.row, r.upn, r.code_text(), r.message_text(), *r.cells, r.status, r.request_id,
                                  r.attempts or None])
    return sheets


def raw_dump(path: Path, summary_lines: list[list[Any]], sheets: dict[str, list[list[Any]]]) -> None:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Summary")
    for line in summary_lines:
        ws.append(line)
    for name, lines in sheets.items():
        ws = wb.create_sheet(name)
        for line in lines:
            ws.append(line)
    wb.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--target", type=float, default=1.5)
    parser.add_argument("--repeat", type=int, default=2, help="best of N for each writer")
    parser.add_argument("--keep", type=Path, help="keep the written workbooks in this folder")
    parser.add_argument("--libreoffice", action="store_true", help="also open the workbook with LibreOffice")
    args = parser.parse_args(argv)

    rows = make_rows(args.rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    start = datetime(2024, 5, 1, 9, 0, 0)
    summary = ReportSummary(roster="bench.xlsx", tenant="contoso.example", started=start,
                            ended=start + timedelta(seconds=600), duration_s=600.0, users_per_s=args.rows / 600,
                            counts=counts, error_counts={"Request_BadRequest": counts.get("failed", 0)},
                            retry_command="python provision.py retry runs/x", passwords_file="passwords.csv")
    sheets = plain_cells(rows)
    summary_lines = [["Item", "Value"], ["Roster", "bench.xlsx"], ["Tenant", "contoso.example"]] + \
        [[k, v] for k, v in counts.items()]

    out = args.keep or Path(tempfile.mkdtemp(prefix="report_scale."))
    out.mkdir(parents=True, exist_ok=True)
    ours_t, raw_t = [], []
    for _ in range(args.repeat):
        gc.collect()
        t0 = time.perf_counter()
        raw_dump(out / "raw.xlsx", summary_lines, sheets)
        raw_t.append(time.perf_counter() - t0)
        gc.collect()
        t0 = time.perf_counter()
        write_results_workbook(out / "results.xlsx", headers=HEADERS, rows=iter(rows), summary=summary)
        ours_t.append(time.perf_counter() - t0)

    tracemalloc.start()
    write_results_workbook(out / "results-mem.xlsx", headers=HEADERS, rows=iter(rows), summary=summary)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    ours, raw = min(ours_t), min(raw_t)
    ratio = ours / raw
    ok = ratio <= args.target
    sys.stdout.write(
        f"rows: {args.rows:,}\n"
        f"raw openpyxl write-only dump: {raw:.2f} s\n"
        f"write_results_workbook:       {ours:.2f} s ({args.rows / ours:,.0f} rows/s)\n"
        f"ratio: {ratio:.2f}x (target <= {args.target:.2f}x) {'OK' if ok else 'MISSED'}\n"
        f"writer peak traced memory: {peak / 1e6:.1f} MB (rows prebuilt outside)\n"
        f"files: {out}\n")
    if args.libreoffice:
        ok = libreoffice_check(out / "results.xlsx", {name: len(lines) for name, lines in sheets.items()}) and ok
    return 0 if ok else 1


def libreoffice_check(path: Path, expected_rows: dict[str, int]) -> bool:
    """Convert every sheet to CSV with LibreOffice; compare row counts; look for evaluated formulas."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        sys.stdout.write("libreoffice: not installed (apt-get install libreoffice-calc-nogui); skipped\n")
        return True
    target = path.parent / "lo"
    target.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    # filter options: comma, quote, UTF-8, from line 1, ..., and the last token -1 = every sheet to its own file
    subprocess.run([soffice, "--headless", "--convert-to",
                    "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
                    "--outdir", str(target), str(path)], check=True, capture_output=True, timeout=900)
    good = True
    for name, rows in expected_rows.items():
        sheet_csv = target / f"{path.stem}-{name}.csv"
        with open(sheet_csv, newline="", encoding="utf-8") as fh:
            lines = list(csv.reader(fh))
        hostile = sum(1 for line in lines for cell in line if cell[:1] in ("=", "+", "-", "@"))
        fine = len(lines) == rows
        good = good and fine
        sys.stdout.write(f"libreoffice {name}: {len(lines):,} rows (expected {rows:,}) "
                         f"{'OK' if fine else 'MISMATCH'}; formula-looking cells kept as text: {hostile:,}\n")
    sys.stdout.write(f"libreoffice: opened and converted in {time.perf_counter() - t0:.1f} s\n")
    return good


if __name__ == "__main__":
    sys.exit(main())
