"""The run's session machinery shared by ``run``, ``resume`` and ``retry``: signals (Ctrl-C, SIGTERM, SIGHUP) as a
stop in every phase, the progress bar, the run log, executing the creates and writing the outputs."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from provisioning.context import CommandContext
from provisioning.errors import RunFolderLost
from provisioning.exitcodes import ExitStatus
from provisioning.report.files import write_results_csv, write_summary_json
from provisioning.run.creates import ApplyEngine, ApplyResult, CreateItem, Progress
from provisioning.run.durable import lost_from, stopped_message
from provisioning.run.folder import RunFolder
from provisioning.run.journal import OPEN_STATES, Journal, RowState, followup_view, utcnow
from provisioning.run.secrets import PasswordFile, SecretFilter, close_run_log, open_run_log
from provisioning.settings import Settings

if TYPE_CHECKING:  # graph.client (msal, requests) is imported when a client is made
    from graph.client import GraphClient

log = logging.getLogger(__name__)


#: The signals that stop a session: Ctrl-C, what service managers and ``kill`` send, a closed terminal.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def resume_hint(ctx: CommandContext, folder: RunFolder) -> str:
    """The exact command that continues this run (with the options it was started with)."""
    return f"to continue: {ctx.command_line} resume {shlex.quote(str(folder.path))}"


class Session:
    """Signal handling for a whole ``run``/``resume``/``retry``, whatever phase it is in.

    Before :meth:`arm` (nothing sent, no journal yet) a signal interrupts at once (``KeyboardInterrupt``). Once
    armed, the first signal sets :attr:`stop`: no new request leaves, the answers in flight are awaited and
    journaled, the phases still to come (updates, follow-ups) are left to ``resume``, the reports are written and
    the command exits 130 with the command that continues it. A second signal aborts at once: the process exits
    130 right away, as a SIGKILL would, after printing the same hint; the journal stays consistent (each change is
    its own SQLite transaction; a row whose answer was not recorded stays *sending* and ``resume`` looks it up).
    """

    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx
        self.stop = threading.Event()
        self.signal_name = ""
        self.count = 0
        self.folder: RunFolder | None = None
        self._previous: dict[int, Any] = {}

    def arm(self, folder: RunFolder) -> None:
        """The journal exists: from now on a signal stops the session cleanly instead of interrupting it."""
        self.folder = folder

    def __enter__(self) -> Session:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.count += 1
        self.signal_name = self.signal_name or name
        self.stop.set()
        if self.folder is None:
            if threading.current_thread() is threading.main_thread():
                raise KeyboardInterrupt
            return
        # no logging here: the handler may have interrupted a log record being written to the same stream
        if self.count == 1:
            self._say(f"\nstopping ({name}): no new request is sent; waiting for the answers in flight to record "
                      "them (Ctrl-C again to abort at once)\n")
            return
        self._say(f"\naborted at once ({name}): the requests in flight stay 'sending' in the journal of "
                  f"{self.folder.path}; resume looks them up before sending anything again.\n"
                  f"{resume_hint(self.ctx, self.folder)}\n")
        with contextlib.suppress(Exception):
            self.ctx.out.flush()
        os._exit(int(ExitStatus.INTERRUPTED))

    def _say(self, text: str) -> None:
        # the handler may have interrupted a write to the same stream: losing the message beats crashing
        with contextlib.suppress(Exception):
            self.ctx.err.write(text)
            self.ctx.err.flush()


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
    found: list[str] = []
    for obj in (settings, getattr(settings, "graph", None)):
        for name in ("client_secret", "secret", "certificate_password"):
            value = getattr(obj, name, None)
            reveal = getattr(value, "reveal", None)
            if callable(reveal):
                value = reveal()
            if isinstance(value, str) and value:
                found.append(value)
        cert = getattr(obj, "certificate", None)
        pw = getattr(cert, "password", None)
        if pw is not None and callable(getattr(pw, "reveal", None)):
            found.append(pw.reveal())
    return found


def settings_public(settings: Settings) -> dict[str, Any]:
    """The settings worth recording in the journal, without secrets."""
    keep = ("authority_host", "tenant_id", "client_id", "graph_endpoint", "scope", "cloud", "ca_bundle",
            "batch_size", "concurrency", "max_writes_per_s")
    out: dict[str, Any] = {}
    for obj in (getattr(settings, "graph", None), settings):
        for name in keep:
            if name not in out and hasattr(obj, name):
                value = getattr(obj, name)
                out[name] = value if isinstance(value, (int, float, bool)) or value is None else str(value)
    out["credential"] = ("certificate" if getattr(getattr(settings, "graph", settings), "certificate", None)
                         else "secret")
    return out


def progress_bar(ctx: CommandContext, total: int, no_progress: bool) -> Any:
    """A tqdm bar on the error stream when it is a terminal, else None."""
    if no_progress or not getattr(ctx, "interactive", False) or total <= 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, file=ctx.err, unit="user", desc="creating", dynamic_ncols=True, smoothing=0.1)


def throttle_counter(client: GraphClient) -> Any:
    """A callable giving the number of 429 answers the client has seen, if the client keeps count."""
    for path in (("stats",), ("governor",)):
        obj = getattr(client, path[0], None)
        if obj is None:
            continue
        if callable(obj) and path[0] == "stats":
            def from_stats(obj: Any = obj) -> int:
                s = obj()
                return int(s.get("throttled", s.get("429", 0)) if isinstance(s, Mapping) else
                           getattr(s, "throttled", 0))
            return from_stats
        if hasattr(obj, "throttle_events"):
            return lambda obj=obj: int(obj.throttle_events)
    return None


def make_client(settings: Settings, *, batch_size: int | None = None, max_writes_per_s: float | None = None,
                write_burst: float | None = None) -> Any:
    """The Graph client for a run, with the run's ``--batch-size``, ``--max-writes-per-s`` and ``--write-burst``."""
    from dataclasses import replace

    from graph.client import GraphClient

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


