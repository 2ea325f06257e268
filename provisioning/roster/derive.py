"""Fields derived when a row leaves them empty: displayName, userPrincipalName, mailNickname.

UPNs come from a naming template (default ``{givenName}.{surname}@{domain}``; plain fields, ``:.N`` the first N, so
``{givenName:.1}{surname}@{domain}`` gives ``alee@contoso.com``). Each part is normalised and stripped of symbols
(:func:`provisioning.roster.identity.name_material`: both Unicode forms of a name give one UPN, and an emoji never
becomes a word), transliterated to ASCII with ``anyascii`` (``José Núñez-Ødegård`` -> ``jose.nunez-odegard``),
lower-cased and stripped of characters Entra rejects; dots are collapsed, the local part is cut to 64 characters
and never ends in ``.``. Collisions within the file get a numeric suffix (:func:`assign_suffixes`: ``ann.lee2@``,
``ann.lee3@`` ...); :mod:`provisioning.validation.people` decides who is a namesake and matches the tenant's users.
Work is per column with per-value caches, so 100,000 rows cost a few hundred milliseconds.
"""
from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import compress, repeat
from operator import add, itemgetter, not_
from typing import TypeVar, cast

from anyascii import anyascii

from provisioning.cells import NICKNAME_BAD, UPN_LOCAL_CHARS
from provisioning.roster.identity import name_material, transliterate

DEFAULT_NAMING_TEMPLATE = "{givenName}.{surname}@{domain}"
DEFAULT_DISPLAY_NAME_TEMPLATE = "{givenName} {surname}"
UPN_LOCAL_MAX = 64
T = TypeVar("T")
MAIL_NICKNAME_MAX = 64

_UPN_DISALLOWED = re.compile(rf"[^{UPN_LOCAL_CHARS}]+")
_DOTS = re.compile(r"\.{2,}")
_SPACES = re.compile(r"\s{2,}")
_formatter = string.Formatter()


class TemplateError(ValueError):
    """A naming or display-name template that is not plain field names in braces and text."""


_FIRST = re.compile(r"\.([1-9][0-9]?)")
TEMPLATE_HINT = "write field names in braces, like {givenName}.{surname}@{domain} ({givenName:.1}: its first letter)"

#: One parsed template: (literal text, field name or None, first N characters or None) per piece.
Parsed = tuple[tuple[str, "str | None", "int | None"], ...]


def parse_template(template: object) -> Parsed:
    """A template as ``(literal, field, first)`` pieces; :class:`TemplateError` for anything but plain field names
    (optionally ``:.N``, the first N characters) and text.

    Templates come from users' mapping files, so they are never given to ``str.format``: attribute and index
    lookups (``{givenName.__class__}``, ``{x[0]}``), conversions and other format specs do not exist here."""
    if not isinstance(template, str):
        raise TemplateError(f"{template!r} is not a text; {TEMPLATE_HINT}")
    try:
        raw = list(_formatter.parse(template))
    except ValueError:
        raise TemplateError(f"an unbalanced '{{' or '}}' (write {{{{ or }}}} for a brace as text); "
                            f"{TEMPLATE_HINT}") from None
    out: list[tuple[str, str | None, int | None]] = []
    for literal, name, spec, conv in raw:
        if name is None:
            out.append((literal, None, None))
            continue
        shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
        if not name.isidentifier():
            why = ("needs a field name" if not name else "looks up an attribute or an index, which templates "
                   "do not do" if any(c in name for c in ".[]") else "is not a field name")
            raise TemplateError(f"{shown} {why}; {TEMPLATE_HINT}")
        first = _FIRST.fullmatch(spec) if spec else None
        if conv or (spec and first is None):
            raise TemplateError(f"{shown} is not a plain field name (no !conversions or :formats "
                                f"other than :.N for the first N characters); {TEMPLATE_HINT}")
        out.append((literal, name, int(first.group(1)) if first else None))
    return tuple(out)


def template_fields(template: str) -> set[str]:
    """The field names a template uses (``{givenName:.1}{surname}@{domain}`` -> givenName, surname, domain)."""
    return {name for _, name, _ in parse_template(template) if name}


