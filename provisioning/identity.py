"""Unicode rules for telling people apart and for turning names into UPN material (pure, no package imports).

One person can reach the tool spelled in several Unicode forms: ``é`` as one code point or as ``e`` + a combining
accent (macOS exports write the second), full-width ``Ｐｒｉｙａ`` from East Asian input methods, ``ﬁ`` ligatures.
Every "is this the same value?" question (duplicates in the file, the same person in the tenant) compares
:func:`identity_key` values: NFKC, then case folding. A name becomes UPN material by :func:`name_material`: canonical
composition (NFC), every symbol dropped (:func:`dropped`: emoji and other pictographs, currency and math signs,
modifiers, variation selectors, zero-width joiners and other invisible format characters), compatibility
normalisation (NFKC) and symbols dropped again, so ``Ann😀`` gives ``ann`` and never ``anngrinning``, and both
Unicode forms of one name give the same UPN.
"""
from __future__ import annotations

import unicodedata
from typing import Sequence

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
