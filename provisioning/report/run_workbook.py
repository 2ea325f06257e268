"""``results.xlsx`` of a run folder, from its journal and its roster: the adapter between the run engine and the
workbook writer.

``write_run_workbook(run_dir)`` is called at the end of every ``run``/``resume``/``retry`` session (dry runs
included), after ``summary.json`` and the final ``passwords.csv`` are written. It reads ``journal.sqlite`` (one
record per roster row, with the validation issues) and the roster file (for the original cells of the Failed and
Invalid sheets), and streams the rows to :func:`provisioning.report.workbook.write_results_workbook`.
"""
from __future__ import annotations

import json
import logging
import shlex
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from provisioning.models import Issue, Severity
from provisioning.report.files import status_of
from provisioning.report.model import ReportRow, ReportSummary
from provisioning.report.workbook import write_results_workbook
from provisioning.run.folder import RunFolder
from provisioning.run.followup_journal import Change
from provisioning.run.followups import USER_EXISTS
from provisioning.run.journal import OPEN_STATES, Journal, RowRecord, RowState
from provisioning.run.retrysource import read_retry_link

log = logging.getLogger(__name__)


def write_run_workbook(run_dir: str | Path, *, command_line: str | None = None,
                       journal: Journal | None = None) -> Path:
    """Write ``RUN_DIR/results.xlsx`` from the run's journal and roster; return its path.

    ``command_line`` (how the user invokes the tool, e.g. ``python provision.py --sandbox``) is used for the
    retry/resume commands the Summary shows; by default the one recorded in the journal. ``journal`` is the
    run's open journal, if the caller has one (else it is opened and closed here).
    """
    folder = Path(run_dir).resolve()  # commands in the Summary must work from any directory
    path = RunFolder(folder).results_xlsx
    if journal is None:
        with Journal.open(folder) as opened:
            meta, records, issues, follow, edits = _read(opened)
    else:
        meta, records, issues, follow, edits = _read(journal)
    headers, cells = _roster_cells(meta)
    redact = tuple(h for h in headers if (_column_map(meta, headers).get(h) == "password"))
    summary = _summary(folder, meta, records, issues, command_line or meta.get("command_line") or
                       "python provision.py", follow)
    write_results_workbook(path, headers=headers, rows=_rows(records, issues, cells, follow, edits),
                           summary=summary, redact=redact)
    return path


def _read(journal: Journal) -> tuple[dict[str, Any], list[RowRecord], dict[int, list[Issue]],
                                     dict[int, tuple[str, str]], dict[int, list[Change]]]:
    follow = {row: (state.value, text) for row, (state, text) in journal.followup_view().items()}
    return journal.meta(), journal.rows(), journal.issues(), follow, journal.changes()


def _roster_cells(meta: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[int, tuple[str, ...]]]:
    """The roster's headers and each row's original cells, if the roster is still there unchanged."""
    from provisioning.roster.reader import load_roster

    roster_path = Path(str(meta.get("roster_path") or ""))
    if not roster_path.is_file():
        log.warning("%s is not there any more: the Failed and Invalid sheets will lack the roster's columns",
                    roster_path)
        return (), {}
    try:
        roster = load_roster(roster_path, sheet=meta.get("sheet"), mapping=meta.get("mapping"),
                             header_row=meta.get("header_row"), encoding=meta.get("encoding"))
    except Exception as exc:  # noqa: BLE001 - a report must still be written without the roster's columns
        log.warning("cannot re-read the roster %s for the report: %s", roster_path, exc)
        return (), {}
    if meta.get("roster_sha256") and roster.sha256 != meta.get("roster_sha256"):
        log.warning("%s changed since the run started: the Failed and Invalid sheets will lack its columns",
                    roster_path)
        return (), {}
    return tuple(roster.headers), {r.row: tuple(r.cells) for r in roster.rows}