def _cut(text: str, first: int | None) -> str:
    return text if first is None else text[:first]


def upn_part(text: str) -> str:
    """One template value as UPN material: normalised, no symbols, ASCII, lower-case, only characters Entra allows
    in a UPN."""
    return _UPN_DISALLOWED.sub("", anyascii(name_material(text)).lower())


def clean_local(local: str) -> str:
    """Collapse dots, strip leading/trailing dots, cut to 64 characters and never end in ``.``."""
    if ".." in local:
        local = _DOTS.sub(".", local)
    local = local.strip(".")
    if len(local) > UPN_LOCAL_MAX:
        local = local[:UPN_LOCAL_MAX].rstrip(".")
    return local


def mail_nickname_from(upn: str) -> str:
    """The UPN's local part without characters a mailNickname cannot hold, at most 64 characters."""
    local = upn.rpartition("@")[0] or upn
    return NICKNAME_BAD.sub("", local)[:MAIL_NICKNAME_MAX]


def mail_nicknames(upns: Sequence[str], derived: Sequence[int], derived_locals: Sequence[str],
                   given: Sequence[int]) -> list[str]:
    """mailNicknames for a column of UPNs: row ``derived[k]`` takes ``derived_locals[k]`` (the local part of its
    derived UPN, a valid mailNickname by construction), row ``given[k]`` takes :func:`mail_nickname_from` of its
    UPN as typed; any other row ``""``. One regular expression over the given local parts decides whether any
    needs cleaning."""
    n = len(upns)
    if len(derived) == n:
        return list(derived_locals)
    typed = pick(upns, given)
    nicks = list(map(itemgetter(0), map(str.rpartition, typed, repeat("@"))))
    sample = [v or u for v, u in zip(nicks, typed, strict=True)] if "" in nicks else nicks
    if NICKNAME_BAD.search("".join(sample)) or max(map(len, sample), default=0) > MAIL_NICKNAME_MAX:
        nicks = list(map(mail_nickname_from, typed))
    else:
        nicks = sample
    out = [""] * n
    for i, v in zip(derived, derived_locals, strict=True):
        out[i] = v
    for i, v in zip(given, nicks, strict=True):
        out[i] = v
    return out


def make_upn_maker(template: str, domain: str | None) -> tuple[tuple[str, ...], Callable[..., str]]:
    """``(fields, make)`` where ``make(*values)`` builds the UPN for one row from raw cell texts of ``fields``.

    Returns ``""`` when the template yields an empty local part. Cleaned values are cached per distinct text.
    """
    parsed = parse_template(template)
    fields = tuple(sorted({name for _, name, _ in parsed if name} - {"domain"}))
    index = {f: k for k, f in enumerate(fields)}
    steps: list[str | tuple[int, int | None]] = []  # literal texts, and (value index, first N) of the fields
    for literal, name, first in parsed:
        if literal:
            steps.append(literal)
        if name == "domain":
            steps.append(_cut(domain or "", first))
        elif name is not None:
            steps.append((index[name], first))
    cache: dict[str, str] = {}

    def part(text: str) -> str:
        value = cache.get(text)
        if value is None:
            value = cache[text] = upn_part(text)
        return value

    literals = "".join(lit for lit, _, _ in parse_template(template.rpartition("@")[0] or template))
    literal_ok = not _UPN_DISALLOWED.search(literals)
    has_spec = any(first is not None for _, _, first in parsed)

    def make(*values: str) -> str:
        cleaned = [part(v) for v in values]
        raw = "".join(s if isinstance(s, str) else _cut(cleaned[s[0]], s[1]) for s in steps)
        local, at, dom = raw.rpartition("@")
        if not at:
            local, dom = raw, ""
        if not literal_ok or has_spec:
            local = _UPN_DISALLOWED.sub("", local)
        if ".." in local or local[:1] == "." or local[-1:] == "." or len(local) > UPN_LOCAL_MAX:
            local = clean_local(local)
        return f"{local}@{dom}" if local else ""

    return fields, make


