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
from operator import itemgetter
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
    locals_ = list(map(itemgetter(0), map(str.rpartition, upns, repeat("@"))))
    given = [i for i in range(len(upns)) if i not in derived] if len(derived) < len(upns) else []
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


def display_names(template: str, columns: dict[str, Sequence[str]], n: int) -> list[str]:
    """Derived display names for ``n`` rows from the template's columns (missing columns count as empty)."""
    fields = tuple(sorted(template_fields(template)))
    fmt = _positional(template, fields, {}).format
    cols = [columns.get(f) or [""] * n for f in fields]
    out = list(map(str.strip, map(fmt, *cols), repeat(" ,", n))) if cols else [fmt().strip(" ,")] * n
    if any(map(str.__contains__, out, repeat("  ", n))):
        out = [_SPACES.sub(" ", name) if "  " in name else name for name in out]
    return out


def upn_parts(values: Sequence[str]) -> list[str]:
    """:func:`upn_part` of every value of a column (same result), computed once per distinct value.

    Non-ASCII values are transliterated through one translation table built from their distinct characters
    (``anyascii`` works character by character, so this is the same transliteration, without a call per value).
    """
    distinct = set(values)
    foreign = [v for v in distinct if not v.isascii()]
    cache = {v: _UPN_DISALLOWED.sub("", v.lower()) for v in distinct if v.isascii()}
    if foreign:
        table = {ord(ch): anyascii(ch) for ch in set("".join(foreign)) if ord(ch) > 0x7F}
        for v in foreign:
            cache[v] = _UPN_DISALLOWED.sub("", v.translate(table).lower())
    return list(map(cache.__getitem__, values))


_PRECISION = re.compile(r"\.\d+")


def make_upns(template: str, domain: str | None, columns: dict[str, Sequence[str]], rows: Sequence[int]) \
        -> list[str]:
    """UPNs for the rows ``rows`` (indexes) from the template's columns; same results as :func:`make_upn_maker`.

    Column-wise: each column is cleaned once per distinct value (:func:`upn_parts`), the template is applied with
    ``map``, and only the rare results that need it (dots to collapse, a local part over 64 characters, an empty
    one, unusual templates) are cleaned one by one.
    """
    fields, make = make_upn_maker(template, domain)
    if not rows:
        return []
    pick = itemgetter(*rows)
    parts = []
    for f in fields:
        col = columns.get(f)
        cleaned = upn_parts(col) if col is not None else [""] * (max(rows) + 1)
        parts.append(list(pick(cleaned)) if len(rows) > 1 else [pick(cleaned)])
    fmt = _positional(template, fields, {"domain": domain or ""}).format
    raws = list(map(fmt, *parts)) if parts else [fmt()] * len(rows)
    specs = [spec for _, _, spec, _ in _formatter.parse(template) if spec]
    literals = "".join(lit for lit, *_ in _formatter.parse(template.rpartition("@")[0] or template))
    simple = ("@" in template and not _UPN_DISALLOWED.search(literals.replace("{", "").replace("}", ""))
              and all(_PRECISION.fullmatch(spec) for spec in specs))
    if not simple:  # unusual template: exactly the row-by-row rules
        return [make(*values) for values in zip(*parts)] if parts else [make()] * len(rows)
    joined = "\n" + "\n".join(raws)
    suspect = ".." in joined or "\n." in joined or ".@" in joined or "\n@" in joined
    long = max(map(len, map(itemgetter(0), map(str.rpartition, raws, repeat("@"))))) > UPN_LOCAL_MAX
    if suspect or long:
        for k, raw in enumerate(raws):
            local, _, dom = raw.rpartition("@")
            if ".." in local or local[:1] == "." or local[-1:] == "." or len(local) > UPN_LOCAL_MAX or not local:
                local = clean_local(local)
                raws[k] = f"{local}@{dom}" if local else ""
    return raws


def with_suffix(upn: str, number: int) -> str:
    """``ann.lee@contoso.com`` + 2 -> ``ann.lee2@contoso.com`` (local part kept within 64 characters)."""
    local, _, domain = upn.rpartition("@")
    tail = str(number)
    local = local[: UPN_LOCAL_MAX - len(tail)].rstrip(".")
    return f"{local}{tail}@{domain}"


def assign_suffixes(candidates: Sequence[str | None], taken: set[str]) -> list[str | None]:
    """Give each derived candidate (None: not derived) a UPN not in ``taken`` (lower-case), adding it there.

    The first holder keeps the plain name; later ones get 2, 3, ... in file order. When no candidate collides
    (the usual case) this is a few set operations; otherwise one tight pass in file order.
    """
    index = list(compress(range(len(candidates)), candidates))
    keys = list(map(str.lower, map(candidates.__getitem__, index)))
    distinct = set(keys)
    out = list(candidates)
    if len(distinct) == len(keys) and taken.isdisjoint(distinct):
        taken |= distinct
        return out
    next_number: dict[str, int] = {}
    add = taken.add
    for i, key in zip(index, keys):
        if key in taken:
            n = next_number.get(key, 2)
            while with_suffix(key, n) in taken:
                n += 1
            next_number[key] = n + 1
            upn = out[i] = with_suffix(out[i], n)  # type: ignore[arg-type]
            key = upn.lower()
        add(key)
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
