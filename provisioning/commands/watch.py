"""``watch INBOX [--interval S] [--settle S] [--once]``: a daemon that runs each file dropped in INBOX, one run each.

A file is taken once its size, mtime and inode have not changed for ``--settle`` seconds (names that uploads use
while in progress are never taken), moved by one rename into its own ``INBOX/.processing/<stem>-<stamp>/``, run
in-process through ``run`` (its run folder under ``INBOX/.runs/``), then moved with its run folder to
``INBOX/done/<stem>-<stamp>/`` (every valid row created, updated or skipped; invalid rows, if any, listed in
``<roster>.issues.txt``) or ``INBOX/failed/<stem>-<stamp>/`` (the run did not complete: unusable roster, not a
roster file, rows failed at Graph, a crash; with ``<roster>.error.txt``); with ``--notify``/``--notify-from`` every
outcome is mailed, the outcome in the subject (see :mod:`provisioning.report.notify`). Exit 3/4 (configuration,
authentication, service unavailable) keep the file in ``.processing`` and retry it later with a back-off.
SIGTERM or Ctrl-C stop the current run the way Ctrl-C stops ``run`` (in-flight requests are answered and
journaled); the next start resumes that run from its journal (``INBOX/.processing/<work>/.marker.json`` marks it).

Exit status: 0 when stopped while idle (or after a run finished); 130 when a run was interrupted (it resumes at the
next start). With ``--once``: the worst exit status of the rosters processed in that pass (0 when none).
See :mod:`provisioning.watcher`.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from provisioning.context import CommandContext
from provisioning.errors import UsageError
from provisioning.exitcodes import ExitStatus
from provisioning.report.notify import add_notify_arguments, notify_watch_result, require_notify_arguments
from provisioning.run.folder import RunFolder
from provisioning.run.lock import lock_run_folder
from provisioning.watcher import FileResult, RunOutcome, WatchConfig, Watcher

HELP = "daemon: run each roster dropped in INBOX (then move it to done/ or failed/); resumes after a restart"
NEEDS_TENANT = True

log = logging.getLogger(__name__)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _settle(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be a number of seconds, 0 or more")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``watch`` options."""
    parser.add_argument("inbox", type=Path, metavar="INBOX", help="the drop folder to watch")
    parser.add_argument("--interval", type=_interval, default=30.0, metavar="S",
                        help="seconds between polls (default 30)")
    parser.add_argument("--settle", type=_settle, default=60.0, metavar="S",
                        help="a file is taken once its size, modification time and inode have not changed for S "
                             "seconds (default 60): longer than any pause of the slowest upload")
    parser.add_argument("--once", action="store_true",
                        help="process what is there (and interrupted or due runs) and exit: for cron and tests")
    add_notify_arguments(parser)


def _child_ctx(ctx: CommandContext) -> tuple[CommandContext, io.StringIO]:
    """A context for one run: its output is captured (the daemon logs one line per event instead)."""
    buffer = io.StringIO()
    return CommandContext(out=buffer, err=buffer, verbosity=ctx.verbosity, settings=ctx.settings,
                          interactive=False, command_line=ctx.command_line), buffer


def _outcome(status: int, run_dir: Path, captured: str) -> RunOutcome:
    """The run's status, its counts from summary.json, (when not OK) its error lines, and whether it completed:
    every valid row created, updated or skipped with its follow-ups done (only invalid rows left, if any)."""
    summary: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, AttributeError):
        summary = dict(json.loads(RunFolder(run_dir).summary_json.read_text(encoding="utf-8")))
    counts = {k: int(v) for k, v in dict(summary.get("counts") or {}).items()}
    follow = dict(summary.get("followups_by_row") or {})
    complete = bool(summary) and status in (ExitStatus.OK, ExitStatus.ROWS_FAILED) and not summary.get("fatal") \
        and not any(counts.get(k) for k in ("failed", "pending", "sending", "unknown", "planned")) \
        and not any(follow.get(k) for k in ("failed", "pending"))
    message = ""
    if status != ExitStatus.OK:
        message = "\n".join(ln for ln in captured.splitlines()
                            if ln.startswith(("error", "warning")) or "interrupted" in ln)
    return RunOutcome(ExitStatus(status), message, counts, complete)


