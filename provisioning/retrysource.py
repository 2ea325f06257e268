"""Read the Failed and Invalid sheets of a ``results.xlsx``, as the user edited them, into a roster for ``retry``.

The sheets hold the roster's own columns first (original headers, original order; any of them may have been
corrected) and then the result columns (Status, Error code, Message, Request id, Attempts, Roster row), which are
ignored except "Roster row": it links each row back to the row of the run that wrote the workbook. The rows are
read with pandas through calamine, every cell as text, and written as an ordinary roster workbook in the new run
folder, so the ordinary ``run`` path loads, validates and runs it.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping, Sequence

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from .cells import make_xlsx_text_safe
from .errors import RunFolderError, UsageError
from .fields import canonical_field
from .excel import excel_text
from .report_model import FAILED, INVALID, RESULT_COLUMNS

log = logging.getLogger(__name__)

RESULTS_XLSX = "results.xlsx"
RETRY_ROSTER_NAME = "retry-roster.xlsx"
RETRY_SOURCE_NAME = "retry-source.json"
ROSTER_ROW = RESULT_COLUMNS[-1]
_RESULT_SET = frozenset(RESULT_COLUMNS)


@dataclass(frozen=True, slots=True)
class RetryRow:
    """One row to retry: where it was in the workbook, which earlier roster row it was, and its roster cells."""

    sheet: str
    sheet_row: int  # the row number in the Failed/Invalid sheet
    earlier_row: int | None  # "Roster row": the row of the run that wrote the workbook (None: added by the user)
    cells: tuple[str, ...]  # aligned with RetrySource.headers


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
    """``RUN_DIR`` or ``RESULTS.xlsx`` -> the workbook's path (``RunFolderError`` when there is none)."""
    path = Path(target)
    if path.is_dir():
        path = path / RESULTS_XLSX
    if not path.is_file():
        raise RunFolderError(f"{target}: no {RESULTS_XLSX} here; give a run folder or its results workbook")
    return path


def read_retry_source(target: str | os.PathLike[str]) -> RetrySource:
    """Read the Failed and Invalid sheets (as edited) of ``RUN_DIR/results.xlsx`` or of a given workbook."""
    path = locate_results(target)
    try:
        book = pd.ExcelFile(path, engine="calamine")
    except Exception as exc:  # calamine raises its own types for corrupt files
        raise RunFolderError(f"{path}: cannot open the workbook ({type(exc).__name__}: {exc})") from exc
    with book:
        names = [str(n) for n in book.sheet_names]
        missing = [s for s in (FAILED, INVALID) if s not in names]
        if len(missing) == 2:
            raise RunFolderError(f"{path}: no {FAILED} or {INVALID} sheet; is this a results workbook of this tool?")
        sheets = [(s, pd.read_excel(book, sheet_name=s, header=None, dtype=object, keep_default_na=False,
                                    na_filter=False))
                  for s in (FAILED, INVALID) if s not in missing]
    headers: list[str] = []
    rows: list[RetryRow] = []
    for name, frame in sheets:
        grid = [[_text(v) for v in line] for line in frame.itertuples(index=False, name=None)]
        if not grid:
            continue
        sheet_headers, row_index, keep = _columns(grid[0])
        for h in sheet_headers:
            if h not in headers:
                headers.append(h)
        for offset, line in enumerate(grid[1:], start=2):
            line = line + [""] * (len(grid[0]) - len(line))
            by_header = {h: line[i] for h, i in zip(sheet_headers, keep)}
            if not any(v.strip() for v in by_header.values()):
                continue
            earlier = _int(line[row_index]) if row_index is not None else None
            rows.append(RetryRow(name, offset, earlier, tuple(by_header.get(h, "") for h in headers)))
    width = len(headers)
    rows = [RetryRow(r.sheet, r.sheet_row, r.earlier_row, r.cells + ("",) * (width - len(r.cells))) for r in rows]
    log.info("%s: %d rows to retry from %s", path, len(rows), ", ".join(n for n, _ in sheets))
    return RetrySource(path, path.parent, tuple(headers), tuple(rows))


