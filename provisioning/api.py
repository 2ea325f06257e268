"""The library run API: :func:`start_run` runs a roster in a new run folder, :func:`resume_run` continues one from
its journal, :func:`start_retry` re-runs an earlier run's failed and invalid rows as a new run. Each takes typed
options (:class:`RunOptions`, :class:`ResumeOptions`, :class:`RetryOptions`), one stop event (:class:`Stop` makes
Ctrl-C, SIGTERM and SIGHUP set it) and a console for the user-facing lines, and returns a :class:`RunResult`; the
``run``, ``resume``, ``retry`` and ``watch`` commands only parse their arguments, call these and print.

The file reads top-down: the stop, the run log, the client, sending (:func:`execute`) and the reports
(:func:`finish`); then the API and a run's phases; then resume; then retry.

A run's phases: pre-flight (validate, look the tenant up, plan: nothing journaled, so a stop leaves nothing to
resume), journal, creates, updates, follow-ups, reports (:func:`finish`). Once the journal exists, a stop lets the
answers in flight be recorded, leaves the phases still to come to ``resume_run``, writes the reports, and the run
ends with 130.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shlex
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import Any

from graph.client import GraphClient
from graph.config import GraphConfig
from provisioning import codes
from provisioning.context import CommandContext
from provisioning.errors import ProvisionError, RunFolderError, RunFolderLost, UsageError
from provisioning.exitcodes import ExitStatus
from provisioning.models import ExistingUser, Issue, Roster, TenantView, UserRow, Validation
from provisioning.report.files import write_results_csv, write_summary_json
from provisioning.report.notify import NotifyOptions, maybe_notify
from provisioning.report.run_workbook import write_run_workbook
from provisioning.roster.excel import problem_message
from provisioning.roster.mapping import canonical_field, load_mapping
from provisioning.roster.reader import load_roster
from provisioning.run.binding import binding_of, check_binding
from provisioning.run.chain import (
    Chain,
    Parent,
    bind_plan,
    bind_validation,
    bound_accounts,
    drop_done,
    read_chain,
    renames,
    tenant_employee_ids,
)
from provisioning.run.creates import EXISTS_CODE, ApplyEngine, ApplyResult, CreateItem, Progress
from provisioning.run.durable import lost_from
from provisioning.run.folder import RunFolder, existing_run_folder, file_sha256, new_run_folder
from provisioning.run.followup_journal import FollowUpState
from provisioning.run.followups import apply_followups, held_for, plan_followups
from provisioning.run.journal import OPEN_STATES, Journal, Outcome, RowRecord, RowSeed, RowState, followup_view, utcnow
from provisioning.run.lock import lock_run_folder
from provisioning.run.plan import ActionKind, Plan, make_plan, upn_of
from provisioning.run.progress import phase_progress
from provisioning.run.rescue import stopped_message
from provisioning.run.retrysource import (
    RetryRow,
    RetrySource,
    exclude_created,
    read_retry_source,
    require_rows,
    write_retry_link,
    write_retry_roster,
)
from provisioning.run.secrets import (
    PasswordFile,
    SecretFilter,
    close_run_log,
    open_run_log,
    without_password,
    without_password_warning,
)
from provisioning.run.updates import (
    UserUpdate,
    apply_updates,
    fetch_current,
    pending_updates,
    plan_updates,
    select_for,
)
from provisioning.settings import Settings
from provisioning.validation.engine import validate_roster
from provisioning.validation.references import References, check_references, resolve
from provisioning.validation.tenant import GraphTenantView

log = logging.getLogger(__name__)


#: The signals that stop a run: Ctrl-C, what service managers and ``kill`` send, a closed terminal.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


# -- what every run shares: its stop, its log, its client, sending and the reports --------------------------------


def resume_hint(ctx: CommandContext, folder: RunFolder) -> str:
    """The exact command that continues this run (with the options it was started with)."""
    return f"to continue: {ctx.command_line} resume {shlex.quote(str(folder.path))}"


class Stop(threading.Event):
    """The one stop of a command: a :class:`threading.Event` that Ctrl-C, SIGTERM and SIGHUP set while
    :meth:`signals` is in effect (on the main thread). Any ``threading.Event`` stops a run; this one also gives
    each signal the meaning it has in the phase the run is in:

    - no run in progress: ``idle(signal name)`` is called on the first signal (``watch`` says it is stopping);
      without ``idle`` the signal interrupts at once (``KeyboardInterrupt``), as before any run started;
    - a run's pre-flight (nothing journaled, nothing sent): it interrupts at once; the run says that there is
      nothing to resume;
    - once the run's journal exists: the first signal only sets the event: no new request leaves, the answers in
      flight are awaited and journaled, the phases still to come (updates, follow-ups) are left to ``resume``,
      the reports are written and the run ends with 130 and the command that continues it. A second signal aborts
      at once: the process exits 130 right away, as a SIGKILL would, after printing the same command; the journal
      stays consistent (each change is its own SQLite transaction; a row whose answer was not recorded stays
      *sending* and ``resume`` looks it up).
    """

    def __init__(self, idle: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.idle = idle
        self.signal_name = ""  # the first signal's name, "" while none came
        self._console: CommandContext | None = None  # the run in progress, if any
        self._folder: RunFolder | None = None  # its run folder, once its journal exists
        self._count = 0  # signals during the run in progress

    @contextlib.contextmanager
    def signals(self) -> Iterator[Stop]:
        """Ctrl-C, SIGTERM and SIGHUP set this event for the duration (on the main thread; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def begin_run(self, console: CommandContext) -> None:
        """A run's pre-flight starts: a signal interrupts it at once."""
        self._console, self._folder, self._count = console, None, 0

    def arm(self, folder: RunFolder) -> None:
        """The run's journal exists: from now on a signal stops it cleanly instead of interrupting it."""
        self._folder = folder

    def end_run(self) -> None:
        """The run is over: back to what a signal means between runs."""
        self._console = self._folder = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        first = not self.is_set()
        self.signal_name = self.signal_name or name
        self.set()
        console, folder = self._console, self._folder
        if console is None:
            if self.idle is None:
                raise KeyboardInterrupt
            if first:
                self.idle(name)
            return
        if folder is None:
            raise KeyboardInterrupt
        # no logging here: the handler may have interrupted a log record being written to the same stream
        self._count += 1
        if self._count == 1:
            _say(console, f"\nstopping ({name}): no new request is sent; waiting for the answers in flight to "
                          "record them (Ctrl-C again to abort at once)\n")
            return
        _say(console, f"\naborted at once ({name}): the requests in flight stay 'sending' in the journal of "
                      f"{folder.path}; resume looks them up before sending anything again.\n"
                      f"{resume_hint(console, folder)}\n")
        with contextlib.suppress(Exception):
            console.out.flush()
        os._exit(int(ExitStatus.INTERRUPTED))


def _say(console: CommandContext, text: str) -> None:
    # a signal handler may have interrupted a write to the same stream: losing the message beats crashing
    with contextlib.suppress(Exception):
        console.err.write(text)
        console.err.flush()


@contextlib.contextmanager
def run_log(folder: RunFolder, secrets: SecretFilter) -> Iterator[None]:
    """``run.log`` for the duration of a session."""
    handler = open_run_log(folder.log, secrets)
    try:
        yield
    finally:
        close_run_log(handler)


def settings_secrets(settings: Settings) -> list[str]:
    """Secret values held by settings (to keep them out of run.log whatever happens)."""
    return [secret.reveal() for secret in (settings.client_secret, settings.certificate_password)
            if secret is not None and secret.reveal()]


def settings_public(settings: Settings) -> dict[str, Any]:
    """The settings worth recording in the journal, without secrets."""
    out: dict[str, Any] = {}
    for name in ("authority_host", "tenant_id", "client_id", "graph_endpoint", "scope", "cloud", "ca_bundle",
                 "batch_size", "concurrency", "max_writes_per_s"):
        value = getattr(settings, name)
        out[name] = value if isinstance(value, (int, float, bool)) or value is None else str(value)
    out["credential"] = "secret" if settings.client_secret is not None else "certificate"
    return out


def progress_bar(ctx: CommandContext, total: int, no_progress: bool) -> Any:
    """A tqdm bar on the error stream when it is a terminal, else None."""
    if no_progress or not getattr(ctx, "interactive", False) or total <= 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, file=ctx.err, unit="user", desc="creating", dynamic_ncols=True, smoothing=0.1)


