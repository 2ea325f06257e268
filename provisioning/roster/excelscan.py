"""What calamine does not tell about a sheet, found in its XML: error values and formulas without a saved value
(cells calamine reads as empty), zero-padded number formats, hidden rows, filters and tables' totals rows.

calamine reads an error cell (``<c t="e"><v>#N/A</v></c>``) and a formula whose result was never saved
(``<c><f>1/0</f><v/></c>``, as openpyxl and other programs that do not calculate write it) as empty cells
(python-calamine issue #105; 0.9 exposes no cell types), which would empty the value silently. :func:`scan_sheet`
finds them in the chosen sheet's XML, streamed in pieces of about 1 MB cut after a ``</row>``: a piece without
``"e"`` or an ``<f`` element costs four byte searches (a clean 100,000-row sheet: ~0.4 s, mostly decompression);
only the pieces that have them are searched with the regular expressions below. A formula with a saved value is
fine (calamine reads the value); so is a text formula whose saved result is empty (``t="str"`` and ``<v></v>``).

The same pass finds the rows Excel hides (``<row hidden="1">``: filtered out or hidden by hand), the sheet's
``<autoFilter>`` and the number cells whose style (``s``, an index into xl/styles.xml's ``cellXfs``) has a
zero-padded format such as ``000000`` or Excel's Zip code ``00000``: calamine gives their number (777), Excel shows
``000777``, and :attr:`SheetScan.shown` has that text. Pieces without ``hidden``, ``autoFilter`` or such a style
mark are not searched for them. The sheet's tables (xl/tables/tableN.xml) give their totals rows.
"""
from __future__ import annotations

import html
import logging
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as _dc_field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CellProblem:
    """A cell that calamine reads as empty but is not. ``row``/``col`` are 0-based from A1 (grid indexes).

    ``error`` is the error value Excel shows (``#N/A``, ``#DIV/0!``...) or ``None`` for a formula without a saved
    value; ``formula`` is the formula's text without ``=`` (``""`` when the cell has none, or shares its master's).
    """

    row: int
    col: int
    error: str | None
    formula: str


@dataclass(frozen=True, slots=True)
class SheetScan:
    """What :func:`scan_sheet` found in a sheet's XML; rows and columns are 0-based from A1.

    ``shown``: ``(row, col, text)`` of number cells whose zero-padded format Excel shows as ``text``;
    ``hidden``: the rows Excel hides; ``filters``: ``(first row, last row)`` of each autoFilter (a table's or the
    sheet's), header included; ``totals``: a table's totals row -> the table's name.
    """

    problems: tuple[CellProblem, ...] = ()
    shown: tuple[tuple[int, int, str], ...] = ()
    hidden: frozenset[int] = frozenset()
    filters: tuple[tuple[int, int], ...] = ()
    totals: Mapping[int, str] = _dc_field(default_factory=dict)

    def filtered(self, row: int) -> bool:
        """True when ``row`` lies under an autoFilter (so hiding it is the filter's doing)."""
        return any(first < row <= last for first, last in self.filters)


_NAME = rb"(?:[\w.-]+:)?"  # an element name's optional namespace prefix
# pieces with none of these cannot hold an error cell ("e" as the t attribute) or a formula (an <f> element)
_MARKERS = (b'"e"', b"'e'", b"<f", b":f")
_ROW_END = re.compile(rb"</" + _NAME + rb"row>")
_ERROR_CELL = re.compile(rb"<" + _NAME + rb"c(?=\s)([^>]*?\st\s*=\s*[\"']e[\"'][^>]*)(?<!/)>(.*?)</" + _NAME + rb"c>",
                         re.S)
_FORMULA_NO_VALUE = re.compile(
    rb"<" + _NAME + rb"c(?=[\s>])([^>]*)(?<!/)>\s*"  # the cell
    rb"<" + _NAME + rb"f(?=[\s/>])[^>]*?(?:/>|>([^<]*)</" + _NAME + rb"f>)\s*"  # its formula
    rb"(<" + _NAME + rb"v\s*/>|<" + _NAME + rb"v(?:\s[^>]*)?>\s*</" + _NAME + rb"v>)?\s*"  # no or an empty value
    rb"</" + _NAME + rb"c>")
