"""Read the Failed and Invalid sheets of a ``results.xlsx``, as the user edited them, into a roster for ``retry``.

The sheets start with the run's lead columns (Row, userPrincipalName, Error code, Why / what to do), then hold the
roster's own columns (original headers, original order; any of them may have been corrected), then the trail
columns (Status, Request id, Attempts). The run's columns are ignored except "Row": the row's number in the
original roster, kept through retries of retries. A workbook of an earlier version (the roster's columns first,
then Status, Error code, Message, Request id, Attempts, Roster row) is read too. The
sheets are read by the roster reader's own workbook path (calamine, and the scan that finds Excel error values
and formulas without a saved value); a sheet saved as CSV by its CSV reader. The rows are written as an ordinary
roster workbook in the new run folder, each on its roster row, so the ordinary ``run`` path loads, validates and
runs it with the original row numbers.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from provisioning.cells import make_xlsx_text_safe
from provisioning.errors import RosterError, RunFolderError, UsageError
from provisioning.roster.excel import header_problem_message
from provisioning.roster.excelscan import CellProblem
from provisioning.roster.mapping import canonical_field
from provisioning.store.folder import (
    FAILED,
    INVALID,
    LEAD_COLUMNS,
    OLD_RESULT_COLUMNS,
    SUMMARY,
    TRAIL_COLUMNS,
    RunFolder,
)

log = logging.getLogger(__name__)

# (the names the retry command imports from here)
RESULTS_XLSX = RunFolder.RESULTS_XLSX
RETRY_ROSTER_NAME = RunFolder.RETRY_ROSTER
RETRY_SOURCE_NAME = RunFolder.RETRY_SOURCE
OLD_ROSTER_ROW = OLD_RESULT_COLUMNS[-1]


@dataclass(frozen=True, slots=True)
class RetryRow:
    """One row to retry: where it was in the workbook, which earlier roster row it was, and its roster cells."""

    sheet: str
    sheet_row: int  # the row number in the Failed/Invalid sheet
    earlier_row: int | None  # "Roster row": the row of the run that wrote the workbook (None: added by the user)
    cells: tuple[str, ...]  # aligned with RetrySource.headers
    problems: tuple[tuple[int, CellProblem], ...] = ()  # (index into cells, Excel error / formula without value)


@dataclass(frozen=True, slots=True)
class RetrySource:
    """What ``retry`` re-runs: the roster columns and rows of the Failed and Invalid sheets."""

    results_path: Path
    earlier_run: Path  # the folder of the workbook (the earlier run folder when it holds a journal)
    headers: tuple[str, ...]
    rows: tuple[RetryRow, ...]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A row left out of the retry because the earlier run already created it."""

    row: RetryRow
    reason: str


def locate_results(target: str | os.PathLike[str]) -> Path:
    """``RUN_DIR``, ``RESULTS.xlsx`` or a sheet saved as CSV -> the file's path (``RunFolderError`` when there is
    none)."""
    path = Path(target)
    if path.is_dir():
        path = path / RESULTS_XLSX
    if not path.is_file():
        raise RunFolderError(f"{target}: no {RESULTS_XLSX} here; give a run folder or its results workbook")
    return path


def read_retry_source(target: str | os.PathLike[str]) -> RetrySource:
    """Read the Failed and Invalid sheets (as edited) of ``RUN_DIR/results.xlsx`` or of a given workbook, or one
    of them saved as CSV, through the roster reader (so an Excel error value in a cell is found, never sent)."""
    from provisioning.roster.reader import (  # deferred: the roster reader is not needed to report
        CSV_SUFFIXES,
        read_csv_columns,
    )

    path = locate_results(target)
    earlier_run = path.parent
    grids: list[tuple[str, list[list[str]], tuple[CellProblem, ...]]]
    if path.suffix.lower() in CSV_SUFFIXES:
        grids = [(path.name, read_csv_columns(path), ())]
    else:
        grids = _read_sheets(path)
        earlier_run = _run_folder(path) or earlier_run
    headers: list[str] = []
    rows: list[RetryRow] = []
    for name, columns, problems in grids:
        grid = [list(line) for line in zip(*columns, strict=False)] if columns else []
        if not grid:
            continue
        for pr in problems:
            if pr.row == 0:
                raise RunFolderError(f"{path}, sheet {name}: {header_problem_message(pr, True)}")
        sheet_headers, row_index, keep = _columns(grid[0])
        if row_index is None and name not in (FAILED, INVALID):
            raise RunFolderError(f"{path}: the header does not start with {', '.join(LEAD_COLUMNS)} (and has no "
                                 f"{OLD_ROSTER_ROW!r} column), so this is not a {FAILED} or {INVALID} sheet saved "
                                 f"as CSV; give retry the run folder or its {RESULTS_XLSX}, or "
                                 f"save the sheet again with all its columns")
        for h in sheet_headers:
            if h not in headers:
                headers.append(h)
        position = {i: headers.index(h) for h, i in zip(sheet_headers, keep, strict=True)}
        bad: dict[int, list[tuple[int, CellProblem]]] = {}
        for pr in problems:
            if pr.col in position:
                bad.setdefault(pr.row, []).append((position[pr.col], pr))
        for offset, line in enumerate(grid[1:], start=2):
            by_header = {h: line[i] for h, i in zip(sheet_headers, keep, strict=True)}
            if not any(v.strip() for v in by_header.values()) and offset - 1 not in bad:
                continue
            earlier = _int(line[row_index]) if row_index is not None else None
            rows.append(RetryRow(name, offset, earlier, tuple(by_header.get(h, "") for h in headers),
                                 tuple(bad.get(offset - 1, ()))))
    width = len(headers)
    rows = [replace(r, cells=r.cells + ("",) * (width - len(r.cells))) for r in rows]
    log.info("%s: %d rows to retry from %s", path, len(rows), ", ".join(n for n, _, _ in grids))
    return RetrySource(path, earlier_run, tuple(headers), tuple(rows))