def graph_config(settings: Settings) -> Any:
    """The :class:`graph.config.GraphConfig` inside the settings."""
    from graph.config import GraphConfig

    if isinstance(settings, GraphConfig):
        return settings
    for name in ("graph", "graph_config"):
        value = getattr(settings, name, None)
        value = value() if callable(value) else value
        if isinstance(value, GraphConfig):
            return value
    raise TypeError(f"cannot find the Graph configuration in {type(settings).__name__}")


@dataclass(frozen=True, slots=True)
class SessionResult:
    """The outcome of one ``run``/``resume`` session."""

    status: ExitStatus
    apply: ApplyResult | None
    counts: Mapping[str, int]


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
    engine = ApplyEngine(client, journal, passwords=passwords, stop=stop, progress=Progress(bar),
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
            from provisioning.run.updates import apply_updates, pending_updates

            todo = pending_updates(journal) if updates is None else updates
            if todo:
                try:
                    passwords.add(list(update_passwords))  # on disk before any PATCH that carries one leaves
                except OSError as exc:
                    raise lost_from(exc, passwords.path) from exc
                passwords.check_intact()
                log.info("updates: %s", apply_updates(client, journal, todo, stop=stop))
        run_followups(ctx, client, journal, stop=stop, apply=result)
    except RunFolderLost as lost:
        raise stopped_message(lost, journal=journal, passwords=passwords, total=len(items), sent=engine.sent,
                              answers=engine.answers, command_line=ctx.command_line, err=ctx.err,
                              during="updates and follow-ups") from lost
    return result


def run_followups(ctx: CommandContext, client: GraphClient, journal: Journal, *, stop: threading.Event,
                  apply: ApplyResult | None = None) -> dict[str, int]:
    """After the creates (and updates): the pending follow-ups of every row whose user exists (groups, licences,
    manager), retried through replication lag. Skipped after a fatal stop or Ctrl-C: ``resume`` continues them."""
    from provisioning.run.followups import apply_followups

    if apply is not None and (apply.fatal is not None or apply.interrupted) or stop.is_set():
        return {}
    counts = apply_followups(client, journal, stop=stop)
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
        from provisioning.report.notify import maybe_notify

        try:
            maybe_notify(ctx, notify, folder.path, client=client, summary=summary)
        except Exception as exc:  # noqa: BLE001 - maybe_notify never raises; belt and braces for the exit status
            log.warning("notification failed: %s", exc)
    return SessionResult(status, apply, counts)


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