def _columns(header: Sequence[str]) -> tuple[list[str], int | None, list[int]]:
    """(roster headers, index of "Roster row", indices of the roster columns) of a sheet's header line.

    The result columns are the last occurrence of each result heading (so a roster column that happens to be
    called "Status" survives). Columns without a heading are left out (a roster cannot use them either).
    """
    stripped = [h.strip() for h in header]
    result_at = {name: max(i for i, h in enumerate(stripped) if h == name)
                 for name in RESULT_COLUMNS if name in stripped}
    keep = [i for i, h in enumerate(stripped) if h and i not in result_at.values()]
    return [stripped[i] for i in keep], result_at.get(ROSTER_ROW), keep


def _text(value: Any) -> str:
    """A calamine cell as the text a user sees (numbers typed into Excel come back without ``.0``)."""
    if value is pd.NaT:
        return ""
    return excel_text(value)


def _int(text: str) -> int | None:
    try:
        return int(float(text)) if text.strip() else None
    except ValueError:
        return None


def exclude_created(source: RetrySource, *, created_rows: Collection[int],
                    created_upns: Collection[str]) -> tuple[tuple[RetryRow, ...], tuple[Exclusion, ...]]:
    """Split the rows into those to retry and those the earlier run already created (never re-sent).

    A row is excluded when its "Roster row" names a row the earlier run created, or when its userPrincipalName
    cell names a user the earlier run created (case-insensitive).
    """
    upn_at = [i for i, h in enumerate(source.headers) if canonical_field(h) == "userPrincipalName"]
    upns = {u.lower() for u in created_upns if u}
    keep: list[RetryRow] = []
    dropped: list[Exclusion] = []
    for r in source.rows:
        upn = r.cells[upn_at[0]].strip() if upn_at else ""
        if r.earlier_row is not None and r.earlier_row in created_rows:
            dropped.append(Exclusion(r, f"roster row {r.earlier_row} was already created by the earlier run"))
        elif upn and upn.lower() in upns:
            dropped.append(Exclusion(r, f"{upn} was already created by the earlier run"))
        else:
            keep.append(r)
    return tuple(keep), tuple(dropped)


def write_retry_roster(path: str | os.PathLike[str], headers: Sequence[str], rows: Iterable[RetryRow]) -> \
        dict[int, RetryRow]:
    """Write the rows as a roster workbook (one sheet, header on row 1); return ``{new row number: RetryRow}``.

    Every cell is written as text (formula-looking text quoted, never evaluated), so the roster reader reads back
    exactly what the user left in the Failed/Invalid sheets. The file is created 0600, like ``passwords.csv``:
    a password the user typed into the sheet is part of this roster.
    """
    path = Path(path)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Roster")
    ws.append([_cell(ws, h) for h in headers])
    mapping: dict[int, RetryRow] = {}
    for number, r in enumerate(rows, start=2):
        ws.append([_cell(ws, v) for v in r.cells])
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
    return make_xlsx_text_safe(WriteOnlyCell(ws, value=value))


def write_retry_link(run_dir: str | os.PathLike[str], source: RetrySource, mapping: Mapping[int, RetryRow],
                     excluded: Sequence[Exclusion] = ()) -> Path:
    """Record in the new run folder which earlier run it retries, and which earlier row each new row was."""
    path = Path(run_dir) / RETRY_SOURCE_NAME
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
    path = Path(run_dir) / RETRY_SOURCE_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path}: unreadable ({exc})") from exc


def require_rows(source: RetrySource, rows: Sequence[RetryRow]) -> None:
    """``UsageError`` when there is nothing left to retry."""
    if not rows:
        raise UsageError(f"{source.results_path}: nothing to retry (the {FAILED} and {INVALID} sheets have no rows "
                         "left to run)")
