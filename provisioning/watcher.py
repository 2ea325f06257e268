"""The drop-folder daemon's logic (``watch INBOX``): one run per file dropped in INBOX, resumable across restarts.

Layout under INBOX::

    INBOX/<file>                               waiting: taken once unchanged (size, mtime, inode) for ``settle`` s
    INBOX/.processing/<work>/<file>            the file, moved here (one rename) when taken: private to its run, so
                                               a new upload under the same name is a new file and a run of its own
    INBOX/.processing/<work>/.marker.json      written right after the move: work name, run folder, attempts
    INBOX/.runs/<work>/                        the run folder while the run is in progress (or deferred)
    INBOX/done/<work>/                         the run completed: every valid row created, updated or skipped (exit
                                               0, or exit 1 with only invalid rows left: ``<file>.issues.txt`` lists
                                               them): the file and ``run/`` (the run folder)
    INBOX/failed/<work>/                       the run did not complete (unusable roster, not a roster, rows failed
                                               at Graph, a crash): the file, ``run/`` if one was made, and
                                               ``<file>.error.txt`` saying why

``<work>`` is ``<stem>-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``... when taken): unique, so no two runs share a place.
Names that uploads use while they are in progress are never taken (:func:`in_progress_reason`). A marker found at
start-up is an interrupted run: it is resumed from its journal (or started again when no journal was written yet),
never started over. Exit 3 (configuration/authentication) and 4 (service unavailable) leave the file and its marker
in ``.processing``: the run is retried with an exponential back-off. Exit 130 (the run was stopped by a signal)
keeps the marker so the next start resumes it.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import re
import shutil
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

from graph.errors import GraphError
from provisioning.errors import ProvisionError, status_for_exception
from provisioning.exitcodes import ExitStatus
from provisioning.roster.excel import EXCEL_SUFFIXES
from provisioning.roster.reader import CSV_SUFFIXES
from provisioning.store.folder import RunFolder
from provisioning.store.journal import Journal

log = logging.getLogger(__name__)

#: What ``run`` reads; ``watch`` takes exactly these (any other settled file goes to failed/ with a note).
ROSTER_SUFFIXES = tuple(dict.fromkeys(CSV_SUFFIXES + EXCEL_SUFFIXES))
PROCESSING, RUNS, DONE, FAILED = ".processing", ".runs", "done", "failed"
MARKER = ".marker.json"
MAX_BACKOFF_S = 900.0
DEFERRED = (ExitStatus.CONFIG, ExitStatus.UNAVAILABLE)
DONE_VERDICT, FAILED_VERDICT, DEFERRED_VERDICT = "done", "failed", "deferred"

#: Names that uploaders, browsers, sync clients and editors give a file while it is being written (or that are
#: not files anybody dropped). Matched case-insensitively against the whole name.
IN_PROGRESS_PREFIXES = (
    (".", "a dot-file (rsync's .NAME.XXXXXX, Syncthing's .syncthing.NAME.tmp, Nextcloud's .NAME.~hex, "
          "LibreOffice's .~lock.NAME#, vim's .NAME.swp, macOS ._NAME)"),
    ("~", "an Office owner/lock file (~$NAME) or temporary file (~WRL0001.tmp, Syncthing's ~syncthing~NAME.tmp)"),
    ("#", "an editor's autosave file (#NAME#)"),
)
IN_PROGRESS_SUFFIXES = (
    (".part", "a partial download (Firefox, wget2, many SFTP clients)"),
    (".partial", "a partial download (old Edge, the OneDrive client for Linux)"),
    (".crdownload", "a download in progress (Chrome, Edge, Brave)"),
    (".download", "a download in progress (Safari)"),
    (".opdownload", "a download in progress (Opera)"),
    (".crswap", "a file being saved by a browser (Chrome's File System Access)"),
    (".filepart", "an upload in progress (WinSCP)"),
    (".tmp", "a temporary file"),
    (".temp", "a temporary file"),
    (".swp", "an editor's swap file (vim)"),
    (".swo", "an editor's swap file (vim)"),
    (".swx", "an editor's swap file (vim)"),
    (".!sync", "a file being synced (Resilio Sync)"),
    ("~", "an editor's backup copy (NAME~)"),
)
IGNORED_NAMES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r"})  # Windows/macOS folder metadata
_MAC_SAFE_SAVE = re.compile(r"\.sb-[0-9a-f]+-[0-9a-z]+$", re.IGNORECASE)  # macOS "safe save": NAME.sb-1a2b3c-XyZ


def in_progress_reason(name: str) -> str | None:
    """Why a file named ``name`` must not be taken (an upload or save in progress, folder metadata), or None."""
    lower = name.lower()
    for prefix, why in IN_PROGRESS_PREFIXES:
        if lower.startswith(prefix):
            return why
    for suffix, why in IN_PROGRESS_SUFFIXES:
        if lower.endswith(suffix):
            return why
    if _MAC_SAFE_SAVE.search(lower):
        return "a file being saved (macOS safe save)"
    if lower in IGNORED_NAMES:
        return "folder metadata written by the operating system"
    return None


def not_a_roster(name: str) -> str | None:
    """The note for a file ``run`` cannot read (by its extension), or None when it is a roster file."""
    suffix = Path(name).suffix.lower()
    if suffix in ROSTER_SUFFIXES:
        return None
    accepted = " ".join(ROSTER_SUFFIXES)
    hint = " (save an .xls or .ods workbook as .xlsx)" if suffix in (".xls", ".ods") else ""
    return (f"{name}: not a roster file ({suffix or 'no extension'}): watch takes {accepted}{hint}; "
            "drop it again with one of these extensions")


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a run (or resume) returned: its exit status, the message when it stopped with an error, its counts,
    and ``complete``: every valid row ended created, updated or skipped (only invalid rows are left, if any)."""

    status: ExitStatus
    message: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)
    complete: bool = False


