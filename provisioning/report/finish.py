"""The end of a run: the reports written from one read of the journal (results.csv, summary.json, results.xlsx,
the final passwords.csv), the summary printed, the notification sent, the exit status chosen."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.client import GraphClient
from provisioning.context import CommandContext
from provisioning.errors import RunFolderLost
from provisioning.exitcodes import ExitStatus
from provisioning.models import Issue, Severity
from provisioning.report.files import write_results_csv, write_summary_json
from provisioning.report.notify import maybe_notify
from provisioning.report.terminal import Reason, code_summary, more_line, shown, table, terminal_width
from provisioning.run.audit import AUDIT, audit_fields, recorded_tenant
from provisioning.run.creates import ApplyResult
from provisioning.run.phases import settings_secrets, throttle_counter
from provisioning.run.rescue import stopped_message
from provisioning.run.stop import resume_hint
from provisioning.store.durable import lost_from
from provisioning.store.folder import RunFolder
from provisioning.store.journal import OPEN_STATES, Journal, RowRecord, RowState, followup_view, utcnow
from provisioning.store.secrets import PasswordFile

if TYPE_CHECKING:
    from provisioning.report.early import EarlyWorkbook

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionResult:
    """The outcome of one ``run``/``resume`` session."""

    status: ExitStatus
    apply: ApplyResult | None
    counts: Mapping[str, int]
    followups: Mapping[str, int] = field(default_factory=dict)  # rows by their follow-ups' state


def finish(ctx: CommandContext, journal: Journal, folder: RunFolder, *, passwords: PasswordFile | None,
           apply: ApplyResult | None, started: float, client: GraphClient | None = None, dry_run: bool = False,
           notify: argparse.Namespace | None = None, stop: threading.Event | None = None,
           early: EarlyWorkbook | None = None) -> SessionResult:
    """Write results.csv, summary.json and the final passwords.csv; print the summary; choose the exit status.

    ``stop``: the session's stop event; set (a signal arrived, in whatever phase, this one included), the status
    is 130 unless a fatal condition stopped the run first.

    ``notify``: the command's arguments when they may carry ``--notify``/``--notify-from``: the summary and
    results.xlsx are then mailed (:func:`provisioning.report.notify.maybe_notify`); a failed notification is a warning,
    never a change of the exit status. A run folder that cannot take the reports is :class:`RunFolderLost`.
    ``early``: results.xlsx as the session began it during its sends (:mod:`provisioning.report.early`)."""
    try:
        return _finish(ctx, journal, folder, passwords=passwords, apply=apply, started=started, client=client,
                       dry_run=dry_run, notify=notify, stop=stop, early=early)
    except (RunFolderLost, OSError) as exc:
        lost = lost_from(exc, Path(getattr(exc, "filename", None) or journal.path))
        if passwords is None:
            passwords = PasswordFile(folder.passwords_csv)
            with contextlib.suppress(OSError, ValueError):
                passwords.load()
        raise stopped_message(lost, journal=journal, passwords=passwords, total=0, sent=set(), answers={},
                              command_line=ctx.command_line, err=ctx.err, during="reports") from exc


def _finish(ctx: CommandContext, journal: Journal, folder: RunFolder, *, passwords: PasswordFile | None,
            apply: ApplyResult | None, started: float, client: GraphClient | None = None, dry_run: bool = False,
            notify: argparse.Namespace | None = None, stop: threading.Event | None = None,
            early: EarlyWorkbook | None = None) -> SessionResult:
    # deferred: openpyxl stays off the start-up path (and run_workbook.write_run_workbook is looked up when called)
    from provisioning.report import run_workbook

    rendered: dict[int, str] = {}
    if early is None:
        snapshot = journal.snapshot()  # the one read of the journal the reports are built from
        rows = run_workbook.report_rows(snapshot)
    else:  # the same, read in two parts: the rows settled during the sends, and the rest now
        snapshot, rows, rendered = early.snapshot()
    records, issues = snapshot.rows, snapshot.issues
    follow = followup_view(snapshot.followups)
    write_results_csv(folder.results_csv, rows, rendered=rendered)
    # a row sent without an answer yet may exist with its password: resume finds out, the password must stay
    created_rows = [r.row for r in records if r.state in (RowState.CREATED, RowState.UPDATED)
                    or (r.state in OPEN_STATES and r.attempts > 0)]
    if passwords is not None:
        passwords.finalize(created_rows)
    counts: dict[str, int] = {}
    for r in records:
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
    with_user = {RowState.CREATED, RowState.SKIPPED, RowState.UPDATED, RowState.RESTORED}
    follow_counts: dict[str, int] = {}
    for r in records:
        if r.row in follow and (r.state in with_user or dry_run):
            key = follow[r.row][0].value
            follow_counts[key] = follow_counts.get(key, 0) + 1
    interrupted = stop is not None and stop.is_set()
    if interrupted:
        log.warning("stopped by a signal: what is left is in the journal for resume")
    status = exit_status(counts, apply, dry_run, follow_counts, interrupted=interrupted)
    counter = throttle_counter(client) if client is not None else None
    duration = time.monotonic() - started
    meta = snapshot.meta
    ended = utcnow()
    journal.set_meta({"ended": ended, "exit_status": int(status)})
    snapshot = replace(snapshot, meta={**meta, "ended": ended, "exit_status": int(status)})
    summary = {
        "run_dir": str(folder.path), "roster": meta.get("roster_path"), "roster_sha256": meta.get("roster_sha256"),
        "dry_run": dry_run, "started": meta.get("started"), "ended": ended, "rows": len(records),
        "counts": {s: counts.get(s, 0) for s in ("created", "updated", "restored", "skipped", "failed", "invalid",
                                                  "pending", "unknown", "sending", "planned")
                   if counts.get(s, 0) or s in ("created", "skipped", "failed", "invalid")},
        "followups_by_row": follow_counts,
        "session_duration_s": round(duration, 3),
        "apply_duration_s": round(apply.duration_s, 3) if apply else 0.0,
        "created_this_session": apply.created if apply else 0,
        "users_per_s": round(apply.created / apply.duration_s, 2) if apply and apply.duration_s > 0 else 0.0,
        "throttled_429": counter() if counter else None,
        "rounds": apply.rounds if apply else 0,
        "exit_status": int(status),
        "fatal": apply.fatal_message if apply and apply.fatal else "",
        "interrupted": status is ExitStatus.INTERRUPTED,
        "resume": run_workbook.resume_command(folder.path.resolve(), ctx.command_line, records, follow, dry_run),
    }
    hidden = sum(1 for row, found in issues.items() if row and any(i.code == "hidden-row" for i in found))
    if hidden:  # rows Excel hides (filtered out) are provisioned: say so where the counts are
        summary["hidden_rows"] = hidden
    if dry_run:
        summary["planned"] = {a: sum(1 for r in records if r.action == a) for a in ("create", "update", "skip",
                                                                                   "exists", "invalid", "restore")
                              if a != "restore" or any(r.action == a for r in records)}
    from provisioning.run.retrysource import read_retry_link  # deferred: pandas/openpyxl stay off the start-up path

    link = read_retry_link(folder.path)
    if link:
        summary["retried_from"] = str(link.get("retried_from", ""))
    if ctx.settings is not None:
        summary["audit"] = audit_fields(ctx, ctx.settings, settings_secrets(ctx.settings), recorded_tenant(meta))
    if summary["fatal"]:
        AUDIT.error("fatal error: %s (exit %d)", summary["fatal"], int(status))
    write_summary_json(folder.summary_json, summary)
    try:
        run_workbook.write_run_workbook(folder.path, command_line=ctx.command_line, snapshot=snapshot, rows=rows,
                                        early=early)
    except OSError as exc:  # the journal, results.csv and summary.json are written: report, don't fail the run
        log.error("could not write results.xlsx in %s: %s", folder.path, exc)
        ctx.err.write(f"warning: could not write results.xlsx: {exc}\n")
    if stop is not None and stop.is_set() and status is not ExitStatus.INTERRUPTED and not summary["fatal"]:
        # the signal came while the reports were written: they are complete, but the session was interrupted
        status = ExitStatus.INTERRUPTED
        summary.update(exit_status=int(status), interrupted=True)
        write_summary_json(folder.summary_json, summary)
        journal.set_meta({"exit_status": int(status)})
    _print_summary(ctx, folder, summary, dry_run, rejected(records, issues))
    if notify is not None and getattr(notify, "notify", None):
        try:
            maybe_notify(ctx, notify, folder.path, client=client, summary=summary)
        except Exception as exc:  # noqa: BLE001 - maybe_notify never raises; belt and braces for the exit status
            log.warning("notification failed: %s", exc)
    return SessionResult(status, apply, counts, follow_counts)


def exit_status(counts: Mapping[str, int], apply: ApplyResult | None, dry_run: bool,
                followups: Mapping[str, int] | None = None, *, interrupted: bool = False) -> ExitStatus:
    """0 all created/updated/skipped with their follow-ups done; 1 some invalid/failed (a failed or unfinished
    follow-up included); 3/4 fatal; 130 interrupted (``interrupted``: by a signal, in any phase)."""
    if apply is not None and apply.fatal is not None:
        return apply.fatal
    if interrupted or (apply is not None and apply.interrupted):
        return ExitStatus.INTERRUPTED
    bad = counts.get("failed", 0) + counts.get("invalid", 0) + counts.get("unknown", 0)
    if not dry_run:
        bad += counts.get("pending", 0) + counts.get("sending", 0)
        bad += (followups or {}).get("failed", 0) + (followups or {}).get("pending", 0)
    return ExitStatus.ROWS_FAILED if bad else ExitStatus.OK


def rejected(records: Sequence[RowRecord], issues: Mapping[int, Sequence[Issue]]) -> list[Reason]:
    """Why rows were rejected, in roster order: each error of an invalid row, the Graph error of a failed one."""
    out: list[Reason] = []
    for r in records:
        if r.state is RowState.INVALID or (r.state is RowState.PLANNED and r.action == "invalid"):
            found = [i for i in issues.get(r.row, ()) if i.severity is Severity.ERROR]
            out += [Reason(r.row, i.code, i.message, upn=r.upn, column=i.column) for i in found]
            if not found:
                out.append(Reason(r.row, r.error_code or "invalid", r.message or "invalid", upn=r.upn))
        elif r.state is RowState.FAILED:
            out.append(Reason(r.row, r.error_code or "failed", r.message or "failed", upn=r.upn))
    return out


def _counts_text(summary: Mapping[str, Any], dry_run: bool) -> str:
    if dry_run:
        p = summary.get("planned", {})
        return (f"dry run: would create {p.get('create', 0)}, would update {p.get('update', 0)}, "
                f"would skip {p.get('skip', 0)}, "
                f"would fail {p.get('exists', 0)}, invalid {p.get('invalid', 0)}; nothing was sent")
    parts = ", ".join(f"{k} {v}" for k, v in summary["counts"].items())
    follow = summary.get("followups_by_row") or {}
    if follow.get("failed") or follow.get("pending"):
        parts += (f"; follow-ups failed on {follow.get('failed', 0)} rows, unfinished on "
                  f"{follow.get('pending', 0)}")
    rate = f" ({summary['users_per_s']} users/s)" if summary.get("created_this_session") else ""
    return parts + rate


def _print_summary(ctx: CommandContext, folder: RunFolder, summary: Mapping[str, Any], dry_run: bool,
                   reasons: Sequence[Reason] = ()) -> None:
    """The counts, why rows were rejected (by code, then the first rows), the run folder and the workbook.

    ``-q``: one line, the run folder and the counts. ``--json`` (``ctx.json``): summary.json on ``out`` and the
    human lines, unless ``-q``, on ``err``."""
    verbosity = getattr(ctx, "verbosity", 0)
    if getattr(ctx, "json", False):
        ctx.out.write(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
        if verbosity < 0:
            return
        stream = ctx.err
    else:
        stream = ctx.out
    if verbosity < 0:
        stream.write(f"run folder: {folder.path}; {_counts_text(summary, dry_run)}\n")
        return
    lines = [_counts_text(summary, dry_run)]
    if summary.get("hidden_rows"):
        n = summary["hidden_rows"]
        lines.append(f"{n} row{'s' * (n != 1)} hidden in Excel (filtered out or hidden) were provisioned like the "
                     f"others (see the Warnings column of results.xlsx)")
    if reasons:
        width = terminal_width(stream)
        n = len({r.row for r in reasons})
        lines += ["", f"Why {n} row{'s were' if n != 1 else ' was'} rejected, by code:",
                  *code_summary(reasons, width), ""]
        first = shown(reasons, bool(getattr(ctx, "show_all", False)))
        lines += table(("Row", "userPrincipalName", "Code", "Message"),
                       [(str(r.row), r.upn or "-", r.code, r.message) for r in first], width)
        where = (f"the Failed and Invalid sheets of {folder.results_xlsx}" if folder.results_xlsx.exists()
                 else str(folder.results_csv))
        lines += [more_line(len(first), len(reasons), where, width), ""]
    lines.append(f"run folder: {folder.path}")
    if folder.results_xlsx.exists():
        lines.append(f"results:    {folder.results_xlsx}")
    stream.write("\n".join(lines) + "\n")


def report_stop(ctx: CommandContext, folder: RunFolder, result: ApplyResult | None,
                status: ExitStatus) -> list[str]:
    """After a fatal stop or a signal (in any phase: ``status`` 130): say why and how to continue. Returns the
    error lines written (for :attr:`RunResult.messages`)."""
    said: list[str] = []
    fatal = result is not None and result.fatal is not None
    if fatal and result is not None:
        said.append(f"error: {result.fatal_message}")
        ctx.err.write(said[-1] + "\n")
    if fatal or status is ExitStatus.INTERRUPTED:
        interrupted = status is ExitStatus.INTERRUPTED and not fatal
        line = ("interrupted; " if interrupted else "") + f"the journal of {folder.path} is consistent."
        if interrupted:
            said.append(line)
        ctx.err.write(line + "\n")
        ctx.err.write(resume_hint(ctx, folder) + "\n")
    return said
