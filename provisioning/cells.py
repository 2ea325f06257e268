"""Spreadsheet-safety of cell values (CSV/formula injection, OWASP "CSV Injection").

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula by Excel or
LibreOffice when the file is opened (CSV) or the cell is edited (xlsx). Every output this tool writes passes its
cells through here: CSV cells get a leading apostrophe; xlsx cells are written as typed text with Excel's
"quote prefix" style, so the value stays exactly as it was (and reads back unchanged for ``retry``) yet is never
evaluated, not even after the user edits the cell.
"""
from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # openpyxl is imported only where a workbook is written
    from openpyxl.cell.cell import Cell

CellT = TypeVar("CellT", bound="Cell")

#: what makes a spreadsheet run a cell as a formula, at its start (the one copy: every check and writer uses it)
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: :data:`FORMULA_TRIGGERS` as the inside of a regular-expression character class
FORMULA_TRIGGER_CLASS = "".join(map(re.escape, FORMULA_TRIGGERS))
#: texts openpyxl would write as Excel error values (t="e") rather than as text, unless told otherwise
ERROR_TEXTS = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))
#: What counts as a blank at either end of a cell, where it is trimmed: every ``str.isspace`` character (ASCII
#: blanks and line breaks, U+001C-U+001F, U+0085 NEXT LINE, U+00A0 NO-BREAK SPACE, U+1680, U+2000-U+200A,
#: U+2028, U+2029, U+202F NARROW NO-BREAK SPACE, U+205F, U+3000 IDEOGRAPHIC SPACE) and the zero-width ones a
#: copy from a web page or Word leaves behind: U+200B ZERO WIDTH SPACE, U+2060 WORD JOINER, U+FEFF ZERO WIDTH
#: NO-BREAK SPACE (a byte-order mark). Inside a value the zero-width ones are ``invisible-char`` errors.
BLANKS = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
          "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u200b\u2060\ufeff")
#: Unicode format characters (category Cf, Unicode 14): invisible, and the direction ones (U+202A-U+202E,
#: U+2066-U+2069) reorder what a reader sees, so "moc.osotnoc@nna" can display as an address it is not.
_INVISIBLE_RANGES = ("\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
                     "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438"
                     "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f")
INVISIBLE = re.compile(f"[{_INVISIBLE_RANGES}]")
_JOINERS = "\u200c\u200d"  # ZERO WIDTH NON-JOINER / JOINER: part of the spelling in Persian, Arabic, Indic scripts
_BLANK_TRIGGERS = "".join(re.escape(t) for t in FORMULA_TRIGGERS if t in BLANKS)  # tab, CR: trimmed, yet triggers
_SIGN_TRIGGERS = "".join(re.escape(t) for t in FORMULA_TRIGGERS if t not in BLANKS)  # = + - @, behind any blanks
_TEXT_PREFIX = re.compile(f"\x00'(?:[{_BLANK_TRIGGERS}]|[{BLANKS}]*[{_SIGN_TRIGGERS}])")  # unquote_text_prefix's work
#: The characters Entra allows in a userPrincipalName's local part (graph-facts 1.4), as the inside of a regex
#: character class: derivation strips the others, validation flags them. (sandbox.userrules keeps its own copy.)
UPN_LOCAL_CHARS = r"A-Za-z0-9'.\-_!#^~"
#: One character a mailNickname may not hold: outside printable ASCII, or one of ``@ ( ) \ [ ] " ; : < > ,``.
NICKNAME_BAD = re.compile(r"[^\x21-\x7e]|[@()\\\[\]\";:<>,]")


def strip_blanks(text: str) -> str:
    """``text`` without the :data:`BLANKS` at either end."""
    return text.strip(BLANKS)


def looks_like_formula(text: str) -> bool:
    """True when a spreadsheet would evaluate ``text`` as a formula: its first character after any blanks (which
    the reader trims, so they cannot hide the trigger) is ``=`` ``+`` ``-`` ``@``, or it starts with tab or CR."""
    return bool(text) and (text.startswith(FORMULA_TRIGGERS) or strip_blanks(text).startswith(FORMULA_TRIGGERS))


