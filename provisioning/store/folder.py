"""Where a run keeps its files: ``runs/<YYYYmmdd-HHMMSS>-<roster name>/`` or the folder given with ``--out``."""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from provisioning.errors import RunFolderError
from provisioning.targets import same_file

DEFAULT_RUNS_DIR = Path("runs")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class RunFolder:
    """The paths of one run's files; the one place their names are spelled."""

    JOURNAL: ClassVar[str] = "journal.sqlite"
    RESULTS_CSV: ClassVar[str] = "results.csv"
    RESULTS_XLSX: ClassVar[str] = "results.xlsx"
    SUMMARY_JSON: ClassVar[str] = "summary.json"
    PASSWORDS_CSV: ClassVar[str] = "passwords.csv"
    CREDENTIALS_CSV: ClassVar[str] = "credentials.csv"  # --credential tap: the Temporary Access Passes, owner-only
    LOG: ClassVar[str] = "run.log"
    LOCK: ClassVar[str] = ".lock"
    RETRY_ROSTER: ClassVar[str] = "retry-roster.xlsx"  # a retry's roster: the earlier run's edited rows
    RETRY_SOURCE: ClassVar[str] = "retry-source.json"  # which earlier run (and rows) a retry re-ran
    #: The files a run writes into its folder (besides the journal), which ``--out`` must not find there already.
    RUN_FILES: ClassVar[tuple[str, ...]] = (RESULTS_XLSX, RESULTS_CSV, SUMMARY_JSON, LOG, PASSWORDS_CSV,
                                            CREDENTIALS_CSV)

    path: Path

    @property
    def journal(self) -> Path:
        return self.path / self.JOURNAL

    @property
    def results_csv(self) -> Path:
        return self.path / self.RESULTS_CSV

    @property
    def results_xlsx(self) -> Path:
        return self.path / self.RESULTS_XLSX

    @property
    def summary_json(self) -> Path:
        return self.path / self.SUMMARY_JSON

    @property
    def passwords_csv(self) -> Path:
        return self.path / self.PASSWORDS_CSV

    @property
    def credentials_csv(self) -> Path:
        return self.path / self.CREDENTIALS_CSV

    @property
    def log(self) -> Path:
        return self.path / self.LOG

    @property
    def lock(self) -> Path:
        return self.path / self.LOCK

    @property
    def retry_roster(self) -> Path:
        return self.path / self.RETRY_ROSTER

    @property
    def retry_source(self) -> Path:
        return self.path / self.RETRY_SOURCE


# The results.xlsx layout shared by its writer (provisioning.report.workbook) and retry's reader of its Failed and
# Invalid sheets (provisioning.run.retrysource). Sheet names, in the order they appear in the workbook:
SUMMARY = "Summary"
CREATED = "Created"
UPDATED = "Updated"
SKIPPED = "Skipped"
FAILED = "Failed"
INVALID = "Invalid"
SHEETS: tuple[str, ...] = (SUMMARY, CREATED, UPDATED, SKIPPED, FAILED, INVALID)
# Failed and Invalid: LEAD_COLUMNS first (the roster row, its user principal name as the run saw it, why it was not
# created and what to do), then the roster's own columns (original headers, original order: the ones to edit), then
# TRAIL_COLUMNS. ``retry`` reads the sheets by header: the lead and trail columns are the run's, never sent, except
# "Row", which links an edited row back to the row of the run that wrote the workbook.
ROSTER_ROW = "Row"
#: "User principal name" as on the other sheets: a header of its own, never a duplicate of the roster's
#: "userPrincipalName" (a duplicate header is renamed by tools such as pandas or Power Query, then lost to retry).
LEAD_COLUMNS: tuple[str, ...] = (ROSTER_ROW, "User principal name", "Error code", "Why / what to do")
TRAIL_COLUMNS: tuple[str, ...] = ("Status", "Request id", "Attempts")
RESULT_COLUMNS: tuple[str, ...] = LEAD_COLUMNS + TRAIL_COLUMNS
#: The layout before the lead columns (a results.xlsx of an earlier version, which retry still reads): the
#: roster's columns, then these, "Roster row" last.
OLD_RESULT_COLUMNS: tuple[str, ...] = ("Status", "Error code", "Message", "Request id", "Attempts", "Roster row")


def run_folder_name(roster: Path, now: datetime | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<roster stem>``, the stem reduced to filename-safe characters."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    stem = _UNSAFE.sub("-", Path(roster).stem).strip("-.") or "roster"
    return f"{stamp}-{stem[:60]}"


def new_run_folder(roster: Path, out: Path | None = None, *, runs_dir: Path = DEFAULT_RUNS_DIR,
                   now: datetime | None = None, force: bool = False) -> RunFolder:
    """Create the folder for a new run; ``--out`` may name an empty or missing folder, never a previous run.

    A folder that already holds files a run writes is refused unless ``force`` (never when one of them is the
    roster, and never over a passwords.csv: it may be the only copy of generated passwords)."""
    if out is not None:
        path = Path(out)
        if RunFolder(path).journal.exists():
            raise RunFolderError(f"{path} already holds a run; continue it with `resume {path}` or choose another "
                                 "--out")
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"--out {path}: not a folder")
        for name in RunFolder.RUN_FILES:
            target = path / name
            if same_file(target, roster):
                raise RunFolderError(f"{target} is the roster; a run never writes over it, not even with --force: "
                                     "choose another --out")
            if not os.path.lexists(target):
                continue
            if name in (RunFolder.PASSWORDS_CSV, RunFolder.CREDENTIALS_CSV):
                what = "generated passwords" if name == RunFolder.PASSWORDS_CSV else "Temporary Access Passes"
                raise RunFolderError(f"{target} exists and may hold the only copy of {what}; move it "
                                     "away or choose another --out")
            if not force:
                raise RunFolderError(f"{target} exists; give --force to replace it, or another --out")
        _make(path, "choose another --out")
        return RunFolder(path)
    base = Path(runs_dir) / run_folder_name(roster, now)
    path, n = base, 1
    while True:
        try:
            _make(path, "give --out DIR for a folder you can write to", exist_ok=False)
            return RunFolder(path)
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def _make(path: Path, advice: str, *, exist_ok: bool = True) -> None:
    """Create the run folder (and check that it takes files); a folder that cannot be written gets one line
    naming it and what to do instead of a bare OS error."""
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
    except FileExistsError:
        raise
    except OSError as exc:
        raise RunFolderError(f"cannot create the run folder {path}: {exc.strerror or exc}; {advice}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunFolderError(f"cannot write in the run folder {path}: permission denied; {advice}")


def existing_run_folder(path: Path) -> RunFolder:
    """A previous run's folder (``resume``); ``RunFolderError`` if it holds no journal."""
    folder = RunFolder(Path(path))
    if not folder.journal.is_file():
        raise RunFolderError(f"{path}: not a run folder (no {RunFolder.JOURNAL}); give the folder printed by `run`")
    return folder


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (the roster's fingerprint, checked by ``resume``)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
