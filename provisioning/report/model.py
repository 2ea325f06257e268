"""The typed input of the results workbook (``results.xlsx``) and its sheet layout.

The writer (:mod:`provisioning.report.workbook`) knows nothing of journals or plans: whoever has the run's outcome
builds
one :class:`ReportRow` per roster row and one :class:`ReportSummary`, and hands them over. The sheet layout
(:mod:`provisioning.store.folder`) is shared with :mod:`provisioning.run.retrysource`, which reads the Failed and
Invalid sheets back for ``retry``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from provisioning.models import Issue, Severity
from provisioning.store.folder import CREATED as CREATED  # the workbook's layout, re-exported with the model
from provisioning.store.folder import FAILED as FAILED
from provisioning.store.folder import INVALID as INVALID
from provisioning.store.folder import LEAD_COLUMNS as LEAD_COLUMNS
from provisioning.store.folder import RESULT_COLUMNS as RESULT_COLUMNS
from provisioning.store.folder import SHEETS as SHEETS
from provisioning.store.folder import SKIPPED as SKIPPED
from provisioning.store.folder import SUMMARY as SUMMARY
from provisioning.store.folder import TRAIL_COLUMNS as TRAIL_COLUMNS
from provisioning.store.folder import UPDATED as UPDATED
from provisioning.store.folder import RunFolder
from provisioning.store.records import FollowUpState

# Sheet names (SUMMARY ... INVALID, SHEETS) and RESULT_COLUMNS are shared with retry's reader: see store/folder.py.

class Status(StrEnum):
    """A row's outcome as the Status columns and results.csv spell it (a user whose follow-ups failed or are
    unfinished is qualified by :attr:`ReportRow.followup`, a separate field)."""

    CREATED = "created"
    UPDATED = "updated"
    RESTORED = "restored"  # brought back from Deleted users (--restore-deleted), then updated to the roster
    SKIPPED = "skipped"
    FAILED = "failed"
    INVALID = "invalid"
    NOT_SENT = "not sent"  # planned, never sent (an interrupted run)
    UNKNOWN = "unknown"  # sent, its answer not recorded (resume looks the user up)
    WOULD_CREATE = "would create"  # dry run
    WOULD_UPDATE = "would update"
    WOULD_SKIP = "would skip"
    WOULD_FAIL = "would fail"
    WOULD_RESTORE = "would restore"


#: The outcomes the Summary sheet always lists (as text), live and dry run.
LIVE_STATUSES: tuple[str, ...] = tuple(s.value for s in (Status.CREATED, Status.UPDATED, Status.SKIPPED,
                                                           Status.FAILED, Status.INVALID))
DRY_RUN_STATUSES: tuple[str, ...] = tuple(s.value for s in (Status.WOULD_CREATE, Status.WOULD_UPDATE,
                                                              Status.WOULD_SKIP, Status.INVALID))
#: The statuses of a row whose user exists: its follow-ups' state qualifies them.
WITH_USER = frozenset({Status.CREATED, Status.SKIPPED, Status.UPDATED, Status.RESTORED})
_UNFINISHED = frozenset({FollowUpState.FAILED, FollowUpState.PENDING})

_SHEET_FOR_STATUS: dict[str, str] = {
    Status.CREATED: CREATED, Status.WOULD_CREATE: CREATED,
    Status.UPDATED: UPDATED, Status.WOULD_UPDATE: UPDATED,
    Status.RESTORED: UPDATED, Status.WOULD_RESTORE: UPDATED,  # the sheet of old -> new values
    Status.SKIPPED: SKIPPED, Status.WOULD_SKIP: SKIPPED,
    Status.FAILED: FAILED,
    Status.INVALID: INVALID,
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


@dataclass(frozen=True, slots=True)
class ReportRow:
    """The outcome of one roster row, as the workbook shows it.

    ``row`` is the roster row number as the user sees it; ``cells`` are the original roster cells (texts, in the
    roster's column order) for the Failed and Invalid sheets; ``issues`` are the validation findings of the row
    (errors highlight their cell on the Invalid sheet; warnings are listed on the Created/Updated sheets).
    ``error_code`` and ``message`` may be left empty for invalid rows: they are then built from ``issues``.
    ``password_generated`` says that the row's password was generated (it is in passwords.csv, never here).
    ``followup`` is the state of the row's follow-ups as a whole (None: it has none) and ``followups`` their
    one-line summary. A ``status`` that is not a :class:`Status` (a caller's own text) goes to the Failed sheet,
    so that no row is ever silently left out of the report.
    """

    row: int
    status: Status
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
    followup: FollowUpState | None = None
    first_at: str = ""
    last_at: str = ""

    def followup_unfinished(self) -> bool:
        """The row's user exists but one of its follow-ups failed or is still pending."""
        return self.followup in _UNFINISHED and self.status in WITH_USER

    def status_text(self) -> str:
        """The Status cell: ``created``, or ``created, follow-up failed`` (``skipped, ...``, ``updated, ...``)."""
        if self.followup_unfinished() and self.followup is not None:
            return f"{self.status}, follow-up {self.followup.value}"
        return str(self.status)

    def sheets(self) -> tuple[str, ...]:
        """Every sheet the row goes to: its own, plus Failed when its follow-ups failed or are unfinished (so
        ``retry`` can send it back: the user exists and is skipped, its follow-ups go again)."""
        own = _SHEET_FOR_STATUS.get(self.status, FAILED)
        if self.followup_unfinished() and own != FAILED:
            return (own, FAILED)
        return (own,)

    def shown_message(self) -> str:
        """``message``, or (when the row's follow-ups failed or are unfinished) which ones and why."""
        if not self.message and self.followup in _UNFINISHED:
            return f"follow-ups: {self.followups}"
        return self.message

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
        """:meth:`shown_message`, or the row's error issues as one line."""
        if self.shown_message():
            return self.shown_message()
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
    tenant_name: str = ""  # the organization's display name (GET /organization at run start)
    default_domain: str = ""