def invisible_chars(text: str) -> list[str]:
    """The invisible (format, category Cf) characters of ``text`` after trimming, in order of first appearance.

    U+200C/U+200D between two letters of a script that needs them (not Latin, Greek or Cyrillic) are part of
    the spelling (Persian "Mohammad\u200cReza") and are not counted; nor is U+200D inside an emoji sequence
    ("\U0001f469\u200d\U0001f4bb", woman technologist), which draws one picture and hides no text."""
    found: list[str] = []
    core = strip_blanks(text)
    for m in INVISIBLE.finditer(core):
        ch, i = m.group(), m.start()
        if ch in _JOINERS and 0 < i < len(core) - 1 and (_joins_letters(core[i - 1], core[i + 1])
                                                         or ch == "\u200d" and _joins_emoji(core[i - 1], core[i + 1])):
            continue
        if ch not in found:
            found.append(ch)
    return found


def _joins_letters(before: str, after: str) -> bool:
    for ch in (before, after):
        if not unicodedata.category(ch).startswith(("L", "M")) or unicodedata.name(ch, "").startswith(
                ("LATIN", "GREEK", "CYRILLIC")):
            return False
    return True


def _joins_emoji(before: str, after: str) -> bool:
    """Whether a ZERO WIDTH JOINER stands between two pictographs (a skin-tone modifier or the emoji variation
    selector may end the first)."""
    return (before == "\ufe0f" or unicodedata.category(before) in ("So", "Sk")) and unicodedata.category(after) == "So"


def char_name(ch: str) -> str:
    """``'U+202E RIGHT-TO-LEFT OVERRIDE'``."""
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'UNNAMED CHARACTER')}"


def unquote_text_prefix(col: list[str]) -> list[str]:
    """``col`` with Excel's text prefix removed: a leading ``'`` before text that :func:`looks_like_formula`
    (``'+1 555 0100``, ``'=x``, ``'-5``, ``'@x``) only tells a spreadsheet the cell is text, and is what
    :func:`csv_safe` writes, so it is read as the text after it. Any other apostrophe (``O'Brien``,
    ``'t Hooft``) is data. ``col`` is changed in place (and returned); one search of the joined column decides
    whether any cell needs a look."""
    if _TEXT_PREFIX.search("\x00" + "\x00".join(col)):
        for i, v in enumerate(col):
            if v[:1] == "'" and looks_like_formula(v[1:]):
                col[i] = v[1:]
    return col


def csv_quote(text: str) -> str:
    """``text`` as one field of a CSV line, quoted exactly as ``csv.writer`` (QUOTE_MINIMAL) quotes it: in double
    quotes, its own doubled, when it holds a comma, a double quote or a line break. For writers of many rows,
    where joining pre-quoted fields is several times faster than ``csv.writer``'s per-character loop."""
    if '"' in text or "," in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_safe(value: Any) -> Any:
    """The value to write into a CSV cell: formula-looking text is prefixed with ``'``; other values unchanged."""
    if isinstance(value, str) and looks_like_formula(value):
        return "'" + value
    return value


def make_xlsx_text_safe(cell: CellT) -> CellT:
    """Mark an openpyxl cell (normal or write-only) holding formula-looking text as quoted text; return it.

    openpyxl turns any string starting with ``=`` into a formula cell; this forces the string type and sets
    ``quotePrefix`` so Excel keeps it as text when the cell is edited. A text such as ``#N/A`` (which openpyxl
    would write as an error value, read back as an empty cell) is kept as text too.
    """
    value = cell.value
    if isinstance(value, str):
        if looks_like_formula(value):
            cell.data_type = "s"
            cell.quotePrefix = True
        elif value in ERROR_TEXTS:
            cell.data_type = "s"
    return cell
