"""Excel rosters (``.xlsx``/``.xlsm``): the sheet's cells as the text Excel shows, read with python-calamine.

Numbers Excel stores as numbers come back as Excel shows them (``123``, not ``123.0``), dates as ``YYYY-MM-DD``,
booleans as ``TRUE``/``FALSE``; a number whose format pads it with zeros (``000000``, Zip code ``00000``) as its
padded text (``000777``). :func:`read_excel` returns the sheet column-wise for :mod:`provisioning.roster.reader`,
padded from cell A1 (grid row ``i`` is Excel row ``i + 1``), plus what the sheet's XML says beyond the values. The
sheet read is ``--sheet``'s, else the first *visible* sheet with known headings: a hidden sheet (an old "Leavers"
list) is read only when named.

python-calamine is used directly, not through ``pandas.read_excel``: pandas held the sheet three times over while
the text columns were built (the memory figures are in bench/README.md), and it turned cells reading ``NA``,
``None``, ``null`` or ``N/A`` into empty values even with ``dtype=object``. Rows are streamed 2,048 at a time into
text columns, a column's repeated values sharing one string.

Error values and formulas without a saved value, which calamine reads as empty cells, are found by
:func:`provisioning.roster.excelscan.scan_sheet` in the sheet's XML, as are hidden rows, autoFilters and tables'
totals rows; :mod:`provisioning.roster.reader` turns them into row issues (:func:`problem_message`) or, in the header
row, a :class:`RosterError` (:func:`header_problem_message`).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

from provisioning.errors import RosterError
from provisioning.roster.excelscan import CellProblem, SheetScan, scan_sheet
from provisioning.roster.mapping import canonical_field

log = logging.getLogger(__name__)

EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_CHUNK_ROWS = 2048  # rows converted to text columns at a time
HEADER_SEARCH_ROWS = 20  # rows searched for the header (title rows above it are skipped)
_REOPEN = "open it in Excel and save it again as .xlsx, or save it as .csv"


def excel_text(value: Any) -> str:
    """A calamine cell value as the text Excel shows (the common cases)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)  # 123, not 123.0 (as Excel shows it)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _open_book(p: Path) -> CalamineWorkbook:
    """The workbook, or ``RosterError`` saying it cannot be opened and what to do."""
    try:
        return CalamineWorkbook.from_path(str(p))
    except Exception as exc:  # calamine raises its own types for corrupt files
        raise RosterError(p, f"cannot open the workbook ({type(exc).__name__}: {str(exc).strip()[:200]}); "
                             f"{_REOPEN}") from exc


def worksheet_names(p: Path) -> list[str]:
    """The names of the workbook's worksheets, in order (``RosterError`` when it cannot be opened)."""
    with _open_book(p) as book:
        return [m.name for m in book.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]


@dataclass(frozen=True, slots=True)
class ExcelSheet:
    """The sheet :func:`read_excel` chose: its name, its cells as text columns from A1, what its XML says beyond
    the values (:class:`~provisioning.roster.excelscan.SheetScan`) and the hidden sheets passed over to reach it."""

    name: str
    columns: list[list[str]]
    scan: SheetScan
    skipped_hidden: tuple[str, ...] = ()


_DATETIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?")


