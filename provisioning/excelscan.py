"""Excel error values and formulas without a saved value: the cells calamine reads as empty, found in the XML.

calamine reads an error cell (``<c t="e"><v>#N/A</v></c>``) and a formula whose result was never saved
(``<c><f>1/0</f><v/></c>``, as openpyxl and other programs that do not calculate write it) as empty cells
(python-calamine issue #105; 0.9 exposes no cell types), which would empty the value silently. :func:`scan_sheet`
finds them in the chosen sheet's XML, streamed in pieces of about 1 MB cut after a ``</row>``: a piece without
``"e"`` or an ``<f`` element costs four byte searches (a clean 100,000-row sheet: ~0.4 s, mostly decompression);
only the pieces that have them are searched with the regular expressions below. A formula with a saved value is
fine (calamine reads the value); so is a text formula whose saved result is empty (``t="str"`` and ``<v></v>``).
"""
from __future__ import annotations

import html
import logging
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

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


def scan_sheet(p: Path, name: str) -> tuple[CellProblem, ...]:
    """The error cells and formulas without a saved value of sheet ``name``, in sheet order (see the module
    docstring); ``()`` when the workbook's parts cannot be found (calamine read it, so this is logged only)."""
    try:
        with zipfile.ZipFile(p) as zf:
            part = _sheet_part(zf, name)
            if part is None:
                log.warning("%s: cannot find the XML of sheet %r; Excel error values in it read as empty", p, name)
                return ()
            with zf.open(part) as stream:
                found = list(_scan_stream(stream))
            if any(pr is None for pr in found):  # a cell without its r="A1" reference: place cells by counting
                with zf.open(part) as stream:
                    found = list(_scan_positions(stream))
    except (OSError, KeyError, zipfile.BadZipFile, ET.ParseError, ValueError) as exc:
        log.warning("%s: cannot scan sheet %r for Excel error values (%s)", p, name, exc)
        return ()
    return tuple(sorted((pr for pr in found if pr is not None), key=lambda pr: (pr.row, pr.col)))


def _sheet_part(zf: zipfile.ZipFile, name: str) -> str | None:
    """The zip member holding sheet ``name``: workbook part from _rels/.rels, then its sheets and relationships."""
    book = next((r.get("Target", "") for r in ET.fromstring(zf.read("_rels/.rels")).iter(_REL)
                 if r.get("Type", "").endswith("/officeDocument")), "xl/workbook.xml")
    book = book.lstrip("/")
    folder, base = posixpath.split(book)
    rid = None
    for el in ET.fromstring(zf.read(book)).iter():
        if el.tag.rpartition("}")[2] == "sheet" and el.get("name") == name:
            rid = next((v for k, v in el.attrib.items() if k.startswith("{") and k.endswith("}id")), None)
            break
    rels = ET.fromstring(zf.read(posixpath.join(folder, "_rels", base + ".rels")))
    target = next((r.get("Target") for r in rels.iter(_REL) if r.get("Id") == rid), None) if rid else None
    if not target:
        return None
    return target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))


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


def _scan_stream(stream: IO[bytes]) -> Iterator[CellProblem | None]:
    """Problems found by the regular expressions; ``None`` for a cell without an ``r`` reference."""
    for piece in _pieces(stream):
        if not any(m in piece for m in _MARKERS):
            continue
        if b'"e"' in piece or b"'e'" in piece:
            for m in _ERROR_CELL.finditer(piece):
                value, formula = _VALUE.search(m.group(2)), _FORMULA.search(m.group(2))
                if (value and value.group(1).strip()) or formula:
                    yield _problem(m.group(1), _text(value.group(1)).strip() if value else "",
                                   _text(formula.group(1) or b"") if formula else "")
        for m in _FORMULA_NO_VALUE.finditer(piece):
            t = _attrs(m.group(1)).get("t")
            if t == "e" or (t == "str" and m.group(3)):  # errors: above; "str" with <v></v>: an empty result
                continue
            yield _problem(m.group(1), "", _text(m.group(2) or b""))


def _problem(raw_attrs: bytes, error: str, formula: str) -> CellProblem | None:
    """The problem at the cell's ``r`` reference (``None`` without one); ``error`` ``""``: no saved value."""
    ref = _REF.fullmatch(_attrs(raw_attrs).get("r", ""))
    if ref is None:
        return None
    return CellProblem(int(ref.group(2)) - 1, _col_index(ref.group(1)), error or None, formula)


def _scan_positions(stream: IO[bytes]) -> Iterator[CellProblem]:
    """The slow, exact path (element by element) for sheets whose cells lack ``r`` references."""
    row = col = -1
    for event, el in ET.iterparse(stream, events=("start", "end")):
        tag = el.tag.rpartition("}")[2]
        if event == "start":
            if tag == "row":
                row, col = (int(el.get("r")) - 1 if el.get("r") else row + 1), -1
            elif tag == "c":
                ref = _REF.fullmatch(el.get("r") or "")
                row, col = (int(ref.group(2)) - 1, _col_index(ref.group(1))) if ref else (row, col + 1)
            continue
        if tag == "c":
            kids = {k.tag.rpartition("}")[2]: k for k in el}
            f, v, t = kids.get("f"), kids.get("v"), el.get("t")
            if t == "e" and v is not None and (v.text or "").strip():
                yield CellProblem(row, col, v.text.strip(), (f.text or "") if f is not None else "")
            elif f is not None and not (v is not None and ((v.text or "").strip() or t == "str")) and "is" not in kids:
                yield CellProblem(row, col, None, f.text or "")
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
