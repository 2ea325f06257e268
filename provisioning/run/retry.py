"""A retry's roster: the rows of an earlier run's Failed and Invalid sheets as edited there, each on its original
roster row, with the passwords and formula cells the report could not carry checked."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from provisioning import codes
from provisioning.context import CommandContext
from provisioning.errors import ProvisionError
from provisioning.models import Issue
from provisioning.roster.excel import problem_message
from provisioning.roster.reader import load_roster
from provisioning.run.chain import (
    Parent,
)
from provisioning.run.retrysource import (
    RetryRow,
)
from provisioning.store.folder import file_sha256
from provisioning.store.journal import RowState

log = logging.getLogger(__name__)


def done_rows(parent: Parent | None) -> set[int]:
    """Rows bound to an account whose work is finished (not re-sent, even when pasted back into a sheet): all but
    those the earlier run refused or left open, and those with a failed or unfinished follow-up."""
    if parent is None:
        return set()
    again = {RowState.INVALID, RowState.FAILED, RowState.PENDING, RowState.SENDING, RowState.UNKNOWN}
    return {row for row in parent.bindings if row not in parent.unfinished
            and (row not in parent.records or parent.records[row].state not in again)}


def roster_rows(console: CommandContext, rows: Sequence[RetryRow], parent: Parent | None,
                 bindings: Mapping[int, Any]) -> tuple[list[int], int]:
    """Each row's roster row number: the one it had in the original roster ("Roster row"), kept through retries
    of retries; a row added by hand (or a second copy of a row) gets the next number after every row the chain
    has used. Returns the numbers and that highest number."""
    used_before = [int(((parent.meta.get("retry") or {}) if parent else {}).get("high_row") or 0),
                   *(parent.records if parent else ()), *bindings, *(r.earlier_row or 0 for r in rows), 1]
    high = max(used_before)
    numbers: list[int] = []
    taken: set[int] = set()
    for r in rows:
        number = r.earlier_row
        if number is None or number < 2 or number in taken:
            high += 1
            why = "added by hand" if number is None or number < 2 else f"repeats roster row {number}"
            console.out.write(f"note: {r.sheet} sheet row {r.sheet_row} ({why}) is retried as roster row {high}\n")
            number = high
        taken.add(number)
        numbers.append(number)
    return numbers, high


def retry_passwords(rows: Sequence[RetryRow], numbers: Sequence[int], fields: Sequence[str | None],
               headers: Sequence[str], parent: Parent | None, bindings: Mapping[int, Any]) \
        -> tuple[list[RetryRow], list[Issue], bool | None]:
    """The password the roster gave a row, which the sheets never show: read again from the earlier run's roster
    when that file is unchanged (its SHA-256 is in the journal), else the row gets an issue, unless the cell was
    filled in again. Returns the rows, the issues, and whether the earlier roster was unchanged (None: not read).
    """
    if "password" not in fields or parent is None:
        return list(rows), [], None
    col = fields.index("password")
    wanted = [i for i, r in enumerate(rows) if not r.cells[col] and numbers[i] not in bindings
              and r.earlier_row is not None and numbers[i] == r.earlier_row]
    if not wanted:
        return list(rows), [], None
    given = roster_passwords(parent.meta)
    out = list(rows)
    issues: list[Issue] = []
    for i in wanted:
        number = numbers[i]
        if given is not None:
            if given.get(number):
                cells = list(out[i].cells)
                cells[col] = given[number]
                out[i] = replace(out[i], cells=tuple(cells))
            continue
        record = parent.records.get(number)
        if record is not None and record.password_source == "roster":
            roster = Path(str(parent.meta.get("roster_path") or "the roster"))
            state = "changed since" if roster.is_file() else "is not there any more since"
            issues.append(codes.issue(
                number, headers[col], "retry-password-lost",
                f"{headers[col]}: {roster.name} gave row {number} a password, which reports never copy, and "
                f"{roster.name} {state} the run {parent.run_dir}, so it cannot be read again; type the password "
                f"again in the sheet, or retry this run with the cell left empty to have one generated"))
    return out, issues, given is not None


def roster_passwords(meta: Mapping[str, Any]) -> dict[int, str] | None:
    """The password cells of the earlier run's roster by row, or None when it is gone or its bytes changed."""
    path = Path(str(meta.get("roster_path") or ""))
    if not meta.get("roster_sha256") or not path.is_file() or file_sha256(path) != meta["roster_sha256"]:
        return None
    try:
        roster = load_roster(path, sheet=meta.get("sheet"), mapping=meta.get("mapping"),
                             header_row=meta.get("header_row"), encoding=meta.get("encoding"))
    except ProvisionError as exc:  # e.g. its mapping file is gone: the passwords cannot be read again
        log.warning("cannot read the earlier roster %s again: %s", path, exc)
        return None
    col = next((j for j, h in enumerate(roster.headers) if roster.column_map.get(h) == "password"), None)
    if col is None:
        return {}
    return {r.row: r.cells[col] for r in roster.rows if col < len(r.cells) and r.cells[col]}


#: Reader issues of a cell that the roster had but the report could not show (its value was never calculated).
_UNSHOWN = frozenset({"formula-no-value", "excel-error"})


def still_empty(rows: Sequence[RetryRow], numbers: Sequence[int], headers: Sequence[str],
                 parent: Parent | None) -> list[Issue]:
    """A cell the earlier run refused as a formula without a value (or an error value) that is still empty in the
    sheet: the report had nothing to show there, so an unedited retry would send the row without the value the
    administrator meant to give. Refused once more (``retry-formula-empty``); a retry of that retry with the cell
    still empty takes it as empty on purpose."""
    if parent is None:
        return []
    earlier = parent.issues
    at = {h: i for i, h in enumerate(headers)}
    out: list[Issue] = []
    for r, number in zip(rows, numbers, strict=True):
        if r.earlier_row is None:
            continue
        for issue in earlier.get(r.earlier_row, ()):
            index = at.get(issue.column)
            if issue.code in _UNSHOWN and index is not None and not r.cells[index].strip():
                out.append(codes.issue(number, issue.column, "retry-formula-empty",
                                       f"{issue.column}: the roster's cell held a formula whose value was never "
                                       f"calculated (or an Excel error), so the report's cell is empty; type the "
                                       f"value in the sheet, or retry again with it left empty on purpose"))
    return out


def formula_issues(rows: Sequence[RetryRow], numbers: Sequence[int], fields: Sequence[str | None],
                    headers: Sequence[str]) -> list[Issue]:
    """A formula without a saved value in a sheet (an error value is written as such and refused by the roster
    reader of the retry run): the same issue the roster reader gives."""
    out: list[Issue] = []
    for r, number in zip(rows, numbers, strict=False):
        for index, pr in r.problems:
            if pr.error is None:
                code, message = problem_message(pr, headers[index], used=fields[index] is not None,
                                                secret=fields[index] == "password")
                out.append(codes.issue(number, headers[index], code, message))
    return out
