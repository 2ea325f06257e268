"""One pass of numpy over a column's bytes that tells the cell checks where they need to look.

:func:`scan` joins a column's cells with NUL separators, encodes the text to UTF-8 once and looks at it as a numpy
byte array: the separators give every cell's first and last byte and its length in bytes. From those it answers, for
the whole column at C speed, the questions the per-cell rules of :mod:`provisioning.validation.checks` ask:

- may some cell start with a formula trigger (``= + - @`` tab CR)? Not when only ``+`` starts cells, each time
  as the cell's only ``+`` and before a digit, and every cell is made of phone-number characters
  (``+1 555 0100``), which the formula rule allows. (A cell whose trigger is behind blanks is one of the next.)
- which cells may have leading or trailing blanks (:data:`~provisioning.cells.BLANKS`: any ``str.isspace``
  character, ASCII or not, and the zero-width ones)?
- may some cell hold a control character? an invisible one (:data:`~provisioning.cells.INVISIBLE`)?
- what is the longest cell, in bytes (never fewer than its characters)?

:func:`plain_phones` answers one more question, for the phone fields: is every cell empty or a plain phone number
(``+1 555 0100``, ``(0)30 1234-56``)? The regular expression of a whole phone column takes about 50 ms on
100,000 cells; these few byte tests take a few. :func:`plain_upns` does the same for the shape of the UPNs.

Every answer is conservative: it may name a cell that turns out fine (a name ending in ``é`` shares its last byte
with U+2029), never miss one. The checks then run their exact per-cell rule on what was named only. A cell that
itself holds a NUL makes the separators ambiguous: :func:`scan` then says so (``exact``) and the checks look at
every cell, as they would without this module.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from provisioning.cells import BLANKS, FORMULA_TRIGGERS, INVISIBLE, UPN_LOCAL_CHARS

SEP = "\x00"
_TRIGGERS = np.zeros(256, dtype=bool)
_TRIGGERS[[ord(t) for t in FORMULA_TRIGGERS]] = True
_HARD_TRIGGERS = _TRIGGERS.copy()  # every trigger but "+", which also starts a phone number
_HARD_TRIGGERS[ord("+")] = False
_PHONE_BYTES = b"\x000123456789 -()./+"  # a column of only these, each + first in its cell and before a digit
_DIGITS = np.zeros(256, dtype=bool)
_DIGITS[list(b"0123456789")] = True
_AHEAD_OF_DIGITS = np.zeros(256, dtype=bool)  # what a plain phone number may have ahead of its first digit
_AHEAD_OF_DIGITS[list(b"+ (")] = True  # (the "+" first only: a second one is told by counting them)
# the blanks trimmed at either end (cells.BLANKS: str.isspace and the zero-width ones) in UTF-8: the bytes one may
# start with; the last bytes one may end with, and the byte before those (so that a name ending in "é", C3 A9, is
# not taken for one ending in U+2029, E2 80 A9)
_BLANK_BYTES = [ch.encode("utf-8") for ch in BLANKS]
_LEADING = np.zeros(256, dtype=bool)
_LEADING[[b[0] for b in _BLANK_BYTES]] = True
_TRAILING_ASCII = np.zeros(256, dtype=bool)
_TRAILING_ASCII[[b[0] for b in _BLANK_BYTES if len(b) == 1]] = True
_TRAILING_HIGH = np.zeros(256, dtype=bool)
_TRAILING_HIGH[[b[-1] for b in _BLANK_BYTES if len(b) > 1]] = True
_BEFORE_TRAILING_HIGH = np.zeros(256, dtype=bool)
_BEFORE_TRAILING_HIGH[[b[-2] for b in _BLANK_BYTES if len(b) > 1]] = True
# the lead bytes of the invisible characters (cells.INVISIBLE) in UTF-8; C2 is also that of U+00A0-U+00FF
_INVISIBLE_LEAD = [bytes([b]) for b in b"\xc2\xd8\xdb\xdc\xe0\xe1\xe2\xef\xf0\xf3"]  # (each a memchr away)


@dataclass(frozen=True, slots=True)
class ColumnScan:
    """What :func:`scan` found in one column (see the module docstring)."""

    joined: str  # SEP + SEP.join(cells) + SEP
    exact: bool  # a cell holds a NUL: nothing below is known, check every cell
    formula_like: bool  # some cell starts with = + - @ tab or CR
    edge_blank_rows: tuple[int, ...]  # indexes of the cells that may start or end with a blank
    control: bool  # some cell may hold a control character other than tab, line feed, carriage return
    invisible: bool  # some cell may hold an invisible character (cells.INVISIBLE)
    max_bytes: int  # the longest cell in UTF-8 bytes (>= its length in characters)
    lengths: np.ndarray | None = None  # every cell's length in bytes (0 = empty); None when not known
    full: bool = False  # True: no cell is empty (said where lengths are not known: see checks.check_cells)
    phones: bool = False  # True: every cell is empty or a plain phone number (see plain_phones; asked for)


def scan(col: Sequence[str], *, phone: bool = False) -> ColumnScan:
    """Scan one column (see the module docstring); ``phone``: also tell whether it holds only plain phone numbers
    (:attr:`ColumnScan.phones`, :func:`plain_phones` on the bytes at hand)."""
    if not col:
        return ColumnScan(SEP, False, False, (), False, False, 0, np.zeros(0, dtype=np.intp))
    joined = SEP + SEP.join(col) + SEP
    raw = joined.encode("utf-8", "surrogatepass")
    arr = np.frombuffer(raw, dtype=np.uint8)
    seps = np.flatnonzero(arr == 0)
    n = len(col)
    if len(seps) != n + 1:
        return ColumnScan(joined, True, True, tuple(range(n)), True, True, len(raw))
    first = arr[seps[:-1] + 1]
    last = arr[seps[1:] - 1]
    trailing = _TRAILING_ASCII[last]
    plain = joined.isascii()  # (known without a look: CPython keeps a text's widest character)
    high = None if plain else _TRAILING_HIGH[last]
    if high is not None and high.any():
        trailing |= high & _BEFORE_TRAILING_HIGH[arr[seps[1:] - 2]]
    edges = np.flatnonzero(_LEADING[first] | trailing)
    # bytes below 0x20 are the separators, tabs, line breaks and control characters: any beyond the first three
    low = int(np.count_nonzero(arr < 0x20)) - (n + 1)
    control = bool(low and low > raw.count(b"\t") + raw.count(b"\n") + raw.count(b"\r")) or b"\x7f" in raw
    lengths = seps[1:] - seps[:-1] - 1
    max_bytes = int(lengths.max())
    formula_like = bool(_TRIGGERS[first].any())
    if formula_like and not _HARD_TRIGGERS[first].any() and not raw.translate(None, _PHONE_BYTES):
        plus = first == 0x2B  # only + starts cells: a phone number each when + is their only one, before a digit
        if raw.count(b"+") == int(np.count_nonzero(plus)) and _DIGITS[arr[seps[:-1][plus] + 2]].all():
            formula_like = False  # "+1 555 0100"
    invisible = not plain and any(lead in raw for lead in _INVISIBLE_LEAD) and _has_invisible(joined)
    phones = phone and not raw.translate(None, _PHONE_BYTES) and _plain_phone_cells(raw, arr, seps)
    return ColumnScan(joined, False, formula_like, tuple(edges.tolist()), control, invisible, max_bytes, lengths,
                      phones=phones)


# the bytes of a UPN of plain shape: its local part's characters (the domain's are among them), "@" and NUL
_UPN_BYTES = bytes(b for b in range(128) if re.fullmatch(f"[{UPN_LOCAL_CHARS}@\x00]", chr(b)))


def plain_upns(joined: str) -> bool:
    """True when every cell of ``joined`` (as :func:`plain_phones` takes it) is empty or shaped like a UPN as
    :data:`~provisioning.validation.patterns.UPN_SHAPES` wants it: 1-64 characters a local part may hold, neither
    starting nor ending with "." nor holding "..", one "@", 1-48 more up to the cell's end. True means that
    regular expression matches; False says nothing (a character outside ASCII, or a "..": ask it)."""
    if not joined.isascii():
        return False
    raw = joined.encode("ascii")
    if raw[:1] != b"\x00" or raw[-1:] != b"\x00" or raw.translate(None, _UPN_BYTES) or b".." in raw:
        return False
    arr = np.frombuffer(raw, dtype=np.uint8)
    seps = np.flatnonzero(arr == 0)
    ats = np.flatnonzero(arr == 0x40)
    filled = np.flatnonzero(seps[1:] - seps[:-1] > 1)  # the cells with text
    # one "@" in each cell with text (the cell of an "@" is the number of separators before it, less one)
    if len(ats) != len(filled) or not np.array_equal(np.searchsorted(seps, ats) - 1, filled):
        return False
    local = ats - seps[filled] - 1
    domain = seps[filled + 1] - ats - 1
    return bool((local >= 1).all() and (local <= 64).all() and (arr[ats - 1] != 0x2E).all()
                and (arr[seps[filled] + 1] != 0x2E).all()
                and (domain >= 1).all() and (domain <= 48).all())


_invisible_bmp: list[np.ndarray] = []  # INVISIBLE as a table of the Basic Multilingual Plane, made on first use


def _has_invisible(joined: str) -> bool:
    """``INVISIBLE.search(joined) is not None``, by looking the text's non-ASCII code points up in a table (the
    regular expression takes 10-30 ms on a column of 100,000 accented names, the table a few)."""
    if not _invisible_bmp:
        bmp = "".join(map(chr, range(0x80, 0xD800))) + "".join(map(chr, range(0xE000, 0x10000)))
        table = np.zeros(0x10000, dtype=bool)
        table[[ord(m.group()) for m in INVISIBLE.finditer(bmp)]] = True
        _invisible_bmp.append(table)
    codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    high = codes[codes > 0x7F]
    bmp_codes = high < 0x10000
    if _invisible_bmp[0][high[bmp_codes]].any():
        return True
    astral = high[~bmp_codes]
    return bool(astral.size) and INVISIBLE.search("".join(map(chr, np.unique(astral).tolist()))) is not None


def plain_phones(joined: str) -> bool:
    """True when every cell of ``joined`` (``SEP`` + cells joined with ``SEP`` + ``SEP``) is empty or a plain phone
    number, ``\\+?[ (]*\\d[\\d ().\\-/]*``: an optional leading ``+``, blanks and ``(``, a digit, then digits and
    `` ().-/``. Every such cell is a :data:`~provisioning.validation.patterns.PHONE_COLUMN` cell, so True means
    that regular expression matches too; False says nothing (a letter, an extension, a second ``+``: ask it).
    A NUL is taken for a separator, as the regular expression takes it."""
    raw = joined.encode("utf-8", "surrogatepass")
    if raw[:1] != b"\x00" or raw[-1:] != b"\x00" or raw.translate(None, _PHONE_BYTES):
        return False
    arr = np.frombuffer(raw, dtype=np.uint8)
    return _plain_phone_cells(raw, arr, np.flatnonzero(arr == 0))


def _plain_phone_cells(raw: bytes, arr: np.ndarray, seps: np.ndarray) -> bool:
    """:func:`plain_phones` of a text of phone-number bytes only (``raw``; ``arr`` its bytes as numpy, ``seps``
    the offsets of its separators, the first and last byte among them)."""
    at = seps[:-1] + 1  # each cell's first byte (the next separator when it is empty)
    code = arr[at]
    if (not (_DIGITS[code] | (code == 0) | _AHEAD_OF_DIGITS[code]).all()
            or raw.count(b"+") != int(np.count_nonzero(code == 0x2B))):  # a "+" that does not start its cell
        return False
    at = at[_AHEAD_OF_DIGITS[code]]
    while at.size:  # step the cells still ahead of their first digit on by one byte (as many times as the longest)
        at += 1
        code = arr[at]
        if not (_DIGITS[code] | _AHEAD_OF_DIGITS[code]).all():  # a separator here: a cell of blanks, "+" or "("
            return False
        at = at[_AHEAD_OF_DIGITS[code]]
    return True