def iso_datetime(text: str) -> str:
    """An Excel date-time as :func:`excel_text` shows it (``2024-03-01 09:30:00``) as the ISO 8601 UTC time Graph's
    DateTimeOffset properties take (``2024-03-01T09:30:00Z``, to the nearest second); other texts unchanged (a
    date alone, ``2024-03-01``, is sent as midnight UTC by :meth:`UserRow.graph_body`)."""
    if not _DATETIME_TEXT.fullmatch(text):
        return text
    when = dt.datetime.fromisoformat(text)
    if when.microsecond:
        when = when.replace(microsecond=0) + dt.timedelta(seconds=round(when.microsecond / 1e6))
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def read_excel(p: Path, sheet: str | None, renames: Mapping[str, str | None] | None = None) -> ExcelSheet:
    """The chosen sheet of ``p``: ``sheet`` by name, else the first visible sheet with known headings (``renames``:
    a mapping file's too) in its first :data:`HEADER_SEARCH_ROWS` rows. A hidden or very hidden sheet, such as an
    old "Leavers" list kept out of sight, is read only when named."""
    with _open_book(p) as book:
        sheets = [m for m in book.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
        names = [m.name for m in sheets]
        if sheet is not None and sheet not in names:
            raise RosterError(p, f"no sheet named {sheet!r}; the workbook has {', '.join(map(repr, names))}")
        hidden = [m.name for m in sheets if m.visible != SheetVisibleEnum.Visible]
        chosen: tuple[str, list[list[str]]] | None = None
        for name in [sheet] if sheet is not None else [n for n in names if n not in hidden]:
            columns = _sheet_columns(p, book, name)
            if sheet is not None or _has_known_header(columns, renames):
                chosen = name, columns
                break
            del columns
        if chosen is None:
            with_header = [n for n in hidden if _has_known_header(_sheet_columns(p, book, n), renames)]
    if chosen is None:
        if with_header:
            raise RosterError(p, f"no visible sheet has a header row with known column names; the hidden sheet "
                                 f"{with_header[0]!r} has one: if it holds the people to provision, give "
                                 f"--sheet {with_header[0]!r} (or unhide it in Excel)")
        raise RosterError(p, "no sheet has a header row with known column names such as givenName, surname, "
                             "userPrincipalName; pick one with --sheet or use `provision.py template`")
    name, columns = chosen
    scan = scan_sheet(p, name)
    for pr in scan.problems:
        _place(columns, pr.row, pr.col, pr.error)
    for row, col, text in scan.shown:
        _place(columns, row, col, text)
    skipped = tuple(n for n in names[:names.index(name)] if n in hidden) if sheet is None else ()
    return ExcelSheet(name, columns, scan, skipped)


def _sheet_columns(p: Path, book: CalamineWorkbook, name: str) -> list[list[str]]:
    """The sheet's cells as text columns padded from A1, built from calamine's rows a chunk at a time (so its
    row lists never all exist at once); a column's repeated values share one string."""
    try:
        sh = book.get_sheet_by_name(name)
    except Exception as exc:
        raise RosterError(p, f"cannot read the sheet {name!r} ({type(exc).__name__}: {str(exc).strip()[:200]}); "
                             f"{_REOPEN}") from exc
    if sh.start is None:
        return []
    (first_row, first_col), height, width = sh.start, sh.height, sh.width
    columns: list[list[str]] = []
    seen: list[dict[str, str]] = []
    chunk: list[list[Any]] = []
    for row in sh.iter_rows():
        chunk.append(row)
        if len(chunk) == _CHUNK_ROWS:
            _add_chunk(chunk, columns, seen)
            chunk = []
    _add_chunk(chunk, columns, seen)
    del sh, seen, chunk
    # calamine 0.9 yields the rows from row 1 but the columns from the first used one: pad what it left out
    top = first_row + height - (len(columns[0]) if columns else 0)
    left = first_col + width - len(columns)
    if top > 0:
        columns = [[""] * top + col for col in columns]
    if left > 0:
        n = len(columns[0]) if columns else first_row + height
        columns[:0] = [[""] * n for _ in range(left)]
    return columns


def _add_chunk(chunk: list[list[Any]], columns: list[list[str]], seen: list[dict[str, str]]) -> None:
    """Append ``chunk`` (rows) to ``columns`` as text."""
    if not chunk:
        return
    if not columns:
        columns.extend([] for _ in chunk[0])
        seen.extend({} for _ in chunk[0])
    width = len(columns)
    for row in chunk:
        if len(row) != width:  # calamine's rows are rectangular; be safe anyway
            row.extend([""] * (width - len(row)))
            del row[width:]
    for j, values in enumerate(zip(*chunk, strict=True)):
        if not set(map(type, values)) <= {str}:
            values = tuple(map(excel_text, values))
        if len(set(values)) * 4 < len(values):  # few distinct values: keep one string per value
            cache = seen[j]
            columns[j].extend(map(cache.setdefault, values, values))
        else:
            columns[j].extend(values)


def _place(columns: list[list[str]], row: int, col: int, text: str | None) -> None:
    """Make room for cell ``(row, col)`` in the grid and, unless ``text`` is None, make it read ``text`` (an
    error cell reads as the error Excel shows, a zero-padded number as its padded text)."""
    height = len(columns[0]) if columns else 0
    while len(columns) <= col:
        columns.append([""] * height)
    if row >= height:
        for c in columns:
            c.extend([""] * (row + 1 - height))
    if text is not None:
        columns[col][row] = text


def problem_message(pr: CellProblem, column: str, *, used: bool, secret: bool = False) -> tuple[str, str]:
    """``(code, message)`` for a data cell of ``column`` (as written); ``used``: the column is sent to Entra ID.

    ``secret`` (the password column): the formula is not quoted (its text may be the password).
    """
    if pr.error is not None:
        what = f"shows the Excel error {pr.error}"
        cause = " (its formula failed)" if pr.formula else " instead of a value"
    else:
        what = f"holds {_formula(pr, secret)} but no calculated value was saved"
        cause = " (the file was written by a program that does not calculate)"
    if not used:
        shown = pr.error if pr.error is not None else "the cell empty"
        return ("excel-error-ignored", f"{column}: the cell {what}; the column is not sent to Entra ID, so the row "
                                       f"goes ahead (the report shows {shown})")
    if pr.error is not None:
        todo = "fix the formula or type the value" if pr.formula else "type the value"
        return ("excel-error", f"{column}: the cell {what}{cause}; {todo}")
    return ("formula-no-value", f"{column}: the cell {what}{cause}; open the workbook in Excel, let it calculate "
                                f"and save, or type the value")


def header_problem_message(pr: CellProblem, header_row: bool) -> str:
    """The :class:`RosterError` text for a problem cell in (or above) the header row."""
    ref = f"{column_letter(pr.col)}{pr.row + 1}"
    where = f"the header cell {ref}" if header_row else f"the cell {ref} (above the header row)"
    if pr.error is not None:
        return f"{where} shows the Excel error {pr.error}; type the column name there and save the workbook"
    return (f"{where} holds {_formula(pr, False)} but no calculated value was saved; open the workbook in Excel, "
            f"let it calculate and save, or type the column name")


def _formula(pr: CellProblem, secret: bool) -> str:
    if not pr.formula or secret:
        return "a formula"
    text = pr.formula if len(pr.formula) <= 60 else pr.formula[:57] + "..."
    return f"the formula ={text}"


def column_letter(index: int) -> str:
    """Excel column letter of a 0-based index."""
    s = ""
    index += 1
    while index:
        index, r = divmod(index - 1, 26)
        s = chr(65 + r) + s
    return s


def _has_known_header(columns: Sequence[Sequence[str]], renames: Mapping[str, str | None] | None) -> bool:
    for r in range(min(len(columns[0]) if columns else 0, HEADER_SEARCH_ROWS)):
        if any(canonical_field(col[r], renames) for col in columns if col[r]):
            return True
    return False