def throttle_counter(client: GraphClient) -> Callable[[], int]:
    """The number of 429 answers the client's write governor has seen so far."""
    governor = client.governor
    return lambda: int(governor.throttle_events)


def make_client(settings: Settings, *, batch_size: int | None = None, max_writes_per_s: float | None = None,
                write_burst: float | None = None) -> GraphClient:
    """The Graph client for a run, with the run's ``--batch-size``, ``--max-writes-per-s`` and ``--write-burst``."""
    config = graph_config(settings)
    changes: dict[str, Any] = {}
    if batch_size:
        changes["batch_size"] = int(batch_size)
    governor = config.governor
    if max_writes_per_s:
        governor = replace(governor, rate_per_s=float(max_writes_per_s))
    if write_burst:
        governor = replace(governor, burst=float(write_burst))
    if governor != config.governor:
        changes["governor"] = governor
    config = replace(config, **changes) if changes else config
    return GraphClient(config)  # its write governor starts full, like the quota's own bucket


def graph_config(settings: Settings | GraphConfig) -> GraphConfig:
    """The :class:`graph.config.GraphConfig` of the settings (or the one given)."""
    return settings if isinstance(settings, GraphConfig) else settings.graph_config()


@dataclass(frozen=True, slots=True)
class SessionResult:
    """The outcome of one ``run``/``resume`` session."""

    status: ExitStatus
    apply: ApplyResult | None
    counts: Mapping[str, int]
    followups: Mapping[str, int] = field(default_factory=dict)  # rows by their follow-ups' state


def execute(ctx: CommandContext, client: GraphClient, journal: Journal, folder: RunFolder,
            items: Sequence[CreateItem], *, passwords: PasswordFile, stop: threading.Event, no_progress: bool,
            fail_on_existing: bool,
            in_doubt: Sequence[int] = (), previous_sends: Mapping[int, int] | None = None,
            written_passwords: Mapping[int, str] | None = None,
            updates: Mapping[int, tuple[str, Mapping[str, Any]]] | None = None,
            update_passwords: Sequence[tuple[int, str, str]] = ()) -> ApplyResult:
    """Send the creates of this session, then the updates (``--existing update``; by default the journal's open
    ones), then the follow-ups; progress on stderr when interactive. ``update_passwords``: generated passwords of
    password resets, written to passwords.csv before their PATCH leaves."""
    bar = progress_bar(ctx, len(items), no_progress)
    counter = throttle_counter(client)
    lines = ctx.err if bar is None and not no_progress and getattr(ctx, "verbosity", 0) >= 0 else None
    engine = ApplyEngine(client, journal, passwords=passwords, stop=stop,
                         progress=Progress(bar, lines=lines, total=len(items)),
                         fail_on_existing=fail_on_existing, throttled_count=counter)
    try:
        result = engine.run(items, in_doubt=in_doubt, previous_sends=previous_sends,
                            written_passwords=written_passwords)
    finally:
        if bar is not None:
            bar.close()
    if result.fatal is ExitStatus.RUN_FOLDER_LOST and engine.lost is not None:
        raise stopped_message(engine.lost, journal=journal, passwords=passwords, total=len(items),
                              sent=engine.sent, answers=engine.answers, command_line=ctx.command_line,
                              err=ctx.err)
    try:
        if result.fatal is None and not result.interrupted and not stop.is_set():
            todo = pending_updates(journal) if updates is None else updates
            if todo:
                try:
                    passwords.add(list(update_passwords))  # on disk before any PATCH that carries one leaves
                except OSError as exc:
                    raise lost_from(exc, passwords.path) from exc
                passwords.check_intact()
                log.info("updates: %s", apply_updates(client, journal, todo, stop=stop))
        run_followups(ctx, client, journal, stop=stop, apply=result, no_progress=no_progress)
    except RunFolderLost as lost:
        raise stopped_message(lost, journal=journal, passwords=passwords, total=len(items), sent=engine.sent,
                              answers=engine.answers, command_line=ctx.command_line, err=ctx.err,
                              during="updates and follow-ups") from lost
    return result


def run_followups(ctx: CommandContext, client: GraphClient, journal: Journal, *, stop: threading.Event,
                  apply: ApplyResult | None = None, no_progress: bool = False) -> dict[str, int]:
    """After the creates (and updates): the pending follow-ups of every row whose user exists (groups, licences,
    manager), retried through replication lag, with their own progress on stderr (a bar on a terminal, a line
    every 30 s otherwise). Skipped after a fatal stop or Ctrl-C: ``resume`` continues them."""
    if apply is not None and (apply.fatal is not None or apply.interrupted) or stop.is_set():
        return {}
    progress = phase_progress("follow-ups", ctx.err, interactive=bool(getattr(ctx, "interactive", False)),
                              enabled=not no_progress and getattr(ctx, "verbosity", 0) >= 0)
    counts = apply_followups(client, journal, stop=stop, progress=progress)
    if counts:
        log.info("follow-ups: %s", counts)
    return counts