def _run_folder(path: Path) -> Path | None:
    """The run folder of a workbook copied elsewhere (its Summary names it), when the copy's own folder holds no
    journal and that one does: the journal says which rows have accounts already."""
    from provisioning.roster.excel import read_excel  # deferred: python-calamine, only for a workbook

    if RunFolder(path.parent).journal.is_file():
        return None
    try:
        columns = read_excel(path, SUMMARY).columns
    except RosterError:
        return None
    if len(columns) < 2:
        return None
    folder = next((Path(v) for k, v in zip(columns[0], columns[1], strict=False) if k == "Run folder" and v), None)
    return folder if folder is not None and RunFolder(folder).journal.is_file() else None


def _read_sheets(path: Path) -> list[tuple[str, list[list[str]], tuple[CellProblem, ...]]]:
    """The Failed and Invalid sheets of a workbook, column-wise from A1, with their error cells."""
    from provisioning.roster.excel import read_excel, worksheet_names  # deferred: python-calamine

    try:
        names = worksheet_names(path)
        found = [s for s in (FAILED, INVALID) if s in names]
        if not found:
            raise RunFolderError(f"{path} has no sheet {FAILED} or {INVALID} (found: {', '.join(names) or 'none'}); "
                                 f"retry reads the rows from those two sheets")
        return [(sheet.name, sheet.columns, sheet.scan.problems) for sheet in (read_excel(path, s) for s in found)]
    except RosterError as exc:
        raise RunFolderError(str(exc)) from exc


def _columns(header: Sequence[str]) -> tuple[list[str], int | None, list[int]]:
    """(roster headers, index of the roster-row column, indices of the roster columns) of a sheet's header line.

    A header that starts with the lead columns is this version's layout: those, and the last occurrence of each
    trail heading after them, are the run's. Otherwise (an earlier version's workbook) the result columns are the
    last occurrence of each of its headings, "Roster row" among them. Either way a roster column that happens to
    be called "Status" survives. Columns without a heading are left out (a roster cannot use them either).
    """
    stripped = [h.strip() for h in header]
    lead = len(LEAD_COLUMNS)
    if tuple(stripped[:lead]) == LEAD_COLUMNS:
        ours = set(range(lead)) | {max(i for i in range(lead, len(stripped)) if stripped[i] == name)
                                   for name in TRAIL_COLUMNS if name in stripped[lead:]}
        keep = [i for i, h in enumerate(stripped) if h and i not in ours]
        return [stripped[i] for i in keep], 0, keep
    result_at = {name: max(i for i, h in enumerate(stripped) if h == name)
                 for name in OLD_RESULT_COLUMNS if name in stripped}
    keep = [i for i, h in enumerate(stripped) if h and i not in result_at.values()]
    return [stripped[i] for i in keep], result_at.get(OLD_ROSTER_ROW), keep


def _int(text: str) -> int | None:
    try:
        return int(float(text)) if text.strip() else None
    except ValueError:
        return None


