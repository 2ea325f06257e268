"""Which text encoding a CSV roster is in, and when that cannot be told.

A byte-order mark decides (UTF-8, UTF-16); NULs in every other byte mean UTF-16 without one; a file that decodes
as UTF-8 is UTF-8. A file with valid UTF-8 accents *and* bytes that are not UTF-8 is a UTF-8 file that a program
wrote a few lines of in another encoding: reading it in any one encoding garbles the other lines, so it is refused
with the lines named. What remains is a file in a one-byte encoding. Its bytes above 0x7F mean different letters in
each: charset-normalizer proposes the candidates (:data:`CANDIDATES`) that decode the file's non-ASCII lines with
little "mess"; each candidate's reading is then checked word by word (:func:`_plausible`): no symbol between two
letters (``S¿ren`` is Mac Roman read as cp1252), no accented capital after a small letter (``KierkegŚrd``), no Latin
and Cyrillic letters in one word, and the accented letters of each word found together in one language's alphabet
(``Núńez`` mixes Spanish ``ú`` and Polish ``ń``). When the readings left agree, that is the encoding (a note says
so unless it is cp1252, what Excel on Windows writes); when they differ, the file is refused, naming the first line
where the choice matters and how it reads each way, and ``--encoding NAME`` says which to use.
"""
from __future__ import annotations

import argparse
import codecs
import csv
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

CANDIDATES = ("cp1252", "cp1250", "mac_roman", "cp1251")
DESCRIPTION = {"cp1252": "Windows-1252 (Western European)", "cp1250": "Windows-1250 (Central European)",
               "mac_roman": "Mac OS Roman", "cp1251": "Windows-1251 (Cyrillic)"}
_MAX_LINES = 5000  # non-ASCII lines looked at: plenty to tell, and a bound on the work for a huge file
# the accented letters of the languages written in the candidates' repertoires (lower case)
_ALPHABETS = tuple(frozenset(a) for a in (
    "àâæçéèêëîïôœùûüÿ",  # French
    "áéíóúñü", "áâãàçéêíóôõú", "àèéìíîòóùú", "àçèéíïòóúü·",  # Spanish, Portuguese, Italian, Catalan
    "äöüß", "áéèëïóöüíú", "æøåéó", "åäöé", "åäöšž",  # German, Dutch, Danish/Norwegian, Swedish, Finnish
    "áæðéíóöúýþ", "áæðíóøúý", "äöõüšž", "çë", "çğıöşüâîû",  # Icelandic, Faroese, Estonian, Albanian, Turkish
    "áéíóöőúüű", "ąćęłńóśźż", "áčďéěíňóřšťúůýž", "áäčďéíĺľňóôŕšťúýž",  # Hungarian, Polish, Czech, Slovak
    "čšž", "čćđšž", "ăâîșțşţ", "äöüß",  # Slovene, Croatian/Bosnian/Serbian, Romanian, German
))
_LETTERS = re.compile(r"[^\W\d_]+")
_BETWEEN_LETTERS = re.compile(r"(?<=[^\W\d_])[^\x00-\x7f](?=[^\W\d_])")
_C1 = re.compile("[\x80-\x9f]")
_APOSTROPHES = "\u2019\u2018\u00b7"  # O’Brien, l·l


@dataclass(frozen=True, slots=True)
class Guess:
    """The encoding to read a file in, and a note for the user when it is worth one (None otherwise)."""

    encoding: str
    note: str | None = None


class EncodingProblem(ValueError):
    """The file's encoding cannot be told for certain; the message says where and what to do."""


def encoding_option(text: str) -> str:
    """``--encoding NAME``: a codec Python knows (``cp1252``, ``mac_roman``, ``latin-1``...), by its own name."""
    try:
        codecs.lookup(text)
    except LookupError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an encoding name; use e.g. utf-8, cp1252, cp1250, "
                                         f"mac_roman, latin-1") from None
    return text


