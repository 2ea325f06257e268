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

Every answer is conservative: it may name a cell that turns out fine (a name ending in ``é`` shares its last byte
with U+2029), never miss one. The checks then run their exact per-cell rule on what was named only. A cell that
itself holds a NUL makes the separators ambiguous: :func:`scan` then says so (``exact``) and the checks look at
every cell, as they would without this module.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from provisioning.cells import BLANKS, FORMULA_TRIGGERS, INVISIBLE

SEP = "\x00"
_TRIGGERS = np.zeros(256, dtype=bool)
_TRIGGERS[[ord(t) for t in FORMULA_TRIGGERS]] = True
_HARD_TRIGGERS = _TRIGGERS.copy()  # every trigger but "+", which also starts a phone number
_HARD_TRIGGERS[ord("+")] = False
_PHONE_BYTES = b"\x000123456789 -()./+"  # a column of only these, each + first in its cell and before a digit
_DIGITS = np.zeros(256, dtype=bool)
_DIGITS[list(b"0123456789")] = True
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
_INVISIBLE_LEAD = np.zeros(256, dtype=bool)
_INVISIBLE_LEAD[list(b"\xc2\xd8\xdb\xdc\xe0\xe1\xe2\xef\xf0\xf3")] = True


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


def scan(col: Sequence[str]) -> ColumnScan:
    """Scan one column (see the module docstring)."""
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
        plus = first == 0x2B  # only + starts cells: a phone number each when + is their only one, before a digit
        if raw.count(b"+") == int(np.count_nonzero(plus)) and _DIGITS[arr[seps[:-1][plus] + 2]].all():
            formula_like = False  # "+1 555 0100"
    invisible = bool(_INVISIBLE_LEAD[arr].any()) and INVISIBLE.search(joined) is not None
    return ColumnScan(joined, False, formula_like, tuple(edges.tolist()), control, invisible, max_bytes, lengths)
