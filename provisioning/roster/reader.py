"""Read a roster file (CSV or Excel) into a :class:`~provisioning.models.Roster`: every cell as typed text.

CSV: the encoding (:mod:`provisioning.roster.encodings`: UTF-8 with or without BOM, UTF-16, and a one-byte encoding only
when it is certain, else ``--encoding``) and delimiter (``,`` ``;`` tab) are detected, and pandas reads every cell as
``str`` with no NA guessing, so ``00123``, ``+1 555 0100``, ``TRUE`` and ``1e5`` stay as typed. A file of at most a
megabyte without a quote or a NUL character anywhere (most exports of HR tools) is split by Python's own :mod:`csv`
instead, into the same cells (a test holds the two to every CSV file of the test data): importing pandas costs a third
of a second, more than reading 6,000 rows. Excel (``.xlsx``, ``.xlsm``) is read by :mod:`provisioning.roster.excel`
(python-calamine). The header is the first row with known headings (title rows above it skipped, noted as
``header-row-found``) or ``--header-row``'s. Blank rows are skipped; every row keeps its Excel row number. A table's
totals row is refused (``totals-row``, its cells emptied so no rule reads them as a person's); a row Excel hides is kept
with a ``hidden-row`` warning; a date-time in a date column becomes ISO 8601 UTC. Excel error values and formulas
without a saved value become row issues in :attr:`Roster.warnings` (``excel-error`` and ``formula-no-value`` exclude the
row; in a column not sent to Entra ID, ``excel-error-ignored`` is a warning). Roster-level problems raise
:class:`~provisioning.errors.RosterError` (exit status 2).
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import threading
from collections.abc import Callable, Mapping, Set
from dataclasses import replace
from pathlib import Path
from typing import Any

from provisioning import codes
from provisioning.cells import unquote_text_prefix
from provisioning.errors import RosterError
from provisioning.fields import BLOCK_SIGN_IN, FIELD_BY_NAME
from provisioning.models import Issue, Roster, Severity
from provisioning.roster import encodings
from provisioning.roster.derive import template_fields
from provisioning.roster.excel import (
    EXCEL_SUFFIXES,
    HEADER_SEARCH_ROWS,
    ExcelSheet,
    column_letter,
    header_problem_message,
    iso_datetime,
    problem_message,
    read_excel,
)
from provisioning.roster.excelscan import CellProblem
from provisioning.roster.mapping import ColumnMapping, canonical_field, load_mapping, normalise_header

log = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
_DELIMITERS = (",", ";", "\t")


def load_roster(path: str | Path, *, sheet: str | None = None,
                mapping: ColumnMapping | str | Path | None = None, header_row: int | None = None,
                encoding: str | None = None, digest: bool = True) -> Roster:
    """Read ``path`` (CSV or Excel) into a :class:`Roster`; raise :class:`RosterError` if it cannot be used.

    ``sheet`` picks an Excel sheet by name (default: the first visible sheet with known headings in its first 20
    rows). ``mapping`` is a :class:`ColumnMapping` or the path of a mapping JSON file. ``header_row`` is the row
    number (from 1, as Excel shows it) of the column names; by default the first row holding known headings
    (title rows above it are skipped, with a ``header-row-found`` note) or else the first non-blank row.
    ``encoding`` (a CSV file's, as ``--encoding`` names it) skips the detection. ``digest=False`` leaves
    :attr:`Roster.sha256` empty, for a caller that binds no run to the file (``validate``): hashing a 100,000-row
    roster costs 30-100 ms of CPU, on the thread that reads the file beside the parser.
    """
    p = Path(path)
    if mapping is not None and not isinstance(mapping, ColumnMapping):
        mapping = load_mapping(mapping)
    try:
        before = p.stat()
        with p.open("rb") as fh:
            head = fh.read(_HEAD + 1)  # one byte more than detection reads: tells whether the head is all of it
    except OSError as exc:
        raise RosterError(p, f"cannot read the roster: {exc.strerror or exc}") from exc
    suffix = p.suffix.lower()
    workbook = suffix in EXCEL_SUFFIXES or head[:4] == b"PK\x03\x04"
    background = _Background(p, digest=digest, text=not workbook)  # reads (and hashes) the file on another thread
    delimiter = note = None
    excel: ExcelSheet | None = None
    _refuse_other_formats(p, head, suffix)
    if workbook:
        if encoding is not None:
            raise RosterError(p, "--encoding applies to CSV files only (a workbook says its own)")
        excel = read_excel(p, sheet, mapping.renames if mapping else None)
        sheet_name, grid = excel.name, excel.columns
        kind = "xlsx"
    elif suffix == ".xls":
        raise RosterError(p, "old .xls workbooks are not supported; save it as .xlsx or .csv")
    else:
        if sheet is not None:
            raise RosterError(p, "--sheet applies to Excel workbooks only")
        sheet_name = None
        encoding, delimiter, grid, note = _read_csv(p, head, encoding, mapping.renames if mapping else None,
                                                    header_row, background.may_hold_text_prefix)
        kind = "csv"
    sha256 = background.digest()
    try:
        after = p.stat()
    except OSError as exc:
        raise RosterError(p, f"cannot read the roster: {exc.strerror or exc}") from exc
    if (after.st_size, after.st_mtime_ns, after.st_ino) != (before.st_size, before.st_mtime_ns, before.st_ino):
        raise RosterError(p, "the roster changed while it was being read; save and close it, then run again")
    roster = _build(p, sheet_name, kind, grid, sha256, mapping, encoding, delimiter, excel, header_row)
    if note is not None:
        roster = replace(roster, warnings=(codes.issue(0, "encoding", "encoding-guessed", note), *roster.warnings))
    return roster


_HEAD = 65536  # bytes read ahead of parsing: enough to detect the encoding, the delimiter and the header line


class _Background:
    """The SHA-256 of a file (``digest``), and whether a field of it may start with Excel's text prefix (``text``:
    a CSV file), worked out on another thread while the file is parsed (reading and hashing release the GIL)."""

    def __init__(self, p: Path, *, digest: bool, text: bool) -> None:
        self.path = p
        self._result: list[tuple[str, bool] | OSError] = []
        self._worker: threading.Thread | None = None
        if digest or text:
            self._worker = threading.Thread(target=self._work, args=(digest, text), daemon=True)
            self._worker.start()
        else:
            self._result.append(("", True))

    def _work(self, digest: bool, text: bool) -> None:
        try:
            sha = hashlib.sha256() if digest else None
            maybe = not text
            before = -1  # the byte ahead of each chunk (-1: the file's start)
            with self.path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    if sha is not None:
                        sha.update(chunk)
                    elif maybe:  # nothing more to learn from the rest of the file
                        break
                    maybe = maybe or _prefix_bytes(chunk, before)
                    before = chunk[-1]
            self._result.append((sha.hexdigest() if sha is not None else "", maybe))
        except OSError as exc:
            self._result.append(exc)

    def _wait(self) -> tuple[str, bool]:
        if self._worker is not None:
            self._worker.join()
        found = self._result[0]
        if isinstance(found, OSError):
            raise RosterError(self.path, f"cannot read the roster: {found.strerror or found}")
        return found

    def digest(self) -> str:
        """The file's SHA-256 (hex; ``""`` when not asked for), once the thread is done."""
        return self._wait()[0]

    def may_hold_text_prefix(self, encoding: str) -> bool:
        """False only when no field of the file, read in ``encoding``, can start with ``'`` and a formula trigger
        or blank (:func:`~provisioning.cells.unquote_text_prefix` then has nothing to do); True when one may, or
        when ``encoding`` does not write ASCII as single bytes, which the byte search needs."""
        maybe = self._wait()[1]
        return maybe or codecs.lookup(encoding).name not in _ASCII_COMPATIBLE


