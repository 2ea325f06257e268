"""What a failed write to the run folder means for the run, and whether a run-folder file is still the one opened.

A run must stop sending as soon as anything it relies on to record what it sent can no longer be written: the
journal, ``passwords.csv``, ``run.log``. :func:`lost_from` turns the low-level failure (``sqlite3`` or ``OSError``)
into a :class:`RunFolderLost` that says why in words an administrator can act on. SQLite and an open file keep
writing happily to a file that was unlinked, so :func:`same_file` is checked before every chunk leaves.
"""
from __future__ import annotations

import errno
import logging
import os
import sqlite3
from pathlib import Path

from provisioning.errors import RunFolderLost

log = logging.getLogger(__name__)

_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
_SQLITE_FULL, _SQLITE_READONLY = 13, 8  # SQLITE_FULL ("database or disk is full"), SQLITE_READONLY (sqlite.org/rescode)


def file_identity(path: Path) -> tuple[int, int]:
    """``(st_dev, st_ino)`` of ``path``: which file it is, whatever its name."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def gone(path: Path, identity: tuple[int, int]) -> RunFolderLost | None:
    """None while ``path`` is still the file of ``identity``; else why not (removed folder, removed/replaced file)."""
    folder = path.parent
    try:
        now = file_identity(path)
    except FileNotFoundError:
        if not folder.is_dir():
            reason = f"the run folder was removed ({path.name} is gone)"
        else:
            reason = f"{path.name} was removed from the run folder"
        return RunFolderLost(f"{folder}: {reason}", reason=reason, resumable=False)
    except OSError as exc:
        return lost_from(exc, path)
    if now != identity:
        reason = f"{path.name} was replaced by another file"
        return RunFolderLost(f"{folder}: {reason}", reason=reason, resumable=False)
    return None


def lost_from(exc: BaseException, path: Path) -> RunFolderLost:
    """A :class:`RunFolderLost` for a failed write of ``path`` (a file in the run folder)."""
    if isinstance(exc, RunFolderLost):
        return exc
    folder = path.parent
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    code = getattr(exc, "errno", None)
    sqlite_code = getattr(exc, "sqlite_errorcode", None)  # SQLite's result code; the low byte is its kind
    kind = sqlite_code & 0xFF if isinstance(sqlite_code, int) else None
    where = f"writing {path.name}: {text}"
    remedy = "fix the cause"
    if code in _FULL or kind == _SQLITE_FULL:
        reason, resumable, remedy = f"the disk is full ({where})", True, "free space on its disk"
    elif code == errno.EFBIG:
        reason, resumable, remedy = (f"a file size limit was reached ({where})", True,
                                     "raise the file size limit (ulimit -f)")
    elif code in _READ_ONLY or kind == _SQLITE_READONLY:
        reason, resumable, remedy = (f"the run folder cannot be written ({where})", True,
                                     "make the run folder writable again")
    elif not folder.is_dir():
        reason, resumable = f"the run folder was removed ({path.name} is gone)", False
    elif code == errno.ENOENT:
        reason, resumable = f"{path.name} was removed from the run folder", False
    elif isinstance(exc, (OSError, sqlite3.Error)):
        reason, resumable = f"a write failed ({where})", True
    else:
        raise TypeError(f"not a write failure: {exc!r}")
    return RunFolderLost(f"{folder}: {reason}", reason=reason, resumable=resumable, remedy=remedy)


def names_text(upns: list[str], limit: int = 5) -> str:
    shown = ", ".join(upns[:limit])
    return shown + (f" and {len(upns) - limit} more" if len(upns) > limit else "")
