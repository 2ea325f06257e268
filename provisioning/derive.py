"""Fields derived when a row leaves them empty: displayName, userPrincipalName, mailNickname.

UPNs come from a naming template (default ``{givenName}.{surname}@{domain}``; Python format syntax, so
``{givenName:.1}{surname}@{domain}`` gives ``alee@contoso.com``). Each part is transliterated to ASCII with
``anyascii`` (``José Núñez-Ødegård`` -> ``jose.nunez-odegard``), lower-cased and stripped of characters Entra
rejects; dots are collapsed, the local part is cut to 64 characters and never ends in ``.``. Collisions within the
file (and, with a tenant, with existing users) get a numeric suffix: ``ann.lee2@``, ``ann.lee3@`` ...
Work is per column with per-value caches, so 100,000 rows cost a few hundred milliseconds.
"""
from __future__ import annotations

import re
import string
from itertools import compress, repeat
from operator import add, itemgetter, ne, not_
from typing import Callable, Collection, Iterable, Sequence

from anyascii import anyascii

DEFAULT_NAMING_TEMPLATE = "{givenName}.{surname}@{domain}"
DEFAULT_DISPLAY_NAME_TEMPLATE = "{givenName} {surname}"
UPN_LOCAL_MAX = 64
UPN_DOMAIN_MAX = 48
UPN_MAX = 113
MAIL_NICKNAME_MAX = 64

_UPN_DISALLOWED = re.compile(r"[^A-Za-z0-9'.\-_!#^~]+")
_NICK_DISALLOWED = re.compile(r"[^\x21-\x7e]|[@()\\\[\]\";:<>,]")
_DOTS = re.compile(r"\.{2,}")
_SPACES = re.compile(r"\s{2,}")
_formatter = string.Formatter()