#: Encodings in which every ASCII character is its own single byte and no other character uses a byte below 0x80.
_ASCII_COMPATIBLE = frozenset({"utf-8", "utf-8-sig", "ascii", "iso8859-1", "cp1252", "cp1250", "cp1251",
                               "mac-roman"})
# Excel's text prefix is a "'" starting a field, before a formula trigger or a blank (cells.unquote_text_prefix).
# A field starts at the file's start, after a delimiter (any of _DELIMITERS: the thread does not know which), a line
# break or an opening quote; a blank may be non-ASCII (any byte from 0x80, whatever the encoding).
_FIELD_STARTS = frozenset(b",;\t\r\n\"")
_PREFIXED = frozenset(b"=+-@\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ") | frozenset(range(0x80, 0x100))


def _prefix_bytes(chunk: bytes, before: int) -> bool:
    """True when some "'" of ``chunk`` may be a field's text prefix: after a field start (or in the file's first
    four bytes, a byte-order mark among them; ``before`` is the byte ahead of the chunk, -1 at the file's start)
    and before a trigger or blank (or at the chunk's end). One ``find`` per "'": an O'Brien costs one step."""
    at = chunk.find(b"'")
    while at >= 0:
        ahead = chunk[at - 1] if at else before
        if (ahead in _FIELD_STARTS or (before < 0 and at < 4)) and (
                at + 1 == len(chunk) or chunk[at + 1] in _PREFIXED):
            return True
        at = chunk.find(b"'", at + 1)
    return False


