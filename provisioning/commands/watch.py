"""``watch INBOX [--interval S] [--settle S] [--once]``: a daemon that runs each file dropped in INBOX, one run each.

A file is taken once its size, mtime and inode have not changed for ``--settle`` seconds (names that uploads use
while in progress are never taken), moved by one rename into its own ``INBOX/.processing/<stem>-<stamp>/``, run
in-process (:func:`provisioning.api.start_run`, its run folder in ``INBOX/.runs/``), then moved with its run folder to
``INBOX/done/<stem>-<stamp>/`` (every valid row created, updated or skipped; invalid rows, if any, listed in
``<roster>.issues.txt``) or ``INBOX/failed/<stem>-<stamp>/`` (the run did not complete: unusable roster, not a
roster file, rows failed at Graph, a crash; with ``<roster>.error.txt``); with ``--notify``/``--notify-from`` every
outcome is mailed, the outcome in the subject (see :mod:`provisioning.report.notify`). Exit 3/4 (configuration,
authentication, service unavailable) keep the file in ``.processing`` and retry it later with a back-off.
SIGTERM, SIGHUP or Ctrl-C set the one stop event of the daemon and of its run: the current run stops the way
Ctrl-C stops ``run`` (in-flight requests are answered and journaled); the next start resumes that run from its
journal (``INBOX/.processing/<work>/.marker.json`` marks it).

Exit status: 0 when stopped while idle (or after a run finished); 130 when a run was interrupted (it resumes at the
next start). With ``--once``: the worst exit status of the rosters processed in that pass (0 when none).
See :mod:`provisioning.watcher`.
"""
from __future__ import annotations

import argparse
import io
import logging
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from provisioning.context import CommandContext
from provisioning.errors import UsageError
from provisioning.exitcodes import ExitStatus
from provisioning.report.notify import add_notify_arguments, notify_watch_result, require_notify_arguments
from provisioning.store.lock import lock_run_folder

if TYPE_CHECKING:
    from provisioning.api import RunResult, Stop
    from provisioning.watcher import FileResult, RunOutcome

# provisioning.api and provisioning.watcher load pandas, openpyxl and requests: the functions below import them when
# the daemon runs, not for --help.

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


def _child_ctx(ctx: CommandContext) -> CommandContext:
    """The console of one run: its lines are not shown (the daemon logs one line per event instead)."""
    return CommandContext(out=io.StringIO(), err=io.StringIO(), verbosity=ctx.verbosity, settings=ctx.settings,
                          interactive=False, command_line=ctx.command_line)


def _outcome(result: RunResult) -> RunOutcome:
    """The run's status, its counts, (when not OK) its error and warning lines, and whether it completed: every
    valid row created, updated or skipped with its follow-ups done (only invalid rows left, if any)."""
    from provisioning.watcher import RunOutcome  # loads numpy (see above)

    message = "\n".join(result.messages) if result.status is not ExitStatus.OK else ""
    return RunOutcome(result.status, message, {s.value: n for s, n in result.counts.items()}, result.complete)


class _Engine:
    """The library's runs and resumes, for the watcher: each with the daemon's settings and its one stop event."""

    def __init__(self, ctx: CommandContext, args: argparse.Namespace, stop: Stop) -> None:
        self.ctx = ctx
        self.args = args
        self.stop = stop

    def run_roster(self, roster: Path, run_dir: Path) -> RunOutcome:
        from provisioning.api import RunOptions, start_run  # loads numpy (see above)

        # force: the run folder is the daemon's own (INBOX/.runs/...); a try that stopped before its journal
        # (an authentication failure) left its run.log there
        options = RunOptions(run_dir=run_dir, force=True, progress=False)
        return _outcome(start_run(self.ctx.tenant_settings, roster.resolve(), options, stop=self.stop,
                                  console=_child_ctx(self.ctx)))

    def resume_run(self, run_dir: Path) -> RunOutcome:
        from provisioning.api import ResumeOptions, resume_run  # loads numpy (see above)

        return _outcome(resume_run(self.ctx.tenant_settings, run_dir, ResumeOptions(progress=False),
                                   stop=self.stop, console=_child_ctx(self.ctx)))

    def notify(self, result: FileResult) -> None:
        """``--notify``: mail the file's outcome (never raises, never changes it)."""
        from provisioning.watcher import ensure_workbook  # loads numpy (see above)

        if result.run_dir is not None and result.run_dir.is_dir():
            problem = ensure_workbook(result.run_dir)  # for the mail (the mail then says it is missing)
            if problem:
                log.warning("%s", problem)
        notify_watch_result(self.ctx, self.args, result)


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Watch INBOX until SIGTERM/Ctrl-C (or one pass with --once)."""
    from provisioning.api import Stop  # loads numpy (see above)
    from provisioning.watcher import WatchConfig, Watcher  # loads numpy (see above)

    inbox = Path(args.inbox)
    if not inbox.is_dir():
        raise UsageError(f"{inbox}: not a folder; create the drop folder first")
    require_notify_arguments(args)

    def event(line: str) -> None:
        log.debug("%s", line)
        if ctx.verbosity >= 0 or line.startswith("error"):
            ctx.out.write(f"{datetime.now().isoformat(timespec='seconds')} {line}\n")
            ctx.out.flush()

    def stopping(signal_name: str) -> None:  # a signal between runs (during one, the run says it stops)
        ctx.err.write("stopping: the current run (if any) finishes its requests in flight and is journaled\n")
        ctx.err.flush()

    # one event stops the loop and the run in progress: Ctrl-C, SIGTERM and SIGHUP set it
    stop = Stop(idle=stopping)
    engine = _Engine(ctx, args, stop)
    watcher = Watcher(WatchConfig(inbox=inbox, interval=args.interval, once=args.once, settle=args.settle),
                      engine.run_roster, engine.resume_run, stop=stop, events=event,
                      notify=engine.notify if getattr(args, "notify", None) else None)
    # one daemon per drop folder: a second one would take the same files and work on the first one's run folders
    with lock_run_folder(inbox, "watch"), stop.signals():
        return ExitStatus(watcher.run())
