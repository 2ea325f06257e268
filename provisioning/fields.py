"""Canonical roster fields and how roster headers map onto them.

Canonical names are the Microsoft Graph ``user`` property names (``givenName``, ``userPrincipalName``...), plus
``password`` and ``forceChangePasswordNextSignIn`` (which become ``passwordProfile``), ``division``/``costCenter``
(``employeeOrgData``) and the three follow-up columns ``groups``, ``licenses`` and ``manager``.

Headers match case-, space- and punctuation-insensitively (``User Principal Name`` = ``userPrincipalName`` =
``user_principal_name``). Also understood: the Entra admin center bulk-create template (``Name [displayName]
Required``: the property in brackets wins; its legacy names ``physicalDeliveryOfficeName``, ``telephoneNumber``,
``mobile``; the inverted ``Block sign in (Yes/No) [accountEnabled]``), the Microsoft 365 admin center "add multiple
users" CSV headings, and a ``--mapping`` JSON file (see :func:`load_mapping` and ``templates/README.md``).
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioning.errors import RosterError


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
BOOL_FIELDS = frozenset(f.name for f in FIELDS if f.kind == "bool")
EXTRA_FIELDS = frozenset(f.name for f in FIELDS if f.kind == "extra")
#: The phone-number fields: checked as phone numbers (rules.phone_problem).
PHONE_FIELDS = frozenset(("businessPhones", "mobilePhone", "faxNumber"))
#: The fields that say who a row is: a row with none of them filled may be an export's footer line.
IDENTITY_FIELDS = ("givenName", "surname", "displayName", "userPrincipalName")

#: Pseudo-field of the Entra template: "Block sign in" is accountEnabled inverted (Yes -> disabled).
BLOCK_SIGN_IN = "!blockSignIn"

_ALIASES: dict[str, str] = {
    # Entra admin center bulk-create template and legacy Azure AD names
    "physicaldeliveryofficename": "officeLocation", "office": "officeLocation",
    "telephonenumber": "businessPhones", "officephone": "businessPhones", "businessphone": "businessPhones",
    "mobile": "mobilePhone", "mobilephone": "mobilePhone",
    "passwordprofile": "password", "initialpassword": "password",
    "blocksignin": BLOCK_SIGN_IN, "blocksigninyesno": BLOCK_SIGN_IN,
    "name": "displayName", "username": "userPrincipalName", "upn": "userPrincipalName",
    "firstname": "givenName", "lastname": "surname", "familyname": "surname",
    "usagelocation": "usageLocation", "zippostalcode": "postalCode", "ziporpostalcode": "postalCode",
    "stateorprovince": "state", "countryorregion": "country",
    # Microsoft 365 admin center "add multiple users" CSV
    "officenumber": "officeLocation", "fax": "faxNumber", "alternateemailaddress": "otherMails",
    "address": "streetAddress", "displayname": "displayName",
    # common spellings
    "emailaddress": "mail", "email": "mail", "alias": "mailNickname", "mailnickname": "mailNickname",
    "title": "jobTitle", "employeenumber": "employeeId", "hiredate": "employeeHireDate",
    "enabled": "accountEnabled", "group": "groups", "license": "licenses", "licences": "licenses",
    "licence": "licenses", "managerupn": "manager", "mustchangepassword": "forceChangePasswordNextSignIn",
    "forcechangepassword": "forceChangePasswordNextSignIn",
}
_NORMAL = {f.name.lower(): f.name for f in FIELDS}
_BRACKET = re.compile(r"\[([A-Za-z]+)\]")
_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_REQUIRED_SUFFIX = re.compile(r"(required|optional)$")


def normalise_header(text: str) -> str:
    """``'User Principal Name '`` -> ``'userprincipalname'``: lower-case, letters and digits only."""
    return _NON_ALNUM.sub("", text).lower()


def canonical_field(header: str, renames: Mapping[str, str | None] | None = None) -> str | None:
    """The canonical field a roster header stands for, or None when it is unknown.

    ``renames`` (from a mapping file, keys already normalised) wins over everything else; then the property in
    square brackets of an Entra template heading; then canonical names and the alias table.
    """
    key = normalise_header(header)
    if renames is not None and key in renames:
        return renames[key]
    if normalise_header(header).startswith("blocksignin"):
        return BLOCK_SIGN_IN
    m = _BRACKET.search(header)
    if m:
        return canonical_field(m.group(1))
    if key in _NORMAL:
        return _NORMAL[key]
    if key in _ALIASES:
        return _ALIASES[key]
    stripped = _REQUIRED_SUFFIX.sub("", key)
    return _NORMAL.get(stripped) or _ALIASES.get(stripped)


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """What a ``--mapping`` JSON file says (all parts optional).

    ``columns``: roster header -> canonical field (``null`` to mark a column as known but unused);
    ``constants``: canonical field -> value used when the row's cell is empty or the column is absent;
    ``naming_template``: UPN template such as ``{givenName:.1}{surname}@{domain}``;
    ``display_name_template``: such as ``{surname}, {givenName}``; ``domain``: the UPN domain for derivation.
    """

    columns: Mapping[str, str | None] = field(default_factory=dict)
    constants: Mapping[str, str] = field(default_factory=dict)
    naming_template: str | None = None
    display_name_template: str | None = None
    domain: str | None = None
    source: str = ""

    @property
    def renames(self) -> dict[str, str | None]:
        """``columns`` keyed by normalised header."""
        return {normalise_header(k): v for k, v in self.columns.items()}


_MAPPING_KEYS = {"columns", "constants", "naming_template", "display_name_template", "domain", "description"}


def load_mapping(path: str | Path) -> ColumnMapping:
    """Read a ``--mapping`` JSON file; raise :class:`RosterError` naming the key and what to fix when it is not
    valid (every part is checked here, so a bad mapping never gets as far as the roster)."""
    from provisioning.roster.derive import TemplateError, parse_template  # local: derive is a leaf that knows no fields

    p = Path(path)
    try:
        data: Any = json.loads(p.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise RosterError(p, f"cannot read the mapping file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise RosterError(p, "the mapping file is not UTF-8 text; save it as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise RosterError(p, f"the mapping file is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(data, dict):
        raise RosterError(p, "the mapping file must hold a JSON object with 'columns', 'constants', ...")
    unknown = sorted(set(data) - _MAPPING_KEYS)
    if unknown:
        raise RosterError(p, f"unknown key(s) {', '.join(map(repr, unknown))} in the mapping file; "
                             f"use {', '.join(sorted(_MAPPING_KEYS))}")
    columns = _object(p, data, "columns", '{"First Name": "givenName", ...}')
    constants = _object(p, data, "constants", '{"usageLocation": "US", ...}')
    for header, target in columns.items():
        if target is not None and not isinstance(target, str):
            raise RosterError(p, f"columns: {header!r} maps to {_json_type(target)}; give a field name such as "
                                 f"\"givenName\", or null for a column to leave unused")
    for where, names in (("columns", [v for v in columns.values() if v is not None]), ("constants", constants)):
        bad = [n for n in names if n not in FIELD_BY_NAME and n != BLOCK_SIGN_IN]
        if bad:
            raise RosterError(p, f"{where}: unknown field(s) {', '.join(map(repr, bad))}; "
                                 f"use Graph property names such as {', '.join(f.name for f in FIELDS[:4])}")
    texts: dict[str, str] = {}
    for name, value in constants.items():
        if isinstance(value, bool):
            texts[name] = "Yes" if value else "No"
        elif isinstance(value, (str, int, float)):
            texts[name] = str(value)
        else:
            raise RosterError(p, f"constants: {name!r} is {_json_type(value)}; give a text such as \"US\" "
                                 f"(or remove the key to use the roster's column)")
    templates: dict[str, str | None] = {}
    for key, allowed in (("naming_template", {f.name for f in FIELDS} | {"domain"}),
                         ("display_name_template", {f.name for f in FIELDS})):
        template = data.get(key)
        if template is None:
            templates[key] = None
            continue
        if not isinstance(template, str):
            raise RosterError(p, f"{key} is {_json_type(template)}; give a text such as "
                                 + ('"{givenName}.{surname}@{domain}"' if key == "naming_template"
                                    else '"{givenName} {surname}"'))
        try:
            used = {name for _, name, _ in parse_template(template) if name}
        except TemplateError as exc:
            raise RosterError(p, f"{key} {template!r}: {exc}") from None
        strange = sorted(used - allowed)
        if strange:
            raise RosterError(p, f"{key} {template!r}: {', '.join('{' + n + '}' for n in strange)} is not a field; "
                                 f"use Graph property names such as {{givenName}}, {{surname}}"
                                 + (", {domain}" if key == "naming_template" else ""))
        templates[key] = template
    domain = data.get("domain")
    if domain is not None and not isinstance(domain, str):
        raise RosterError(p, f"domain is {_json_type(domain)}; give the UPN domain as a text, like \"contoso.com\"")
    return ColumnMapping(columns=dict(columns), constants=texts, naming_template=templates["naming_template"],
                         display_name_template=templates["display_name_template"],
                         domain=(domain or "").strip() or None, source=str(p))


def _object(p: Path, data: dict[str, Any], key: str, example: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RosterError(p, f"{key!r} is {_json_type(value)}; it must be an object like {example}")
    return value


def _json_type(value: object) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a text", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


_NON_ALNUM = re.compile(r"[\W_]+")


def is_password_header(header: str) -> bool:
    """True for a roster column that holds passwords (``password``, ``Initial password``, ``passwordProfile``...).

    Such columns keep their header in the Failed and Invalid sheets (so ``retry`` can be given a new password)
    but never their content: a password given in the roster is never copied anywhere.
    """
    key = _NON_ALNUM.sub("", header or "").casefold()
    # "Force change password" / "Must change password" are flags, not secrets
    return "password" in key and "change" not in key and "policies" not in key