def finish(ctx: CommandContext, journal: Journal, folder: RunFolder, *, passwords: PasswordFile | None,
           apply: ApplyResult | None, started: float, client: GraphClient | None = None, dry_run: bool = False,
           notify: argparse.Namespace | None = None, stop: threading.Event | None = None) -> SessionResult:
    """Write results.csv, summary.json and the final passwords.csv; print the summary; choose the exit status.

    ``stop``: the session's stop event; set (a signal arrived, in whatever phase, this one included), the status
    is 130 unless a fatal condition stopped the run first.

    ``notify``: the command's arguments when they may carry ``--notify``/``--notify-from``: the summary and
    results.xlsx are then mailed (:func:`provisioning.report.notify.maybe_notify`); a failed notification is a warning,
    never a change of the exit status. A run folder that cannot take the reports is :class:`RunFolderLost`."""
    try:
        return _finish(ctx, journal, folder, passwords=passwords, apply=apply, started=started, client=client,
                       dry_run=dry_run, notify=notify, stop=stop)
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
            notify: argparse.Namespace | None = None, stop: threading.Event | None = None) -> SessionResult:
    # deferred: openpyxl stays off the start-up path (and run_workbook.write_run_workbook is looked up when called)
    from provisioning.report import run_workbook

    snapshot = journal.snapshot()  # the one read of the journal the reports are built from
    records, issues = snapshot.rows, snapshot.issues
    follow = followup_view(snapshot.followups)
    rows = run_workbook.report_rows(snapshot)
    write_results_csv(folder.results_csv, rows)
    # a row sent without an answer yet may exist with its password: resume finds out, the password must stay
    created_rows = [r.row for r in records if r.state in (RowState.CREATED, RowState.UPDATED)
                    or (r.state in OPEN_STATES and r.attempts > 0)]
    if passwords is not None:
        passwords.finalize(created_rows)
    counts: dict[str, int] = {}
    for r in records:
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
    with_user = {RowState.CREATED, RowState.SKIPPED, RowState.UPDATED}
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
        "counts": {s: counts.get(s, 0) for s in ("created", "updated", "skipped", "failed", "invalid", "pending",
                                                  "unknown", "sending", "planned") if counts.get(s, 0) or s in
                   ("created", "skipped", "failed", "invalid")},
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
                                                                                   "exists", "invalid")}
    from provisioning.run.retrysource import read_retry_link  # deferred: pandas/openpyxl stay off the start-up path

    link = read_retry_link(folder.path)
    if link:
        summary["retried_from"] = str(link.get("retried_from", ""))
    write_summary_json(folder.summary_json, summary)
    try:
        run_workbook.write_run_workbook(folder.path, command_line=ctx.command_line, snapshot=snapshot, rows=rows)
    except OSError as exc:  # the journal, results.csv and summary.json are written: report, don't fail the run
        log.error("could not write results.xlsx in %s: %s", folder.path, exc)
        ctx.err.write(f"warning: could not write results.xlsx: {exc}\n")
    if stop is not None and stop.is_set() and status is not ExitStatus.INTERRUPTED and not summary["fatal"]:
        # the signal came while the reports were written: they are complete, but the session was interrupted
        status = ExitStatus.INTERRUPTED
        summary.update(exit_status=int(status), interrupted=True)
        write_summary_json(folder.summary_json, summary)
        journal.set_meta({"exit_status": int(status)})
    _print_summary(ctx, folder, summary, dry_run)
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


def _print_summary(ctx: CommandContext, folder: RunFolder, summary: Mapping[str, Any], dry_run: bool) -> None:
    if getattr(ctx, "verbosity", 0) < 0:
        return
    counts = summary["counts"]
    if dry_run:
        p = summary.get("planned", {})
        ctx.out.write(f"dry run: would create {p.get('create', 0)}, would update {p.get('update', 0)}, "
                      f"would skip {p.get('skip', 0)}, "
                      f"would fail {p.get('exists', 0)}, invalid {p.get('invalid', 0)}; nothing was sent\n")
    else:
        parts = ", ".join(f"{k} {v}" for k, v in counts.items())
        follow = summary.get("followups_by_row") or {}
        if follow.get("failed") or follow.get("pending"):
            parts += (f"; follow-ups failed on {follow.get('failed', 0)} rows, unfinished on "
                      f"{follow.get('pending', 0)}")
        rate = f" ({summary['users_per_s']} users/s)" if summary.get("created_this_session") else ""
        ctx.out.write(f"{parts}{rate}\n")
    if summary.get("hidden_rows"):
        n = summary["hidden_rows"]
        ctx.out.write(f"{n} row{'s' * (n != 1)} hidden in Excel (filtered out or hidden) were provisioned like the "
                      f"others (see the Warnings column of results.xlsx)\n")
    ctx.out.write(f"run folder: {folder.path}\n")
    if folder.results_xlsx.exists():
        ctx.out.write(f"results:    {folder.results_xlsx}\n")


# -- the library API and a run's phases --------------------------------------------------------------------------