def _concat(pieces: Sequence[str | Sequence[str]], n: int) -> list[str]:
    """Row-wise concatenation of literal texts and columns of ``n`` values (``operator.add`` over ``map``; one
    ``str.join`` per row when the columns are separated by one same text, as in ``{givenName} {surname}``)."""
    core = [p for k, p in enumerate(pieces) if not (isinstance(p, str) and not p and k in (0, len(pieces) - 1))]
    columns, separators = core[0::2], core[1::2]
    if (len(columns) > 1 and len(separators) == len(columns) - 1 and len(set(map(type, separators))) == 1
            and isinstance(separators[0], str) and len(set(separators)) == 1
            and not any(isinstance(c, str) for c in columns)):
        return list(map(separators[0].join, zip(*columns, strict=True)))
    acc: Iterable[str] | None = None
    for piece in pieces:
        if isinstance(piece, str):
            if not piece:
                continue
            acc = repeat(piece, n) if acc is None else map(add, acc, repeat(piece))
        else:
            acc = piece if acc is None else map(add, acc, piece)
    return [""] * n if acc is None else list(acc)


def _pieces(template: str, columns: Mapping[str, Sequence[str]], n: int,
            constants: dict[str, str]) -> list[str | Sequence[str]]:
    """The template as literal texts and columns (``:.N`` applied once per distinct value); a field with no
    column counts as empty."""
    pieces: list[str | Sequence[str]] = []
    for literal, name, first in parse_template(template):
        pieces.append(literal)
        if name is None:
            continue
        if name in constants:
            pieces.append(_cut(constants[name], first))
            continue
        col = columns.get(name)
        if col is None:
            pieces.append("")
        elif first is not None:
            done = {v: v[:first] for v in set(col)}
            pieces.append(list(map(done.__getitem__, col)))
        else:
            pieces.append(col)
    return pieces


_UNTIDY = re.compile(r"\x00[ ,\x00]|[ ,]\x00|  ")


def _tidy(pieces: Sequence[str | Sequence[str]]) -> bool:
    """True when no concatenation of ``pieces`` can start or end with a blank or comma or hold two blanks in a row:
    no literal at the ends starts/ends so, no piece holds "  ", no text after the first is empty, and no
    column value is empty or blank/comma-edged (one search over the distinct values joined with NULs; a value
    holding a NUL itself may only make it answer False, which is always safe)."""
    first, last = pieces[0], pieces[-1]
    if (isinstance(first, str) and first[:1] in (" ", ",")) or (isinstance(last, str) and last[-1:] in (" ", ",")):
        return False
    for k, piece in enumerate(pieces):
        if isinstance(piece, str):
            if "  " in piece or (k and not piece):  # (an empty one may stand for a missing column)
                return False
        elif piece and _UNTIDY.search("\x00" + "\x00".join(set(piece)) + "\x00"):
            return False
    return True


def display_names(template: str, columns: Mapping[str, Sequence[str]], n: int) -> list[str]:
    """Derived display names for ``n`` rows from the template's columns (missing columns count as empty).

    Blanks and commas at the ends are stripped and runs of blanks collapsed (an empty givenName must not leave
    " Lee"); when no distinct value of the columns and no literal could cause either, that pass is skipped.
    """
    pieces = _pieces(template, columns, n, {})
    out = _concat(pieces, n)
    if not _tidy(pieces):
        out = list(map(str.strip, out, repeat(" ,", n)))
        if any(map(str.__contains__, out, repeat("  ", n))):
            out = [_SPACES.sub(" ", name) if "  " in name else name for name in out]
    return out


_UPN_DISALLOWED_OR_NUL = re.compile(rf"[^{UPN_LOCAL_CHARS}\x00]+")


def upn_parts(values: Sequence[str]) -> list[str]:
    """:func:`upn_part` of every value of a column (same result), computed once per distinct value.

    The distinct values are joined with NULs and cleaned as one text (``anyascii`` works character by character,
    so this is the same transliteration, without a call per value).
    """
    return _upn_parts(values)[0]