_CFB_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")


def _refuse_other_formats(p: Path, data: bytes, suffix: str) -> None:
    """Raise a clear :class:`RosterError` for files that are no CSV/xlsx whatever their name says."""
    if data[:8] == _CFB_MAGIC:
        raise RosterError(p, "this is a password-protected (encrypted) workbook or an old .xls file; remove the "
                             "password or save it as .xlsx or .csv (File > Save As), then run again")
    if suffix == ".ods" or b"opendocument" in data[:100]:
        raise RosterError(p, "OpenDocument spreadsheets (.ods) are not supported; save it as .xlsx or .csv")
    if suffix in EXCEL_SUFFIXES and data[:4] != b"PK\x03\x04":
        raise RosterError(p, "this is not an Excel .xlsx workbook (a CSV file renamed?); if it is a CSV, rename it "
                             "to .csv, else save it from Excel as .xlsx")


# ---- CSV -----------------------------------------------------------------------------------------------------


def detect_delimiter(line: str) -> str:
    """The delimiter among ``,`` ``;`` tab that occurs most often (outside quotes) in the header line."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(p: Path, head: bytes, given: str | None = None, renames: dict[str, str | None] | None = None,
              header_row: int | None = None, prefixed: Callable[[str], bool] | None = None) \
        -> tuple[str, str, list[list[str]], str | None]:
    """Parse a CSV file once (:func:`_parse_csv`: every cell a ``str``); columns as lists. ``head``: the file's
    first bytes (one more than :data:`_HEAD` when the file is longer), for detection; ``given``: the encoding
    the user named (--encoding), else it is detected; ``renames``: the mapping file's (to know the password
    column, which a message about the encoding never shows); ``header_row``: the line of the column names, if
    given (the delimiter is detected on it); ``prefixed(encoding)``: False when no field can start with Excel's
    text prefix (:meth:`_Background.may_hold_text_prefix`), which spares the search of every column. Returns the
    encoding, the delimiter, the columns, and a note on the encoding when it was guessed (see
    :mod:`provisioning.roster.encodings`)."""
    if not head or (head.isspace() and (len(head) <= _HEAD or p.read_bytes().isspace())):
        raise RosterError(p, "the roster is empty; it needs a header row and one row per user")
    note = None
    if given is not None:
        encoding = "utf-8-sig" if codecs.lookup(given).name == "utf-8" else given
    else:
        encoding = encodings.from_head(head[:_HEAD]) or ""
        if not encoding:
            encoding, note = _guess(p, head, renames)
    text = head[:_HEAD].decode(encoding, errors="ignore")  # the head is enough to find the header line
    lines = text.lstrip("\ufeff").splitlines()[:50]
    skip = 0  # blank lines and the Entra template's "version:v1.0" line ahead of the header
    while skip < len(lines) and (not lines[skip].strip() or lines[skip].lower().startswith("version:")):
        skip += 1
    version_line = next((ln for ln in lines[:skip] if ln.lower().startswith("version:")), None)
    delimiter = detect_delimiter(_delimiter_line(lines, skip, header_row))
    try:
        try:
            columns = _parse_csv(p, encoding, delimiter, skip)
        except UnicodeDecodeError:
            if given is not None:
                raise RosterError(p, encodings.decode_problem(p.read_bytes(), given, _layout(head, renames))) \
                    from None
            if encoding != "utf-8":
                raise
            encoding, note = _guess(p, head, renames)  # the head was UTF-8 but a later byte is not
            columns = _parse_csv(p, encoding, delimiter, skip)
    except _EmptyData as exc:
        raise RosterError(p, "the roster is empty; it needs a header row and one row per user") from exc
    except (UnicodeDecodeError, ValueError) as exc:  # pandas' ParserError is a ValueError
        raise RosterError(p, f"cannot read the file as CSV ({str(exc).strip().splitlines()[0]}); save it as CSV "
                             f"UTF-8 (comma delimited) or .xlsx and run again") from exc
    except OSError as exc:
        raise RosterError(p, f"cannot read the roster: {exc.strerror or exc}") from exc
    # Excel's text prefix ('+1 555 0100, as export-users and every CSV this tool writes have it) is no data
    if prefixed is None or prefixed(encoding):
        columns = [unquote_text_prefix(col) for col in columns]
    if skip:  # keep Excel row numbers: put the skipped lines back as rows (the version line in column A)
        lead = [[""] * skip for _ in columns]
        if version_line is not None and lead:
            lead[0][lines.index(version_line)] = version_line.split(delimiter)[0]
        columns = [top + col for top, col in zip(lead, columns, strict=True)]
    return encoding, delimiter, columns, note


def _guess(p: Path, head: bytes, renames: dict[str, str | None] | None) -> tuple[str, str | None]:
    """:func:`encodings.guess` on the whole file: (encoding, note)."""
    try:
        found = encodings.guess(p.read_bytes(), _layout(head, renames))
    except encodings.EncodingProblem as exc:
        raise RosterError(p, str(exc)) from None
    except OSError as exc:
        raise RosterError(p, f"cannot read the roster: {exc.strerror or exc}") from exc
    return found.encoding, found.note


def _layout(head: bytes, renames: dict[str, str | None] | None) -> encodings.Layout:
    """How a message shows a line of the file: its delimiter and password column, from the header line (read
    byte for byte: header names are ASCII, and this is only for files whose encoding is in question)."""
    lines = head[:_HEAD].decode("latin-1").splitlines()[:50]
    header = next((ln for ln in lines if ln.strip() and not ln.lower().startswith("version:")), "")
    delimiter = detect_delimiter(header)
    names = next(csv.reader([header], delimiter=delimiter), [])
    return encodings.Layout(delimiter, frozenset(i for i, h in enumerate(names)
                                                 if canonical_field(h.strip(), renames) == "password"))


def _delimiter_line(lines: list[str], skip: int, header_row: int | None) -> str:
    """The line to detect the delimiter on: the given header line, else the first after ``skip`` with a
    delimiter in it (a title line above the header has none)."""
    if header_row is not None:
        return lines[header_row - 1] if 0 < header_row <= len(lines) else ""
    return next((ln for ln in lines[skip:skip + HEADER_SEARCH_ROWS] if any(d in ln for d in _DELIMITERS)),
                lines[skip] if skip < len(lines) else "")


def read_csv_columns(p: Path) -> list[list[str]]:
    """A CSV file's cells as text columns from its first line, read as a roster is (encoding, delimiter)."""
    try:
        with p.open("rb") as fh:
            head = fh.read(_HEAD + 1)
    except OSError as exc:
        raise RosterError(p, f"cannot read the file: {exc.strerror or exc}") from exc
    _refuse_other_formats(p, head, p.suffix.lower())
    return _read_csv(p, head)[2]


