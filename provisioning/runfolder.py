"""Where a run keeps its files: ``runs/<YYYYmmdd-HHMMSS>-<roster name>/`` or the folder given with ``--out``."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .errors import RunFolderError
from .journal import JOURNAL_NAME
from .outputs import LOG_NAME, PASSWORDS_NAME, RESULTS_NAME, SUMMARY_NAME

DEFAULT_RUNS_DIR = Path("runs")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class RunFolder:
    """The paths of one run's files."""

    path: Path

    @property
    def journal(self) -> Path:
        return self.path / JOURNAL_NAME

    @property
    def results_csv(self) -> Path:
        return self.path / RESULTS_NAME

    @property
    def summary_json(self) -> Path:
        return self.path / SUMMARY_NAME

    @property
    def passwords_csv(self) -> Path:
        return self.path / PASSWORDS_NAME

    @property
    def log(self) -> Path:
        return self.path / LOG_NAME


def run_folder_name(roster: Path, now: datetime | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<roster stem>``, the stem reduced to filename-safe characters."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    stem = _UNSAFE.sub("-", Path(roster).stem).strip("-.") or "roster"
    return f"{stamp}-{stem[:60]}"


def new_run_folder(roster: Path, out: Path | None = None, *, runs_dir: Path = DEFAULT_RUNS_DIR,
                   now: datetime | None = None) -> RunFolder:
    """Create the folder for a new run; ``--out`` may name an empty or missing folder, never a previous run."""
    if out is not None:
        path = Path(out)
        if (path / JOURNAL_NAME).exists():
            raise RunFolderError(f"{path} already holds a run; continue it with `resume {path}` or choose another "
                                 "--out")
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"--out {path}: not a folder")
        path.mkdir(parents=True, exist_ok=True)
        return RunFolder(path)
    base = Path(runs_dir) / run_folder_name(roster, now)
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return RunFolder(path)
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def existing_run_folder(path: Path) -> RunFolder:
    """A previous run's folder (``resume``); ``RunFolderError`` if it holds no journal."""
    folder = RunFolder(Path(path))
    if not folder.journal.is_file():
        raise RunFolderError(f"{path}: not a run folder (no {JOURNAL_NAME}); give the folder printed by `run`")
    return folder


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (the roster's fingerprint, checked by ``resume``)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
