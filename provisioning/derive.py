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
    out = []
    for values in zip(*cols):
        name = fmt(*values).strip(" ,")
        if "  " in name:
            name = _SPACES.sub(" ", name)
        out.append(name)
    return out


def with_suffix(upn: str, number: int) -> str:
    """``ann.lee@contoso.com`` + 2 -> ``ann.lee2@contoso.com`` (local part kept within 64 characters)."""
    local, _, domain = upn.rpartition("@")
    tail = str(number)
    local = local[: UPN_LOCAL_MAX - len(tail)].rstrip(".")
    return f"{local}{tail}@{domain}"


def assign_suffixes(candidates: Sequence[str | None], taken: set[str]) -> list[str | None]:
    """Give each derived candidate (None: not derived) a UPN not in ``taken`` (lower-case), adding it there.

    The first holder keeps the plain name; later ones get 2, 3, ... in file order.
    """
    out: list[str | None] = []
    next_number: dict[str, int] = {}
    for upn in candidates:
        if not upn:
            out.append(upn)
            continue
        key = upn.lower()
        if key in taken:
            n = next_number.get(key, 2)
            while with_suffix(key, n) in taken:
                n += 1
            next_number[key] = n + 1
            upn = with_suffix(upn, n)
            key = upn.lower()
        taken.add(key)
        out.append(upn)
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
