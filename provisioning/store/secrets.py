"""The run's secrets on disk: ``passwords.csv`` (the only file that ever holds a password) and ``run.log`` (through
:class:`SecretFilter`, so that none reaches it).

``passwords.csv`` is created readable only by its owner (:func:`create_private`: mode 0600 on POSIX, a private ACL
on Windows; ``O_CREAT | O_EXCL``, so it is never a pre-existing file an attacker prepared) and only holds
*generated* passwords; every cell but the password passes through
:func:`provisioning.cells.csv_safe`.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from provisioning.cells import csv_safe
from provisioning.portable import is_owner_only, is_windows, restrict_to_owner
from provisioning.store.durable import gone, names_text
from provisioning.store.journal import Journal, RowRecord, RowState


def sync_folder(path: Path) -> None:
    """fsync a folder, so that a file just created in it survives a crash of the machine. Not on Windows, where a
    folder cannot be opened as a file (and NTFS journals the names of its files itself)."""
    if is_windows():
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: ``os.open`` flags: no link followed (POSIX), bytes as written (Windows opens in text mode by default).
_NO_LINK_BINARY = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def create_private(path: Path) -> int:
    """Open a new file for writing, readable only by its owner, and return its descriptor; fails if it exists (no
    pre-planted file is ever reused). Mode 0600 on POSIX; on Windows a private ACL, or a warning that the file is
    as private as its folder (:func:`provisioning.portable.restrict_to_owner`). Set before anything is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_LINK_BINARY, 0o600)
    try:
        restrict_to_owner(path, fd)  # umask cannot widen 0600, but be explicit
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private_csv(path: Path, columns: Sequence[str]) -> io.TextIOWrapper:
    """An append-only CSV of secrets: created owner-only with its header line (on disk, with its name, before this
    returns), or reopened for appending when it is there, owner-only and no link (a line cut short by a full disk
    is ended first, so that it cannot swallow the next one)."""
    if os.path.lexists(path):
        if path.is_symlink() or not is_owner_only(path):
            raise PermissionError(f"{path}: refusing to append to a link or a file others can read")
        fd = os.open(path, os.O_RDWR | os.O_APPEND | _NO_LINK_BINARY)
        size = os.fstat(fd).st_size
        torn = False
        if size > 0:  # lseek and read: Windows has no pread; the appends go to the end whatever the offset
            os.lseek(fd, size - 1, os.SEEK_SET)
            torn = os.read(fd, 1) != b"\n"
        fh = io.TextIOWrapper(os.fdopen(fd, "ab"), encoding="utf-8", newline="")
        if torn:
            fh.write("\r\n")
        return fh
    fh = io.TextIOWrapper(os.fdopen(create_private(path), "wb"), encoding="utf-8", newline="")
    csv.writer(fh).writerow(columns)
    fh.flush()
    os.fsync(fh.fileno())
    sync_folder(path.parent)  # the new file's name is durable too, not only its bytes
    return fh


