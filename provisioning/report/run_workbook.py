"""The run's report rows from its journal alone, and ``results.xlsx`` from them: the adapter between the run engine
and the report writers.

:func:`report_rows` turns one :class:`~provisioning.store.journal.Snapshot` (one read of ``journal.sqlite``: every row,
its issues, follow-ups and changes, and the roster's original cells recorded when the run started) into one
:class:`ReportRow` per roster row; the end of a session feeds that one list to results.csv and results.xlsx. The
roster file and the mapping file are never read here: a roster edited or removed after the run changes nothing.
``write_run_workbook(run_dir)`` is called at the end of every ``run``/``resume``/``retry`` session (dry runs
included), after ``summary.json`` and the final ``passwords.csv`` are written.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioning.bulk import gc_paused
from provisioning.models import Severity
from provisioning.portable import quote_arg
from provisioning.report.model import ReportRow, ReportSummary, Status
from provisioning.report.workbook import write_results_workbook
from provisioning.run.followups import USER_EXISTS
from provisioning.run.retrysource import read_retry_link
from provisioning.store.folder import RunFolder
from provisioning.store.journal import OPEN_STATES, Journal, RowRecord, RowState, Snapshot, followup_view
from provisioning.store.records import FollowUpState

if TYPE_CHECKING:
    from provisioning.report.early import EarlyWorkbook

log = logging.getLogger(__name__)

_STATUS = {
    RowState.CREATED: Status.CREATED,
    RowState.SKIPPED: Status.SKIPPED,
    RowState.FAILED: Status.FAILED,
    RowState.INVALID: Status.INVALID,
    RowState.PENDING: Status.NOT_SENT,
    RowState.SENDING: Status.UNKNOWN,
    RowState.UNKNOWN: Status.UNKNOWN,
    RowState.UPDATED: Status.UPDATED,
    RowState.RESTORED: Status.RESTORED,
}
_PLANNED = {"create": Status.WOULD_CREATE, "skip": Status.WOULD_SKIP, "exists": Status.WOULD_FAIL,
            "invalid": Status.INVALID, "update": Status.WOULD_UPDATE, "restore": Status.WOULD_RESTORE}

FollowUpView = Mapping[int, tuple[FollowUpState, str]]


def status_of(record: RowRecord) -> Status:
    """A journal row's outcome (a dry run's rows: what would happen)."""
    if record.state is RowState.PLANNED:
        return _PLANNED[record.action]
    return _STATUS[record.state]


def report_rows(snapshot: Snapshot) -> list[ReportRow]:
    """One :class:`ReportRow` per roster row, in roster order, from one read of the journal."""
    follow = followup_view(snapshot.followups)
    rows = []
    for r in snapshot.rows:
        fstate, ftext = follow.get(r.row, (None, ""))
        rows.append(ReportRow(
            row=r.row, status=status_of(r), followup=fstate, upn=r.upn, followups=ftext,
            changes=tuple((c.property, c.old, c.new) for c in snapshot.changes.get(r.row, ())),
            display_name=r.display_name, object_id=r.object_id, http_status=r.http_status,
            error_code=r.error_code, message=r.message, request_id=r.request_id, attempts=r.attempts,
            cells=snapshot.cells.get(r.row, ()), issues=tuple(snapshot.issues.get(r.row, ())),
            password_generated=r.state is RowState.CREATED and r.password_source == "generated",
            first_at=r.first_at, last_at=r.last_at))
    return rows


def write_run_workbook(run_dir: str | Path, *, command_line: str | None = None, journal: Journal | None = None,
                       snapshot: Snapshot | None = None, rows: Sequence[ReportRow] | None = None,
                       early: EarlyWorkbook | None = None) -> Path:
    """Write ``RUN_DIR/results.xlsx`` from the run's journal; return its path.

    ``command_line`` (how the user invokes the tool, e.g. ``python provision.py --sandbox``) is used for the
    retry/resume commands the Summary shows; by default the one recorded in the journal. ``snapshot`` (and the
    ``rows`` built from it) are the journal as the caller read it; else it is read from ``journal``, the run's open
    journal, or (neither given) the journal is opened and closed here. ``early``: the workbook the session began
    during its sends (:mod:`provisioning.report.early`), finished here with the rows it does not hold yet.
    """
    folder = Path(run_dir).resolve()  # commands in the Summary must work from any directory
    path = RunFolder(folder).results_xlsx
    if snapshot is None:
        if journal is None:
            with Journal.open(folder) as opened:
                snapshot = opened.snapshot()
        else:
            snapshot = journal.snapshot()
    if rows is None:
        rows = report_rows(snapshot)
    if snapshot.headers is None:
        log.warning("%s holds no roster cells (it was written by an earlier version): the Failed and Invalid "
                    "sheets lack the roster's columns; to retry these rows, start a new run of the roster",
                    RunFolder(folder).journal)
    meta = snapshot.meta
    summary = _summary(folder, meta, snapshot.rows, rows, command_line or meta.get("command_line") or
                       "python provision.py", followup_view(snapshot.followups))
    with gc_paused():  # the early workbook's last rows and its save are a bulk step too (provisioning.bulk)
        if early is None or not early.finish(rows, summary):
            write_results_workbook(path, headers=snapshot.headers or (), rows=rows, summary=summary)
    return path


def _error_counts(rows: Sequence[ReportRow]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for r in rows:
        if r.error_code:
            counts[r.error_code] += 1
        elif r.status == Status.INVALID:
            for code in dict.fromkeys(i.code for i in r.issues if i.severity is Severity.ERROR):
                counts[code] += 1
    return dict(counts)


def _when(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def resumable(records: Sequence[RowRecord], follow: FollowUpView) -> bool:
    """Whether ``resume`` has work left: a row still open (create or update), or a pending follow-up of a row whose
    user exists (those of a row whose create failed never go; its row is reported failed)."""
    return any(r.state in OPEN_STATES or (r.row in follow and r.state in USER_EXISTS
                                          and follow[r.row][0] is FollowUpState.PENDING)
               for r in records)


def resume_command(folder: str | Path, command_line: str, records: Sequence[RowRecord], follow: FollowUpView,
                   dry_run: bool) -> str:
    """The command that continues the run, or '' when there is nothing to resume (or it is a dry run)."""
    if dry_run or not resumable(records, follow):
        return ""
    return f"{command_line} resume {quote_arg(str(folder))}"


def _summary(folder: Path, meta: Mapping[str, Any], records: Sequence[RowRecord], rows: Sequence[ReportRow],
             command_line: str, follow: FollowUpView) -> ReportSummary:
    started, ended = _when(meta.get("started")), _when(meta.get("ended"))
    duration = (ended - started).total_seconds() if started and ended else None
    session: dict[str, Any] = {}
    if RunFolder(folder).summary_json.is_file():
        try:
            session = json.loads(RunFolder(folder).summary_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            session = {}
    counts = Counter(r.status_text() for r in rows)
    rate = session.get("users_per_s")
    if rate is None and duration:
        rate = counts.get("created", 0) / duration
    settings = meta.get("settings") or {}
    tenant = str(settings.get("tenant_id") or "")
    endpoint = settings.get("graph_endpoint")
    if endpoint:
        tenant = f"{tenant} ({endpoint})" if tenant else str(endpoint)
    link = read_retry_link(folder)
    dry_run = bool(meta.get("dry_run"))
    quoted = quote_arg(str(folder))
    resume = resume_command(folder, command_line, records, follow, dry_run) or (
        "(nothing to resume)" if not dry_run else "(a dry run is not resumed: start a real run)")
    passwords = RunFolder(folder).passwords_csv
    return ReportSummary(
        roster=str(meta.get("roster_path") or ""), tenant=tenant, started=started, ended=ended,
        duration_s=duration, users_per_s=rate, counts=dict(counts), error_counts=_error_counts(rows),
        retry_command=f"{command_line} retry {quoted}", resume_command=resume,
        retried_from=str(link.get("retried_from", "")) if link else "",
        passwords_file=f"{RunFolder.PASSWORDS_CSV} beside this workbook" if passwords.is_file() else "",
        dry_run=dry_run, run_dir=str(folder), tenant_name=str(meta.get("tenant_name") or ""),
        default_domain=str(meta.get("default_domain") or ""))
