"""The roster's canonical fields: the Microsoft Graph ``user`` property names (``givenName``,
``userPrincipalName``...), plus ``password`` and ``forceChangePasswordNextSignIn`` (which become ``passwordProfile``),
``division``/``costCenter`` (``employeeOrgData``) and the three follow-up columns ``groups``, ``licenses`` and
``manager``. How a roster's headers map onto them is :mod:`provisioning.roster.mapping`.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One canonical field: its Graph name, kind, documented maximum length and a one-line note for templates."""

    name: str
    kind: str = "str"  # "str" | "bool" | "list" | "date" | "extra"
    max_len: int | None = None
    note: str = ""
    example: str = ""


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("givenName", max_len=64, note="First name.", example="Ann"),
    FieldSpec("surname", max_len=64, note="Last name.", example="Lee"),
    FieldSpec("displayName", max_len=256, note="Required by Graph; derived as 'givenName surname' when empty.",
              example="Ann Lee"),
    FieldSpec("userPrincipalName", max_len=113,
              note="Sign-in name alias@domain; derived from the naming template when empty. Characters "
                   "A-Z a-z 0-9 ' . - _ ! # ^ ~; at most 64 before @, 48 after, 113 in all; no '.' before '@'.",
              example="ann.lee@contoso.com"),
    FieldSpec("mailNickname", max_len=64, note="Mail alias; derived from the UPN's local part when empty.",
              example="ann.lee"),
    FieldSpec("password", max_len=256,
              note="Initial password; generated when empty. 8-256 ASCII characters, 3 of: lower, upper, digit, "
                   "symbol.", example=""),
    FieldSpec("forceChangePasswordNextSignIn", kind="bool", note="Yes/No; default Yes.", example="Yes"),
    FieldSpec("accountEnabled", kind="bool", note="Yes/No; default Yes.", example="Yes"),
    FieldSpec("jobTitle", max_len=128, note="Job title.", example="Engineer"),
    FieldSpec("department", max_len=64, note="Department.", example="Engineering"),
    FieldSpec("companyName", max_len=64, note="Company name.", example="Contoso"),
    FieldSpec("employeeId", max_len=16, note="Employee number; unique in the roster.", example="00123"),
    FieldSpec("employeeType", max_len=None, note="Employee, Contractor, ...", example="Employee"),
    FieldSpec("employeeHireDate", kind="date", note="Hire date, YYYY-MM-DD.", example="2024-09-01"),
    FieldSpec("division", max_len=None, note="employeeOrgData.division.", example=""),
    FieldSpec("costCenter", max_len=None, note="employeeOrgData.costCenter.", example=""),
    FieldSpec("officeLocation", max_len=128, note="Office.", example="Building 4"),
    FieldSpec("businessPhones", kind="list", max_len=64, note="Office phone (only one number).",
              example="+1 555 0100"),
    FieldSpec("mobilePhone", max_len=64, note="Mobile phone.", example="+1 555 0101"),
    FieldSpec("faxNumber", max_len=None, note="Fax number.", example=""),
    FieldSpec("streetAddress", max_len=1024, note="Street address.", example="1 Main St"),
    FieldSpec("city", max_len=128, note="City.", example="Seattle"),
    FieldSpec("state", max_len=128, note="State or province.", example="WA"),
    FieldSpec("postalCode", max_len=40, note="ZIP or postal code.", example="98052"),
    FieldSpec("country", max_len=128, note="Country or region (free text).", example="United States"),
    FieldSpec("usageLocation", max_len=2, note="Two-letter ISO 3166 country code; needed for licences.",
              example="US"),
    FieldSpec("preferredLanguage", max_len=None, note="Language tag such as en-US.", example="en-US"),
    FieldSpec("mail", max_len=None, note="SMTP address (ASCII).", example=""),
    FieldSpec("otherMails", kind="list", note="Other email addresses, ';'-separated.", example=""),
    FieldSpec("onPremisesImmutableId", max_len=None,
              note="Required when the UPN's domain is federated; no '$' or '_'.", example=""),
    FieldSpec("passwordPolicies", max_len=None, note="DisablePasswordExpiration and/or DisableStrongPassword.",
              example=""),
    FieldSpec("groups", kind="extra", note="Groups to join: names or ids, ';'-separated.", example=""),
    FieldSpec("licenses", kind="extra", note="Licences: SKU part numbers or ids, ';'-separated.", example=""),
    FieldSpec("manager", kind="extra", note="Manager's UPN (may be another row of this roster).", example=""),
)
FIELD_BY_NAME: Mapping[str, FieldSpec] = {f.name: f for f in FIELDS}


@functools.cache
def country_codes() -> frozenset[str]:
    """The ISO 3166 alpha-2 codes usageLocation accepts (read on first use: loading pycountry's tables costs some
    20 ms of every start-up, ``--help`` included)."""
    import pycountry

    return frozenset(c.alpha_2 for c in pycountry.countries)


BOOL_FIELDS = frozenset(f.name for f in FIELDS if f.kind == "bool")
EXTRA_FIELDS = frozenset(f.name for f in FIELDS if f.kind == "extra")
#: The phone-number fields: checked as phone numbers (rules.phone_problem).
PHONE_FIELDS = frozenset(("businessPhones", "mobilePhone", "faxNumber"))
#: The fields that say who a row is: a row with none of them filled may be an export's footer line.
IDENTITY_FIELDS = ("givenName", "surname", "displayName", "userPrincipalName")

#: Pseudo-field of the Entra template: "Block sign in" is accountEnabled inverted (Yes -> disabled).
BLOCK_SIGN_IN = "!blockSignIn"

_NON_ALNUM = re.compile(r"[\W_]+")


def is_password_header(header: str) -> bool:
    """True for a roster column that holds passwords (``password``, ``Initial password``, ``passwordProfile``...).

    Such columns keep their header in the Failed and Invalid sheets (so ``retry`` can be given a new password)
    but never their content: a password given in the roster is never copied anywhere.
    """
    key = _NON_ALNUM.sub("", header or "").casefold()
    # "Force change password" / "Must change password" are flags, not secrets
    return "password" in key and "change" not in key and "policies" not in key