def _upn_parts(values: Sequence[str]) -> tuple[list[str], list[str]]:
    """:func:`upn_parts` of ``values``, and the distinct parts among them (a list)."""
    distinct = list(set(values))
    joined = "\x00".join(distinct)
    if joined.count("\x00") != len(distinct) - 1:  # a value holds a NUL itself: one by one
        cleaned = list(map(upn_part, distinct))
    else:
        cleaned = _UPN_DISALLOWED_OR_NUL.sub("", transliterate(joined).lower()).split("\x00")
    cache = dict(zip(distinct, cleaned, strict=True))
    return list(map(cache.__getitem__, values)), list(set(cleaned))


def make_upns(template: str, domain: str | None, columns: Mapping[str, Sequence[str]], rows: Sequence[int]) \
        -> tuple[list[str], list[str]]:
    """UPNs for the rows ``rows`` (indexes) from the template's columns, and their local parts (``""`` where the
    template gives none); same results as :func:`make_upn_maker`.

    Column-wise: the rows' values of each column are cleaned once per distinct value (:func:`upn_parts`), the
    local part is built with ``map`` and the constant ``@domain`` appended once per row; only the rare local parts
    that need it (dots to collapse, over 64 characters, empty) are cleaned one by one. Unusual templates (a column
    after the ``@``, conversions, literals Entra rejects) are built row by row.
    """
    fields, make = make_upn_maker(template, domain)
    if not rows:
        return [], []
    parts: dict[str, list[str]] = {}
    distinct: dict[str, list[str]] = {}  # the distinct values of each column of parts
    for f in fields:
        col = columns.get(f)
        parts[f], distinct[f] = _upn_parts(pick(col, rows)) if col is not None else ([""] * len(rows), [""])
    literals = "".join(lit for lit, _, _ in parse_template(template.rpartition("@")[0] or template))
    simple = "@" in template and "@" not in (domain or "") and not _UPN_DISALLOWED.search(literals)
    constants = {"domain": domain or ""}
    pieces = _pieces(template, parts, len(rows), constants) if simple else None
    split = _split_at_domain(pieces) if pieces is not None else None
    if split is None:  # unusual template: exactly the row-by-row rules
        columns_in_order = [parts[f] for f in fields]
        upns = [make(*values) for values in zip(*columns_in_order, strict=True)] if fields else [make()] * len(rows)
        return upns, list(map(itemgetter(0), map(str.rpartition, upns, repeat("@"))))
    local_pieces, suffix = split
    locals_ = _concat(local_pieces, len(rows))
    # judged from the distinct parts (the same pieces, each column by its distinct values)
    distinct_split = _split_at_domain(_pieces(template, distinct, len(rows), constants))
    if not (distinct_split and _clean_by_construction(distinct_split[0])) and _needs_cleaning(locals_):
        locals_ = [clean_local(v) if ".." in v or v[:1] == "." or v[-1:] == "." or len(v) > UPN_LOCAL_MAX else v
                   for v in locals_]
    upns = list(map(add, locals_, repeat(suffix)))
    if "" in locals_:
        for k in compress(range(len(locals_)), map(not_, locals_)):
            upns[k] = ""
    return upns, locals_


def _needs_cleaning(locals_: Sequence[str]) -> bool:
    """True when some local part has ``..``, starts or ends with ``.``, or is over 64 characters."""
    joined = "\n" + "\n".join(locals_) + "\n"
    return ".." in joined or "\n." in joined or ".\n" in joined or max(map(len, locals_)) > UPN_LOCAL_MAX


def _clean_by_construction(pieces: Sequence[str | Sequence[str]]) -> bool:
    """True when no concatenation of ``pieces`` (literal texts and columns) can need :func:`clean_local`, judged
    from the literals and each column's distinct values: no value is empty, starts or ends with ``.`` or holds
    ``..``; no run of literals holds ``..``; none starts the text with ``.`` or ends it so; and the longest
    possible result fits in 64 characters."""
    runs: list[str | None] = []  # literal runs (texts between columns); None for a column
    longest = 0
    for piece in pieces:
        if isinstance(piece, str):
            if runs and isinstance(runs[-1], str):
                runs[-1] += piece
            else:
                runs.append(piece)
            longest += len(piece)
        else:
            distinct = set(piece)
            if not distinct:
                continue
            if "" in distinct or _needs_cleaning(list(distinct)):
                return False
            longest += max(map(len, distinct))
            runs.append(None)
    if longest > UPN_LOCAL_MAX or any(".." in run for run in runs if run):
        return False
    first, last = runs[0] if runs else None, runs[-1] if runs else None
    return not ((first and first[:1] == ".") or (last and last[-1:] == "."))