def _ensure_workbook(run_dir: Path) -> None:
    """results.xlsx for the mail, if the run did not write it (the roster is still in INBOX here)."""
    folder = RunFolder(run_dir)
    if folder.journal.is_file() and not folder.results_xlsx.is_file():
        from provisioning.report.run_workbook import write_run_workbook

        try:
            write_run_workbook(run_dir)
        except Exception as exc:  # noqa: BLE001 - the mail then says the workbook is missing
            log.warning("could not write %s: %s", folder.results_xlsx, exc)


class _Engine:
    """``run``/``resume`` in-process, and whether one is in progress (for the signal forwarding)."""

    def __init__(self, ctx: CommandContext, args: argparse.Namespace) -> None:
        self.ctx = ctx
        self.args = args
        self.active = threading.Event()

    def _parse(self, module: Any, argv: list[str]) -> argparse.Namespace:
        parser = argparse.ArgumentParser(prog=module.__name__, add_help=False)
        module.add_arguments(parser)
        return parser.parse_args(argv)

    def run_roster(self, roster: Path, run_dir: Path) -> RunOutcome:
        from provisioning.commands import run

        # --force: the run folder is the daemon's own (INBOX/.runs/...); a try that stopped before its journal
        # (an authentication failure) left its run.log there
        args = self._parse(run, [str(roster.resolve()), "--out", str(run_dir), "--no-progress", "--force"])
        return self._call(run, args, run_dir)

    def resume_run(self, run_dir: Path) -> RunOutcome:
        from provisioning.commands import resume

        return self._call(resume, self._parse(resume, [str(run_dir), "--no-progress"]), run_dir)

    def _call(self, module: Any, args: argparse.Namespace, run_dir: Path) -> RunOutcome:
        child, buffer = _child_ctx(self.ctx)
        self.active.set()
        try:
            status = module.main(child, args)
        finally:
            self.active.clear()
        return _outcome(int(status), run_dir, buffer.getvalue())

    def notify(self, result: FileResult) -> None:
        """``--notify``: mail the file's outcome (never raises, never changes it)."""
        if result.run_dir is not None and result.run_dir.is_dir():
            _ensure_workbook(result.run_dir)
        notify_watch_result(self.ctx, self.args, result)


@contextlib.contextmanager
def _signals(stop: threading.Event, engine: _Engine, err: Any) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop``; during a run they also reach the run's own Ctrl-C handler (which sets the run's
    stop event): at once when it is installed, else as soon as the run installs it (after its pre-flight)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ours(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            err.write("stopping: the current run (if any) finishes its requests in flight and is journaled\n")
            err.flush()
        stop.set()
        if engine.active.is_set():
            threading.Thread(target=forward, name="watch-stop-forwarder", daemon=True).start()

    def on_term(signum: int, frame: FrameType | None) -> None:
        current = signal.getsignal(signal.SIGINT)
        if callable(current) and current is not ours:
            stop.set()
            current(signal.SIGINT, frame)  # the run's handler: sets its stop event (a second time: abort)
        else:
            ours(signum, frame)

    def forward() -> None:
        while engine.active.is_set():
            current = signal.getsignal(signal.SIGINT)
            if callable(current) and current is not ours:
                with contextlib.suppress(KeyboardInterrupt):
                    current(signal.SIGINT, None)
                return
            time.sleep(0.05)

    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, ours)
    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Watch INBOX until SIGTERM/Ctrl-C (or one pass with --once)."""
    inbox = Path(args.inbox)
    if not inbox.is_dir():
        raise UsageError(f"{inbox}: not a folder; create the drop folder first")
    require_notify_arguments(args)

    def event(line: str) -> None:
        log.debug("%s", line)
        if ctx.verbosity >= 0 or line.startswith("error"):
            ctx.out.write(f"{datetime.now().isoformat(timespec='seconds')} {line}\n")
            ctx.out.flush()

    stop = threading.Event()
    engine = _Engine(ctx, args)
    watcher = Watcher(WatchConfig(inbox=inbox, interval=args.interval, once=args.once, settle=args.settle),
                      engine.run_roster, engine.resume_run, stop=stop, events=event,
                      notify=engine.notify if getattr(args, "notify", None) else None)
    # one daemon per drop folder: a second one would take the same files and work on the first one's run folders
    with lock_run_folder(inbox, "watch"), _signals(stop, engine, ctx.err):
        return ExitStatus(watcher.run())