def from_head(head: bytes) -> str | None:
    """The encoding a file's first bytes prove: ``utf-8-sig`` / ``utf-16`` (a BOM), ``utf-16-le``/``-be`` (NULs
    abound), ``utf-8`` (the head decodes as UTF-8; a later byte may not); None when the head is not UTF-8."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head and head.count(0) > len(head) // 4:
        return "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    return "utf-8"


@dataclass(frozen=True, slots=True)
class Layout:
    """How to show a line of the file in a message: its delimiter, and the columns whose cells are never shown
    (the password column: a message may reach a terminal, a log or a ticket)."""

    delimiter: str = ","
    secret: frozenset[int] = frozenset()

    def cells(self, line: str) -> list[str]:
        """The cells of one line (a cell quoted over several lines is cut at the line's end)."""
        try:
            return next(csv.reader([line], delimiter=self.delimiter), [])
        except csv.Error:
            return line.split(self.delimiter)

    def show(self, cells: list[str], pick: Callable[[int, str], bool],
             escaped: Callable[[str], str] | None = None) -> str:
        """The cells ``pick(index, cell)`` chooses (at most four), quoted (``escaped`` turns a cell into its
        bytes as ``\\xNN`` escapes, shown as they are); a secret one only named."""
        out = [("the password cell (not shown)" if i in self.secret else
                repr(shorten(c)) if escaped is None else f"'{shorten(escaped(c))}'")
               for i, c in enumerate(cells) if pick(i, c)]
        return ", ".join(out[:4] + (["..."] if len(out) > 4 else []))


def guess(data: bytes, layout: Layout = Layout()) -> Guess:
    """The encoding of ``data``, a whole file that is not UTF-8 (see the module docstring); raise
    :class:`EncodingProblem` when it cannot be told for certain. ``layout`` says how to show a line."""
    lines = data.splitlines()
    if b"\x00" in data:  # text in a one-byte encoding has no NUL: a binary file (UTF-16 is told from its head)
        n = next(n for n, line in enumerate(lines, start=1) if b"\x00" in line)
        raise EncodingProblem(f"this is not a text file (line {n} has NUL bytes, and bytes that are not UTF-8); "
                              f"save it as CSV UTF-8 (comma delimited) or .xlsx and run again")
    text = data.decode("utf-8", "surrogateescape")  # bytes that are not UTF-8 become lone surrogates
    if re.search(r"[\x80-\ud7ff\ue000-\U0010ffff]", text):
        raise EncodingProblem(_mixed(lines, layout))
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if not line.isascii()][:_MAX_LINES]
    sample = b"\n".join(line for _, line in numbered)
    from charset_normalizer import from_bytes  # imported here: only files that are not UTF-8 need it

    proposed = {m.encoding for m in from_bytes(sample, cp_isolation=list(CANDIDATES))}
    readings: dict[str, str] = {}
    for name in CANDIDATES:
        if name in proposed:
            reading = sample.decode(name, "replace")
            if "\ufffd" not in reading and _plausible(reading):
                readings[name] = reading
    if not readings:
        raise EncodingProblem(_unknown(numbered, sample, layout))
    if len(set(readings.values())) > 1:
        raise EncodingProblem(_ambiguous(numbered, list(readings), layout))
    name = next(iter(readings))  # CANDIDATES order: cp1252 first
    if name == "cp1252":
        return Guess(name)
    n, line = numbered[0]
    cells = layout.show(layout.cells(line.decode(name)), lambda _, c: not c.isascii())
    return Guess(name, f"the file is not UTF-8; read as {name} ({DESCRIPTION[name]}), the only encoding of "
                       f"{', '.join(CANDIDATES)} in which its names read as letters (line {n}: {cells}); if a name "
                       f"looks wrong, save the file as CSV UTF-8 or give --encoding NAME")


def decode_problem(data: bytes, encoding: str, layout: Layout = Layout()) -> str:
    """The message for a file that does not decode in ``encoding`` (given with --encoding)."""
    for n, line in enumerate(data.splitlines(), start=1):
        try:
            line.decode(encoding)
        except UnicodeDecodeError as exc:
            bad = line[exc.start:exc.end]
            cells = layout.cells(line.decode("latin-1"))
            shown = layout.show(cells, lambda _, c: not _decodes(c, encoding), _escaped)
            return f"line {n} has bytes that are not {encoding} ({_hex(bad)}): {shown}; check --encoding"
    return f"the file does not decode as {encoding}; check --encoding"