#: The largest file split by Python's csv (see _parse_csv): up to about 12,000 rows, where importing pandas (0.35 s)
#: costs more than its parser saves; 100,000 rows take it 0.18 s, and csv 0.4 s.
QUICK_SPLIT_BYTES = 1 << 20


class _EmptyData(ValueError):
    """Nothing but the skipped lines in the file (pandas' EmptyDataError, by this module's name)."""


def _parse_csv(p: Path, encoding: str, delimiter: str, skip: int) -> list[list[str]]:
    """The file's columns of text, from line ``skip`` (0-based): every row as wide as the widest, blank lines kept
    as rows of empty cells (row numbers stay right). Raises UnicodeDecodeError, ValueError or :class:`_EmptyData`."""
    text = p.read_bytes().decode(encoding) if p.stat().st_size <= QUICK_SPLIT_BYTES else None
    if text is not None and '"' not in text and "\x00" not in text:
        # Without a quote a record is a line (\n, \r or \r\n) and a cell what lies between two delimiters, as
        # pandas' C parser reads it; with one, quoting rules (and their errors: an unclosed quote) are pandas'.
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter))[skip:]
        if rows:
            width = max(map(len, rows))
            return [list(c) for c in zip(*(r + [""] * (width - len(r)) if len(r) < width else r for r in rows),
                                         strict=True)]
    return _parse_csv_pandas(p, encoding, delimiter, skip, text)