def template_fields(template: str) -> set[str]:
    """The field names a template uses (``{givenName:.1}{surname}@{domain}`` -> givenName, surname, domain)."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in _formatter.parse(template) if name}


def _positional(template: str, fields: Sequence[str], constants: dict[str, str]) -> str:
    """Rewrite a named template to positional ``{0}``... for ``fields``; constants are inlined as literals."""
    out = []
    for literal, name, spec, conv in _formatter.parse(template):
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        if name in constants:
            value = format(constants[name], spec or "")
            out.append(value.replace("{", "{{").replace("}", "}}"))
        else:
            out.append("{%d%s%s}" % (fields.index(name), f"!{conv}" if conv else "", f":{spec}" if spec else ""))
    return "".join(out)


def upn_part(text: str) -> str:
    """One template value as UPN material: ASCII, lower-case, only characters Entra allows in a UPN."""
    return _UPN_DISALLOWED.sub("", anyascii(text).lower())


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
    return _NICK_DISALLOWED.sub("", local)[:MAIL_NICKNAME_MAX]


def mail_nicknames(upns: Sequence[str], derived: Collection[int]) -> list[str]:
    """mailNicknames for a column of UPNs: the local part as is where the UPN was derived (already valid),
    :func:`mail_nickname_from` elsewhere (``""`` for an empty UPN). Column-wise: one regex decides whether any
    given local part needs cleaning."""
    locals_ = _local_parts(upns)
    n = len(upns)
    given = list(compress(range(n), map(not_, map(derived.__contains__, range(n))))) if len(derived) < n else []
    if not given:
        return locals_
    sample = [locals_[i] or upns[i] for i in given]
    if _NICK_OR_NEWLINE.search("\n".join(sample)) or max(map(len, sample)) > MAIL_NICKNAME_MAX:
        for i in given:
            locals_[i] = mail_nickname_from(upns[i]) if upns[i] else ""
    else:
        for i, v in zip(given, sample):
            locals_[i] = v if upns[i] else ""
    return locals_


def _local_parts(upns: Sequence[str]) -> list[str]:
    """``upn.rpartition("@")[0]`` of every UPN. When all non-empty UPNs end in the same ``@domain`` (the usual
    case: one derived domain), that is one ``str.replace`` over them all."""
    sample = next(filter(None, upns), "")
    joined = "\n".join(upns) + "\n"
    if "@" in sample and joined.count("\n") == len(upns):
        suffix = "@" + sample.rpartition("@")[2] + "\n"
        if joined.count(suffix) == len(upns) - upns.count(""):
            stripped = joined.replace(suffix, "\n")
            if "@" not in stripped:
                return stripped.split("\n")[:-1]
    return list(map(itemgetter(0), map(str.rpartition, upns, repeat("@"))))


_NICK_OR_NEWLINE = re.compile(r"[^\x21-\x7e\n]|[@()\\\[\]\";:<>,]")


def make_upn_maker(template: str, domain: str | None) -> tuple[tuple[str, ...], Callable[..., str]]:
    """``(fields, make)`` where ``make(*values)`` builds the UPN for one row from raw cell texts of ``fields``.

    Returns ``""`` when the template yields an empty local part. Cleaned values are cached per distinct text.
    """
    fields = tuple(sorted(template_fields(template) - {"domain"}))
    fmt = _positional(template, fields, {"domain": domain or ""}).format
    cache: dict[str, str] = {}

    def part(text: str) -> str:
        value = cache.get(text)
        if value is None:
            value = cache[text] = upn_part(text)
        return value

    literals = "".join(lit for lit, *_ in _formatter.parse(template.rpartition("@")[0] or template))
    literal_ok = not _UPN_DISALLOWED.search(literals.replace("{", "").replace("}", ""))
    has_spec = any(spec for _, _, spec, _ in _formatter.parse(template))

    def make(*values: str) -> str:
        raw = fmt(*[part(v) for v in values])
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
    """Row-wise concatenation of literal texts and columns of ``n`` values (``operator.add`` over ``map``)."""
    acc: Iterable[str] | None = None
    for piece in pieces:
        if isinstance(piece, str):
            if not piece:
                continue
            acc = repeat(piece, n) if acc is None else map(add, acc, repeat(piece))
        else:
            acc = piece if acc is None else map(add, acc, piece)
    return [""] * n if acc is None else list(acc)


def _pieces(template: str, columns: dict[str, Sequence[str]], n: int,
            constants: dict[str, str]) -> list[str | Sequence[str]] | None:
    """The template as literal texts and columns (format specs applied once per distinct value), or None when it
    uses conversions or attribute/index lookups (then the caller formats row by row)."""
    pieces: list[str | Sequence[str]] = []
    for literal, name, spec, conv in _formatter.parse(template):
        pieces.append(literal)
        if name is None:
            continue
        if conv or not name.isidentifier():
            return None
        if name in constants:
            pieces.append(format(constants[name], spec or ""))
            continue
        col = columns.get(name)
        if col is None:
            pieces.append(format("", spec or ""))
        elif spec:
            done = {v: format(v, spec) for v in set(col)}
            pieces.append(list(map(done.__getitem__, col)))
        else:
            pieces.append(col)
    return pieces


def _tidy(pieces: Sequence[str | Sequence[str]]) -> bool:
    """True when no concatenation of ``pieces`` can start or end with a blank or comma or hold two blanks in a row:
    no literal at the ends starts/ends so, no piece holds "  ", no text after the first is empty, and no
    column value is empty or blank/comma-edged."""
    first, last = pieces[0], pieces[-1]
    if (isinstance(first, str) and first[:1] in (" ", ",")) or (isinstance(last, str) and last[-1:] in (" ", ",")):
        return False
    for k, piece in enumerate(pieces):
        if isinstance(piece, str):
            if "  " in piece or (k and not piece):  # (an empty one may stand for a missing column)
                return False
        elif any(not v or v[0] in " ," or v[-1] in " ," or "  " in v for v in set(piece)):
            return False
    return True


def display_names(template: str, columns: dict[str, Sequence[str]], n: int) -> list[str]:
    """Derived display names for ``n`` rows from the template's columns (missing columns count as empty).

    Blanks and commas at the ends are stripped and runs of blanks collapsed (an empty givenName must not leave
    " Lee"); when no distinct value of the columns and no literal could cause either, that pass is skipped.
    """
    fields = tuple(sorted(template_fields(template)))
    pieces = _pieces(template, columns, n, {})
    if pieces is None:
        fmt = _positional(template, fields, {}).format
        cols = [columns.get(f) or [""] * n for f in fields]
        out = list(map(fmt, *cols)) if cols else [fmt()] * n
    else:
        out = _concat(pieces, n)
    if pieces is None or not _tidy(pieces):
        out = list(map(str.strip, out, repeat(" ,", n)))
        if any(map(str.__contains__, out, repeat("  ", n))):
            out = [_SPACES.sub(" ", name) if "  " in name else name for name in out]
    return out


_UPN_DISALLOWED_OR_NUL = re.compile(r"[^A-Za-z0-9'.\-_!#^~\x00]+")


def _clean_all(texts: list[str], table: dict[int, str] | None) -> list[str]:
    """``_UPN_DISALLOWED.sub("", t.translate(table).lower())`` for every text, in a few C calls over them all."""
    joined = "\x00".join(texts)
    if joined.count("\x00") != len(texts) - 1:  # a text holds a NUL itself: one by one
        return [_UPN_DISALLOWED.sub("", (t.translate(table) if table else t).lower()) for t in texts]
    if table:
        joined = joined.translate(table)
    return _UPN_DISALLOWED_OR_NUL.sub("", joined.lower()).split("\x00")


def upn_parts(values: Sequence[str]) -> list[str]:
    """:func:`upn_part` of every value of a column (same result), computed once per distinct value.

    Non-ASCII values are transliterated through one translation table built from their distinct characters
    (``anyascii`` works character by character, so this is the same transliteration, without a call per value).
    """
    distinct = set(values)
    plain = [v for v in distinct if v.isascii()]
    cache = dict(zip(plain, _clean_all(plain, None))) if plain else {}
    if len(plain) < len(distinct):
        foreign = list(distinct.difference(plain))
        table = {ord(ch): anyascii(ch) for ch in set("".join(foreign)) if ord(ch) > 0x7F}
        cache.update(zip(foreign, _clean_all(foreign, table)))
    return list(map(cache.__getitem__, values))


_PRECISION = re.compile(r"\.\d+")


def make_upns(template: str, domain: str | None, columns: dict[str, Sequence[str]], rows: Sequence[int]) \
        -> list[str]:
    """UPNs for the rows ``rows`` (indexes) from the template's columns; same results as :func:`make_upn_maker`.

    Column-wise: the rows' values of each column are cleaned once per distinct value (:func:`upn_parts`), the
    template is applied with ``map``, and only the rare results that need it (dots to collapse, a local part over
    64 characters, an empty one, unusual templates) are cleaned one by one.
    """
    fields, make = make_upn_maker(template, domain)
    if not rows:
        return []
    parts: dict[str, list[str]] = {}
    for f in fields:
        col = columns.get(f)
        parts[f] = upn_parts(pick(col, rows)) if col is not None else [""] * len(rows)
    specs = [spec for _, _, spec, _ in _formatter.parse(template) if spec]
    literals = "".join(lit for lit, *_ in _formatter.parse(template.rpartition("@")[0] or template))
    simple = ("@" in template and not _UPN_DISALLOWED.search(literals.replace("{", "").replace("}", ""))
              and all(_PRECISION.fullmatch(spec) for spec in specs))
    pieces = _pieces(template, parts, len(rows), {"domain": domain or ""}) if simple else None
    if pieces is None:  # unusual template: exactly the row-by-row rules
        columns_in_order = [parts[f] for f in fields]
        return [make(*values) for values in zip(*columns_in_order)] if fields else [make()] * len(rows)
    raws = _concat(pieces, len(rows))
    joined = "\n" + "\n".join(raws)
    suspect = ".." in joined or "\n." in joined or ".@" in joined or "\n@" in joined
    long = max(map(len, raws)) > UPN_LOCAL_MAX and max(
        map(len, map(itemgetter(0), map(str.rpartition, raws, repeat("@"))))) > UPN_LOCAL_MAX
    if suspect or long:
        for k, raw in enumerate(raws):
            local, _, dom = raw.rpartition("@")
            if ".." in local or local[:1] == "." or local[-1:] == "." or len(local) > UPN_LOCAL_MAX or not local:
                local = clean_local(local)
                raws[k] = f"{local}@{dom}" if local else ""
    return raws


def pick(col: Sequence[str], rows: Sequence[int]) -> list[str]:
    """``[col[i] for i in rows]``, at C speed."""
    if len(rows) == len(col):
        return list(col)
    return list(itemgetter(*rows)(col)) if len(rows) > 1 else [col[i] for i in rows]


def with_suffix(upn: str, number: int) -> str:
    """``ann.lee@contoso.com`` + 2 -> ``ann.lee2@contoso.com`` (local part kept within 64 characters)."""
    local, _, domain = upn.rpartition("@")
    tail = str(number)
    local = local[: UPN_LOCAL_MAX - len(tail)].rstrip(".")
    return f"{local}{tail}@{domain}"


def assign_suffixes(candidates: Sequence[str | None], taken: set[str]) -> list[str | None]:
    """Give each derived candidate (None: not derived) a UPN not in ``taken`` (lower-case), adding it there.

    The first row holding a name keeps it, unless ``taken`` already has it; later rows get the lowest number
    (2, 3, ...) that is neither taken nor a name some other row derives, in file order. Only the rows that
    collide are walked one by one; the rest is a few set and dict operations.
    """
    index = list(compress(range(len(candidates)), candidates))
    keys = list(map(candidates.__getitem__, index))
    joined = "\n".join(keys)
    if joined.lower() != joined:  # derived UPNs are lower-case unless the domain is not
        keys = list(map(str.lower, keys))
    distinct = set(keys)
    out = list(candidates)
    clash = distinct & taken
    if len(distinct) == len(keys) and not clash:
        taken |= distinct
        return out
    first = dict(zip(reversed(keys), reversed(index)))  # name -> index of the first row deriving it
    repeat_rows = list(compress(index, map(ne, index, map(first.__getitem__, keys))))
    if clash:  # a name a given UPN holds: its first deriving row needs a number too
        repeat_rows = sorted({*repeat_rows, *(first[k] for k in clash)})
    taken |= distinct
    next_number: dict[str, int] = {}
    for i in repeat_rows:
        key = out[i].lower()  # type: ignore[union-attr]
        n = next_number.get(key, 2)
        while with_suffix(key, n) in taken:
            n += 1
        next_number[key] = n + 1
        upn = out[i] = with_suffix(out[i], n)  # type: ignore[arg-type]
        taken.add(upn.lower())
    return out


def next_free(upn: str, taken: Collection[str], start: int = 2) -> tuple[str, int]:
    """The first ``upn`` + number (from ``start``) whose lower-case form is not in ``taken``."""
    base = _strip_suffix(upn)
    n = start
    while with_suffix(base, n).lower() in taken:
        n += 1
    return with_suffix(base, n), n


_SUFFIX = re.compile(r"\d+(?=@)")


def _strip_suffix(upn: str) -> str:
    return _SUFFIX.sub("", upn, count=1)


def unique_texts(values: Iterable[str]) -> set[str]:
    """Distinct non-empty values (helper for per-value caching)."""
    return {v for v in values if v}
