"""The one line a run prints when it stops because its run folder can no longer record what it sent.

It says what was and was not sent, which users exist without a recorded password, and what to do; when the journal
itself is gone or replaced, the journal as this process still sees it is saved next to the run folder.
"""
from __future__ import annotations

import csv
import logging
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from provisioning.cells import csv_safe
from provisioning.errors import RunFolderLost
from provisioning.portable import quote_arg
from provisioning.run.tap import UNKEPT
from provisioning.store.durable import names_text
from provisioning.store.journal import Journal, RowState

log = logging.getLogger(__name__)


class PasswordRecord(Protocol):
    """What :func:`stopped_message` needs of ``passwords.csv`` (:class:`provisioning.store.secrets.PasswordFile`)."""

    @property
    def path(self) -> Path: ...

    def known(self) -> dict[int, tuple[str, str]]: ...

    def check_intact(self) -> None: ...


def stopped_message(lost: RunFolderLost, *, journal: Journal, passwords: PasswordRecord, total: int, sent: set[int],
                    answers: Mapping[int, Any], command_line: str, err: TextIO,
                    during: str = "") -> RunFolderLost:
    """The one line for a run that stopped sending because its folder became unwritable: what was sent, who
    exists, whose generated password could not be recorded, and what to do. When the journal itself is gone
    or replaced, the journal as this process still sees it is saved next to the run folder (no password is in
    it), so that ``resume`` of that copy continues the run; when even that fails, the users created are listed
    on ``err``, one per line."""
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
                     f"`{command_line} resume {quote_arg(str(folder))}`")
    else:
        listing = [(row, records[row].upn,
                    getattr(answers.get(row), "object_id", "") or records[row].object_id,
                    "no" if row in lost_pw else
                    "yes" if records[row].password_source == "generated" else
                    "not kept (Temporary Access Pass)" if records[row].password_source == UNKEPT else "roster")
                   for row in created if row in records]
        rescued = _rescue(journal, folder, listing)
        if rescued is not None:
            parts.append(f"the journal was saved to {rescued} (created.csv there lists the users created): "
                         f"`{command_line} resume {quote_arg(str(rescued))}` continues the run"
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