def _parse_csv_pandas(p: Path, encoding: str, delimiter: str, skip: int, text: str | None = None) -> list[list[str]]:
    """pandas.read_csv of the file: strings only, no NA guessing, blank lines kept."""
    import pandas as pd  # heavy (a third of a second): only for large files and files with quotes (_parse_csv)

    options: dict[str, Any] = dict(sep=delimiter, encoding=encoding, header=None, dtype=object, na_filter=False,
                                   keep_default_na=False, skip_blank_lines=False, engine="c", skiprows=skip)
    try:
        try:
            frame = pd.read_csv(p, **options)
        except pd.errors.ParserError:  # a row longer than the header: size the frame to the widest row
            full = p.read_bytes().decode(encoding) if text is None else text
            width = max(len(r) for r in csv.reader(io.StringIO(full.lstrip("\ufeff")), delimiter=delimiter))
            frame = pd.read_csv(p, names=list(range(width)), **options)
    except pd.errors.EmptyDataError as exc:
        raise _EmptyData(str(exc)) from exc
    return [frame[c].tolist() for c in frame.columns]


# ---- Both ----------------------------------------------------------------------------------------------------


def _build(p: Path, sheet: str | None, kind: str, columns: list[list[str]], digest: str,
           mapping: ColumnMapping | None, encoding: str | None, delimiter: str | None,
           excel: ExcelSheet | None = None, header_row: int | None = None) -> Roster:
    """Find the header row, drop blank rows, map headers, and check the roster as a whole.

    ``excel``: what the workbook's XML says. Its problem cells (Excel error values, formulas without a saved
    value; 0-based from A1) in or above the header row raise :class:`RosterError`; in data rows they become
    issues, and their row is kept even if it looks blank. Its tables' totals rows are refused (``totals-row``),
    its hidden rows reported (``hidden-row``), and date-times in date columns become ISO 8601 UTC.
    """
    problems = excel.scan.problems if excel else ()
    totals = excel.scan.totals if excel else {}
    nrows = len(columns[0]) if columns else 0
    # drop trailing all-empty columns (Excel "used range" padding, trailing delimiters)
    while columns and not any(columns[-1]):
        columns.pop()
    if not columns:
        raise RosterError(p, "the roster is empty; it needs a header row and one row per user")
    renames = mapping.renames if mapping else {}
    warnings: list[Issue] = []
    if excel is not None and excel.skipped_hidden:
        hidden = ", ".join(map(repr, excel.skipped_hidden))
        warnings.append(codes.issue(0, "", "hidden-sheet-skipped",
                                    f"read the sheet {sheet!r}; the hidden sheet{'s' * (len(excel.skipped_hidden) > 1)}"
                                    f" {hidden} before it {'were' if len(excel.skipped_hidden) > 1 else 'was'} not "
                                    f"read (a hidden sheet is read only when named with --sheet)"))
    header_idx, titles = _header_index(p, columns, nrows, header_row, renames)
    if titles:
        warnings.append(codes.issue(0, "", "header-row-found",
                                    f"the column names are on row {header_idx + 1}; {_rows_text(titles)} above "
                                    f"them {'is taken as a title' if len(titles) == 1 else 'are taken as titles'} "
                                    "and not read "
                                    f"(if the column names are on another row, give --header-row N)"))
    for pr in problems:
        if pr.row <= header_idx and pr.col < len(columns):
            raise RosterError(p, header_problem_message(pr, pr.row == header_idx))
    headers = tuple(col[header_idx].strip() for col in columns)
    column_map: dict[str, str | None] = {}
    seen: dict[str, str] = {}
    for i, header in enumerate(headers):
        if not header:
            if any(v.strip() for v in columns[i][header_idx + 1:]):
                raise RosterError(p, _no_header_message(columns, i, header_idx, header_row, renames))
            column_map[header] = None
            continue
        if header in column_map:
            first = column_letter(headers.index(header))
            raise RosterError(p, f"the header {header!r} appears twice (columns {first} and {column_letter(i)}); "
                                 f"rename or remove one")
        target = canonical_field(header, renames)
        column_map[header] = target
        if target is not None:
            key = "accountEnabled" if target == BLOCK_SIGN_IN else target
            if key in seen:
                raise RosterError(p, f"columns {seen[key]!r} and {header!r} both mean {key}; remove one")
            seen[key] = header
    if "[" in "".join(headers) and any("[userprincipalname]" in h.lower() for h in headers):
        kind = "entra-" + kind
    elif any(h.lower() == "user name" for h in headers) and any(h.lower() == "first name" for h in headers):
        kind = "m365-" + kind
    ignored = {k for k, v in renames.items() if v is None}  # mapped to null: known, deliberately unused
    unknown = [h for h in headers if h and column_map[h] is None and normalise_header(h) not in ignored]
    if unknown:
        warnings.append(Issue(0, ", ".join(unknown), "unknown-column", Severity.WARNING,
                              f"column(s) {', '.join(map(repr, unknown))} are not roster fields; they are kept and "
                              f"carried to the report but not sent to Entra ID (map them with --mapping if needed)"))
    _check_required(p, set(seen), mapping, headers)
    warnings.extend(_mapped_missing(mapping, headers, set(seen)))
    cells = _cell_issues([pr for pr in problems if pr.row not in totals], headers, header_idx, column_map)
    warnings.extend(cells)
    kept = {i.row - header_idx - 2 for i in cells}
    if totals:
        kept |= {r - header_idx - 1 for r in _blank_totals(columns, totals, header_idx, problems)}
    row_numbers, by_column = _rows(columns, header_idx, len(headers), kept)
    if excel is not None:
        warnings.extend(_excel_row_issues(excel, row_numbers))
        by_column = _iso_dates(by_column, headers, column_map)
    log.info("%s: %d rows, %d columns (%s)", p, len(row_numbers), len(headers), kind)
    return Roster(path=str(p), sheet=sheet, kind=kind, headers=headers, header_row=header_idx + 1,
                  row_numbers=row_numbers,
                  column_map=column_map, sha256=digest, warnings=tuple(warnings),
                  constants=dict(mapping.constants) if mapping else {},
                  naming_template=mapping.naming_template if mapping else None,
                  display_name_template=mapping.display_name_template if mapping else None,
                  domain=mapping.domain if mapping else None, encoding=encoding, delimiter=delimiter,
                  columns=by_column)