class Existing(Enum):
    """What a run does with a row whose userPrincipalName already exists in the tenant (``--existing``)."""

    SKIP = "skip"  # leave the user alone (the row is *skipped*)
    UPDATE = "update"  # PATCH only the roster's properties that differ from the tenant's
    FAIL = "fail"  # report the row as failed


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How :func:`start_run` reads the roster and what it sends (the ``run`` command's options).

    ``run_dir``: the run folder (default ``runs/<stamp>-<roster name>/``); ``force``: replace results files left
    there by something else than a run. ``chain``: a ``retry`` roster's link to the runs before it."""

    run_dir: Path | None = None
    force: bool = False
    sheet: str | None = None
    header_row: int | None = None
    mapping: Path | None = None
    encoding: str | None = None
    dry_run: bool = False
    existing: Existing = Existing.SKIP
    reset_passwords: bool = False
    batch_size: int | None = None
    max_writes_per_s: float | None = None
    write_burst: float | None = None
    progress: bool = True  # a progress bar on the console's error stream when it is a terminal
    notify: NotifyOptions | None = None  # mail the summary and results.xlsx when the run ends
    chain: Chain | None = None


@dataclass(frozen=True, slots=True)
class ResumeOptions:
    """What :func:`resume_run` may do besides continuing the run (the ``resume`` command's options)."""

    progress: bool = True
    notify: NotifyOptions | None = None


#: The row states a result counts, in this order; those always counted (0 included): summary.json's "counts".
COUNTED_STATES = (RowState.CREATED, RowState.UPDATED, RowState.SKIPPED, RowState.FAILED, RowState.INVALID,
                  RowState.PENDING, RowState.UNKNOWN, RowState.SENDING, RowState.PLANNED)
ALWAYS_COUNTED = frozenset({RowState.CREATED, RowState.SKIPPED, RowState.FAILED, RowState.INVALID})
#: Row states and follow-up states that leave work for ``resume`` or ``retry``: the run is not complete.
_LEFT_OVER = frozenset({RowState.FAILED, RowState.PENDING, RowState.SENDING, RowState.UNKNOWN, RowState.PLANNED})
_FOLLOWUPS_LEFT_OVER = frozenset({FollowUpState.FAILED, FollowUpState.PENDING})


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of :func:`start_run` or :func:`resume_run`.

    ``counts``: the rows of the whole run by state, in :data:`COUNTED_STATES` order (empty when the run stopped
    before its journal was written); ``followups``: the rows with follow-ups by the state of those follow-ups;
    ``created``: users created by this call; ``fatal``: why sending stopped (exit 3, 4 or 5), else "";
    ``messages``: the error and warning lines written to the console, for a caller that does not show it."""

    status: ExitStatus
    run_dir: Path
    counts: Mapping[RowState, int] = field(default_factory=dict)
    followups: Mapping[FollowUpState, int] = field(default_factory=dict)
    created: int = 0
    fatal: str = ""
    messages: tuple[str, ...] = ()

    @property
    def interrupted(self) -> bool:
        """Stopped by the stop event (a signal): ``resume_run`` continues it."""
        return self.status is ExitStatus.INTERRUPTED

    @property
    def complete(self) -> bool:
        """Every valid row ended created, updated or skipped with its follow-ups done (invalid rows may be left)."""
        return (self.status in (ExitStatus.OK, ExitStatus.ROWS_FAILED) and not self.fatal and bool(self.counts)
                and not any(self.counts.get(s) for s in _LEFT_OVER)
                and not any(self.followups.get(s) for s in _FOLLOWUPS_LEFT_OVER))


def _console(console: CommandContext | None, settings: Settings) -> CommandContext:
    """The console a run writes to (none given: a silent one), carrying the run's settings."""
    if console is None:
        console = CommandContext(out=io.StringIO(), err=io.StringIO(), verbosity=-1)
    return replace(console, settings=settings)


class _Phases:
    """A run's view of its stop event: whether its journal exists yet (``armed``), told to a :class:`Stop`."""

    def __init__(self, stop: threading.Event, console: CommandContext) -> None:
        self.stop = stop
        self.console = console
        self.armed = False

    def __enter__(self) -> _Phases:
        if isinstance(self.stop, Stop):
            self.stop.begin_run(self.console)
        return self

    def arm(self, folder: RunFolder) -> None:
        self.armed = True
        if isinstance(self.stop, Stop):
            self.stop.arm(folder)

    def __exit__(self, *exc: object) -> None:
        if isinstance(self.stop, Stop):
            self.stop.end_run()


def _notify_args(notify: NotifyOptions | None) -> argparse.Namespace | None:
    """``--notify``/``--notify-from`` as :func:`finish` takes them."""
    if notify is None:
        return None
    return argparse.Namespace(notify=",".join(notify.recipients), notify_from=notify.sender)


def _result(folder: RunFolder, done: SessionResult, apply: ApplyResult | None, messages: Sequence[str]) -> RunResult:
    counts = {RowState(k): n for k, n in done.counts.items()}
    return RunResult(
        status=done.status, run_dir=folder.path,
        counts={s: counts.get(s, 0) for s in COUNTED_STATES if counts.get(s, 0) or s in ALWAYS_COUNTED},
        followups={FollowUpState(k): n for k, n in done.followups.items()},
        created=apply.created if apply is not None else 0,
        fatal=apply.fatal_message if apply is not None and apply.fatal is not None else "",
        messages=tuple(messages))


def start_run(settings: Settings, roster_path: Path, options: RunOptions = RunOptions(), *,
              stop: threading.Event | None = None, console: CommandContext | None = None) -> RunResult:
    """Run a roster in a new run folder: pre-flight (validate, look the tenant up, plan), journal, creates, updates,
    follow-ups, reports. ``stop`` set (from any thread, or by a signal through a :class:`Stop`) ends the run
    cleanly: before the journal exists nothing is left to resume; after, the run ends with 130 and
    :func:`resume_run` continues it. ``console`` receives the user-facing lines (default: none are shown).
    Raises :class:`provisioning.errors.ProvisionError` (and Graph or OS errors) for a run that cannot go on."""
    console = _console(console, settings)
    stop = stop if stop is not None else threading.Event()
    started = time.monotonic()
    if options.reset_passwords and options.existing is not Existing.UPDATE:
        raise UsageError("--reset-passwords only applies with --existing update")
    roster = load_roster(roster_path, sheet=options.sheet, mapping=options.mapping, header_row=options.header_row,
                         encoding=options.encoding)
    if not roster.rows:
        raise UsageError(f"{roster_path}: the roster has no data rows")
    folder = new_run_folder(roster_path, options.run_dir, force=options.force)
    secrets = SecretFilter(settings_secrets(settings))
    # held until the report is written: a second process on this folder would send the same rows again
    with lock_run_folder(folder.path, "run"), _Phases(stop, console) as phases, run_log(folder, secrets):
        if console.verbosity >= 0:
            console.err.write(f"run folder: {folder.path}\n")
            console.err.flush()
        log.info("run %s: roster %s (sha256 %s, %d rows)%s", folder.path, roster_path, roster.sha256,
                 len(roster.rows), " [dry run]" if options.dry_run else "")
        client = make_client(settings, batch_size=options.batch_size, max_writes_per_s=options.max_writes_per_s,
                             write_burst=options.write_burst)
        name = ""
        try:
            if not stop.is_set():
                plan = _preflight(client, roster, options, secrets)
                if not stop.is_set():
                    return _send(console, settings, client, roster_path, roster, options, folder, plan, started,
                                 phases)
        except KeyboardInterrupt:
            if phases.armed:
                raise
            name = "SIGINT"  # a Ctrl-C, unless a Stop knows which signal it was
        finally:
            client.close()
        name = stop.signal_name if isinstance(stop, Stop) and stop.signal_name else name
        line = (f"interrupted{f' ({name})' if name else ''} before anything was sent: nothing to resume in "
                f"{folder.path}; start the run again")
        console.err.write(line + "\n")
        return RunResult(ExitStatus.INTERRUPTED, folder.path, messages=(line,))


@dataclass(frozen=True, slots=True)
class _Planned:
    """What the pre-flight of a run found: the validation, the plan, the updates and the follow-up references."""

    validation: Validation
    plan: Plan
    updates: dict[int, UserUpdate]
    refs: References


def _preflight(client: GraphClient, roster: Roster, options: RunOptions, secrets: SecretFilter) -> _Planned:
    """Validate the roster, look its users and references up in the tenant, plan (nothing is written to Graph)."""
    tenant = GraphTenantView(client)
    validation = validate_roster(roster, tenant=tenant)
    chain = options.chain  # a retry: rows bound to the accounts earlier runs created for them
    existing_mode = options.existing.value
    edits: dict[int, list[Any]] = {}
    if chain is not None:
        header_of = {f: h for h, f in roster.column_map.items() if f}
        held = tenant_employee_ids(client, (str(u.fields.get("employeeId") or "") for u in validation.rows
                                            if not u.has_errors and u.row not in chain.bindings))
        validation, edits = bind_validation(validation, chain, update=options.existing is Existing.UPDATE,
                                            header_of=header_of, held=held)
    secrets.add_secrets(r.password for r in validation.rows if getattr(r, "password", ""))
    valid_upns = [upn_of(r) for r in validation.rows if not r.has_errors and upn_of(r)]
    existing = tenant.lookup(valid_upns)
    rows, issues, refs = check_tenant_references(client, tenant, roster, validation, existing, existing_mode,
                                                 bound=chain.bindings if chain is not None else ())
    plan = make_plan(rows, existing, issues=issues, existing_mode=existing_mode)
    if chain is not None:
        present = bound_accounts(client, chain, (a.row for a in plan.actions if a.kind is not ActionKind.INVALID))
        plan = bind_plan(plan, chain, present, edits)
    updates: dict[int, UserUpdate] = {}
    if options.existing is Existing.UPDATE:
        plan, updates = _plan_updates(client, plan, options.reset_passwords, renames(edits))
    log.info("plan: %s", plan.counts())
    return _Planned(validation, plan, updates, refs)


def _send(console: CommandContext, settings: Settings, client: GraphClient, roster_path: Path, roster: Roster,
          options: RunOptions, folder: RunFolder, planned: _Planned, started: float, phases: _Phases) -> RunResult:
    """Journal the plan, then send it (creates, updates, follow-ups) and write the reports."""
    plan, updates, chain, stop = planned.plan, planned.updates, options.chain, phases.stop
    meta = {
        "roster_path": str(Path(roster_path).resolve()), "roster_sha256": roster.sha256,
        "sheet": getattr(roster, "sheet", None) or options.sheet, "header_row": options.header_row,
        "mapping": str(Path(options.mapping).resolve()) if options.mapping else None,
        "encoding": getattr(roster, "encoding", None),  # as read (given or detected): resume reads it the same
        "dry_run": options.dry_run, "existing": options.existing.value, "batch_size": options.batch_size,
        "max_writes_per_s": options.max_writes_per_s, "write_burst": options.write_burst,
        "settings": settings_public(settings),
        "tenant": binding_of(settings, client), "command_line": console.command_line,
    }
    if chain is not None:
        meta["retry"] = dict(chain.meta)
    journal = Journal.create(folder.path, meta)
    phases.arm(folder)
    try:
        if chain is not None:
            journal.add_bindings(chain.bindings.values())
        bodies = {a.row: a.user.graph_body() for a in plan.creates}
        # with the roster's cells: the reports are built from the journal alone
        journal.add_rows(seeds(plan, dry_run=options.dry_run, bodies=bodies, updates=updates), roster=roster)
        if not options.dry_run:  # --existing fail: the code the apply stage gives a user that appears later, too
            journal.record_many([(a.row, Outcome(RowState.FAILED, a.object_id, None, EXISTS_CODE, a.message))
                                 for a in plan.actions if a.kind is ActionKind.EXISTS])
        journal.add_changes(c for u in updates.values() for c in u.changes)
        journal.add_issues(i for i in planned.validation.issues if i.row == 0)
        todo = plan_followups(plan.actions, planned.refs, dry_run=options.dry_run,
                              held=held_for(client, plan.actions))
        journal.add_followups(drop_done(todo, chain) if chain is not None else todo)
        notify = _notify_args(options.notify)
        if options.dry_run:
            _print_diff(console, plan, updates)
            done = finish(console, journal, folder, passwords=None, apply=None, started=started, client=client,
                          dry_run=True, notify=notify, stop=stop)
            return _result(folder, done, None, ())
        items = [CreateItem(a.row, a.upn, bodies[a.row], bool(a.user.password_generated))
                 for a in plan.creates]
        passwords = PasswordFile(folder.passwords_csv)
        update_bodies = {u.row: (u.object_id, u.body) for u in updates.values()}
        reset = [(a.row, a.upn, a.user.password) for a in plan.actions
                 if a.row in updates and "passwordProfile" in updates[a.row].body and a.user.password_generated]
        result = execute(console, client, journal, folder, items, passwords=passwords, stop=stop,
                         no_progress=not options.progress, fail_on_existing=options.existing is Existing.FAIL,
                         updates=update_bodies, update_passwords=reset)
        done = finish(console, journal, folder, passwords=passwords, apply=result, started=started,
                      client=client, notify=notify, stop=stop)
        return _result(folder, done, result, report_stop(console, folder, result, done.status))
    finally:
        journal.close()


def seeds(plan: Plan, *, dry_run: bool, bodies: dict[int, dict[str, Any]] | None = None,
          updates: dict[int, UserUpdate] | None = None) -> list[RowSeed]:
    """The journal's initial record of every row (``bodies``: the create bodies already built, by row;
    ``updates``: the PATCH of every UPDATE row)."""
    out = []
    for a in plan.actions:
        user = a.user
        body = None
        if a.kind is ActionKind.CREATE and user is not None:
            body = bodies[a.row] if bodies and a.row in bodies else user.graph_body()
        elif a.kind is ActionKind.UPDATE and updates and a.row in updates:
            body = dict(updates[a.row].body)
        display = str(user.fields.get("displayName", "") or "") if user is not None else ""
        if dry_run:
            state = RowState.INVALID if a.kind is ActionKind.INVALID else RowState.PLANNED
        else:
            state = {ActionKind.CREATE: RowState.PENDING, ActionKind.UPDATE: RowState.PENDING,
                     ActionKind.SKIP: RowState.SKIPPED,
                     ActionKind.EXISTS: RowState.FAILED, ActionKind.INVALID: RowState.INVALID}[a.kind]
        out.append(RowSeed(
            row=a.row, upn=a.upn, action=a.kind.value, state=state,
            password_source=_password_source(a, body),
            body=body, display_name=display, object_id=a.object_id, message=a.message, issues=a.issues))
    return out


def _password_source(a: Any, body: dict[str, Any] | None) -> str:
    """Where the password of a create (or reset) came from; for an invalid row, where it would have come from, so
    that a ``retry`` knows whether the roster gave one (the reports never copy it)."""
    user = a.user
    if user is None:
        return ""
    if body is not None and (a.kind is ActionKind.CREATE or "passwordProfile" in body) or \
            a.kind is ActionKind.INVALID:
        return "generated" if user.password_generated else "roster"
    return ""


def _print_diff(ctx: CommandContext, plan: Plan, updates: dict[int, UserUpdate], limit: int = 100) -> None:
    """Dry run of ``--existing update``: the changes, old -> new (the Updated sheet has them all)."""
    if not updates or getattr(ctx, "verbosity", 0) < 0:
        return
    upn = {a.row: a.upn for a in plan.actions}
    lines = [f"row {c.row} {upn.get(c.row, '')}: {c.property}: {c.old!r} -> {c.new!r}"
             for u in updates.values() for c in u.changes]
    for line in lines[:limit]:
        ctx.out.write(f"would update {line}\n")
    if len(lines) > limit:
        ctx.out.write(f"... and {len(lines) - limit} more changes (results.xlsx, Updated sheet)\n")


def _plan_updates(client: GraphClient, plan: Plan, reset_passwords: bool,
                  extra: dict[int, dict[str, str]] | None = None) -> tuple[Plan, dict[int, UserUpdate]]:
    """``--existing update``: read the existing users' values (batched GETs) and keep only what differs."""
    targets = {a.row: a.object_id for a in plan.actions if a.kind is ActionKind.UPDATE and a.object_id}
    current = fetch_current(client, targets, select_for(a.user for a in plan.actions if a.row in targets))
    actions, updates = plan_updates(plan.actions, current, reset_passwords=reset_passwords, extra=extra)
    log.info("update: %d of %d existing users differ from the roster", len(updates), len(targets))
    return Plan(tuple(actions), plan.existing_mode), updates


def check_tenant_references(client: GraphClient, tenant: TenantView, roster: Roster, validation: Validation,
                            existing: Mapping[str, ExistingUser], existing_mode: str,
                            bound: Collection[int] = ()) -> tuple[list[UserRow], list[Issue], References]:
    """Pre-flight of the follow-up columns: resolve groups, SKUs (with seats) and managers once; a row with an
    unresolvable reference, or beyond a SKU's free seats, becomes invalid. Returns (rows, issues, references).
    ``bound``: rows of a retry bound to their account (checked even with ``--existing fail``: they are no
    conflict, their follow-ups are sent)."""
    rows = list(validation.rows)
    if not any(r.groups or r.licenses or r.manager for r in rows if not r.has_errors):
        return rows, list(validation.issues), References()
    refs = resolve(client, tenant, rows, existing)
    headers = {v: k for k, v in (getattr(roster, "column_map", None) or {}).items() if v}
    skip = [r.row for r in rows if existing_mode == "fail" and upn_of(r).lower() in existing and r.row not in bound]
    found = check_references(rows, refs, columns=headers, skip_rows=skip)
    if not found:
        return rows, list(validation.issues), refs
    bad = {i.row for i in found}
    log.info("pre-flight references: %d issues on %d rows", len(found), len(bad))
    rows = [replace(r, has_errors=True) if r.row in bad else r for r in rows]
    return rows, sorted([*validation.issues, *found], key=lambda i: i.row), refs


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


# -- resume: continue a run from its journal ---------------------------------------------------------------------


def resume_run(settings: Settings, run_dir: Path, options: ResumeOptions = ResumeOptions(), *,
               stop: threading.Event | None = None, console: CommandContext | None = None) -> RunResult:
    """Continue an interrupted run from its journal: check the roster and the tenant, reconcile the rows in doubt,
    send the rest (creates, updates, follow-ups), report over the whole run. ``stop`` and ``console`` as for
    :func:`start_run`; a stop ends it with 130, to be resumed again."""
    console = _console(console, settings)
    stop = stop if stop is not None else threading.Event()
    started = time.monotonic()
    folder = existing_run_folder(run_dir)
    # held until the report is written: a second process on this folder would send the same rows again
    with lock_run_folder(folder.path, "resume"), _Phases(stop, console) as phases, \
            Journal.open(folder.path) as journal:
        result = _resume(console, settings, options, folder, journal, phases, started)
        lost = without_password(journal, folder.passwords_csv)
        if not lost:
            return result
        # users that exist with a generated password nobody has: say so on every resume
        line = without_password_warning(lost, console.command_line)
        console.err.write(line + "\n")
        status = ExitStatus.ROWS_FAILED if result.status is ExitStatus.OK else result.status
        return replace(result, status=status, messages=(*result.messages, line))


def _resume(console: CommandContext, settings: Settings, options: ResumeOptions, folder: RunFolder,
            journal: Journal, phases: _Phases, started: float) -> RunResult:
    meta = journal.meta()
    if meta.get("dry_run"):
        raise RunFolderError(f"{folder.path} is a dry run: nothing was planned to be sent; start a real run "
                             "with `run`")
    roster_path = check_roster(meta)
    phases.arm(folder)
    stop = phases.stop
    notify = _notify_args(options.notify)
    with make_client(settings, batch_size=meta.get("batch_size"), max_writes_per_s=meta.get("max_writes_per_s"),
                     write_burst=meta.get("write_burst")) as client:
        check_binding(meta, settings, folder.path, client)
        open_rows = [r for r in journal.rows(OPEN_STATES) if r.action != "update"]  # updates: runner re-sends
        secrets = SecretFilter(settings_secrets(settings))
        with run_log(folder, secrets):
            log.info("resume %s: %d rows still open", folder.path, len(open_rows))
            if not open_rows:
                if journal.followups([FollowUpState.PENDING]) or pending_updates(journal):
                    log.info("resume: no create open; sending the pending updates and follow-ups")
                    todo = pending_updates(journal)
                    if todo and not stop.is_set():
                        apply_updates(client, journal, todo, stop=stop)
                    run_followups(console, client, journal, stop=stop, no_progress=not options.progress)
                done = finish(console, journal, folder, passwords=None, apply=None, started=started, client=client,
                              notify=notify, stop=stop)
                return _result(folder, done, None, report_stop(console, folder, None, done.status))
            items = _items(open_rows, roster_path, meta, folder, secrets)
            passwords = PasswordFile(folder.passwords_csv)
            known = passwords.load()
            in_doubt = [r.row for r in open_rows if r.state in (RowState.SENDING, RowState.UNKNOWN)]
            result = execute(console, client, journal, folder, items, passwords=passwords, stop=stop,
                             no_progress=not options.progress, fail_on_existing=meta.get("existing") == "fail",
                             in_doubt=in_doubt, previous_sends={r.row: r.attempts for r in open_rows},
                             written_passwords={row: pw for row, (_, pw) in known.items()})
            done = finish(console, journal, folder, passwords=passwords, apply=result, started=started,
                          client=client, notify=notify, stop=stop)
            return _result(folder, done, result, report_stop(console, folder, result, done.status))


def check_roster(meta: Mapping[str, Any]) -> Path:
    """The run's roster, refused (exit 2) if it is gone or its bytes changed since the run started."""
    path = Path(str(meta.get("roster_path", "")))
    if not path.is_file():
        raise RunFolderError(f"the roster of this run, {path}, is not there any more; put it back unchanged to "
                             "resume, or start a new run")
    digest = file_sha256(path)
    if digest != meta.get("roster_sha256"):
        raise RunFolderError(f"{path} changed since the run started (sha256 {digest[:12]}... is not "
                             f"{str(meta.get('roster_sha256'))[:12]}...); resume only continues the roster as it "
                             "was: restore it, or start a new run with `run`")
    return path


def _items(open_rows: list[RowRecord], roster_path: Path, meta: Mapping[str, Any], folder: RunFolder,
           secrets: SecretFilter) -> list[CreateItem]:
    """Re-derive the bodies of the open rows: the journal's body (the UPN as first planned) plus the password.

    The journal stores no password: a roster password is read again from the (unchanged) roster; a generated one
    is the one already in passwords.csv if the row was sent before (it may exist with it), else a new one.
    """
    roster = load_roster(roster_path, sheet=meta.get("sheet"), mapping=meta.get("mapping"),
                         header_row=meta.get("header_row"), encoding=meta.get("encoding"))
    validation = validate_roster(roster, tenant=None)
    by_row = {r.row: r for r in validation.rows}
    known = PasswordFile(folder.passwords_csv).load()
    items = []
    for rec in open_rows:
        user = by_row.get(rec.row)
        if rec.password_source == "generated" and rec.attempts > 0 and rec.row in known:
            password = known[rec.row][1]
        elif user is not None and user.password:
            password = user.password
            if rec.password_source == "generated" and not user.password_generated:
                raise RunFolderError(f"row {rec.row}: the journal says its password was generated but the roster "
                                     "has one; the roster is not the one this run started with")
        else:
            raise RunFolderError(f"row {rec.row}: cannot find this row in the roster any more")
        body = dict(rec.body)
        body["passwordProfile"] = {**dict(body.get("passwordProfile") or {}), "password": password}
        secrets.add_secrets([password])
        items.append(CreateItem(rec.row, rec.upn, body, rec.password_source == "generated"))
    return items


# -- retry: the rows of a run's Failed and Invalid sheets, as edited there, as a new run -------------------------


@dataclass(frozen=True, slots=True)
class RetryOptions:
    """What :func:`start_retry` may choose anew (the ``retry`` command's options); the earlier run's mapping, batch
    size and write rate are carried over. ``existing`` None: the earlier run's choice."""

    run_dir: Path | None = None
    force: bool = False
    dry_run: bool = False
    existing: Existing | None = None
    progress: bool = True


def start_retry(settings: Settings, target: Path, options: RetryOptions = RetryOptions(), *,
                stop: threading.Event | None = None, console: CommandContext | None = None) -> RunResult:
    """Re-run the rows of the Failed and Invalid sheets of an earlier run (``target``: its run folder, its
    results.xlsx after the user corrected it, or one of those sheets saved as CSV) as a new run folder linked to
    the earlier one, in the earlier run's tenant, while no other process works on the earlier run.

    The rows become the roster of the new run (``retry-roster.xlsx``, linked by ``retry-source.json`` and the
    ``retry`` entry of its journal) and go through :func:`start_run`. Each row keeps the row number it had in the
    original roster. A row whose user a run of the chain created is bound to that account
    (:mod:`provisioning.run.chain`): never created again; only its unfinished follow-ups are sent, and an edit of
    its cells is a PATCH of that account (``Existing.UPDATE``) or an issue. A password the roster gave a row
    (never shown in the sheets) is read again from the earlier run's roster when its bytes are unchanged."""
    console = _console(console, settings)
    source = read_retry_source(target)
    with contextlib.ExitStack() as held:
        if RunFolder(source.earlier_run).journal.is_file():
            # a run (or resume) still working there may yet create or follow up the rows retried here
            held.enter_context(lock_run_folder(source.earlier_run, "retry"))
        return _retry(settings, source, options, stop, console)


def _retry_run_options(meta: Mapping[str, Any], run_dir: Path, chain: Chain, options: RetryOptions) -> RunOptions:
    """The options of the retry run, with the earlier run's choices (mapping, --existing, batch size, write rate)
    carried over."""
    mapping = meta.get("mapping")
    return RunOptions(
        run_dir=run_dir, force=options.force, mapping=Path(mapping) if mapping and Path(mapping).is_file() else None,
        dry_run=options.dry_run, existing=options.existing or Existing(meta.get("existing") or "skip"),
        batch_size=int(meta["batch_size"]) if meta.get("batch_size") else None,
        max_writes_per_s=float(meta["max_writes_per_s"]) if meta.get("max_writes_per_s") else None,
        progress=options.progress, chain=chain)


def _retry(settings: Settings, source: RetrySource, options: RetryOptions, stop: threading.Event | None,
           console: CommandContext) -> RunResult:
    parent = read_chain(source.earlier_run)
    if parent is None:
        log.warning("%s holds no journal: rows are checked against the tenant only", source.earlier_run)
    meta = dict(parent.meta) if parent else {}
    if meta:
        with make_client(settings) as client:
            check_binding(meta, settings, source.earlier_run, client)
    bindings = dict(parent.bindings) if parent else {}
    done = _done_rows(parent)
    retried, excluded = exclude_created(source, created_rows=done,
                                        created_upns={bindings[r].upn for r in done if r in bindings})
    for e in excluded:
        console.out.write(f"not retried: {e.row.sheet} sheet row {e.row.sheet_row}: {e.reason}\n")
    require_rows(source, retried)
    numbers, high = _roster_rows(console, retried, parent, bindings)
    renames = load_mapping(meta["mapping"]).renames if meta.get("mapping") else None
    fields = [canonical_field(h, renames) for h in source.headers]
    rows, issues, unchanged = _passwords(retried, numbers, fields, source.headers, parent, bindings)
    issues += _formula_issues(rows, numbers, fields, source.headers)
    issues += _still_empty(rows, numbers, source.headers, parent)

    stem = Path(str(meta.get("roster_path") or source.earlier_run.name)).stem
    if stem == Path(RunFolder.RETRY_ROSTER).stem:  # a retry of a retry: named after the original roster
        stem = str((meta.get("retry") or {}).get("stem") or stem)
    folder = new_run_folder(Path(f"{stem}-retry.xlsx"), options.run_dir, force=options.force)
    roster_path = folder.retry_roster
    order = sorted(range(len(rows)), key=numbers.__getitem__)
    mapping = write_retry_roster(roster_path, source.headers, [rows[i] for i in order],
                                 [numbers[i] for i in order])
    write_retry_link(folder.path, source, mapping, excluded)
    console.out.write(f"retrying {len(mapping)} row(s) of {source.results_path} as a new run\n")
    log.info("retry of %s: %d rows, %d excluded, %d bound to accounts created earlier, new run %s",
             source.earlier_run, len(mapping), len(excluded), sum(1 for n in mapping if n in bindings), folder.path)

    chain = Chain(
        bindings=bindings, issues=tuple(issues),
        done_followups=frozenset(k for k in (parent.done_followups if parent else ()) if k[0] in bindings),
        meta={"parent_run": str(source.earlier_run.resolve()), "parent_results": str(source.results_path.resolve()),
              "parent_roster": meta.get("roster_path"), "parent_roster_sha256": meta.get("roster_sha256"),
              "parent_roster_unchanged": unchanged, "high_row": high, "stem": stem,
              "bound_rows": sorted(n for n in mapping if n in bindings)})
    result = start_run(settings, roster_path, _retry_run_options(meta, folder.path, chain, options), stop=stop,
                       console=console)
    if not folder.results_xlsx.is_file() and folder.journal.is_file():
        write_run_workbook(folder.path, command_line=console.command_line)
    return result


def _done_rows(parent: Parent | None) -> set[int]:
    """Rows bound to an account whose work is finished (not re-sent, even when pasted back into a sheet): all but
    those the earlier run refused or left open, and those with a failed or unfinished follow-up."""
    if parent is None:
        return set()
    again = {RowState.INVALID, RowState.FAILED, RowState.PENDING, RowState.SENDING, RowState.UNKNOWN}
    return {row for row in parent.bindings if row not in parent.unfinished
            and (row not in parent.records or parent.records[row].state not in again)}


def _roster_rows(console: CommandContext, rows: Sequence[RetryRow], parent: Parent | None,
                 bindings: Mapping[int, Any]) -> tuple[list[int], int]:
    """Each row's roster row number: the one it had in the original roster ("Roster row"), kept through retries
    of retries; a row added by hand (or a second copy of a row) gets the next number after every row the chain
    has used. Returns the numbers and that highest number."""
    used_before = [int(((parent.meta.get("retry") or {}) if parent else {}).get("high_row") or 0),
                   *(parent.records if parent else ()), *bindings, *(r.earlier_row or 0 for r in rows), 1]
    high = max(used_before)
    numbers: list[int] = []
    taken: set[int] = set()
    for r in rows:
        number = r.earlier_row
        if number is None or number < 2 or number in taken:
            high += 1
            why = "added by hand" if number is None or number < 2 else f"repeats roster row {number}"
            console.out.write(f"note: {r.sheet} sheet row {r.sheet_row} ({why}) is retried as roster row {high}\n")
            number = high
        taken.add(number)
        numbers.append(number)
    return numbers, high


def _passwords(rows: Sequence[RetryRow], numbers: Sequence[int], fields: Sequence[str | None],
               headers: Sequence[str], parent: Parent | None, bindings: Mapping[int, Any]) \
        -> tuple[list[RetryRow], list[Issue], bool | None]:
    """The password the roster gave a row, which the sheets never show: read again from the earlier run's roster
    when that file is unchanged (its SHA-256 is in the journal), else the row gets an issue, unless the cell was
    filled in again. Returns the rows, the issues, and whether the earlier roster was unchanged (None: not read).
    """
    if "password" not in fields or parent is None:
        return list(rows), [], None
    col = fields.index("password")
    wanted = [i for i, r in enumerate(rows) if not r.cells[col] and numbers[i] not in bindings
              and r.earlier_row is not None and numbers[i] == r.earlier_row]
    if not wanted:
        return list(rows), [], None
    given = _roster_passwords(parent.meta)
    out = list(rows)
    issues: list[Issue] = []
    for i in wanted:
        number = numbers[i]
        if given is not None:
            if given.get(number):
                cells = list(out[i].cells)
                cells[col] = given[number]
                out[i] = replace(out[i], cells=tuple(cells))
            continue
        record = parent.records.get(number)
        if record is not None and record.password_source == "roster":
            roster = Path(str(parent.meta.get("roster_path") or "the roster"))
            state = "changed since" if roster.is_file() else "is not there any more since"
            issues.append(codes.issue(
                number, headers[col], "retry-password-lost",
                f"{headers[col]}: {roster.name} gave row {number} a password, which reports never copy, and "
                f"{roster.name} {state} the run {parent.run_dir}, so it cannot be read again; type the password "
                f"again in the sheet, or retry this run with the cell left empty to have one generated"))
    return out, issues, given is not None


def _roster_passwords(meta: Mapping[str, Any]) -> dict[int, str] | None:
    """The password cells of the earlier run's roster by row, or None when it is gone or its bytes changed."""
    path = Path(str(meta.get("roster_path") or ""))
    if not meta.get("roster_sha256") or not path.is_file() or file_sha256(path) != meta["roster_sha256"]:
        return None
    try:
        roster = load_roster(path, sheet=meta.get("sheet"), mapping=meta.get("mapping"),
                             header_row=meta.get("header_row"), encoding=meta.get("encoding"))
    except ProvisionError as exc:  # e.g. its mapping file is gone: the passwords cannot be read again
        log.warning("cannot read the earlier roster %s again: %s", path, exc)
        return None
    col = next((j for j, h in enumerate(roster.headers) if roster.column_map.get(h) == "password"), None)
    if col is None:
        return {}
    return {r.row: r.cells[col] for r in roster.rows if col < len(r.cells) and r.cells[col]}


#: Reader issues of a cell that the roster had but the report could not show (its value was never calculated).
_UNSHOWN = frozenset({"formula-no-value", "excel-error"})


def _still_empty(rows: Sequence[RetryRow], numbers: Sequence[int], headers: Sequence[str],
                 parent: Parent | None) -> list[Issue]:
    """A cell the earlier run refused as a formula without a value (or an error value) that is still empty in the
    sheet: the report had nothing to show there, so an unedited retry would send the row without the value the
    administrator meant to give. Refused once more (``retry-formula-empty``); a retry of that retry with the cell
    still empty takes it as empty on purpose."""
    if parent is None:
        return []
    earlier = parent.issues
    at = {h: i for i, h in enumerate(headers)}
    out: list[Issue] = []
    for r, number in zip(rows, numbers, strict=True):
        if r.earlier_row is None:
            continue
        for issue in earlier.get(r.earlier_row, ()):
            index = at.get(issue.column)
            if issue.code in _UNSHOWN and index is not None and not r.cells[index].strip():
                out.append(codes.issue(number, issue.column, "retry-formula-empty",
                                       f"{issue.column}: the roster's cell held a formula whose value was never "
                                       f"calculated (or an Excel error), so the report's cell is empty; type the "
                                       f"value in the sheet, or retry again with it left empty on purpose"))
    return out


def _formula_issues(rows: Sequence[RetryRow], numbers: Sequence[int], fields: Sequence[str | None],
                    headers: Sequence[str]) -> list[Issue]:
    """A formula without a saved value in a sheet (an error value is written as such and refused by the roster
    reader of the retry run): the same issue the roster reader gives."""
    out: list[Issue] = []
    for r, number in zip(rows, numbers, strict=False):
        for index, pr in r.problems:
            if pr.error is None:
                code, message = problem_message(pr, headers[index], used=fields[index] is not None,
                                                secret=fields[index] == "password")
                out.append(codes.issue(number, headers[index], code, message))
    return out
