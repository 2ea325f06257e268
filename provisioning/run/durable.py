"""What a failed write to the run folder means for the run, and whether a run-folder file is still the one opened.

A run must stop sending as soon as anything it relies on to record what it sent can no longer be written: the
journal, ``passwords.csv``, ``run.log``. :func:`lost_from` turns the low-level failure (``sqlite3`` or ``OSError``)
into a :class:`RunFolderLost` that says why in words an administrator can act on. SQLite and an open file keep
writing happily to a file that was unlinked, so :func:`same_file` is checked before every chunk leaves.
"""
from __future__ import annotations

import csv
import errno
import logging
import os
import shlex
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from provisioning.cells import csv_safe
from provisioning.errors import RunFolderLost

if TYPE_CHECKING:  # (at run time imported where used: the journal imports this module)
    from provisioning.run.journal import Journal

log = logging.getLogger(__name__)

_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


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
    low = text.lower()
    where = f"writing {path.name}: {text}"
    remedy = "fix the cause"
    if code in _FULL or "disk is full" in low:
        reason, resumable, remedy = f"the disk is full ({where})", True, "free space on its disk"
    elif code == errno.EFBIG or "file too large" in low:
        reason, resumable, remedy = (f"a file size limit was reached ({where})", True,
                                     "raise the file size limit (ulimit -f)")
    elif code in _READ_ONLY or "readonly" in low or "read-only" in low:
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


class PasswordRecord(Protocol):
    """What :func:`stopped_message` needs of ``passwords.csv`` (:class:`provisioning.run.secrets.PasswordFile`)."""

    @property
    def path(self) -> Path: ...

    def known(self) -> dict[int, tuple[str, str]]: ...

    def check_intact(self) -> None: ...


def names_text(upns: list[str], limit: int = 5) -> str:
    shown = ", ".join(upns[:limit])
    return shown + (f" and {len(upns) - limit} more" if len(upns) > limit else "")


def stopped_message(lost: RunFolderLost, *, journal: Journal, passwords: PasswordRecord, total: int, sent: set[int],
                    answers: Mapping[int, Any], command_line: str, err: TextIO,
                    during: str = "") -> RunFolderLost:
    """The one line for a run that stopped sending because its folder became unwritable: what was sent, who
    exists, whose generated password could not be recorded, and what to do. When the journal itself is gone
    or replaced, the journal as this process still sees it is saved next to the run folder (no password is in
    it), so that ``resume`` of that copy continues the run; when even that fails, the users created are listed
    on ``err``, one per line."""
    from provisioning.run.journal import RowState

    folder = Path(journal.path).parent
    records = {r.row: r for r in journal.rows()}  # reads work when writes do not (and on a removed file)
    states = {row: r.state for row, r in records.items()}
    states.update({row: o.state for row, o in answers.items()})
    created = sorted(row for row, state in states.items() if state is RowState.CREATED)
    this_session = sum(1 for row in created if row in sent)
    failed = sum(1 for row in sent if states.get(row) is RowState.FAILED)
    unanswered = sum(1 for row in sent if states.get(row) in (RowState.SENDING, RowState.UNKNOWN))
    journal_ok = _intact(journal)
    on_disk = passwords.known() if passwords.path.is_file() and _intact(passwords) else {}
    generated = [row for row in created if records.get(row) is not None
                 and records[row].password_source == "generated"]
    unrecorded = [records[row].upn for row in generated if row not in on_disk]
    lost_pw = {row for row in generated if row not in on_disk}

    if during == "reports":
        done = f"every create was sent and journaled but the reports could not be written: {len(created)} users " \
               "were created"
    else:
        done = (f"sending stopped during the {during}, after {len(sent)} of {total} creates" if during else
                f"sending stopped after {len(sent)} of {total} creates") + f": {this_session} users were created"
        if len(created) > this_session:
            done += f" ({len(created) - this_session} more by earlier sessions)"
    parts = [f"{folder}: {lost.reason}", done + (f", {failed} failed" if failed else "")
             + (f", {unanswered} got no answer (they may exist)" if unanswered else "")]
    if unrecorded:
        parts.append(f"{len(unrecorded)} of them have generated passwords that could not be recorded "
                     f"({names_text(unrecorded)}); reset their passwords in the Entra admin center (Users > Reset "
                     "password)")
    if journal_ok and lost.resumable:
        parts.append(f"the journal is consistent: {lost.remedy}, then continue with "
                     f"`{command_line} resume {shlex.quote(str(folder))}`")
    else:
        listing = [(row, records[row].upn,
                    getattr(answers.get(row), "object_id", "") or records[row].object_id,
                    "no" if row in lost_pw else
                    "yes" if records[row].password_source == "generated" else "roster")
                   for row in created if row in records]
        rescued = _rescue(journal, folder, listing)
        if rescued is not None:
            parts.append(f"the journal was saved to {rescued} (created.csv there lists the users created): "
                         f"`{command_line} resume {shlex.quote(str(rescued))}` continues the run"
                         + (" and names them again" if unrecorded else ""))
            if on_disk:
                parts.append(f"the generated passwords sent so far are in {passwords.path}")
        else:
            upns = [records[row].upn for row in created if row in records]
            for upn in upns:
                err.write(f"created: {upn}\n")
            parts.append(f"the journal could not be saved; the {len(upns)} users created are listed above; "
                         "start a new run of the roster (the default --existing skip skips them)")
    return RunFolderLost("; ".join(parts), reason=lost.reason, resumable=lost.resumable, remedy=lost.remedy)


def _intact(obj: Journal | PasswordRecord) -> bool:
    try:
        obj.check_intact()
    except RunFolderLost:
        return False
    return True


def _rescue(journal: Journal, folder: Path, created: list[tuple[int, str, str, str]]) -> Path | None:
    """Copy the journal (as the open connection sees it) to ``<folder>.rescued-<time>/journal.sqlite``, with
    ``created.csv``: row, userPrincipalName, objectId and whether its password is recorded, of every user created
    (no password)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    dest = folder.with_name(f"{folder.name}.rescued-{stamp}")
    try:
        dest.mkdir(parents=False, exist_ok=False)
        journal.rescue(dest / journal.path.name)
        with open(dest / "created.csv", "w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.writer(fh)
            writer.writerow(("row", "userPrincipalName", "objectId", "passwordRecorded"))
            for row, upn, object_id, recorded in created:
                writer.writerow((row, csv_safe(upn), object_id, recorded))
    except (OSError, sqlite3.Error) as exc:
        log.info("could not save the journal to %s: %s", dest, exc)
        return None
    log.info("the journal of %s was saved to %s", folder, dest)
    return dest