def _header_index(p: Path, columns: list[list[str]], nrows: int, header_row: int | None,
                  renames: dict[str, str | None]) -> tuple[int, list[int]]:
    """The 0-based index of the header row, and the non-blank rows above it taken as titles (only when the header
    was found below them by its known headings).

    ``header_row`` (from 1) wins. Else the first non-blank row (after the Entra template's ``version:`` line) is
    the header when it holds a known heading or none of the :data:`HEADER_SEARCH_ROWS` rows from it does;
    otherwise the first row that does.
    """
    if header_row is not None:
        if not 0 < header_row <= nrows or not any(col[header_row - 1].strip() for col in columns):
            where = "is empty" if 0 < header_row <= nrows else f"is past the last row ({nrows})"
            raise RosterError(p, f"--header-row {header_row}: that row {where}; give the row number of the "
                                 f"column names as Excel or the editor shows it")
        return header_row - 1, []
    first = next((r for r in range(nrows) if any(col[r].strip() for col in columns)), None)
    if first is None:
        raise RosterError(p, "no header row; the first row must name the columns (run `provision.py template`)")
    filled = [r for r in range(first, min(nrows, first + HEADER_SEARCH_ROWS)) if any(col[r].strip() for col in columns)]
    if columns[0][filled[0]].strip().lower().startswith("version:"):  # the Entra admin center template
        if filled[0] + 1 >= nrows:
            raise RosterError(p, "no header row; the first row must name the columns (run `provision.py template`)")
        return filled[0] + 1, []
    for r in filled:
        if any(canonical_field(col[r].strip(), renames) for col in columns if col[r].strip()):
            return r, [t for t in filled if t < r]
    return filled[0], []


def _rows_text(rows: list[int]) -> str:
    """``[0]`` -> ``"row 1"``, ``[0, 1]`` -> ``"rows 1-2"``, ``[0, 2]`` -> ``"rows 1, 3"`` (0-based in)."""
    shown = [r + 1 for r in rows]
    if len(shown) == 1:
        return f"row {shown[0]}"
    if shown == list(range(shown[0], shown[-1] + 1)):
        return f"rows {shown[0]}-{shown[-1]}"
    return "rows " + ", ".join(map(str, shown))