def _decodes(cell: str, encoding: str) -> bool:
    try:
        cell.encode("latin-1").decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _escaped(cell: str) -> str:
    """A cell read as latin-1 (one character per byte), its bytes above 0x7F as ``\\xNN``."""
    return cell.encode("latin-1").decode("ascii", "backslashreplace")


def _mixed(lines: list[bytes], layout: Layout) -> str:
    bad: list[int] = []
    found: list[int] = []
    for n, line in enumerate(lines, start=1):
        if line.isascii():
            continue
        text = line.decode("utf-8", "surrogateescape")
        wrong = [ord(ch) - 0xDC00 for ch in text if "\udc80" <= ch <= "\udcff"]
        if wrong:
            found.append(n)
            bad.extend(b for b in wrong if b not in bad)
    cells = layout.cells(lines[found[0] - 1].decode("utf-8", "surrogateescape"))
    shown = layout.show(cells, lambda _, c: re.search("[\udc80-\udcff]", c) is not None,
                        lambda c: c.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
    where = f"line {found[0]} has" if len(found) == 1 else f"lines {_numbers(found)} have"
    return (f"{where} bytes that are not UTF-8 ({_hex(bytes(bad[:8]))}), though the rest of the file is UTF-8 "
            f"(line {found[0]}: {shown}); a program wrote them in another encoding, so no one encoding reads every "
            f"line right: retype those characters and save the file as UTF-8 (or, if the whole file is in one "
            f"encoding, give --encoding, e.g. --encoding cp1252)")


def _ambiguous(numbered: list[tuple[int, bytes]], names: list[str], layout: Layout) -> str:
    for n, line in numbered:
        texts = {name: layout.cells(line.decode(name)) for name in names}
        if len({tuple(t) for t in texts.values()}) > 1:
            first = next(iter(texts.values()))
            differ = {i for i, c in enumerate(first) if any(t[i:i + 1] != [c] for t in texts.values())}
            # (the lambda runs in this iteration: join consumes the generator before the loop goes on)
            shown = " but ".join(f"{layout.show(cells, lambda i, _: i in differ)} in {name}"  # noqa: B023
                                 for name, cells in texts.items())
            options = " or ".join(f"--encoding {name}" for name in texts)
            return (f"the file is not UTF-8 and its encoding is uncertain: line {n} reads {shown}; save it as "
                    f"CSV UTF-8, or give {options}")
    raise AssertionError("readings differ but no line does")  # pragma: no cover - the sample is the lines


def _unknown(numbered: list[tuple[int, bytes]], sample: bytes, layout: Layout) -> str:
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    hint = f" (it may be {best.encoding}: --encoding {best.encoding})" if best is not None else ""
    n, line = numbered[0]
    shown = layout.show(layout.cells(line.decode("latin-1")), lambda _, c: not c.isascii(), _escaped)
    return (f"the file is not UTF-8 and reads as no text in {', '.join(CANDIDATES)}: line {n} has {shown}; save "
            f"it as CSV UTF-8, or give --encoding NAME{hint}")


def _plausible(text: str) -> bool:
    """Whether ``text`` reads as names and words (see the module docstring)."""
    if _C1.search(text):  # control characters: bytes the encoding has no character for
        return False
    for m in _BETWEEN_LETTERS.finditer(text):
        if not m.group().isalpha() and m.group() not in _APOSTROPHES:
            return False
    return all(map(_word_ok, {w for w in _LETTERS.findall(text) if not w.isascii()}))


def _word_ok(word: str) -> bool:
    for a, b in pairwise(word):
        if a.islower() and b.isupper() and not b.isascii():
            return False
    cyrillic = [unicodedata.name(ch, "").startswith("CYRILLIC") for ch in word]
    if any(cyrillic):
        return all(cyrillic)
    accents = {ch for ch in word.lower() if not ch.isascii()}
    return any(accents <= alphabet for alphabet in _ALPHABETS)


def _numbers(found: list[int]) -> str:
    shown = [str(n) for n in found[:10]] + (["..."] if len(found) > 10 else [])
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _hex(data: bytes) -> str:
    return ", ".join(f"0x{b:02X}" for b in data)


def shorten(text: str, width: int = 40) -> str:
    """``text``, cut to ``width`` characters with "..." when longer."""
    return text if len(text) <= width else text[: width - 3] + "..."