def _column_map(meta: Mapping[str, Any], headers: Sequence[str]) -> dict[str, str | None]:
    from provisioning.fields import canonical_field, load_mapping

    renames = load_mapping(meta["mapping"]).renames if meta.get("mapping") else None
    return {h: canonical_field(h, renames) for h in headers if h}


def _rows(records: Sequence[RowRecord], issues: Mapping[int, Sequence[Issue]],
          cells: Mapping[int, tuple[str, ...]], follow: Mapping[int, tuple[str, str]],
          edits: Mapping[int, Sequence[Change]]) -> Iterator[ReportRow]:
    for r in records:
        created = r.state is RowState.CREATED
        fstate, ftext = follow.get(r.row, ("", ""))
        yield ReportRow(
            row=r.row, status=status_of(r, fstate), upn=r.upn, followups=ftext,
            changes=tuple((c.property, c.old, c.new) for c in edits.get(r.row, ())), display_name=r.display_name,
            object_id=r.object_id,
            http_status=r.http_status, error_code=r.error_code, request_id=r.request_id,
            # the Failed sheet of a "created, follow-up failed" row says which follow-up failed and why
            message=f"follow-ups: {ftext}" if fstate in ("failed", "pending") and not r.message else r.message,
            attempts=r.attempts, cells=cells.get(r.row, ()), issues=tuple(issues.get(r.row, ())),
            password_generated=created and r.password_source == "generated")


def _error_counts(records: Sequence[RowRecord], issues: Mapping[int, Sequence[Issue]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for r in records:
        if r.error_code:
            counts[r.error_code] += 1
        elif r.state is RowState.INVALID or r.action == "invalid":
            for code in dict.fromkeys(i.code for i in issues.get(r.row, ()) if i.severity is Severity.ERROR):
                counts[code] += 1
    return dict(counts)


def _when(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def resumable(records: Sequence[RowRecord], follow: Mapping[int, tuple[str, str]]) -> bool:
    """Whether ``resume`` has work left: a row still open (create or update), or a pending follow-up of a row whose
    user exists (those of a row whose create failed never go; its row is reported failed)."""
    return any(r.state in OPEN_STATES or (r.state in USER_EXISTS and follow.get(r.row, ("", ""))[0] == "pending")
               for r in records)


def resume_command(folder: str | Path, command_line: str, records: Sequence[RowRecord],
                   follow: Mapping[int, tuple[str, str]], dry_run: bool) -> str:
    """The command that continues the run, or '' when there is nothing to resume (or it is a dry run)."""
    if dry_run or not resumable(records, follow):
        return ""
    return f"{command_line} resume {shlex.quote(str(folder))}"


def _summary(folder: Path, meta: Mapping[str, Any], records: Sequence[RowRecord],
             issues: Mapping[int, Sequence[Issue]], command_line: str,
             follow: Mapping[int, tuple[str, str]]) -> ReportSummary:
    started, ended = _when(meta.get("started")), _when(meta.get("ended"))
    duration = (ended - started).total_seconds() if started and ended else None
    session: dict[str, Any] = {}
    if RunFolder(folder).summary_json.is_file():
        try:
            session = json.loads(RunFolder(folder).summary_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            session = {}
    counts = Counter(status_of(r, follow.get(r.row, ("", ""))[0]) for r in records)
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
    quoted = shlex.quote(str(folder))
    resume = resume_command(folder, command_line, records, follow, dry_run) or (
        "(nothing to resume)" if not dry_run else "(a dry run is not resumed: start a real run)")
    passwords = RunFolder(folder).passwords_csv
    return ReportSummary(
        roster=str(meta.get("roster_path") or ""), tenant=tenant, started=started, ended=ended,
        duration_s=duration, users_per_s=rate, counts=dict(counts), error_counts=_error_counts(records, issues),
        retry_command=f"{command_line} retry {quoted}", resume_command=resume,
        retried_from=str(link.get("retried_from", "")) if link else "",
        passwords_file=f"{RunFolder.PASSWORDS_CSV} beside this workbook" if passwords.is_file() else "",
        dry_run=dry_run, run_dir=str(folder))