def _no_header_message(columns: list[list[str]], col: int, header_idx: int, header_row: int | None,
                       renames: dict[str, str | None]) -> str:
    """Why column ``col`` has values but no header: a title row taken for the header (one or two cells, none a
    known heading) says where the column names seem to be (the first row below with more filled cells) and how
    to pick them."""
    plain = f"column {column_letter(col)} has values but no header; give it a name"
    filled = [c[header_idx].strip() for c in columns if c[header_idx].strip()]
    width = len(filled)
    if header_row is not None or width > 2 or any(canonical_field(h, renames) for h in filled):
        return plain
    for r in range(header_idx + 1, min(len(columns[0]), header_idx + HEADER_SEARCH_ROWS)):
        count = sum(1 for c in columns if c[r].strip())
        if count > max(width, 1):
            return (f"row {header_idx + 1} looks like a title, not column names (only {width} cell"
                    f"{'s' * (width != 1)} filled); the column names seem to be on row {r + 1}: delete the rows "
                    f"above them, or give --header-row {r + 1}")
    return plain


def hidden_rows_note(roster: Roster, lead: str) -> str:
    """``lead`` + how many rows Excel hides and that they are provisioned (``""`` when none): for the summary."""
    hidden = sum(1 for w in roster.warnings if w.code == "hidden-row")
    if not hidden:
        return ""
    return (f"{lead}{hidden} row{'s' * (hidden != 1)} hidden in Excel (filtered out or hidden), provisioned like "
            f"the others (hidden-row warnings)")


def _blank_totals(columns: list[list[str]], totals: Mapping[int, str], header_idx: int,
                  problems: tuple[CellProblem, ...]) -> list[int]:
    """Empty the cells of the tables' totals rows below the header that hold anything (their "Total" and
    SUBTOTAL values would otherwise be checked, derived into a UPN and counted as duplicates like a person's);
    returns those rows, kept as rows so the report shows each refused with its ``totals-row`` issue."""
    nrows = len(columns[0]) if columns else 0
    used = {pr.row for pr in problems}
    out = [r for r in sorted(totals) if header_idx < r < nrows and (r in used or any(c[r].strip() for c in columns))]
    for r in out:
        for c in columns:
            c[r] = ""
    return out


def _excel_row_issues(excel: ExcelSheet, row_numbers: tuple[int, ...]) -> list[Issue]:
    """``totals-row`` for a data row that is a table's totals row, ``hidden-row`` for one Excel hides."""
    scan = excel.scan
    marked = set(scan.totals) | scan.hidden
    if not marked:
        return []
    out: list[Issue] = []
    for row in sorted(marked & {r - 1 for r in row_numbers}):
        if row in scan.totals:
            out.append(codes.issue(row + 1, "", "totals-row", f"row {row + 1} is the totals row of table "
                                                              f"{scan.totals[row]!r}, not a person; it is not sent"))
        else:
            how = " (filtered out)" if scan.filtered(row) else ""
            out.append(codes.issue(row + 1, "", "hidden-row",
                                   f"row {row + 1} is hidden in Excel{how}; it is provisioned like any other row: "
                                   f"delete it if that person should not get an account"))
    return out


def _iso_dates(by_column: tuple[tuple[str, ...], ...], headers: tuple[str, ...],
               column_map: dict[str, str | None]) -> tuple[tuple[str, ...], ...]:
    """The columns with Excel date-times in date fields as ISO 8601 UTC
    (:func:`~provisioning.roster.excel.iso_datetime`)."""
    dates = [j for j, h in enumerate(headers) if h and (spec := FIELD_BY_NAME.get(column_map.get(h) or ""))
             and spec.kind == "date"]
    if not dates:
        return by_column
    out = list(by_column)
    for j in dates:
        out[j] = tuple(map(iso_datetime, out[j]))
    return tuple(out)


def _cell_issues(problems: list[CellProblem] | tuple[CellProblem, ...], headers: tuple[str, ...], header_idx: int,
                 column_map: dict[str, str | None]) -> list[Issue]:
    """Issues for the problem cells of data rows under a named column (an unnamed one is not read)."""
    out: list[Issue] = []
    for pr in problems:
        if pr.row > header_idx and pr.col < len(headers) and headers[pr.col]:
            header = headers[pr.col]
            field = column_map[header]
            code, message = problem_message(pr, header, used=field is not None, secret=field == "password")
            out.append(codes.issue(pr.row + 1, header, code, message))
    return out


