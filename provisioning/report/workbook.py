"""Write ``results.xlsx``: Summary (with a chart), Created, Updated, Skipped, Failed, Invalid.

The writer streams: the workbook is opened in openpyxl's write-only mode, every data sheet is open at once (each
spools to its own temporary file), and the rows are read in a single pass and appended to the sheet their status
belongs to. Only the first :data:`SAMPLE_ROWS` rows are held in memory, to size the columns before the first row
is written (write-only sheets write their column widths, frozen pane and header first). A 100,000-row run therefore
needs about as much memory as a 1,000-row run.

Failed and Invalid start with the run's columns (Row, userPrincipalName, Error code, "Why / what to do"), then the
roster's columns as typed, then Status, Request id and Attempts: Row and the UPN stay frozen in view, each cell an
error points at is highlighted and carries a note with its message, the messages wrap. Every sheet prints landscape,
one page wide, its header on every page; Status cells are coloured by outcome (conditional formatting: no cost per
row).

Every text cell goes through :func:`provisioning.cells.make_xlsx_text_safe`, so a roster cell or a Graph message
that starts like a formula is stored as quoted text: Excel and LibreOffice show it and never evaluate it, and
``retry`` reads back exactly what was written. Password columns of the roster are written empty.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.data_source import AxDataSource, StrRef
from openpyxl.chart.label import DataLabelList
from openpyxl.comments import Comment
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from provisioning.bulk import gc_paused
from provisioning.cells import ERROR_TEXTS, FORMULA_TRIGGERS, make_xlsx_text_safe
from provisioning.fields import is_password_header
from provisioning.report.model import (
    CREATED_COLUMNS,
    DRY_RUN_STATUSES,
    LEAD_COLUMNS,
    LIVE_STATUSES,
    PASSWORD_GENERATED_NOTE,
    SKIPPED_COLUMNS,
    TRAIL_COLUMNS,
    UPDATED_COLUMNS,
    ReportRow,
    ReportSummary,
)
from provisioning.store.folder import CREATED, FAILED, INVALID, SKIPPED, SUMMARY, UPDATED

log = logging.getLogger(__name__)

SAMPLE_ROWS = 1000  # rows held back to size the columns
MIN_WIDTH, MAX_WIDTH = 8, 60
EXCEL_MAX_CELL = 32767  # characters; a longer cell makes Excel "repair" the file
HIGHLIGHT = PatternFill(fill_type="solid", start_color="FFFFC7CE", end_color="FFFFC7CE")  # light red
BOLD = Font(bold=True)
WRAP = Alignment(wrap_text=True)
TOP, TOP_WRAP = Alignment(vertical="top"), Alignment(wrap_text=True, vertical="top", horizontal="left")
CENTRE = Alignment(horizontal="center")  # the Row numbers: not flush against the text of the next column
SUMMARY_WIDTH = 70  # the Summary's value column
MESSAGE_WIDTH = 60  # "Why / what to do": wrapped in lines of about this many characters
NOTE_AUTHOR = "provision"
#: Notes per sheet: openpyxl keeps every note of a streamed sheet in memory until it is saved (some 10 kB each);
#: past these, highlighted cells keep their fill and the "Why / what to do" column still says why.
MAX_NOTES = 200
LEAD_NOTE = ("Written by the run; retry ignores this column. Correct the row in the roster's columns to the right "
             "(the highlighted cells), then run retry on this workbook.")
#: Status cell colours (fill, font) by a word of the status text, first match wins.
STATUS_COLOURS: tuple[tuple[str, str, str], ...] = (
    ("follow-up", "FFFFEB9C", "FF9C5700"),  # amber: the user exists, a follow-up did not finish
    ("fail", "FFFFC7CE", "FF9C0006"),  # red
    ("invalid", "FFFFC7CE", "FF9C0006"),
    ("unknown", "FFFFEB9C", "FF9C5700"),
    ("not sent", "FFFFEB9C", "FF9C5700"),
    ("create", "FFC6EFCE", "FF006100"),  # green
    ("update", "FFDDEBF7", "FF1F4E78"),  # blue
    ("skip", "FFEDEDED", "FF3A3A3A"),  # grey
)
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # XML 1.0 cannot hold these at all
_TRIGGER_CHARS = frozenset(c[0] for c in FORMULA_TRIGGERS)

Converter = Callable[[ReportRow], list[Any]]


def write_results_workbook(path: str | os.PathLike[str], *, headers: Sequence[str], rows: Iterable[ReportRow],
                           summary: ReportSummary, redact: Sequence[str] = ()) -> None:
    """Write the results workbook of one run to ``path`` (atomically: a temporary file, then a rename).

    ``headers`` are the roster's column headers as written in it, in order; each row's ``cells`` follow them.
    ``rows`` is consumed once, in order. Columns named in ``redact`` and every password-looking column
    (:func:`provisioning.fields.is_password_header`) are written empty on the Failed and Invalid sheets.
    """
    with gc_paused():  # a bulk step (provisioning.bulk)
        book = ResultsWorkbook(path, headers=headers, redact=redact)
        for row in rows:
            book.add(row)
        book.save(summary)


class ResultsWorkbook:
    """A results workbook written as its rows come (see :func:`write_results_workbook`): :meth:`add` them in
    roster order, from one thread at a time, then :meth:`save` with the Summary, which is the first sheet but is
    filled last (every streamed sheet spools to a file of its own until the workbook is saved)."""

    def __init__(self, path: str | os.PathLike[str], *, headers: Sequence[str], redact: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self._wb = Workbook(write_only=True)
        self._summary = self._wb.create_sheet(SUMMARY)
        self._headers = tuple(headers)
        self._redacted = frozenset(i for i, h in enumerate(headers) if h in redact or is_password_header(h))
        self._sample: list[ReportRow] = []
        self._sheets: dict[str, _DataSheet] | None = None
        self.total = 0

    def add(self, row: ReportRow) -> None:
        """Append one row to the sheet its status belongs to (the first rows are held to size the columns)."""
        self.total += 1
        if self._sheets is None:
            self._sample.append(row)
            if len(self._sample) >= SAMPLE_ROWS:
                self._open()
            return
        for name in row.sheets():
            self._sheets[name].append(row)

    def _open(self) -> dict[str, _DataSheet]:
        headers, redacted = self._headers, self._redacted
        roster_columns = LEAD_COLUMNS + headers + TRAIL_COLUMNS
        layout: dict[str, tuple[tuple[str, ...], Converter]] = {
            CREATED: (CREATED_COLUMNS, _created_values),
            UPDATED: (UPDATED_COLUMNS, _updated_values),
            SKIPPED: (SKIPPED_COLUMNS, _skipped_values),
            FAILED: (roster_columns, lambda r: _roster_values(r, headers, redacted)),
            INVALID: (roster_columns, lambda r: _roster_values(r, headers, redacted)),
        }
        sample = self._sample
        sheets: dict[str, _DataSheet] = {}
        for name, (columns, convert) in layout.items():
            if name in (FAILED, INVALID):
                sheets[name] = _DataSheet(self._wb, name, columns, convert, sample, freeze="C2",
                                          wrap=columns.index(LEAD_COLUMNS[-1]), notes={i: LEAD_NOTE for i in
                                                                                       range(len(LEAD_COLUMNS))})
                sheets[name].highlight = _highlighter(headers)
            else:
                sheets[name] = _DataSheet(self._wb, name, columns, convert, sample, freeze="D2")
        self._sheets, self._sample = sheets, []
        for row in sample:
            for name in row.sheets():
                sheets[name].append(row)
        return sheets

    def save(self, summary: ReportSummary) -> None:
        """Write the Summary, close the sheets and save, atomically (a temporary file, then a rename)."""
        sheets = self._sheets if self._sheets is not None else self._open()
        for sheet in sheets.values():
            sheet.finish()
        _write_summary(self._summary, summary)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self._wb.save(tmp)
            os.replace(tmp, self.path)
        finally:
            if tmp.exists():
                tmp.unlink()
        log.info("wrote %s (%d rows)", self.path, self.total)


class _DataSheet:
    """One streamed sheet: bold header with the ``freeze`` pane, widths from a sample, autofilter over what was
    written, Status cells coloured, print setup; ``wrap``: the index of a message column, wrapped in
    :data:`MESSAGE_WIDTH`; ``notes``: a note on header cells, by column index."""

    def __init__(self, wb: Workbook, title: str, columns: Sequence[str], convert: Converter,
                 sample: Sequence[ReportRow], *, freeze: str = "A2", wrap: int | None = None,
                 notes: Mapping[int, str] | None = None) -> None:
        self.ws = wb.create_sheet(title)
        self.title = title
        self.columns = tuple(columns)
        self.convert = convert
        self.wrap = wrap
        self.highlight: Callable[[Any, ReportRow, list[Any]], None] | None = None
        self.rows = 0
        mine = [v for r in sample if title in r.sheets() for v in _lines(convert(r))]
        for index, width in enumerate(_widths(self.columns, mine), start=1):
            if wrap is not None and index == wrap + 1:
                width = float(MESSAGE_WIDTH)
            self.ws.column_dimensions[get_column_letter(index)].width = width
        self.ws.freeze_panes = freeze
        _print_setup(self.ws)
        header = [_header_cell(self.ws, text) for text in self.columns]
        for index, note in (notes or {}).items():
            header[index].comment = _note(note)
        self.ws.append(header)

    def append(self, row: ReportRow) -> None:
        for line in _lines(self.convert(row)):
            values = [_safe(self.ws, v) for v in line]
            if type(values[0]) is int:
                number = values[0] = WriteOnlyCell(self.ws, value=values[0])
                number.alignment = CENTRE
            if self.wrap is not None and values[self.wrap] is not None:
                cell = values[self.wrap]
                if not isinstance(cell, Cell):
                    cell = values[self.wrap] = WriteOnlyCell(self.ws, value=cell)
                cell.alignment = WRAP
                _fit_height(self.ws, self.rows + 2, str(cell.value), MESSAGE_WIDTH)
            if self.highlight is not None and row.issues:
                self.highlight(self.ws, row, values)
            self.ws.append(values)
            self.rows += 1

    def finish(self) -> None:
        last = get_column_letter(max(len(self.columns), 1))
        self.ws.auto_filter.ref = f"A1:{last}{self.rows + 1}"
        statuses = [i for i, c in enumerate(self.columns) if c == "Status"]
        if statuses and self.rows:
            _colour_status(self.ws, get_column_letter(statuses[-1] + 1), self.rows + 1)


def _fit_height(ws: Any, row: int, text: str, width: int) -> None:
    """A row tall enough for ``text`` wrapped in a column ``width`` characters wide (set before the row is
    written: a streamed sheet writes each row's height with it, and Excel and LibreOffice do not grow it)."""
    per_line = max(int(width * 1.15), 1)  # a column is `width` digits wide; text averages narrower than a digit
    lines = sum(max(1, -(-len(part) // per_line)) for part in text.splitlines() or [""])
    if lines > 1:
        ws.row_dimensions[row].height = 15 * min(lines, 27)  # at most about a screen's height


def _print_setup(ws: Any) -> None:
    """Landscape, one page wide (as many pages down as it takes), the header row on every page."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"


def _colour_status(ws: Any, column: str, last_row: int) -> None:
    """Status cells filled by outcome, as conditional formats over the column (one rule per colour)."""
    ref = f"{column}2:{column}{last_row}"
    for word, fill, font in STATUS_COLOURS:
        ws.conditional_formatting.add(ref, FormulaRule(  # type: ignore[no-untyped-call]
            formula=[f'ISNUMBER(SEARCH("{word}",{column}2))'], stopIfTrue=True,
            fill=PatternFill(fill_type="solid", start_color=fill, end_color=fill), font=Font(color=font)))


def _note(text: str) -> Comment:
    """A cell note sized to its text (about 40 characters a line)."""
    comment = Comment(_clean(text), NOTE_AUTHOR)
    lines = sum(max(1, -(-len(part) // 40)) for part in text.splitlines() or [""])
    comment.width, comment.height = 300, min(40 + 15 * lines, 400)
    return comment


def _header_cell(ws: Any, text: str) -> Cell:
    cell = make_xlsx_text_safe(WriteOnlyCell(ws, value=_clean(text)))
    cell.font = BOLD
    return cell


def _clean(value: str) -> str:
    """Text Excel can hold: no XML-illegal control characters, at most 32,767 characters."""
    if _ILLEGAL.search(value):
        value = _ILLEGAL.sub("\ufffd", value)
    if len(value) > EXCEL_MAX_CELL:
        value = value[: EXCEL_MAX_CELL - 1] + "\u2026"
    return value


def _safe(ws: Any, value: Any) -> Any:
    """The value to append: plain values as they are; formula-looking or odd text as a quoted-text cell."""
    if type(value) is not str:
        return value
    if not value:
        return None
    if (value[0] in _TRIGGER_CHARS or value in ERROR_TEXTS or len(value) > EXCEL_MAX_CELL
            or _ILLEGAL.search(value)):
        return make_xlsx_text_safe(WriteOnlyCell(ws, value=_clean(value)))
    return value


def _highlighter(headers: Sequence[str]) -> Callable[[Any, ReportRow, list[Any]], None]:
    """Fill the cells that validation errors point at (by the issue's column header, as written in the roster)."""
    exact: dict[str, int] = {}
    folded: dict[str, int] = {}
    for index, header in enumerate(headers):
        exact.setdefault(header, index)
        folded.setdefault(_fold(header), index)

    lead = len(LEAD_COLUMNS)
    notes = [0]  # given so far on this sheet (one highlighter per sheet)

    def highlight(ws: Any, row: ReportRow, values: list[Any]) -> None:
        said: dict[int, list[str]] = {}
        for issue in row.error_issues():
            index = exact.get(issue.column)
            if index is None:
                index = folded.get(_fold(issue.column))
            if index is None or index >= len(headers):
                continue
            said.setdefault(index, []).append(issue.message)
            cell = values[lead + index]
            if not isinstance(cell, Cell):
                cell = values[lead + index] = WriteOnlyCell(ws, value=cell)
            cell.fill = HIGHLIGHT
            if issue.code == "excel-error" and cell.value in ERROR_TEXTS:
                # the roster's cell held the error value, not its text: keep it an error, so that an unedited
                # cell fed back to `retry` is refused again instead of being sent as the text "#N/A"
                cell.data_type = "e"
        for index, messages in said.items():
            if notes[0] < MAX_NOTES:
                values[lead + index].comment = _note("\n".join(dict.fromkeys(messages)))
                notes[0] += 1

    return highlight


def _fold(text: str) -> str:
    return re.sub(r"[\W_]+", "", text or "").casefold()


def _widths(columns: Sequence[str], rows: Sequence[list[Any]]) -> list[float]:
    """Column widths (in characters) from the header and a sample of rows."""
    widths = [float(len(c)) + 2 for c in columns]
    for values in rows:
        for index, value in enumerate(values[: len(widths)]):
            if value is not None:
                text = value if isinstance(value, str) else str(value)
                longest = max((len(part) for part in text.splitlines()), default=0)
                if longest + 2 > widths[index]:
                    widths[index] = float(longest + 2)
    return [min(max(w, MIN_WIDTH), MAX_WIDTH) for w in widths]


# --- sheet rows -------------------------------------------------------------------------------------------------

def _created_values(r: ReportRow) -> list[Any]:
    password = PASSWORD_GENERATED_NOTE if r.password_generated else ""
    return [r.row, r.status_text(), r.upn, r.display_name, r.object_id, r.followups, password, r.warnings_text()]


def _lines(values: list[Any]) -> list[list[Any]]:
    """A converter's answer as sheet lines: one list of values, or (Updated sheet) a list of such lists."""
    return values if values and isinstance(values[0], list) else [values]


def _updated_values(r: ReportRow) -> list[Any]:
    """One line per changed property; a row without recorded changes gets one line with its message."""
    head = [r.row, r.status_text(), r.upn, r.display_name, r.object_id]
    tail = [r.followups, r.warnings_text()]
    if not r.changes:
        return [head + [r.shown_message(), "", ""] + tail]
    return [head + [prop, old, new] + tail for prop, old, new in r.changes]


def _skipped_values(r: ReportRow) -> list[Any]:
    return [r.row, r.status_text(), r.upn, r.display_name, r.object_id, r.shown_message(), r.followups]


def _roster_values(r: ReportRow, headers: Sequence[str], redacted: frozenset[int]) -> list[Any]:
    width = len(headers)
    cells: list[Any] = list(r.cells[:width])
    if len(cells) < width:
        cells.extend([""] * (width - len(cells)))
    for index in redacted:
        cells[index] = ""
    return [r.row, r.upn, r.code_text(), r.message_text(), *cells, r.status_text(), r.request_id,
            r.attempts or None]


# --- Summary ----------------------------------------------------------------------------------------------------

def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _summary_items(s: ReportSummary) -> list[tuple[str, Any]]:
    if s.passwords_file:
        passwords = (f"Generated passwords are in {s.passwords_file} (readable only by its owner); "
                     "this workbook never contains them.")
    else:
        passwords = "No passwords were generated."
    passwords += " Passwords given in the roster are not copied into this workbook."
    mode = "dry run: nothing was changed in the tenant" if s.dry_run else "live"
    return [
        ("Tenant name", s.tenant_name or "(not recorded)"), ("Default domain", s.default_domain or "(not recorded)"),
        ("Tenant", s.tenant),
        ("Roster", s.roster), ("Mode", mode), ("Run folder", s.run_dir),
        ("Retried from", s.retried_from or "(not a retry)"),
        ("Started (UTC)", _utc(s.started)), ("Ended (UTC)", _utc(s.ended)),
        ("Duration (s)", None if s.duration_s is None else round(s.duration_s, 3)),
        ("Users per second", None if s.users_per_s is None else round(s.users_per_s, 2)),
        ("Passwords", passwords),
        ("Retry failed and invalid rows", s.retry_command), ("Resume if interrupted", s.resume_command),
    ]


def _write_summary(ws: Any, s: ReportSummary) -> None:
    """Key/value lines, the counts by status and by error code, and a bar chart of the outcomes to their right
    (the values wrap in column B, so no text runs under the chart)."""
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = SUMMARY_WIDTH
    ws.column_dimensions["C"].width = 3
    _print_setup(ws)
    ws.append([_header_cell(ws, "Item"), _header_cell(ws, "Value")])
    line = 1
    for key, value in _summary_items(s):
        cell = _safe(ws, value)
        if isinstance(value, datetime):
            cell = WriteOnlyCell(ws, value=value)
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
            cell.alignment = Alignment(horizontal="left", vertical="top")
        elif cell is not None:
            if not isinstance(cell, Cell):
                cell = WriteOnlyCell(ws, value=cell)
            cell.alignment = TOP_WRAP
            _fit_height(ws, line + 1, str(cell.value), SUMMARY_WIDTH)
        label = WriteOnlyCell(ws, value=key)
        label.alignment = TOP
        ws.append([label, cell])
        line += 1

    ws.append([])
    ws.append([_header_cell(ws, "Outcome"), _header_cell(ws, "Rows")])
    line += 2
    first_count = line + 1
    statuses = list(DRY_RUN_STATUSES if s.dry_run else LIVE_STATUSES)
    statuses += sorted(k for k in s.counts if k not in statuses)
    for status in statuses:
        ws.append([_safe(ws, status), int(s.counts.get(status, 0))])
        line += 1
    last_count = line
    ws.append(["total", sum(int(s.counts.get(k, 0)) for k in statuses)])
    line += 1

    ws.append([])
    ws.append([_header_cell(ws, "Error code"), _header_cell(ws, "Rows")])
    for code, count in sorted(s.error_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        ws.append([_safe(ws, code), int(count)])

    total = sum(int(s.counts.get(k, 0)) for k in statuses)
    chart = BarChart()
    chart.type = "bar"
    chart.title = f"Rows by outcome{' (would-be, dry run)' if s.dry_run else ''}: {total} in all"
    chart.y_axis.title = "Rows"
    chart.x_axis.title = None
    chart.legend = None
    chart.x_axis.delete = False  # newer Excel hides axes that are not explicitly kept
    chart.y_axis.delete = False
    data = Reference(ws, min_col=2, min_row=first_count - 1, max_row=last_count)
    chart.add_data(data, titles_from_data=True)
    categories = Reference(ws, min_col=1, min_row=first_count, max_row=last_count)
    chart.series[0].cat = AxDataSource(strRef=StrRef(f=str(categories)))  # text labels, not numbers
    chart.dataLabels = DataLabelList()
    chart.dataLabels.showVal = True  # each bar says its count, and only that
    chart.dataLabels.showSerName = chart.dataLabels.showCatName = chart.dataLabels.showLegendKey = False
    chart.height, chart.width = 7.5, 15
    ws.add_chart(chart, "D2")