_FORMULA = re.compile(rb"<" + _NAME + rb"f(?=[\s/>])[^>]*?(?:/>|>([^<]*)</" + _NAME + rb"f>)")
_VALUE = re.compile(rb"<" + _NAME + rb"v(?:\s[^>]*)?>([^<]*)</" + _NAME + rb"v>")
_ATTR = re.compile(rb"""\s([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?(\d+)")
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_ROW = re.compile(rb"<" + _NAME + rb"row(?=[\s>])([^>]*)>")
_AUTOFILTER = re.compile(rb"<" + _NAME + rb"autoFilter(?=[\s/>])([^>]*)>")
_STYLED_CELL = re.compile(
    rb"<" + _NAME + rb"c(?=\s)([^>]*?\ss\s*=\s*[\"'](\d+)[\"'][^>]*)(?<!/)>(.*?)</" + _NAME + rb"c>", re.S)
_RANGE = re.compile(r"\$?[A-Za-z]{1,3}\$?(\d+)(?::\$?[A-Za-z]{1,3}\$?(\d+))?")
_TRUE = ("1", "true")


def scan_sheet(p: Path, name: str) -> SheetScan:
    """What sheet ``name``'s XML says beyond calamine's values (see the module docstring); an empty
    :class:`SheetScan` when the workbook's parts cannot be found (calamine read it, so this is logged only)."""
    try:
        with zipfile.ZipFile(p) as zf:
            book, rels = _book(zf)
            part = _sheet_part(zf, book, rels, name)
            if part is None:
                log.warning("%s: cannot find the XML of sheet %r; Excel error values in it read as empty", p, name)
                return SheetScan()
            styles = _padded_styles(zf, book, rels)
            found = _Found()
            with zf.open(part) as stream:
                placed = _scan_stream(stream, styles, found)
            if not placed:  # a cell or row without its r="A1" reference: place everything by counting
                found = _Found()
                with zf.open(part) as stream:
                    _scan_positions(stream, styles, found)
            totals, filters = _tables(zf, part)
    except (OSError, KeyError, zipfile.BadZipFile, ET.ParseError, ValueError) as exc:
        log.warning("%s: cannot scan sheet %r for Excel error values (%s)", p, name, exc)
        return SheetScan()
    return SheetScan(problems=tuple(sorted(found.problems, key=lambda pr: (pr.row, pr.col))),
                     shown=tuple(found.shown), hidden=frozenset(found.hidden),
                     filters=tuple(found.filters + filters), totals=totals)


class _Found:
    """What a pass over the sheet XML collects."""

    def __init__(self) -> None:
        self.problems: list[CellProblem] = []
        self.shown: list[tuple[int, int, str]] = []
        self.hidden: list[int] = []
        self.filters: list[tuple[int, int]] = []


def _book(zf: zipfile.ZipFile) -> tuple[str, ET.Element]:
    """The workbook part's name (from _rels/.rels) and its relationships."""
    book = next((r.get("Target", "") for r in ET.fromstring(zf.read("_rels/.rels")).iter(_REL)
                 if r.get("Type", "").endswith("/officeDocument")), "xl/workbook.xml")
    book = book.lstrip("/")
    folder, base = posixpath.split(book)
    return book, ET.fromstring(zf.read(posixpath.join(folder, "_rels", base + ".rels")))


def _target(folder: str, target: str) -> str:
    return target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))


def _sheet_part(zf: zipfile.ZipFile, book: str, rels: ET.Element, name: str) -> str | None:
    """The zip member holding sheet ``name``: the workbook's sheet of that name, then its relationship."""
    rid = None
    for el in ET.fromstring(zf.read(book)).iter():
        if el.tag.rpartition("}")[2] == "sheet" and el.get("name") == name:
            rid = next((v for k, v in el.attrib.items() if k.startswith("{") and k.endswith("}id")), None)
            break
    target = next((r.get("Target") for r in rels.iter(_REL) if r.get("Id") == rid), None) if rid else None
    return _target(posixpath.dirname(book), target) if target else None


def _padded_styles(zf: zipfile.ZipFile, book: str, rels: ET.Element) -> dict[int, tuple[tuple[str | None, ...], bool]]:
    """Cell style index -> the zero-padded number format it applies (see :func:`padded_format`)."""
    target = next((r.get("Target") for r in rels.iter(_REL) if r.get("Type", "").endswith("/styles")), None)
    if not target:
        return {}
    try:
        root = ET.fromstring(zf.read(_target(posixpath.dirname(book), target)))
    except KeyError:
        return {}
    codes: dict[str, tuple[tuple[str | None, ...], bool]] = {}
    for el in root.iter():
        if el.tag.rpartition("}")[2] == "numFmt":
            fmt = padded_format(el.get("formatCode") or "")
            if fmt is not None:
                codes[el.get("numFmtId", "")] = fmt
    if not codes:
        return {}
    out: dict[int, tuple[tuple[str | None, ...], bool]] = {}
    for el in root:
        if el.tag.rpartition("}")[2] == "cellXfs":
            for i, xf in enumerate(x for x in el if x.tag.rpartition("}")[2] == "xf"):
                num = xf.get("numFmtId")
                if num is not None and num in codes:
                    out[i] = codes[num]
    return out


