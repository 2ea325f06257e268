"""Unicode rules for telling people apart and for turning names into UPN material (pure; imports nothing of the
package).

One person can reach the tool spelled in several Unicode forms: ``é`` as one code point or as ``e`` + a combining
accent (macOS exports write the second), full-width ``Ｐｒｉｙａ`` from East Asian input methods, ``ﬁ`` ligatures.
Every "is this the same value?" question (duplicates in the file, the same person in the tenant) compares
:func:`identity_key` values: NFKC, then case folding. A name becomes UPN material by :func:`name_material`: canonical
composition (NFC), every symbol dropped (:func:`dropped`: emoji and other pictographs, currency and math signs,
modifiers, variation selectors, zero-width joiners and other invisible format characters), compatibility
normalisation (NFKC) and symbols dropped again, so ``Ann😀`` gives ``ann`` and never ``anngrinning``, and both
Unicode forms of one name give the same UPN; :func:`transliterate` is that and ``anyascii`` at column speed.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np
from anyascii import anyascii

# symbols (Sc Sk Sm So), surrogates, format characters (ZWJ, ZWSP, bidi marks, tags), private use, unassigned
# (newer emoji), enclosing marks (the keycap of 1️⃣)
_DROPPED_CATEGORIES = frozenset({"Sc", "Sk", "Sm", "So", "Cs", "Cf", "Co", "Cn", "Me"})
_dropped_cache: dict[int, bool] = {}


def identity_key(text: str) -> str:
    """The form two values are compared in to decide whether they are the same: NFKC, then case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def identity_keys(col: Sequence[str]) -> Sequence[str]:
    """:func:`identity_key` of every value of a column; ``col`` itself when it is ASCII and lower-case already.

    An ASCII column needs only ``lower`` (NFKC leaves ASCII alone and ASCII folds as it lowers); otherwise the
    values are joined with NULs and normalised as one text (NUL is a starter that composes with nothing, so no
    character crosses from one value to the next); a value holding a NUL itself is done one by one."""
    joined = "\x00".join(col)
    if joined.isascii():
        return col if joined.lower() == joined else list(map(str.lower, col))
    if joined.count("\x00") != len(col) - 1:
        cache = {v: identity_key(v) for v in set(col)}
        return list(map(cache.__getitem__, col))
    return unicodedata.normalize("NFKC", joined).casefold().split("\x00")


def dropped(code: int) -> bool:
    """True for a non-ASCII character that never becomes part of a UPN (see the module text)."""
    found = _dropped_cache.get(code)
    if found is None:
        found = _dropped_cache[code] = code > 0x7F and (
            unicodedata.category(chr(code)) in _DROPPED_CATEGORIES or 0xFE00 <= code <= 0xFE0F
            or 0xE0100 <= code <= 0xE01EF)
    return found


def without_symbols(text: str) -> str:
    """``text`` without the characters :func:`dropped` names."""
    return "".join(ch for ch in text if not dropped(ord(ch)))


def name_material(text: str) -> str:
    """A name as the text UPN derivation transliterates: NFC, symbols dropped, NFKC, symbols dropped again."""
    if text.isascii():
        return text
    return without_symbols(unicodedata.normalize("NFKC", without_symbols(unicodedata.normalize("NFC", text))))


def transliterate(text: str) -> str:
    """``anyascii`` of every character of :func:`name_material` of ``text`` (ASCII kept), in a few C calls: the
    distinct characters are found with numpy, and each is replaced over the whole text (a table when there are
    many). On a text of values joined with NULs this is the same as value by value: NFC and NFKC compose nothing
    with NUL."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFC", text)
    symbols = [c for c in _non_ascii(text) if dropped(c)]
    if symbols:
        text = text.translate(dict.fromkeys(symbols))
    text = unicodedata.normalize("NFKC", text)
    chars = _non_ascii(text)
    if len(chars) > 64:
        return text.translate({c: "" if dropped(c) else anyascii(chr(c)) for c in chars})
    for c in chars:
        text = text.replace(chr(c), "" if dropped(c) else anyascii(chr(c)))
    return text


def _non_ascii(text: str) -> list[int]:
    """The distinct non-ASCII code points of ``text``."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    distinct: list[int] = np.unique(codes[codes > 0x7F]).tolist()
    return distinct