#: ``run_roster(roster, run_dir)`` and ``resume_run(run_dir)``: the engine, wired by the command.
RunRoster = Callable[[Path, Path], RunOutcome]
ResumeRun = Callable[[Path], RunOutcome]


@dataclass(frozen=True, slots=True)
class Marker:
    """``INBOX/.processing/<work>/.marker.json``: the file being processed, where it is and where its run lives.
    ``path`` is empty in a marker written before files were moved when taken: the file is then ``INBOX/<roster>``."""

    roster: str
    work: str
    run_dir: str
    attempts: int = 0
    retry_at: float = 0.0
    last_status: int | None = None
    last_message: str = ""
    path: str = ""
    taken_at: float = 0.0


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """The daemon's settings: ``interval`` between polls; ``settle``: how long a file must stay unchanged."""

    inbox: Path
    interval: float = 30.0
    once: bool = False
    max_backoff_s: float = MAX_BACKOFF_S
    settle: float = 60.0


@dataclass(frozen=True, slots=True)
class FileResult:
    """The end of one file's processing in this session. ``destination`` is None when deferred (3/4) or
    interrupted (130): the file stays in ``.processing``. ``verdict`` is done, failed or deferred ('' for 130)."""

    roster: str
    status: ExitStatus
    destination: Path | None
    verdict: str = ""
    message: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)
    issues: tuple[str, ...] = ()
    run_dir: Path | None = None
    retry_in_s: float = 0.0
    attempts: int = 0
    kept_in: Path | None = None  # where the file waits when deferred or interrupted


#: Called with each :class:`FileResult` once the file has been moved (or deferred): the ``--notify`` mail.
Notify = Callable[[FileResult], None]


def backoff_s(attempts: int, interval: float, ceiling: float = MAX_BACKOFF_S) -> float:
    """Delay before retry number ``attempts`` of a deferred roster: interval x 2^attempts, at most ``ceiling``."""
    return min(ceiling, max(interval, 1.0) * (1 << max(0, attempts)))