def exclude_created(source: RetrySource, *, created_rows: Collection[int],
                    created_upns: Collection[str]) -> tuple[tuple[RetryRow, ...], tuple[Exclusion, ...]]:
    """Split the rows into those to retry and those the earlier run already created (never re-sent).

    A row is excluded when its "Roster row" names a row the earlier run created, or, for a row without one
    (pasted in by hand), when its userPrincipalName cell names a user the earlier run created (case-insensitive).
    Another roster row holding a created user's UPN is not excluded: it is someone else, and validation refuses
    it as a duplicate of the created row.
    """
    upn_at = [i for i, h in enumerate(source.headers) if canonical_field(h) == "userPrincipalName"]
    upns = {u.lower() for u in created_upns if u}
    keep: list[RetryRow] = []
    dropped: list[Exclusion] = []
    for r in source.rows:
        upn = r.cells[upn_at[0]].strip() if upn_at else ""
        if r.earlier_row is not None and r.earlier_row in created_rows:
            dropped.append(Exclusion(r, f"roster row {r.earlier_row} was already created by the earlier run"))
        elif r.earlier_row is None and upn and upn.lower() in upns:
            dropped.append(Exclusion(r, f"{upn} was already created by the earlier run"))
        else:
            keep.append(r)
    return tuple(keep), tuple(dropped)


def write_retry_roster(path: str | os.PathLike[str], headers: Sequence[str], rows: Iterable[RetryRow],
                       numbers: Sequence[int] | None = None) -> dict[int, RetryRow]:
    """Write the rows as a roster workbook (one sheet, header on row 1); return ``{roster row: RetryRow}``.

    ``numbers`` are the rows' roster row numbers (ascending, from 2; default 2, 3, ...): each row is written on
    that line of the sheet, blank lines between, so the roster reader gives every row the number it had in the
    original roster, and every sheet, results.csv and message of the retry shows that number.
    Every cell is written as text (formula-looking text quoted, never evaluated), so the roster reader reads back
    exactly what the user left in the Failed/Invalid sheets; a cell that held an Excel error value is written as
    that error, so it is refused again. The file is created 0600, like ``passwords.csv``: a password typed into
    the sheet, or read again from the original roster, is part of this roster.
    """
    path = Path(path)
    rows = list(rows)
    numbers = list(numbers) if numbers is not None else list(range(2, 2 + len(rows)))
    if any(b <= a for a, b in pairwise([1, *numbers])):
        raise ValueError("roster row numbers must be ascending from 2")
    from openpyxl import Workbook  # deferred: openpyxl stays off a run's start-up path (retry alone writes this)

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Roster")
    ws.append([_cell(ws, h) for h in headers])
    mapping: dict[int, RetryRow] = {}
    line = 1
    for number, r in zip(numbers, rows, strict=False):
        while line + 1 < number:
            ws.append([])
            line += 1
        errors = {i: pr.error for i, pr in r.problems if pr.error is not None}
        ws.append([_error(ws, errors[i]) if i in errors else _cell(ws, v) for i, v in enumerate(r.cells)])
        line = number
        mapping[number] = r
    tmp = path.with_name(f".{path.name}.tmp")
    os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    os.chmod(tmp, 0o600)
    wb.save(tmp)
    os.replace(tmp, path)
    return mapping


def _cell(ws: Any, value: str) -> Any:
    if not value:
        return None
    from openpyxl.cell import WriteOnlyCell  # deferred with the Workbook above (loaded by then: a dict lookup)

    return make_xlsx_text_safe(WriteOnlyCell(ws, value=value))


def _error(ws: Any, error: str) -> Any:
    from openpyxl.cell import WriteOnlyCell  # deferred with the Workbook above (loaded by then: a dict lookup)

    cell = WriteOnlyCell(ws, value=error)
    cell.data_type = "e"
    return cell


def write_retry_link(run_dir: str | os.PathLike[str], source: RetrySource, mapping: Mapping[int, RetryRow],
                     excluded: Sequence[Exclusion] = ()) -> Path:
    """Record in the new run folder which earlier run it retries, and which earlier row each new row was."""
    path = RunFolder(Path(run_dir)).retry_source
    data = {
        "retried_from": str(source.earlier_run.resolve()),
        "results": str(source.results_path.resolve()),
        "rows": {str(new): {"earlier_row": r.earlier_row, "sheet": r.sheet, "sheet_row": r.sheet_row}
                 for new, r in mapping.items()},
        "excluded": [{"earlier_row": e.row.earlier_row, "sheet": e.row.sheet, "sheet_row": e.row.sheet_row,
                      "reason": e.reason} for e in excluded],
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_retry_link(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``retry-source.json`` of a run folder, or None when the run was not a retry."""
    path = RunFolder(Path(run_dir)).retry_source
    if not path.is_file():
        return None
    try:
        link: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path}: unreadable ({exc})") from exc
    return link


def require_rows(source: RetrySource, rows: Sequence[RetryRow]) -> None:
    """``UsageError`` when there is nothing left to retry."""
    if not rows:
        raise UsageError(f"{source.results_path}: nothing to retry (the {FAILED} and {INVALID} sheets have no rows "
                         "left to run)")