def padded_format(code: str) -> tuple[tuple[str | None, ...], bool] | None:
    """A number format that shows a whole number zero-padded (``000000``, Zip code ``00000``, ``00000-0000``,
    ``000-00-0000``), as ``(tokens, single section)``: ``None`` for a digit place, else literal text. ``None``
    for any other format (General, decimals, thousands, dates, conditions): calamine's text is what Excel shows."""
    sections = code.split(";")
    tokens: list[str | None] = []
    text, i = sections[0], 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            j = text.find('"', i + 1)
            if j < 0:
                return None
            tokens.append(text[i + 1:j])
            i = j + 1
            continue
        if ch == "\\" and i + 1 < len(text):
            tokens.append(text[i + 1])
            i += 2
            continue
        if ch == "0":
            tokens.append(None)
        elif ch in "-() /":
            tokens.append(ch)
        else:
            return None
        i += 1
    if tokens.count(None) < 2:
        return None
    return tuple(tokens), len(sections) == 1


def padded_text(value: str, fmt: tuple[tuple[str | None, ...], bool]) -> str | None:
    """The text Excel shows for the saved number ``value`` in the zero-padded format ``fmt`` (None: not a number,
    or a negative one under a format with a section of its own for them)."""
    try:
        number = Decimal(value.strip()).to_integral_value(ROUND_HALF_UP)
    except InvalidOperation:
        return None
    tokens, single = fmt
    if not number.is_finite() or (number < 0 and not single):
        return None
    digits = str(abs(int(number))).zfill(tokens.count(None))
    extra = len(digits) - tokens.count(None)  # digits beyond the places all go to the first place
    out, k = [], 0
    for tok in tokens:
        if tok is None:
            out.append(digits[:extra + 1] if k == 0 else digits[extra + k])
            k += 1
        else:
            out.append(tok)
    return ("-" if number < 0 else "") + "".join(out)


def _tables(zf: zipfile.ZipFile, part: str) -> tuple[dict[int, str], list[tuple[int, int]]]:
    """The totals rows (row -> table name) and autoFilter row ranges of the sheet's tables."""
    folder, base = posixpath.split(part)
    try:
        rels = ET.fromstring(zf.read(posixpath.join(folder, "_rels", base + ".rels")))
    except KeyError:
        return {}, []
    totals: dict[int, str] = {}
    filters: list[tuple[int, int]] = []
    for rel in rels.iter(_REL):
        if not rel.get("Type", "").endswith("/table") or not rel.get("Target"):
            continue
        root = ET.fromstring(zf.read(_target(folder, rel.get("Target", ""))))
        span = _rows_of(root.get("ref", ""))
        if span is None:
            continue
        name = root.get("displayName") or root.get("name") or ""
        count = int(root.get("totalsRowCount") or 0)
        for r in range(max(span[0], span[1] - count + 1), span[1] + 1) if count > 0 else ():
            totals[r] = name
        for el in root:
            if el.tag.rpartition("}")[2] == "autoFilter":
                got = _rows_of(el.get("ref", ""))
                if got is not None:
                    filters.append(got)
    return totals, filters


def _rows_of(ref: str) -> tuple[int, int] | None:
    """``"A1:C10"`` -> ``(0, 9)`` (0-based first and last rows)."""
    m = _RANGE.fullmatch(ref.strip())
    if m is None:
        return None
    first = int(m.group(1)) - 1
    return first, int(m.group(2)) - 1 if m.group(2) else first


def _pieces(stream: IO[bytes]) -> Iterator[bytes]:
    """The XML in pieces of about 1 MB that end after a ``</row>`` (so no cell is cut in two)."""
    carry = b""
    while chunk := stream.read(1 << 20):
        buf = carry + chunk
        cut = _last_row_end(buf)
        yield buf[:cut]
        carry = buf[cut:]
    if carry:
        yield carry


def _last_row_end(buf: bytes) -> int:
    """The offset after the last ``</row>`` (any prefix) in ``buf``, or 0."""
    i = len(buf)
    while (i := buf.rfind(b"row>", 0, i)) >= 0:
        j = buf.rfind(b"</", max(0, i - 64), i)
        if j >= 0 and _ROW_END.fullmatch(buf, j, i + 4):
            return i + 4
    return 0


