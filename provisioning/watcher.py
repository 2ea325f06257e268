"""The drop-folder daemon's logic (``watch INBOX``): one run per roster dropped in INBOX, resumable across restarts.

Layout under INBOX::

    INBOX/<roster>                       waiting; picked up once its size and mtime hold still across two polls
    INBOX/.processing/<roster>.json      marker, written BEFORE the run starts: work name, run folder, attempts
    INBOX/.runs/<stem>-<stamp>/          the run folder while the run is in progress (or deferred)
    INBOX/done/<stem>-<stamp>/           exit 0: the roster and ``run/`` (the run folder)
    INBOX/failed/<stem>-<stamp>/         exit 1/2 or any error: the roster, ``run/`` if one was made, and
                                         ``<roster>.error.txt`` when the run stopped with an error message

The roster stays in INBOX during its run (``resume`` checks its bytes there). A marker found at start-up is an
interrupted run: it is resumed from its journal (or started again when no journal was written yet), never started
over. Exit 3 (configuration/authentication) and 4 (service unavailable) leave the roster and its marker in place:
the run is retried with an exponential back-off. Exit 130 (the run was stopped by a signal) keeps the marker so the
next start resumes it.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping

from graph.errors import AuthError, GraphError, ServiceUnavailableError

from .errors import ProvisionError
from .exitcodes import ExitStatus

log = logging.getLogger(__name__)

ROSTER_SUFFIXES = frozenset({".csv", ".xlsx", ".xlsm"})
PROCESSING, RUNS, DONE, FAILED = ".processing", ".runs", "done", "failed"
MAX_BACKOFF_S = 900.0
DEFERRED = (ExitStatus.CONFIG, ExitStatus.UNAVAILABLE)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a run (or resume) returned: its exit status and, when it stopped with an error, the message."""

    status: ExitStatus
    message: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)


#: ``run_roster(roster, run_dir)`` and ``resume_run(run_dir)``: the engine, wired by the command.
RunRoster = Callable[[Path, Path], RunOutcome]
ResumeRun = Callable[[Path], RunOutcome]


@dataclass(frozen=True, slots=True)
class Marker:
    """``INBOX/.processing/<roster>.json``: the roster being processed and where its run lives."""

    roster: str
    work: str
    run_dir: str
    attempts: int = 0
    retry_at: float = 0.0
    last_status: int | None = None
    last_message: str = ""


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """The daemon's settings."""

    inbox: Path
    interval: float = 30.0
    once: bool = False
    max_backoff_s: float = MAX_BACKOFF_S


@dataclass(frozen=True, slots=True)
class FileResult:
    """The end of one roster's processing in this session."""

    roster: str
    status: ExitStatus
    destination: Path | None  # None when deferred (3/4) or interrupted (130): the file stays in INBOX


def status_for_exception(exc: BaseException) -> ExitStatus:
    """The exit status ``provision.py`` would give this exception (the mapping the daemon needs in-process)."""
    if isinstance(exc, ProvisionError):
        return exc.exit_status
    if isinstance(exc, GraphError):
        if isinstance(exc, AuthError) or exc.status in (401, 403):
            return ExitStatus.CONFIG
        if isinstance(exc, ServiceUnavailableError) or exc.status == 0 or exc.status >= 500 or exc.status == 429:
            return ExitStatus.UNAVAILABLE
        return ExitStatus.ROWS_FAILED
    if isinstance(exc, OSError):
        return ExitStatus.USAGE
    return ExitStatus.ROWS_FAILED


def backoff_s(attempts: int, interval: float, ceiling: float = MAX_BACKOFF_S) -> float:
    """Delay before retry number ``attempts`` of a deferred roster: interval x 2^attempts, at most ``ceiling``."""
    return min(ceiling, max(interval, 1.0) * (2 ** max(0, attempts)))