def _rows(columns: list[list[str]], header_idx: int, width: int, kept: Set[int] = frozenset()) \
        -> tuple[tuple[int, ...], tuple[tuple[str, ...], ...]]:
    """Excel row numbers of the non-blank data rows, and their cells column-wise. ``kept``: data row indexes kept
    even when blank (a cell that reads as empty but holds an uncalculated formula).

    A row is blank when every cell is empty or blanks only. Usually some column is filled on every row (an
    employee number, a name), which proves no row is blank at the cost of one scan of that column; otherwise the
    candidates (empty in the emptiest column) are narrowed column by column, so the per-cell work stays small.
    """
    body = columns[:width]
    for col in body:
        del col[:header_idx + 1]  # in place: cheaper than a sliced copy of every column
    count = len(body[0]) if body else 0
    while len(body) < width:
        body.append([""] * count)
    start = header_idx + 2
    blank = _blank_rows(body, count) - kept
    if not blank:
        return tuple(range(start, start + count)), tuple(map(tuple, body))
    keep = [i for i in range(count) if i not in blank]
    return tuple(start + i for i in keep), tuple(tuple(col[i] for i in keep) for col in body)


def _blank_rows(body: list[list[str]], count: int) -> set[int]:
    """Indexes of the rows whose cells are all empty or blanks only."""
    if not body or not count:
        return set()
    for col in body:  # a column with no empty cell and no blank-only one: no row is blank
        if "" not in col and not any(map(str.isspace, col)):
            return set()
    emptiest = max(body, key=lambda col: col.count(""))
    candidates = [i for i, v in enumerate(emptiest) if not v or v.isspace()]
    for col in body:
        if col is not emptiest and candidates:
            candidates = [i for i in candidates if not col[i] or col[i].isspace()]
    return set(candidates)


def _mapped_missing(mapping: ColumnMapping | None, headers: tuple[str, ...], present: set[str]) -> list[Issue]:
    """A warning per column the mapping file maps to a field that the roster lacks, where no other column gives
    that field: an HR export whose "Job Title" was renamed would otherwise lose everyone's jobTitle silently."""
    if mapping is None:
        return []
    have = {normalise_header(h) for h in headers if h}
    listed = ", ".join(repr(h) for h in headers if h)
    return [Issue(0, header, "mapped-column-missing", Severity.WARNING,
                  f"the mapping file {mapping.source} maps {target} to column {header!r}, which the roster does not "
                  f"have (it has: {listed}): nobody gets a {target} from this file; fix the column name in the "
                  f"mapping file or the roster if that is not meant")
            for header, target in mapping.columns.items()
            if target is not None and target not in present and normalise_header(header) not in have]


def _check_required(p: Path, present: set[str], mapping: ColumnMapping | None, headers: tuple[str, ...]) -> None:
    """Raise when a required field has no column and cannot be derived; when the mapping file maps it to a column
    the roster lacks, say so (the usual cause: a renamed column in the HR export)."""

    constants = set(mapping.constants) if mapping else set()
    have = present | constants
    missing: list[str] = []
    name_parts = {"givenName", "surname"} & have
    if "displayName" not in have and not name_parts:
        missing.append("displayName (or givenName and surname to derive it)")
    if "userPrincipalName" not in have:
        template = (mapping.naming_template if mapping else None) or "{givenName}.{surname}@{domain}"
        needed = template_fields(template) - {"domain"}
        if not needed <= have:
            missing.append(f"userPrincipalName (or {' and '.join(sorted(needed - have))} to derive it)")
    if missing and mapping is not None:
        wanted = {"displayName", "userPrincipalName", "givenName", "surname"} - have
        present_headers = {normalise_header(h) for h in headers if h}
        for header, target in mapping.columns.items():
            if target in wanted and normalise_header(header) not in present_headers:
                listed = ", ".join(repr(h) for h in headers if h)
                raise RosterError(p, f"the mapping file {mapping.source} maps {target} to column {header!r}, "
                                     f"which the roster does not have (it has: {listed}); fix the column name "
                                     f"in the mapping file or the roster")
    if missing:
        raise RosterError(p, f"required column(s) missing: {'; '.join(missing)}. "
                             f"Add them, or map your headers with --mapping")