def _scan_stream(stream: IO[bytes], styles: Mapping[int, tuple[tuple[str | None, ...], bool]],
                 found: _Found) -> bool:
    """Fill ``found`` with what the regular expressions find; False when a cell or row that matters has no
    ``r`` reference (the caller then counts positions instead)."""
    marks = tuple(m for i in styles for m in (b' s="%d"' % i, b" s='%d'" % i))
    for piece in _pieces(stream):
        if b"hidden" in piece:
            for m in _ROW.finditer(piece):
                attrs = _attrs(m.group(1))
                if attrs.get("hidden", "").lower() in _TRUE:
                    if not attrs.get("r", "").isdigit():
                        return False
                    found.hidden.append(int(attrs["r"]) - 1)
        if b"autoFilter" in piece:
            for m in _AUTOFILTER.finditer(piece):
                got = _rows_of(_attrs(m.group(1)).get("ref", ""))
                if got is not None:
                    found.filters.append(got)
        if marks and any(m in piece for m in marks):
            for m in _STYLED_CELL.finditer(piece):
                fmt = styles.get(int(m.group(2)))
                attrs = _attrs(m.group(1))
                value = _VALUE.search(m.group(3)) if fmt is not None and attrs.get("t", "n") == "n" else None
                text = padded_text(_text(value.group(1)), fmt) if value and fmt is not None else None
                if text is not None:
                    ref = _REF.fullmatch(attrs.get("r", ""))
                    if ref is None:
                        return False
                    found.shown.append((int(ref.group(2)) - 1, _col_index(ref.group(1)), text))
        if not any(m in piece for m in _MARKERS):
            continue
        if b'"e"' in piece or b"'e'" in piece:
            for m in _ERROR_CELL.finditer(piece):
                value, formula = _VALUE.search(m.group(2)), _FORMULA.search(m.group(2))
                if (value and value.group(1).strip()) or formula:
                    pr = _problem(m.group(1), _text(value.group(1)).strip() if value else "",
                                  _text(formula.group(1) or b"") if formula else "")
                    if pr is None:
                        return False
                    found.problems.append(pr)
        for m in _FORMULA_NO_VALUE.finditer(piece):
            t = _attrs(m.group(1)).get("t")
            if t == "e" or (t == "str" and m.group(3)):  # errors: above; "str" with <v></v>: an empty result
                continue
            pr = _problem(m.group(1), "", _text(m.group(2) or b""))
            if pr is None:
                return False
            found.problems.append(pr)
    return True


def _problem(raw_attrs: bytes, error: str, formula: str) -> CellProblem | None:
    """The problem at the cell's ``r`` reference (``None`` without one); ``error`` ``""``: no saved value."""
    ref = _REF.fullmatch(_attrs(raw_attrs).get("r", ""))
    if ref is None:
        return None
    return CellProblem(int(ref.group(2)) - 1, _col_index(ref.group(1)), error or None, formula)


def _scan_positions(stream: IO[bytes], styles: Mapping[int, tuple[tuple[str | None, ...], bool]],
                    found: _Found) -> None:
    """The slow, exact path (element by element) for sheets whose cells or rows lack ``r`` references."""
    row = col = -1
    for event, el in ET.iterparse(stream, events=("start", "end")):
        tag = el.tag.rpartition("}")[2]
        if event == "start":
            if tag == "row":
                row, col = (int(el.get("r")) - 1 if el.get("r") else row + 1), -1
                if (el.get("hidden") or "").lower() in _TRUE:
                    found.hidden.append(row)
            elif tag == "c":
                ref = _REF.fullmatch(el.get("r") or "")
                row, col = (int(ref.group(2)) - 1, _col_index(ref.group(1))) if ref else (row, col + 1)
            continue
        if tag == "c":
            kids = {k.tag.rpartition("}")[2]: k for k in el}
            f, v, t = kids.get("f"), kids.get("v"), el.get("t")
            if t == "e" and v is not None and (v.text or "").strip():
                found.problems.append(CellProblem(row, col, v.text.strip(), (f.text or "") if f is not None else ""))
            elif f is not None and not (v is not None and ((v.text or "").strip() or t == "str")) and "is" not in kids:
                found.problems.append(CellProblem(row, col, None, f.text or ""))
            elif (t or "n") == "n" and v is not None and (el.get("s") or "").isdigit() and int(el.get("s")) in styles:
                text = padded_text(v.text or "", styles[int(el.get("s"))])
                if text is not None:
                    found.shown.append((row, col, text))
        elif tag == "autoFilter":
            got = _rows_of(el.get("ref", ""))
            if got is not None:
                found.filters.append(got)
        elif tag == "row":
            el.clear()


def _attrs(raw: bytes) -> dict[str, str]:
    return {m.group(1).decode().rpartition(":")[2]: _text(m.group(2) if m.group(2) is not None else m.group(3))
            for m in _ATTR.finditer(raw)}


def _text(raw: bytes) -> str:
    return html.unescape(raw.decode("utf-8", "replace"))


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1