def invalid_rows(run_dir: Path, limit: int = 1000) -> tuple[str, ...]:
    """One line per invalid row of the run's results.csv: ``row 7 (upn): code: message``."""
    lines: list[str] = []
    try:
        with open(RunFolder(Path(run_dir)).results_csv, encoding="utf-8-sig", newline="") as fh:
            for r in csv.DictReader(fh):
                if r.get("status") == "invalid" and len(lines) < limit:
                    who = f" ({r['userPrincipalName']})" if r.get("userPrincipalName") else ""
                    code = f"{r['errorCode']}: " if r.get("errorCode") else ""
                    lines.append(f"row {r.get('row', '?')}{who}: {code}{r.get('message', '')}")
    except (OSError, ValueError, csv.Error) as exc:
        log.warning("cannot read the invalid rows of %s: %s", run_dir, exc)
    return tuple(lines)


Signature = tuple[int, int, int]  # size, mtime_ns, inode


def _signature(st: os.stat_result) -> Signature:
    return st.st_size, st.st_mtime_ns, st.st_ino


class Watcher:
    """Polls INBOX and processes files one at a time. ``stop`` ends the loop between files (and is what a
    SIGTERM sets); ``events`` receives one line per event (picked up, finished, moved, deferred, error);
    ``notify`` receives each :class:`FileResult` (the mail)."""

    def __init__(self, config: WatchConfig, run_roster: RunRoster, resume_run: ResumeRun, *,
                 stop: threading.Event | None = None, events: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 notify: Notify | None = None) -> None:
        self.config = config
        self.inbox = Path(config.inbox)
        self.run_roster = run_roster
        self.resume_run = resume_run
        self.stop = stop or threading.Event()
        self.events = events or log.info
        self.clock = clock
        self.monotonic = monotonic
        self.notify = notify
        self.interrupted = False
        self.results: list[FileResult] = []
        self._seen: dict[str, tuple[Signature, float]] = {}  # name -> (signature, since when it holds)
        self._told: set[tuple[str, str]] = set()

    # -- paths and markers -------------------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        path = self.inbox / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _place(self, work: str) -> Path:
        return self.inbox / PROCESSING / work

    def roster_path(self, marker: Marker) -> Path:
        """Where the marker's file is now."""
        return Path(marker.path) if marker.path else self.inbox / marker.roster

    def markers(self) -> list[Marker]:
        """Every marker in ``.processing``, oldest first; a file moved there whose marker was never written (the
        daemon stopped in between) gets one now."""
        found: list[Marker] = []
        processing = self._dir(PROCESSING)
        for place in processing.iterdir():
            if place.is_dir():
                marker = self._read_marker(place / MARKER) if (place / MARKER).exists() else self._adopt(place)
            elif place.suffix == ".json":  # a marker of an older version: the file is still INBOX/<roster>
                marker = self._read_marker(place)
                if marker is not None:
                    self._write_marker(marker)
                    place.unlink()
            else:
                continue
            if marker is not None:
                found.append(marker)
        return sorted(found, key=lambda m: (m.taken_at, m.work))

    def _read_marker(self, path: Path) -> Marker | None:
        try:
            return Marker(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            self.events(f"error: unreadable marker {path}: {exc}; moved aside")
            path.rename(path.with_name(path.name + ".bad"))
            return None

    def _adopt(self, place: Path) -> Marker | None:
        files = [p for p in place.iterdir() if p.is_file() and not p.name.startswith(".")]
        if len(files) != 1:
            if not any(place.iterdir()):
                place.rmdir()  # the daemon stopped between making the place and moving the file into it
            return None
        marker = Marker(roster=files[0].name, work=place.name, run_dir=str((self.inbox / RUNS / place.name).resolve()),
                        path=str(files[0].resolve()), taken_at=files[0].stat().st_ctime)
        self._write_marker(marker)
        return marker

    def _write_marker(self, marker: Marker) -> None:
        place = self._place(marker.work)
        place.mkdir(parents=True, exist_ok=True)
        tmp = place / (MARKER + ".tmp")
        tmp.write_text(json.dumps(asdict(marker), indent=1), encoding="utf-8")
        os.replace(tmp, place / MARKER)

    # -- discovery ---------------------------------------------------------------------------------------------
    def _tell_once(self, name: str, line: str) -> None:
        if (name, line) not in self._told:
            self._told.add((name, line))
            self.events(line)

    def observe(self) -> list[tuple[Path, Signature]]:
        """Note every candidate file's signature; return those unchanged for at least ``settle`` seconds."""
        now = self.monotonic()
        current: dict[str, tuple[Signature, float]] = {}
        for entry in sorted(os.scandir(self.inbox), key=lambda e: e.name):
            why = in_progress_reason(entry.name)
            if why is not None:
                if not entry.name.startswith("."):
                    self._tell_once(entry.name, f"ignored {entry.name}: {why}")
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                self._tell_once(entry.name, f"ignored {entry.name}: a symbolic link; drop the file itself")
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_size == 0:  # Firefox and some copy tools create the final name empty, then fill it in
                self._tell_once(entry.name, f"waiting for {entry.name}: it is empty; it is taken once written")
                continue
            sig = _signature(st)
            previous = self._seen.get(entry.name)
            current[entry.name] = previous if previous is not None and previous[0] == sig else (sig, now)
        self._seen = current
        return [(self.inbox / n, sig) for n, (sig, since) in current.items() if now - since >= self.config.settle]

    def stable_files(self) -> list[Path]:
        """The files in INBOX that have been unchanged for the settle time (see :meth:`observe`)."""
        return [p for p, _ in self.observe()]

    def take(self, path: Path, sig: Signature) -> Marker | None:
        """Move a settled file into its own ``.processing/<work>/`` (one rename: nothing can be mixed in after),
        then write its marker. None when it changed or went away since it settled (it settles again first)."""
        try:
            if _signature(path.stat()) != sig:
                raise FileNotFoundError
            work = self._work_name(path.name)
            place = self._place(work)
            place.mkdir(parents=True)
            taken = place / path.name
            os.rename(path, taken)
        except FileNotFoundError:
            self._seen.pop(path.name, None)
            return None
        except OSError as exc:
            self._tell_once(path.name, f"error: cannot move {path} into {self.inbox / PROCESSING}: "
                                       f"{exc.strerror or exc}; it stays in place")
            return None
        if _signature(taken.stat()) != sig:  # written to between the check and the rename: give it back
            self._give_back(taken, path)
            place.rmdir()
            self._seen.pop(path.name, None)
            self.events(f"{path.name} changed as it was taken; it is taken once it holds still again")
            return None
        marker = Marker(roster=path.name, work=work, run_dir=str((self.inbox / RUNS / work).resolve()),
                        path=str(taken.resolve()), taken_at=self.clock())
        self._write_marker(marker)
        return marker

    def _give_back(self, taken: Path, original: Path) -> None:
        """Put a file back where it was dropped, never over a newer upload of the same name."""
        target, n = original, 2
        while True:
            try:
                os.link(taken, target)  # fails if the name is taken: no upload is ever overwritten
                taken.unlink()
                return
            except FileExistsError:
                target, n = original.with_name(f"{original.stem} ({n}){original.suffix}"), n + 1
            except OSError:  # no hard links on this file system
                if not target.exists():
                    os.rename(taken, target)
                    return
                target, n = original.with_name(f"{original.stem} ({n}){original.suffix}"), n + 1

    def _work_name(self, name: str) -> str:
        stem = Path(name).stem.replace(" ", "-")[:60] or "roster"
        base = f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        work, n = base, 2
        while any((self.inbox / d / work).exists() for d in (PROCESSING, RUNS, DONE, FAILED)):
            work, n = f"{base}-{n}", n + 1
        return work

    # -- the loop ----------------------------------------------------------------------------------------------
    def poll_once(self) -> None:
        """One pass: markers that are due (resume/retry), then the files that have settled, one run each."""
        now = self.clock()
        for marker in self.markers():
            if self.stop.is_set():
                return
            if marker.retry_at <= now:
                self.process(marker)
        for path, sig in self.observe():
            if self.stop.is_set():
                return
            taken = self.take(path, sig)
            if taken is not None:
                self.process(taken)

    def run(self) -> int:
        """Poll until stopped (or one pass with ``once``). Returns 130 when a run was interrupted, else 0 (with
        ``once``: the worst status of the files processed, 0 when none)."""
        for name in (DONE, FAILED, RUNS, PROCESSING):
            self._dir(name)
        self.events(f"watching {self.inbox} every {self.config.interval:g} s; a file is taken once unchanged for "
                    f"{self.config.settle:g} s")
        if self.config.once:
            self._settle_pass()
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

    def _settle_pass(self) -> None:
        """``once``: watch the files present for the settle time (polling every interval, so a file still being
        written is seen changing and left for the next pass), then take what settled and run the due markers."""
        deadline = self.monotonic() + self.config.settle
        while not self.stop.is_set() and self.observe_pending() and self.monotonic() < deadline:
            self._sleep(min(self.config.interval, max(0.0, deadline - self.monotonic())))
        if not self.stop.is_set():
            self.poll_once()

    def observe_pending(self) -> bool:
        """Observe; True while some candidate file has not settled yet."""
        return len(self.observe()) < len(self._seen)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    # -- one file ----------------------------------------------------------------------------------------------
    def process(self, marker: Marker) -> FileResult | None:
        """Run (or resume) one file, then move it to done/ or failed/, or defer it (3/4), or keep it (130)."""
        roster = self.roster_path(marker)
        run_dir = Path(marker.run_dir)
        resuming = RunFolder(run_dir).journal.is_file()
        self.events(f"{'resuming' if resuming else 'picked up'} {marker.roster} -> {run_dir}"
                    + (f" (attempt {marker.attempts + 1})" if marker.attempts else ""))
        refused = not_a_roster(marker.roster)
        try:
            if refused and not resuming:
                outcome = RunOutcome(ExitStatus.USAGE, refused)
            elif not resuming and not roster.is_file():
                outcome = RunOutcome(ExitStatus.USAGE, f"{roster} is not there any more")
            else:
                outcome = self.resume_run(run_dir) if resuming else self.run_roster(roster, run_dir)
        except Exception as exc:  # noqa: BLE001 - a bad file must never stop the daemon
            known = isinstance(exc, (ProvisionError, GraphError, OSError))
            outcome = RunOutcome(status_for_exception(exc),
                                 str(exc) if known else f"internal error: {type(exc).__name__}: {exc}")
        if outcome.message:  # name the file as it was dropped, not by its private path
            outcome = replace(outcome, message=outcome.message.replace(str(roster.resolve()), marker.roster)
                              .replace(str(roster), marker.roster))
        counts = ", ".join(f"{k} {v}" for k, v in outcome.counts.items()) or "no rows sent"
        self.events(f"finished {marker.roster}: exit {int(outcome.status)} ({counts})"
                    + (f": {outcome.message}" if outcome.message else ""))
        if outcome.status is ExitStatus.INTERRUPTED:
            self.interrupted = True
            self.stop.set()
            self._write_marker(replace(marker, last_status=int(outcome.status), retry_at=0.0))
            result = FileResult(marker.roster, outcome.status, None, message=outcome.message,
                                counts=dict(outcome.counts), run_dir=run_dir, kept_in=roster.parent)
        elif outcome.status in DEFERRED and roster.exists():
            delay = backoff_s(marker.attempts, self.config.interval, self.config.max_backoff_s)
            self._write_marker(replace(marker, attempts=marker.attempts + 1, retry_at=self.clock() + delay,
                                       last_status=int(outcome.status), last_message=outcome.message))
            self.events(f"deferred {marker.roster}: exit {int(outcome.status)}, kept in "
                        f"{roster.parent}; retry in {delay:g} s")
            result = FileResult(marker.roster, outcome.status, None, DEFERRED_VERDICT, outcome.message,
                                dict(outcome.counts), run_dir=run_dir if run_dir.is_dir() else None,
                                retry_in_s=delay, attempts=marker.attempts + 1, kept_in=roster.parent)
        else:
            result = self._finish(marker, outcome)
        self.results.append(result)
        if self.notify is not None and result.verdict and (result.verdict != DEFERRED_VERDICT or result.attempts == 1):
            try:  # a deferred file is mailed once, when it is first deferred, not at every retry
                self.notify(result)
            except Exception as exc:  # noqa: BLE001 - a failed mail never stops the daemon or changes the outcome
                self.events(f"error: the notification for {marker.roster} was not sent: {type(exc).__name__}: {exc}")
        return result

    def _finish(self, marker: Marker, outcome: RunOutcome) -> FileResult:
        """Move the file and its run folder beside each other into done/ or failed/; drop its private place."""
        ok = outcome.status is ExitStatus.OK or (outcome.status is ExitStatus.ROWS_FAILED and outcome.complete)
        dest = self.inbox / (DONE if ok else FAILED) / marker.work
        n = 2
        while dest.exists():
            dest, n = dest.with_name(f"{marker.work}-{n}"), n + 1
        roster, run_dir, place = self.roster_path(marker), Path(marker.run_dir), self._place(marker.work)
        moved_run: Path | None = None
        issues: tuple[str, ...] = ()
        try:
            dest.mkdir(parents=True)
            if run_dir.is_dir():
                self._ensure_workbook(run_dir)
                moved_run = dest / "run"
                shutil.move(str(run_dir), str(moved_run))
            if roster.exists():
                shutil.move(str(roster), str(dest / marker.roster))
                if moved_run is not None:
                    _record_roster_move(moved_run, dest / marker.roster)
            issues = invalid_rows(moved_run) if moved_run is not None and outcome.counts.get("invalid") else ()
            if ok and issues:
                (dest / f"{marker.roster}.issues.txt").write_text(
                    f"{len(issues)} rows were not created because they are invalid (fix them and drop them again, "
                    f"or use `retry` on {moved_run}):\n" + "".join(f"{line}\n" for line in issues), encoding="utf-8")
            if not ok:
                message = outcome.message or (f"{outcome.counts.get('failed', 0)} rows failed at Graph; the run "
                                              "folder (results.xlsx) says which and why")
                (dest / f"{marker.roster}.error.txt").write_text(
                    f"exit {int(outcome.status)} ({outcome.status.name})\n{message}\n", encoding="utf-8")
        except OSError as exc:  # never run again, never lost: the marker stays, never due, saying what happened
            why = f"finished (exit {int(outcome.status)}) but could not be moved to {dest}: {exc.strerror or exc}"
            self.events(f"error: {marker.roster}: {why}; it stays in {place}")
            self._write_marker(replace(marker, retry_at=math.inf, last_status=int(outcome.status), last_message=why))
            return FileResult(marker.roster, outcome.status, None, FAILED_VERDICT,
                              "\n".join(filter(None, (outcome.message, why))), dict(outcome.counts), issues, moved_run)
        (place / MARKER).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            place.rmdir()  # empty now; a legacy marker had none
        self.events(f"moved {marker.roster} to {dest}")
        return FileResult(marker.roster, outcome.status, dest, DONE_VERDICT if ok else FAILED_VERDICT,
                          outcome.message, dict(outcome.counts), issues, moved_run)

    def _ensure_workbook(self, run_dir: Path) -> None:
        """results.xlsx needs the roster where the journal says it is: write it before the roster moves."""
        problem = ensure_workbook(run_dir)
        if problem:
            self.events(f"error: {problem}")


def ensure_workbook(run_dir: Path) -> str | None:
    """Write the run's results.xlsx if the run did not (its roster must still be where the journal says); the
    reason when it cannot be written, else None. The report is a convenience: a failure never stops the daemon."""
    if (folder := RunFolder(run_dir)).journal.is_file() and not folder.results_xlsx.is_file():
        try:
            from provisioning.report.run_workbook import write_run_workbook  # deferred: openpyxl, only when needed

            write_run_workbook(run_dir)
        except Exception as exc:  # noqa: BLE001 - the report is a convenience; the move (or the mail) must happen
            return f"could not write {folder.results_xlsx}: {exc}"
    return None


def _record_roster_move(run_dir: Path, roster: Path) -> None:
    """Tell the run's journal where its roster now is (``resume`` and the reports read it from there, and compare
    its bytes with the hash recorded when the run started)."""
    if not RunFolder(run_dir).journal.is_file():
        return
    try:
        with Journal.open(run_dir) as journal:
            journal.set_meta({"roster_path": str(roster.resolve())})
    except ProvisionError as exc:  # a damaged journal is the run's outcome to report, not a reason to keep the file
        log.warning("%s: could not record where the roster went (%s); resume there needs it put back at the "
                    "path the journal names", run_dir, exc)