class PasswordFile:
    """``passwords.csv``: ``row,userPrincipalName,password`` for generated passwords only.

    A line is appended, flushed and fsync'd (and, when the file is new, its folder too) *before* the request
    that carries the password leaves, so neither a killed process nor a crash of the machine leaves a user whose
    password is lost. :meth:`finalize` makes the file hold only the users that may exist with their
    password (created, or sent without an answer yet), with the password that was actually sent last (rewriting
    it unless it holds just those already). On resume
    the existing file is read back first.
    """

    COLUMNS = ("row", "userPrincipalName", "password")

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fh: io.TextIOWrapper | None = None
        self._identity: tuple[int, int] | None = None
        self._known: dict[int, tuple[str, str]] = {}
        # the rows of the lines this session wrote, in file order, when it created the file (None: it did not, or
        # not yet): lines of only the kept rows, each once and in row order, are the file finalize would write
        self._written: list[int] | None = None

    def load(self) -> dict[int, tuple[str, str]]:
        """Read an existing file (resume); the last line of a row wins. Returns ``{row: (upn, password)}``."""
        if self.path.exists():
            with open(self.path, newline="", encoding="utf-8") as fh:
                for rec in csv.DictReader(fh):
                    try:
                        self._known[int(rec["row"])] = (rec["userPrincipalName"], rec["password"])
                    except (KeyError, ValueError, TypeError):
                        continue
        return dict(self._known)

    def _open(self) -> io.TextIOWrapper:
        if self._fh is None:
            fresh = not self.path.exists() and not self.path.is_symlink()
            self._fh = open_private_csv(self.path, self.COLUMNS)
            self._written = [] if fresh else None
            self._identity = (os.fstat(self._fh.fileno()).st_dev, os.fstat(self._fh.fileno()).st_ino)
        return self._fh

    @staticmethod
    def _sync(fh: io.TextIOWrapper) -> None:
        fh.flush()
        os.fsync(fh.fileno())

    def add(self, entries: Sequence[tuple[int, str, str]]) -> None:
        """Append ``(row, upn, password)`` lines; return once they are on disk (flushed and fsync'd)."""
        if not entries:
            return
        with self._lock:
            fh = self._open()
            writer = csv.writer(fh)
            try:
                for row, upn, password in entries:
                    writer.writerow((row, csv_safe(upn), password))
                self._sync(fh)
            except BaseException:
                self._written = None  # a line may be cut short (a full disk): finalize rewrites the file
                raise
            for row, upn, password in entries:
                self._known[row] = (upn, password)
            if self._written is not None:
                self._written.extend(row for row, _, _ in entries)

    def check_intact(self) -> None:
        """Raise :class:`provisioning.errors.RunFolderLost` if the file written to was removed or replaced since
        (its lines would be written to a file nobody can open any more)."""
        with self._lock:
            lost = gone(self.path, self._identity) if self._identity is not None else None
        if lost is not None:
            raise lost

    def known(self) -> dict[int, tuple[str, str]]:
        """The passwords on disk (read back or written by this session): ``{row: (upn, password)}``."""
        with self._lock:
            return dict(self._known)

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            self._identity = None

    def finalize(self, created_rows: Iterable[int]) -> int:
        """Rewrite the file with only ``created_rows`` (the rows whose user may exist with the password); remove
        it if none. Returns lines kept. A file this session created whose lines are already just those, in order
        (every user created, none sent twice: the usual run), is left as it is: each line was fsync'd when added."""
        with self._lock:
            written, identity = self._written, self._identity
        self.close()
        keep = [(r, *self._known[r]) for r in sorted(set(created_rows)) if r in self._known]
        if keep and written == [r for r, _, _ in keep] and identity is not None and gone(self.path, identity) is None:
            return len(keep)
        self._written = None  # rewritten below: no longer the lines this session appended
        if not self.path.exists() and not keep:
            return 0
        tmp = self.path.with_name(self.path.name + ".tmp")
        if tmp.exists():
            tmp.unlink()
        with io.TextIOWrapper(os.fdopen(create_private(tmp), "wb"), encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(self.COLUMNS)
            for row, upn, password in keep:
                writer.writerow((row, csv_safe(upn), password))
            self._sync(fh)
        if keep:
            os.replace(tmp, self.path)
            sync_folder(self.path.parent)
        else:
            tmp.unlink()
            self.path.unlink(missing_ok=True)
        return len(keep)



def without_password(journal: Journal, passwords_csv: Path) -> list[RowRecord]:
    """Rows created with a generated password that ``passwords.csv`` does not hold (lost with a removed run
    folder or file): their users exist, and nobody knows their password."""
    known = PasswordFile(passwords_csv).load()
    return [r for r in journal.rows([RowState.CREATED, RowState.UPDATED])
            if r.password_source == "generated" and r.row not in known]


def without_password_warning(rows: list[RowRecord], command_line: str) -> str:
    """The line that tells the administrator which users have no recorded password and what to do."""
    names = names_text([f"row {r.row} {r.upn}" for r in rows], limit=10)
    return (f"warning: {len(rows)} users exist without a recorded password (their generated password was lost "
            f"with passwords.csv): {names}; reset their passwords in the Entra admin center (Users > Reset "
            f"password), or put just these rows in a roster and run `{command_line} run THAT_ROSTER --existing "
            "update --reset-passwords` (the new passwords go to that run's passwords.csv)")


# -- run.log ---------------------------------------------------------------------------------------------------
_KEYED = re.compile(
    r"""(?ix)
    (?P<key>["']?(?:password|passwd|secret|client_secret|client_assertion|access_token|refresh_token|
                   certificate_password|authorization)["']?\s*[:=]\s*)
    (?P<val>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;}&]+)""")
_BEARER = re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=-]+")
REDACTED = "***"


class SecretFilter(logging.Filter):
    """Redacts secrets from every record before a handler writes it.

    Redacts (1) ``key=value`` / ``"key": "value"`` pairs whose key names a password, secret, token or assertion,
    (2) bearer tokens, and (3) any registered secret value (client secret, each password of the run) wherever it
    appears, with an index on the secrets' first characters so thousands of passwords cost O(message) per line.
    """

    _PREFIX = 4

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._index: dict[str, set[str]] = {}
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Register values that must never appear in the log (values shorter than 4 characters are ignored)."""
        with self._lock:
            for s in secrets:
                if s and len(s) >= self._PREFIX:
                    self._index.setdefault(s[: self._PREFIX], set()).add(s)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        text = _BEARER.sub("Bearer " + REDACTED, text)
        text = _KEYED.sub(lambda m: m.group("key") + REDACTED, text)
        with self._lock:
            if not self._index:
                return text
            hits: set[str] = set()
            for i in range(len(text) - self._PREFIX + 1):
                cands = self._index.get(text[i:i + self._PREFIX])
                if cands:
                    hits.update(c for c in cands if text.startswith(c, i))
        for secret in sorted(hits, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not break logging
            message = str(record.msg)
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


class _ScopedFilter(logging.Filter):
    """Passes records from the run's own thread tree only: ``provisioning``, ``graph`` and urllib3 warnings."""

    PREFIXES = ("provisioning", "graph", "urllib3")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith(self.PREFIXES)


class _RunLogHandler(logging.FileHandler):
    """``run.log``: a line it cannot write (full disk) is dropped without the traceback logging prints by default;
    the journal's and passwords.csv's own writes are what stop the run."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def open_run_log(path: Path, secrets: SecretFilter, level: int = logging.INFO) -> logging.Handler:
    """Attach a ``run.log`` handler (append mode, UTF-8) to the root logger; the caller removes it at the end."""
    handler = _RunLogHandler(path, mode="a", encoding="utf-8", delay=False)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    handler.addFilter(_ScopedFilter())
    handler.addFilter(secrets)
    root = logging.getLogger()
    root.addHandler(handler)
    for name in ("provisioning", "graph"):
        lg = logging.getLogger(name)
        if lg.getEffectiveLevel() > level:
            lg.setLevel(level)
    return handler


def close_run_log(handler: logging.Handler) -> None:
    """Detach and close a handler from :func:`open_run_log`."""
    logging.getLogger().removeHandler(handler)
    handler.close()