def _split_at_domain(pieces: list[str | Sequence[str]]) -> tuple[list[str | Sequence[str]], str] | None:
    """``(local-part pieces, "@domain")``: the pieces split at the last ``@``, when only literal text follows it."""
    at = next((k for k in range(len(pieces) - 1, -1, -1) if isinstance(pieces[k], str) and "@" in pieces[k]), None)
    if at is None:
        return None
    piece, rest = pieces[at], pieces[at + 1:]
    tail = [p for p in rest if isinstance(p, str)]
    if not isinstance(piece, str) or len(tail) < len(rest):
        return None
    before, _, after = piece.rpartition("@")
    return [*pieces[:at], before], "@" + after + "".join(tail)


def pick(col: Sequence[T], rows: Sequence[int]) -> list[T]:
    """``[col[i] for i in rows]``, at C speed."""
    if len(rows) == len(col):
        return list(col)
    return list(itemgetter(*rows)(col)) if len(rows) > 1 else [col[i] for i in rows]


def lowered(col: Sequence[str]) -> Sequence[str]:
    """``[v.lower() for v in col]``; ``col`` itself when every value is lower-case already (one ``lower`` of the
    joined column decides: the usual case for UPNs and mailNicknames, and no new strings)."""
    joined = "\x00".join(col)
    return col if joined.lower() == joined else list(map(str.lower, col))


def with_suffix(upn: str, number: int) -> str:
    """``ann.lee@contoso.com`` + 2 -> ``ann.lee2@contoso.com`` (local part kept within 64 characters)."""
    local, _, domain = upn.rpartition("@")
    tail = str(number)
    local = local[: UPN_LOCAL_MAX - len(tail)].rstrip(".")
    return f"{local}{tail}@{domain}"


def assign_suffixes(candidates: Sequence[str | None], taken: set[str],
                    folded: Sequence[str] | None = None) -> list[str | None]:
    """Give each derived candidate (None or ``""``: not derived) a UPN not in ``taken`` (lower-case), adding it
    there.

    The first row holding a name keeps it, unless ``taken`` already has it; later rows get the lowest number
    (2, 3, ...) that is neither taken nor a name some other row derives, in file order. Only the rows that
    collide are walked one by one; the rest is a few set operations. ``folded``: :func:`lowered` of
    ``candidates``, when the caller has it.
    """
    index = list(compress(range(len(candidates)), candidates))
    if folded is None:
        given: Sequence[str] = cast(list[str], pick(candidates, index))  # the rows with a candidate: no None
        keys = lowered(given)  # derived UPNs are lower-case unless the domain is not
        lower = keys is given
    else:
        keys = pick(folded, index)
        lower = folded is candidates
    distinct = set(keys)
    out = list(candidates)
    clash = distinct & taken
    if len(distinct) == len(keys) and not clash:
        taken |= distinct
        return out
    seen: set[str] = set()
    add_seen = seen.add
    repeat_rows = [i for i, k in zip(index, keys, strict=True) if k in seen or add_seen(k)]  # rows after a name's first
    if clash:  # a name a given UPN holds: its first deriving row needs a number too
        firsts: dict[str, int] = {}
        for i, k in zip(index, keys, strict=True):
            if k in clash:
                firsts.setdefault(k, i)
        repeat_rows = sorted({*repeat_rows, *firsts.values()})
    taken |= distinct
    next_number: dict[str, int] = {}
    for i in repeat_rows:
        name = out[i]
        assert name is not None  # a repeated row's candidate
        key = name if lower else name.lower()
        n = next_number.get(key, 2)
        while True:
            upn = with_suffix(name, n)
            low = upn if lower else upn.lower()
            if low not in taken:
                break
            n += 1
        next_number[key] = n + 1
        out[i] = upn
        taken.add(low)
    return out
