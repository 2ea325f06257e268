"""Helpers for the results-workbook tests: real files, read back with openpyxl and with pandas through calamine."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd

from provisioning.models import Issue, Severity
from provisioning.report.model import ReportRow, ReportSummary

HEADERS = ("First name", "Last name", "userPrincipalName", "Password", "usageLocation", "Badge")


def sample_rows() -> list[ReportRow]:
    """One or more rows of every sheet, with hostile text where a user or Graph could put it."""
    return [
        ReportRow(row=2, status="created", upn="ann.lee@contoso.example", display_name="Ann Lee",
                  object_id="11111111-1111-4111-8111-111111111111", attempts=1,
                  cells=("Ann", "Lee", "ann.lee@contoso.example", "", "GB", "001"),
                  followups="groups: added to Staff", password_generated=True,
                  issues=(Issue(2, "Badge", "badge-short", Severity.WARNING, "badge looks short"),)),
        ReportRow(row=3, status="skipped", upn="bo.ek@contoso.example", display_name="Bo Ek",
                  object_id="22222222-2222-4222-8222-222222222222",
                  cells=("Bo", "Ek", "bo.ek@contoso.example", "S3cret!Pass", "SE", "002"),
                  message="already exists in the tenant"),
        ReportRow(row=4, status="failed", upn="cy.do@contoso.example", http_status=400,
                  error_code="Request_BadRequest", message="=HYPERLINK(\"http://evil\",\"x\")",
                  request_id="33333333-3333-4333-8333-333333333333", attempts=3,
                  cells=("Cy", "-Do", "cy.do@contoso.example", "S3cret!Pass", "US", "003")),
        ReportRow(row=5, status="invalid", upn="", cells=("Di", "Ox", "", "hunter2hunter2", "XX", "@004"),
                  issues=(Issue(5, "usageLocation", "usage-location", Severity.ERROR, "XX is not an ISO 3166 code"),
                          Issue(5, "badge", "formula-cell", Severity.ERROR, "looks like a formula"))),
        ReportRow(row=6, status="updated", upn="ed.fu@contoso.example", display_name="Ed Fu",
                  object_id="44444444-4444-4444-8444-444444444444", message="jobTitle",
                  cells=("Ed", "Fu", "ed.fu@contoso.example", "", "FR", "005")),
    ]


def sample_summary(**overrides: Any) -> ReportSummary:
    values: dict[str, Any] = dict(
        roster="roster.xlsx", tenant="contoso.example", started=datetime(2024, 5, 1, 9, 0, 0),
        ended=datetime(2024, 5, 1, 9, 0, 10), duration_s=10.0, users_per_s=0.5,
        counts={"created": 1, "skipped": 1, "failed": 1, "invalid": 1, "updated": 1},
        error_counts={"Request_BadRequest": 1, "usage-location": 1, "formula-cell": 1},
        retry_command="python provision.py --sandbox retry runs/r1",
        resume_command="python provision.py resume runs/r1",
        passwords_file="passwords.csv", run_dir="runs/r1")
    values.update(overrides)
    return ReportSummary(**values)


def openpyxl_values(path: Path, sheet: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in openpyxl.load_workbook(path)[sheet].iter_rows(values_only=True)]


def calamine_values(path: Path, sheet: str) -> list[list[str]]:
    """Every cell as text ('' for empty), as a second, independent reader sees it."""
    frame = pd.read_excel(path, sheet_name=sheet, engine="calamine", header=None, dtype=str,
                          keep_default_na=False, na_filter=False)
    return [list(r) for r in frame.itertuples(index=False)]



