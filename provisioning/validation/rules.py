"""The validation rules: a registry of stable codes, and pure checks of single values.

Every rule has a stable ``code`` (scripts and the report key on it), a severity (an error excludes the row, a
warning does not) and a one-line description; :data:`RULES` is the one table the README, the ``validate`` output and
the tests use. The checks here look at one value and return ``(code, message)`` pairs; messages say what is wrong
and what to do, name the column as written in the roster, and never repeat a password. Row/column bookkeeping,
cross-row checks (duplicates) and the tenant checks live in :mod:`provisioning.validation.engine`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pycountry

from provisioning.cells import NICKNAME_BAD, char_name, invisible_chars, looks_like_formula, strip_blanks
from provisioning.models import Issue, Severity
from provisioning.validation.patterns import DOMAIN, EMAIL, LANGUAGE, PHONE, PHONES, UPN, UPN_ALLOWED

E, W = Severity.ERROR, Severity.WARNING


@dataclass(frozen=True, slots=True)
class Rule:
    """One validation rule: its stable code, severity and a one-line description."""

    code: str
    severity: Severity
    description: str


RULES: Mapping[str, Rule] = {r.code: r for r in (
    Rule("unknown-column", W, "A column that is no roster field; kept and carried to the report, not sent."),
    Rule("mapped-column-missing", W, "The mapping file maps a field to a column the roster does not have (a "
                                     "renamed column in the HR export?): nobody gets that field from this file."),
    Rule("encoding-guessed", W, "The CSV file is not UTF-8 and was read in the one encoding in which its names read "
                                "as letters (Mac OS Roman, Windows-1250...); check the names, or save the file as "
                                "CSV UTF-8."),
    Rule("whitespace-trimmed", W, "Leading/trailing blanks were removed from a cell."),
    Rule("control-char", E, "A cell holds a NUL or control character (not tab or line break): a corrupt export."),
    Rule("formula-cell", E, "A cell a spreadsheet would run as a formula (its first character after any blanks is "
                            "= + - @, or it starts with tab or CR; phone numbers such as +1 555 0100 are fine)."),
    Rule("invisible-char", E, "A cell holds an invisible or text-direction character (Unicode format characters "
                              "such as U+200B, U+202E, U+00AD soft hyphen), which can make a name or address look "
                              "like another."),
    Rule("not-a-person", E, "A footer line of an export ('Total: 2 employees', 'Page 1 of 1', 'Generated on ...') "
                            "in one cell, or a label such as 'Total' with its count in the next cells; not sent."),
    Rule("phone-invalid", E, "businessPhones, mobilePhone or faxNumber is not a phone number (digits with an "
                             "optional leading +, spaces, - . / ( ), optionally an extension x123 or ext. 123); "
                             "+1+1, -2+3 and =... are formulas, reported here instead of as formula-cell."),
    Rule("excel-error", E, "An Excel cell shows an error value (#N/A, #DIV/0!, #REF!, #VALUE!, #NAME?...) instead of "
                           "data."),
    Rule("formula-no-value", E, "An Excel cell holds a formula whose result was never saved (written by a program "
                                "that does not calculate)."),
    Rule("excel-error-ignored", W, "An Excel error value or a formula without a saved value in a column that is not "
                                   "sent to Entra ID; the row goes ahead."),
    Rule("totals-row", E, "The row is an Excel table's totals row (its Total/SUBTOTAL line), not a person; it is "
                          "not sent."),
    Rule("hidden-row", W, "The row is hidden in Excel (filtered out or hidden by hand); it is provisioned like any "
                          "other row."),
    Rule("hidden-sheet-skipped", W, "Hidden sheets before the sheet read were not read (a hidden sheet is read only "
                                    "with --sheet)."),
    Rule("header-row-found", W, "Title rows above the column names were skipped; the header is the first row with "
                                "known column names (or the row given with --header-row)."),
    Rule("display-name-missing", E, "displayName is empty and cannot be derived from givenName/surname."),
    Rule("upn-missing", E, "userPrincipalName is empty and the naming template gives nothing for the row."),
    Rule("upn-no-domain", E, "userPrincipalName must be derived but no domain is known (--domain, mapping "
                             "'domain', or a tenant)."),
    Rule("upn-at-sign", E, "userPrincipalName must have exactly one '@' with text on both sides."),
    Rule("upn-invalid-chars", E, "userPrincipalName has characters outside A-Z a-z 0-9 ' . - _ ! # ^ ~."),
    Rule("upn-dot-before-at", E, "userPrincipalName has a '.' right before '@'."),
    Rule("upn-local-too-long", E, "userPrincipalName has more than 64 characters before '@'."),
    Rule("upn-domain-too-long", E, "userPrincipalName has more than 48 characters after '@'."),
    Rule("upn-too-long", E, "userPrincipalName has more than 113 characters."),
    Rule("upn-domain-invalid", E, "The domain after '@' is not a domain name (labels of letters, digits, '-')."),
    Rule("upn-suffixed", W, "A derived userPrincipalName was taken (a namesake in the file or the tenant, or a typed "
                            "UPN); a number was added. The message says how to tell namesakes apart."),
    Rule("upn-domain-unverified", E, "The UPN's domain is not a verified domain of the tenant (tenant checks)."),
    Rule("immutable-id-required", E, "The UPN's domain is federated, so onPremisesImmutableId is required."),
    Rule("immutable-id-invalid", E, "onPremisesImmutableId must not contain '$' or '_'."),
    Rule("user-exists", W, "The derived UPN (or a numbered form of it) already belongs to this person in the tenant "
                           "(same employeeId, or same displayName); the run skips the row, or updates it with "
                           "--existing update."),
    Rule("mail-nickname-invalid", E, "mailNickname has characters Entra rejects (non-ASCII, space, @ ( ) \\ [ ] "
                                     "\" ; : < > ,)."),
    Rule("field-too-long", E, "A value is longer than Graph allows for that property."),
    Rule("boolean-invalid", E, "A Yes/No cell holds something else (accepted: yes/no, true/false, y/n, 1/0)."),
    Rule("usage-location-invalid", E, "usageLocation is not a two-letter ISO 3166 country code."),
    Rule("usage-location-required", E, "licenses are given but usageLocation is empty (licences need it)."),
    Rule("phone-multiple", E, "businessPhones holds more than one number; Graph takes only one."),
    Rule("mail-invalid", E, "mail / otherMails is not a plain ASCII email address."),
    Rule("date-invalid", E, "employeeHireDate is not a date (YYYY-MM-DD)."),
    Rule("language-invalid", E, "preferredLanguage is not a language tag such as en-US."),
    Rule("password-policies-invalid", E, "passwordPolicies is not DisablePasswordExpiration and/or "
                                         "DisableStrongPassword."),
    Rule("manager-invalid", E, "manager is not a UPN (alias@domain), or is the user itself."),
    Rule("password-too-short", E, "The password has fewer than 8 characters."),
    Rule("password-too-long", E, "The password has more than 256 characters."),
    Rule("password-non-ascii", E, "The password has non-ASCII characters."),
    Rule("password-invalid-char", E, "The password has a control character or tab."),
    Rule("password-weak", E, "The password does not mix 3 of: lower-case, upper-case, digits, symbols."),
    Rule("password-contains-name", E, "The password contains the user's name."),
    Rule("duplicate-row", E, "The row repeats an earlier row's person: identical in every identity field (see "
                             "\"Nobody twice\" above), after Unicode normalisation."),
    Rule("duplicate-upn", E, "Two rows have the same userPrincipalName (ignoring case and Unicode form)."),
    Rule("duplicate-mail-nickname", E, "Two rows have the same mailNickname (ignoring case and Unicode form)."),
    Rule("duplicate-employee-id", E, "Two rows have the same employeeId (ignoring case and Unicode form)."),
    # checked in pre-flight against the tenant (provisioning.validation.references)
    Rule("group-not-found", E, "A name or id in groups matches no group in the tenant."),
    Rule("group-ambiguous", E, "A name in groups matches several groups; give the group's object id."),
    Rule("license-not-found", E, "A SKU part number or id in licenses is not subscribed in the tenant."),
    Rule("license-seats", E, "More rows ask for a licence than it has free seats; the last rows are refused."),
    Rule("manager-not-found", E, "manager is neither a user in the tenant nor a valid row of the roster."),
    # retry: a row bound to the account an earlier run of the chain created for it (provisioning.run.chain)
    Rule("retry-bound-edited", E, "retry: the row's user was created by an earlier run and a property was edited; "
                                  "use --existing update to change the account, or undo the edit."),
    Rule("retry-bound-missing", E, "retry: the account an earlier run created for the row is not in the tenant "
                                   "any more; no second account is created."),
    Rule("retry-password-lost", E, "retry: the roster gave the row a password, which the report does not copy, "
                                   "and the roster changed or is gone; type it again or leave it empty on "
                                   "purpose."),
    Rule("retry-formula-empty", E, "retry: the roster's cell held a formula with no calculated value (or an error "
                                   "value), so the report's cell is empty; type the value, or retry again with it "
                                   "left empty on purpose."),
)}

#: Roster-level problems: not issues but a RosterError (exit status 2). Listed for the README.
ROSTER_ERRORS: Mapping[str, str] = {
    "roster-unreadable": "The file cannot be read or decoded, or is not CSV/xlsx/xlsm.",
    "roster-encoding": "The CSV file is not UTF-8 and its encoding is uncertain (it reads as different names in "
                       "cp1252 and cp1250, say), or it is UTF-8 with a few lines in another encoding; the message "
                       "names the line. Save it as CSV UTF-8, or give --encoding NAME.",
    "roster-no-header": "The file is empty or has no header row (no sheet with known headers).",
    "roster-missing-columns": "A required field has no column and cannot be derived.",
    "roster-duplicate-header": "A header appears twice, or two headers mean the same field.",
}


def issue(row: int, column: str, code: str, message: str) -> Issue:
    """An :class:`Issue` with the severity the registry gives ``code``."""
    return Issue(row, column, code, RULES[code].severity, message)


BOOLEANS: Mapping[str, bool] = {"true": True, "yes": True, "y": True, "1": True,
                                "false": False, "no": False, "n": False, "0": False}
COUNTRY_CODES = frozenset(c.alpha_2 for c in pycountry.countries)
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
    if value.upper() in COUNTRY_CODES:
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
