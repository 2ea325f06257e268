"""The typed input of the results workbook (``results.xlsx``) and its sheet layout.

The writer (:mod:`provisioning.report.workbook`) knows nothing of journals or plans: whoever has the run's outcome
builds
one :class:`ReportRow` per roster row and one :class:`ReportSummary`, and hands them over. The sheet layout
(:mod:`provisioning.run.folder`) is shared with :mod:`provisioning.run.retrysource`, which reads the Failed and
Invalid sheets back for ``retry``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from provisioning.models import Issue, Severity
from provisioning.run.folder import CREATED as CREATED  # the workbook's layout, re-exported with the model
from provisioning.run.folder import FAILED as FAILED
from provisioning.run.folder import INVALID as INVALID
from provisioning.run.folder import RESULT_COLUMNS as RESULT_COLUMNS
from provisioning.run.folder import SHEETS as SHEETS
from provisioning.run.folder import SKIPPED as SKIPPED
from provisioning.run.folder import SUMMARY as SUMMARY
from provisioning.run.folder import UPDATED as UPDATED
from provisioning.run.folder import RunFolder

# Sheet names (SUMMARY ... INVALID, SHEETS) and RESULT_COLUMNS are shared with retry's reader: see run/folder.py.

# Row statuses as they appear in the Status columns (and as keys of ReportSummary.counts).
CREATED_STATUS = "created"
UPDATED_STATUS = "updated"
SKIPPED_STATUS = "skipped"
FAILED_STATUS = "failed"
INVALID_STATUS = "invalid"
WOULD_CREATE = "would create"
WOULD_UPDATE = "would update"
WOULD_SKIP = "would skip"

LIVE_STATUSES: tuple[str, ...] = (CREATED_STATUS, UPDATED_STATUS, SKIPPED_STATUS, FAILED_STATUS, INVALID_STATUS)
DRY_RUN_STATUSES: tuple[str, ...] = (WOULD_CREATE, WOULD_UPDATE, WOULD_SKIP, INVALID_STATUS)

_SHEET_FOR_STATUS: dict[str, str] = {
    CREATED_STATUS: CREATED, WOULD_CREATE: CREATED,
    UPDATED_STATUS: UPDATED, WOULD_UPDATE: UPDATED,
    SKIPPED_STATUS: SKIPPED, WOULD_SKIP: SKIPPED,
    FAILED_STATUS: FAILED,
    INVALID_STATUS: INVALID,
}

# Columns of the sheets that are not roster-shaped.
CREATED_COLUMNS: tuple[str, ...] = (
    "Row", "Status", "User principal name", "Display name", "Object id", "Follow-ups", "Password", "Warnings")
#: The Updated sheet has one line per changed property (old -> new), the row's columns repeated on each.
UPDATED_COLUMNS: tuple[str, ...] = (
    "Row", "Status", "User principal name", "Display name", "Object id", "Property", "Old value", "New value",
    "Follow-ups", "Warnings")
SKIPPED_COLUMNS: tuple[str, ...] = (
    "Row", "Status", "User principal name", "Display name", "Existing object id", "Reason", "Follow-ups")

PASSWORD_GENERATED_NOTE = f"generated: see {RunFolder.PASSWORDS_CSV}"
_NON_ALNUM = re.compile(r"[\W_]+")


FOLLOW_UP_PROBLEM = ", follow-up "


def sheet_for_status(status: str) -> str:
    """The sheet a row with ``status`` goes to. Unknown statuses (a row still *pending* or *sending* in an
    interrupted run) go to Failed, so that no row is ever silently left out of the report. A row whose user exists
    but whose follow-up failed ("created, follow-up failed") goes to its own sheet (Created, Updated, Skipped);
    :func:`sheets_for_status` adds Failed."""
    base, sep, _ = status.partition(FOLLOW_UP_PROBLEM)
    if sep:
        return _SHEET_FOR_STATUS.get(base, FAILED)
    return _SHEET_FOR_STATUS.get(status, FAILED)


def sheets_for_status(status: str) -> tuple[str, ...]:
    """Every sheet a row goes to: its own, plus Failed for "..., follow-up failed/pending" (so ``retry`` can send
    it back: the user exists and is skipped, its follow-ups go again)."""
    own = sheet_for_status(status)
    if FOLLOW_UP_PROBLEM in status and own != FAILED:
        return (own, FAILED)
    return (own,)


def is_password_header(header: str) -> bool:
    """True for a roster column that holds passwords (``password``, ``Initial password``, ``passwordProfile``...).

    Such columns keep their header in the Failed and Invalid sheets (so ``retry`` can be given a new password)
    but never their content: a password given in the roster is never copied anywhere.
    """
    key = _NON_ALNUM.sub("", header or "").casefold()
    # "Force change password" / "Must change password" are flags, not secrets
    return "password" in key and "change" not in key and "policies" not in key


@dataclass(frozen=True, slots=True)
class ReportRow:
    """The outcome of one roster row, as the workbook shows it.

    ``row`` is the roster row number as the user sees it; ``cells`` are the original roster cells (texts, in the
    roster's column order) for the Failed and Invalid sheets; ``issues`` are the validation findings of the row
    (errors highlight their cell on the Invalid sheet; warnings are listed on the Created/Updated sheets).
    ``error_code`` and ``message`` may be left empty for invalid rows: they are then built from ``issues``.
    ``password_generated`` says that the row's password was generated (it is in passwords.csv, never here).
    """

    row: int
    status: str
    upn: str = ""
    display_name: str = ""
    object_id: str = ""
    http_status: int | None = None
    error_code: str = ""
    message: str = ""
    request_id: str = ""
    attempts: int = 0
    cells: tuple[str, ...] = ()
    issues: tuple[Issue, ...] = ()
    followups: str = ""
    password_generated: bool = False
    changes: tuple[tuple[str, str, str], ...] = ()  # (property, old, new) of an update

    def error_issues(self) -> tuple[Issue, ...]:
        """The issues that excluded the row."""
        return tuple(i for i in self.issues if i.severity is Severity.ERROR)

    def warnings_text(self) -> str:
        """The row's warnings as one line: ``column: message; ...``."""
        return "; ".join(_issue_line(i) for i in self.issues if i.severity is not Severity.ERROR)

    def code_text(self) -> str:
        """``error_code``, or the distinct codes of the row's error issues."""
        if self.error_code:
            return self.error_code
        return ", ".join(dict.fromkeys(i.code for i in self.error_issues()))

    def message_text(self) -> str:
        """``message``, or the row's error issues as one line."""
        if self.message:
            return self.message
        return "; ".join(_issue_line(i) for i in self.error_issues())


def _issue_line(issue: Issue) -> str:
    return f"{issue.column}: {issue.message}" if issue.column else issue.message


@dataclass(frozen=True)
class ReportSummary:
    """The run as a whole, for the Summary sheet.

    ``counts`` maps a status (see ``LIVE_STATUSES`` / ``DRY_RUN_STATUSES``) to its number of rows;
    ``error_counts`` maps an error code (Graph's, or a validation rule's) to its number of rows.
    ``started``/``ended`` are naive UTC or timezone-aware datetimes (shown in UTC).
    ``retried_from`` names the earlier run a ``retry`` run re-ran; ``passwords_file`` is where generated
    passwords are (the workbook only says where, never what).
    """

    roster: str
    tenant: str = ""
    started: datetime | None = None
    ended: datetime | None = None
    duration_s: float | None = None
    users_per_s: float | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    error_counts: Mapping[str, int] = field(default_factory=dict)
    retry_command: str = ""
    resume_command: str = ""
    retried_from: str = ""
    passwords_file: str = ""
    dry_run: bool = False
    run_dir: str = ""
