"""The pure checks of single values: each looks at one value and returns ``(code, message)`` pairs.

Messages say what is wrong and what to do, name the column as written in the roster, and never repeat a password.
The codes are registered in :mod:`provisioning.codes`; the patterns are :mod:`provisioning.validation.patterns`.
Row/column bookkeeping, cross-row checks (duplicates) and the tenant checks live in
:mod:`provisioning.validation.engine`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Mapping

import pycountry

from provisioning.cells import NICKNAME_BAD, char_name, invisible_chars, looks_like_formula, strip_blanks
from provisioning.fields import country_codes
from provisioning.validation.patterns import DOMAIN, EMAIL, LANGUAGE, PHONE, PHONES, UPN, UPN_ALLOWED

BOOLEANS: Mapping[str, bool] = {"true": True, "yes": True, "y": True, "1": True,
                                "false": False, "no": False, "n": False, "0": False}
PASSWORD_POLICIES = frozenset({"disablepasswordexpiration", "disablestrongpassword"})


def _bad_chars(text: str, allowed: re.Pattern[str]) -> str:
    """The distinct characters of ``text`` not matched by ``allowed`` (a one-character class), quoted."""
    seen = sorted({ch for ch in text if not allowed.fullmatch(ch)})
    return " ".join(repr(ch) if ch != " " else "' ' (space)" for ch in seen)


def upn_problems(upn: str, column: str) -> list[tuple[str, str]]:
    """Every way a UPN breaks the documented rules (graph-facts 1.4); empty when it is valid."""
    if UPN.fullmatch(upn) and len(upn) <= 113:
        return []
    out: list[tuple[str, str]] = []
    head = f"{column} {upn!r}"
    if upn.count("@") != 1 or upn.startswith("@") or upn.endswith("@"):
        return [("upn-at-sign", f"{head}: needs exactly one '@' between the user name and the domain, like "
                                f"ann.lee@contoso.com; fix the value")]
    local, _, domain = upn.partition("@")
    bad = _bad_chars(local, UPN_ALLOWED)
    if bad:
        out.append(("upn-invalid-chars", f"{head}: {bad} not allowed before '@' (only A-Z a-z 0-9 ' . - _ ! # ^ ~; "
                                         f"no accents or spaces); remove or replace them"))
    if local.endswith("."):
        out.append(("upn-dot-before-at", f"{head}: a '.' cannot stand right before '@'; remove it"))
    if local.startswith("."):
        out.append(("upn-dots", f"{head}: the part before '@' cannot start with '.' (an e-mail address's rule); "
                                f"remove it"))
    elif ".." in local:
        out.append(("upn-dots", f"{head}: the part before '@' cannot hold '..' (an e-mail address's rule); "
                                f"remove one '.'"))
    if len(local) > 64:
        out.append(("upn-local-too-long", f"{head}: {len(local)} characters before '@', at most 64 allowed; "
                                          f"shorten it"))
    if len(domain) > 48:
        out.append(("upn-domain-too-long", f"{head}: {len(domain)} characters after '@', at most 48 allowed; "
                                           f"use a shorter domain"))
    elif not DOMAIN.fullmatch(domain):
        out.append(("upn-domain-invalid", f"{head}: {domain!r} is not a domain name; use one of the tenant's "
                                          f"domains such as contoso.com"))
    if len(upn) > 113:
        out.append(("upn-too-long", f"{head}: {len(upn)} characters, at most 113 allowed; shorten it"))
    return out


def control_char_problem(text: str, column: str, *, secret: bool = False) -> tuple[str, str]:
    """``control-char``: a NUL or control character, which Graph would store or reject unpredictably."""
    where = "" if secret else f" {text!r}"
    return ("control-char", f"{column}{where}: contains a NUL or control character (often a corrupt or binary "
                            "export); retype the cell or export the roster again")


def formula_problem(text: str, column: str) -> tuple[str, str] | None:
    """``formula-cell`` when a spreadsheet would run ``text`` as a formula: its first character after any blanks
    is a trigger (phone numbers, or a list of them, are fine: ``+1 555 0100``)."""
    if looks_like_formula(text) and not PHONES.fullmatch(strip_blanks(text)):
        first = text[:1] if text.startswith(("\t", "\r")) else strip_blanks(text)[:1]
        return ("formula-cell", f"{column} {text!r}: a spreadsheet would run this as a formula; remove the "
                                f"leading {first!r} (or type the value as plain text)")
    return None


def phone_problem(value: str, column: str) -> tuple[str, str] | None:
    """``phone-invalid`` unless ``value`` is one phone number (:data:`~provisioning.validation.patterns.PHONE`)."""
    if PHONE.fullmatch(value):
        return None
    formula = " (a spreadsheet would run it as a formula)" if looks_like_formula(value) else ""
    return ("phone-invalid", f"{column} {value!r}: not a phone number{formula}; write digits with an optional "
                             f"leading + and spaces, '-', '.', '/' or parentheses, e.g. +1 555 0100 (an extension "
                             f"as x123 or ext. 123)")


def invisible_problem(text: str, column: str, *, secret: bool = False) -> tuple[str, str] | None:
    """``invisible-char`` naming each invisible or direction character of ``text`` by code point and name."""
    found = invisible_chars(text)
    if not found:
        return None
    what = ", ".join(map(char_name, found))
    kind = "an invisible character" if len(found) == 1 else "invisible characters"
    where = "" if secret else f" {text!r}"
    return ("invisible-char", f"{column}{where} contains {what}, {kind}; retype the value")


# what exports append below the table: totals and counts, page numbers, when and by whom it was made, an end mark
_FOOTER = re.compile(r"""(?:
    (?:grand\s+|sub\s*-?\s*)?totals?\b.*[\d:]       # Total: 2 employees / Grand total 15
  | (?:count|sum|number\s+of\s+\w+|records?|rows?|entries)\s*[:=]?\s*\d  # Count: 2 / Records 15
  | \d[\d,.\s]*\s(?:employees?|users?|people|persons?|records?|rows?|entries|items?)\b  # 2 employees (selected)
  | page\s+\d+(?:\s*(?:of|/)\s*\d+)?\s*$            # Page 1 of 1
  | (?:report\s+|file\s+|list\s+)?(?:generated|created|exported|printed|produced|run)\s+(?:on|at|by|from)\b
  | end\s+of\s+(?:the\s+)?(?:report|file|list|data|export|table)\b
  | (?:confidential|copyright\b|\(c\)|©)
)""", re.IGNORECASE | re.VERBOSE)


#: a cell that starts a footer line whose count or date stands in the next cells ("Total", "", "2")
FOOTER_LABEL = re.compile(r"\x00(?:(?:grand\s+|sub\s*-?\s*)?totals?|count|sum|number\s+of\s+\w+|records?|rows?|"
                          r"entries|page|(?:report\s+|file\s+|list\s+)?(?:generated|created|exported|printed|"
                          r"produced|run)(?:\s+(?:on|at|by|from))?)\b[\s:=]*(?=\x00)", re.IGNORECASE)
#: what may fill the other cells of such a line: numbers, dates, times, "of"
FOOTER_COUNT = re.compile(r"[\d\s.,:/\-]+|of", re.IGNORECASE)


def footer_problem(text: str, row: int) -> tuple[str, str] | None:
    """``not-a-person`` when ``text``, the only filled cell of Excel row ``row``, reads like an export's footer
    line (see :data:`_FOOTER`); a name never does (the caller only asks about rows with one filled cell)."""
    core = strip_blanks(text)
    if not _FOOTER.match(core):
        return None
    shown = core if len(core) <= 60 else core[:57] + "..."
    return ("not-a-person", f"row {row} looks like a footer/total line ({shown!r}), not a person; it is not "
                            f"sent — delete it")


def too_long(value: str, column: str, field: str, limit: int) -> tuple[str, str]:
    """``field-too-long`` message."""
    shown = value if len(value) <= 40 else value[:37] + "..."
    return ("field-too-long", f"{column} {shown!r}: {len(value)} characters, {field} allows at most {limit}; "
                              f"shorten it")


def boolean_problem(value: str, column: str) -> tuple[str, str]:
    """``boolean-invalid`` message."""
    return ("boolean-invalid", f"{column} {value!r}: not a Yes/No value; write Yes or No (also accepted: "
                               f"true/false, y/n, 1/0)")


def usage_location_problem(value: str, column: str) -> tuple[str, str] | None:
    """``usage-location-invalid`` unless ``value`` is a two-letter ISO 3166 code (any case)."""
    if value.upper() in country_codes():
        return None
    hint = ""
    if len(value) > 2:
        with contextlib.suppress(LookupError):
            hint = f" (for {value!r} that is {pycountry.countries.lookup(value).alpha_2!r})"
    return ("usage-location-invalid", f"{column} {value!r}: not a two-letter ISO 3166 country code; use e.g. US, "
                                      f"GB, DE{hint}")


def mail_problem(value: str, column: str) -> tuple[str, str] | None:
    """``mail-invalid`` unless ``value`` is a plain ASCII address."""
    if EMAIL.fullmatch(value):
        return None
    return ("mail-invalid", f"{column} {value!r}: not a plain email address (ASCII, name@domain); fix it")


def date_problem(value: str, column: str) -> tuple[str, str] | None:
    """``date-invalid`` unless ``value`` is an ISO date (``YYYY-MM-DD``, optionally with a time)."""
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return None
    except ValueError:
        return ("date-invalid", f"{column} {value!r}: not a date; write it as YYYY-MM-DD, e.g. 2024-09-01")


def language_problem(value: str, column: str) -> tuple[str, str] | None:
    """``language-invalid`` unless ``value`` looks like a language tag."""
    if LANGUAGE.fullmatch(value):
        return None
    return ("language-invalid", f"{column} {value!r}: not a language tag; use e.g. en-US or fr-FR")


def policies_problem(value: str, column: str) -> tuple[str, str] | None:
    """``password-policies-invalid`` unless ``value`` lists known password policies."""
    parts = {p.strip().lower() for p in value.split(",") if p.strip()}
    if parts and parts <= PASSWORD_POLICIES:
        return None
    return ("password-policies-invalid", f"{column} {value!r}: use DisablePasswordExpiration, "
                                         f"DisableStrongPassword, or both separated by a comma")


def mail_nickname_problem(value: str, column: str) -> tuple[str, str] | None:
    """``mail-nickname-invalid`` when ``value`` has characters a mailNickname cannot hold."""
    if not NICKNAME_BAD.search(value):
        return None
    bad = " ".join(sorted({repr(ch) if ch != " " else "' ' (space)" for ch in value if NICKNAME_BAD.match(ch)}))
    return ("mail-nickname-invalid", f"{column} {value!r}: {bad} not allowed (ASCII only; no spaces or "
                                     f"@ ( ) \\ [ ] \" ; : < > ,); remove them or leave the cell empty to derive it")


def immutable_id_problem(value: str, column: str) -> tuple[str, str] | None:
    """``immutable-id-invalid`` when ``value`` has ``$`` or ``_``."""
    if "$" in value or "_" in value:
        return ("immutable-id-invalid", f"{column} {value!r}: '$' and '_' are not allowed; fix the value")
    return None


def manager_problem(value: str, column: str, own_upn: str) -> tuple[str, str] | None:
    """``manager-invalid`` unless ``value`` looks like a UPN other than the user's own."""
    if value.count("@") != 1 or not DOMAIN.fullmatch(value.partition("@")[2]):
        return ("manager-invalid", f"{column} {value!r}: give the manager's userPrincipalName, like "
                                   f"ann.lee@contoso.com")
    if own_upn and value.lower() == own_upn.lower():
        return ("manager-invalid", f"{column} {value!r}: a user cannot be their own manager; fix or clear it")
    return None