class Watcher:
    """Polls INBOX and processes rosters one at a time. ``stop`` ends the loop between files (and is what a
    SIGTERM sets); ``events`` receives one line per event (picked up, finished, moved, deferred, error)."""

    def __init__(self, config: WatchConfig, run_roster: RunRoster, resume_run: ResumeRun, *,
                 stop: threading.Event | None = None, events: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.inbox = Path(config.inbox)
        self.run_roster = run_roster
        self.resume_run = resume_run
        self.stop = stop or threading.Event()
        self.events = events or log.info
        self.clock = clock
        self.interrupted = False
        self.results: list[FileResult] = []
        self._seen: dict[str, tuple[int, int]] = {}

    # -- paths and markers -------------------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        path = self.inbox / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _marker_path(self, roster: str) -> Path:
        return self._dir(PROCESSING) / f"{roster}.json"

    def markers(self) -> list[Marker]:
        """Every marker in ``.processing``, oldest first."""
        found = []
        for path in sorted(self._dir(PROCESSING).glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                found.append(Marker(**json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError) as exc:
                self.events(f"error: unreadable marker {path}: {exc}; moved aside")
                path.rename(path.with_suffix(".bad"))
        return found

    def _write_marker(self, marker: Marker) -> None:
        path = self._marker_path(marker.roster)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(marker), indent=1), encoding="utf-8")
        os.replace(tmp, path)

    # -- discovery ---------------------------------------------------------------------------------------------
    def stable_files(self) -> list[Path]:
        """Rosters in INBOX whose size and mtime are the same as at the previous poll, and that have no marker."""
        current: dict[str, tuple[int, int]] = {}
        for path in sorted(self.inbox.iterdir()):
            if path.name.startswith((".", "~$")) or path.suffix.lower() not in ROSTER_SUFFIXES:
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if path.is_file():
                current[path.name] = (st.st_size, st.st_mtime_ns)
        busy = {m.roster for m in self.markers()}
        ready = [self.inbox / n for n, sig in current.items() if self._seen.get(n) == sig and n not in busy]
        self._seen = current
        return ready

    # -- the loop ----------------------------------------------------------------------------------------------
    def poll_once(self) -> None:
        """One pass: markers that are due (resume/retry), then the rosters that have stopped growing."""
        now = self.clock()
        for marker in self.markers():
            if self.stop.is_set():
                return
            if marker.retry_at <= now:
                self.process(marker)
        for path in self.stable_files():
            if self.stop.is_set():
                return
            self.process(self._new_marker(path))

    def run(self) -> int:
        """Poll until stopped (or one pass with ``once``). Returns 130 when a run was interrupted, else 0 (with
        ``once``: the worst status of the files processed, 0 when all went to done/)."""
        for name in (DONE, FAILED, RUNS):
            self._dir(name)
        self.events(f"watching {self.inbox} every {self.config.interval:g} s")
        if self.config.once:
            self.stable_files()  # first sighting; a file is taken once it holds still across two polls
            self._sleep(min(self.config.interval, 2.0))
            self.poll_once()
        else:
            while not self.stop.is_set():
                self.poll_once()
                self._sleep(self.config.interval)
        if self.interrupted:
            self.events("stopped: the interrupted run resumes at the next start")
            return int(ExitStatus.INTERRUPTED)
        self.events("stopped")
        if self.config.once and self.results:
            return int(max(r.status for r in self.results))
        return 0

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    # -- one roster --------------------------------------------------------------------------------------------
    def _new_marker(self, roster: Path) -> Marker:
        stem = roster.stem.replace(" ", "-")[:60] or "roster"
        work = f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        run_dir = self.inbox / RUNS / work
        n = 2
        while run_dir.exists() or (self.inbox / DONE / work).exists() or (self.inbox / FAILED / work).exists():
            work, n = f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{n}", n + 1
            run_dir = self.inbox / RUNS / work
        marker = Marker(roster=roster.name, work=work, run_dir=str(run_dir.resolve()))
        self._write_marker(marker)
        return marker

    def process(self, marker: Marker) -> FileResult | None:
        """Run (or resume) one roster, then move it to done/ or failed/, or defer it (3/4), or keep it (130)."""
        roster = self.inbox / marker.roster
        run_dir = Path(marker.run_dir)
        resuming = (run_dir / "journal.sqlite").is_file()
        self.events(f"{'resuming' if resuming else 'picked up'} {marker.roster} -> {run_dir}"
                    + (f" (attempt {marker.attempts + 1})" if marker.attempts else ""))
        try:
            if not resuming and not roster.is_file():
                outcome = RunOutcome(ExitStatus.USAGE, f"{roster} is not there any more")
            else:
                outcome = self.resume_run(run_dir) if resuming else self.run_roster(roster, run_dir)
        except Exception as exc:  # noqa: BLE001 - a bad file must never stop the daemon
            known = isinstance(exc, (ProvisionError, GraphError, OSError))
            outcome = RunOutcome(status_for_exception(exc), str(exc) if known else f"{type(exc).__name__}: {exc}")
        counts = ", ".join(f"{k} {v}" for k, v in outcome.counts.items()) or "no rows sent"
        self.events(f"finished {marker.roster}: exit {int(outcome.status)} ({counts})"
                    + (f": {outcome.message}" if outcome.message else ""))
        if outcome.status is ExitStatus.INTERRUPTED:
            self.interrupted = True
            self.stop.set()
            self._write_marker(replace(marker, last_status=int(outcome.status), retry_at=0.0))
            result = FileResult(marker.roster, outcome.status, None)
        elif outcome.status in DEFERRED and roster.exists():
            delay = backoff_s(marker.attempts, self.config.interval, self.config.max_backoff_s)
            self._write_marker(replace(marker, attempts=marker.attempts + 1, retry_at=self.clock() + delay,
                                       last_status=int(outcome.status), last_message=outcome.message))
            self.events(f"deferred {marker.roster}: exit {int(outcome.status)}, left in place; retry in {delay:g} s")
            result = FileResult(marker.roster, outcome.status, None)
        else:
            dest = self._finish(marker, outcome)
            result = FileResult(marker.roster, outcome.status, dest)
        self.results.append(result)
        return result

    def _finish(self, marker: Marker, outcome: RunOutcome) -> Path:
        """Move the roster and its run folder beside each other into done/ or failed/; drop the marker."""
        ok = outcome.status is ExitStatus.OK
        dest = self.inbox / (DONE if ok else FAILED) / marker.work
        n = 2
        while dest.exists():
            dest, n = dest.with_name(f"{marker.work}-{n}"), n + 1
        dest.mkdir(parents=True)
        roster, run_dir = self.inbox / marker.roster, Path(marker.run_dir)
        if run_dir.is_dir():
            self._ensure_workbook(run_dir)
            shutil.move(str(run_dir), str(dest / "run"))
        if roster.exists():
            shutil.move(str(roster), str(dest / marker.roster))
        if outcome.message and not ok:
            (dest / f"{marker.roster}.error.txt").write_text(
                f"exit {int(outcome.status)} ({outcome.status.name})\n{outcome.message}\n", encoding="utf-8")
        self._marker_path(marker.roster).unlink(missing_ok=True)
        self.events(f"moved {marker.roster} to {dest}")
        return dest

    def _ensure_workbook(self, run_dir: Path) -> None:
        """results.xlsx needs the roster where the journal says it is: write it before the roster moves."""
        if (run_dir / "journal.sqlite").is_file() and not (run_dir / "results.xlsx").is_file():
            try:
                from .run_report import write_run_workbook

                write_run_workbook(run_dir)
            except Exception as exc:  # noqa: BLE001 - the report is a convenience; the move must happen
                self.events(f"error: could not write {run_dir / 'results.xlsx'}: {exc}")
