"""The one copy of every pattern validation checks values with: the per-value forms used by
:mod:`provisioning.validation.rules` and the whole-column forms (cells joined with NULs) used by
:mod:`provisioning.validation.checks`, built from the same pieces so that the two can never disagree.

The pieces the roster needs too (it derives UPNs and mailNicknames and strips what these reject) live in the
leaf :mod:`provisioning.cells`: :data:`~provisioning.cells.UPN_LOCAL_CHARS`,
:data:`~provisioning.cells.NICKNAME_BAD` and :data:`~provisioning.cells.FORMULA_TRIGGERS`.
"""
from __future__ import annotations

import re

from provisioning.cells import FORMULA_TRIGGER_CLASS, UPN_LOCAL_CHARS

#: A DNS name of two labels or more (letters, digits, inner hyphens).
DOMAIN_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
DOMAIN = re.compile(DOMAIN_PATTERN)
#: A valid userPrincipalName (graph-facts 1.4): a local part of 1-64 allowed characters neither starting nor ending
#: with "." nor holding "..", "@", a domain of at most 48 characters (the 113-character total is checked apart).
#: The dots are an e-mail address's (RFC 5322's dot-atom; IdFix checks UPNs against it; the derived UPNs drop them).
UPN = re.compile(rf"(?![^@]*\.\.)(?!\.)[{UPN_LOCAL_CHARS}]{{1,64}}(?<!\.)@(?=.{{1,48}}$){DOMAIN_PATTERN}")
#: Text made only of characters a UPN's local part may hold (one character at a time: which ones are not).
UPN_ALLOWED = re.compile(rf"[{UPN_LOCAL_CHARS}]*")
EMAIL = re.compile(rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]+@{DOMAIN_PATTERN}")
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
# a phone number: an optional leading +, digits and the usual separators, an optional extension; never a second
# + or a leading -, so that +1+1 and -2+3 (arithmetic a spreadsheet would compute) are not phone numbers
# (possessive, so a long run of blanks cannot make the regex backtrack)
PHONE_PATTERN = r"\+?[ (]*+\d[\d ().\-/]*+(?:\s*+(?:x|ext\.?|extension)\s*+\d++)?"
PHONE = re.compile(PHONE_PATTERN, re.IGNORECASE)
PHONES_PATTERN = rf"{PHONE_PATTERN}(?:\s*+[;,]\s*+{PHONE_PATTERN})*+"  # a list (phone-multiple says what is wrong)
PHONES = re.compile(PHONES_PATTERN, re.IGNORECASE)

# Whole columns, as "\x00" + "\x00".join(cells) + "\x00":
#: a cell starting with a formula trigger, unless it is a phone number (or a list of them)
FORMULA_LIKE = re.compile(rf"\x00(?=[{FORMULA_TRIGGER_CLASS}])(?!(?:{PHONES_PATTERN})\x00)", re.IGNORECASE)
#: a column of valid (or empty) UPNs, in two cheap passes: every cell's shape and lengths, then every domain
UPN_SHAPES = re.compile(
    rf"(?:\x00(?:(?![^\x00@]*\.\.)(?!\.)[{UPN_LOCAL_CHARS}]{{1,64}}(?<!\.)@[^\x00@]{{1,48}})?)*\x00")
BAD_UPN_DOMAIN = re.compile(rf"@(?!(?:{DOMAIN_PATTERN})\x00)")
#: a column of phone numbers (or empty cells), in one pass
PHONE_COLUMN = re.compile(rf"(?:\x00(?:{PHONE_PATTERN})?)*\x00", re.IGNORECASE)
