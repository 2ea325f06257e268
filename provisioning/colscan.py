"""One pass of numpy over a column's bytes that tells the cell checks where they need to look.

:func:`scan` joins a column's cells with NUL separators, encodes the text to UTF-8 once and looks at it as a numpy
byte array: the separators give every cell's first and last byte and its length in bytes. From those it answers, for
the whole column at C speed, the questions the per-cell rules of :mod:`provisioning.checks` ask:

- may some cell start with a formula trigger (``= + - @`` tab CR)? Not when only ``+`` and ``-`` start cells and
  every cell is made of phone-number characters (``+1 555 0100``), which the formula rule allows.
- which cells may have leading or trailing blanks (any ``str.isspace`` character, ASCII or not)?
- may some cell hold a control character?
- what is the longest cell, in bytes (never fewer than its characters)?

Every answer is conservative: it may name a cell that turns out fine (a name ending in ``é`` shares its last byte
with U+2029), never miss one. The checks then run their exact per-cell rule on what was named only. A cell that
itself holds a NUL makes the separators ambiguous: :func:`scan` then says so (``exact``) and the checks look at
every cell, as they would without this module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

SEP = "\x00"
_TRIGGERS = np.zeros(256, dtype=bool)
_TRIGGERS[list(b"=+-@\t\r")] = True
_HARD_TRIGGERS = np.zeros(256, dtype=bool)
_HARD_TRIGGERS[list(b"=@\t\r")] = True
_PHONE_BYTES = b"\x000123456789 -().,;/+"  # what may follow a leading + or - in a phone number (and separators)
_ASCII_SPACE = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
# str.isspace() beyond ASCII: U+0085 U+00A0 (C2 xx), U+1680 (E1 9A 80), U+2000-200A U+2028 U+2029 U+202F U+205F
# (E2 80/81 xx), U+3000 (E3 80 80): the lead bytes a blank may start with; the last bytes it may end with, and the
# byte before those (so that a name ending in "é", C3 A9, is not taken for one ending in U+2029, E2 80 A9)
_LEADING = np.zeros(256, dtype=bool)
_LEADING[list(_ASCII_SPACE + b"\xc2\xe1\xe2\xe3")] = True
_TRAILING_ASCII = np.zeros(256, dtype=bool)
_TRAILING_ASCII[list(_ASCII_SPACE)] = True
_TRAILING_HIGH = np.zeros(256, dtype=bool)
_TRAILING_HIGH[list(bytes(range(0x80, 0x8B)) + b"\x9f\xa0\xa8\xa9\xaf")] = True
_BEFORE_TRAILING_HIGH = np.zeros(256, dtype=bool)
_BEFORE_TRAILING_HIGH[list(b"\x80\x81\x9a\xc2")] = True


@dataclass(frozen=True, slots=True)
class ColumnScan:
    """What :func:`scan` found in one column (see the module docstring)."""

    joined: str  # SEP + SEP.join(cells) + SEP
    exact: bool  # a cell holds a NUL: nothing below is known, check every cell
    formula_like: bool  # some cell starts with = + - @ tab or CR
    edge_blank_rows: tuple[int, ...]  # indexes of the cells that may start or end with a blank
    control: bool  # some cell may hold a control character other than tab, line feed, carriage return
    max_bytes: int  # the longest cell in UTF-8 bytes (>= its length in characters)
    lengths: np.ndarray | None = None  # every cell's length in bytes (0 = empty); None when not known


def scan(col: Sequence[str]) -> ColumnScan:
    """Scan one column (see the module docstring)."""
    if not col:
        return ColumnScan(SEP, False, False, (), False, 0, np.zeros(0, dtype=np.intp))
    joined = SEP + SEP.join(col) + SEP
    raw = joined.encode("utf-8", "surrogatepass")
    arr = np.frombuffer(raw, dtype=np.uint8)
    seps = np.flatnonzero(arr == 0)
    n = len(col)
    if len(seps) != n + 1:
        return ColumnScan(joined, True, True, tuple(range(n)), True, len(raw))
    first = arr[seps[:-1] + 1]
    last = arr[seps[1:] - 1]
    trailing = _TRAILING_ASCII[last]
    high = _TRAILING_HIGH[last]
    if high.any():
        trailing |= high & _BEFORE_TRAILING_HIGH[arr[seps[1:] - 2]]
    edges = np.flatnonzero(_LEADING[first] | trailing)
    # bytes below 0x20 are the separators, tabs, line breaks and control characters: any beyond the first three
    low = int(np.count_nonzero(arr < 0x20)) - (n + 1)
    control = bool(low and low > raw.count(b"\t") + raw.count(b"\n") + raw.count(b"\r")) or b"\x7f" in raw
    lengths = seps[1:] - seps[:-1] - 1
    max_bytes = int(lengths.max())
    formula_like = bool(_TRIGGERS[first].any())
    if formula_like and not _HARD_TRIGGERS[first].any() and not raw.translate(None, _PHONE_BYTES):
        formula_like = False  # only + and - start cells, and every cell is a phone number: "+1 555 0100"
    return ColumnScan(joined, False, formula_like, tuple(edges.tolist()), control, max_bytes, lengths)
