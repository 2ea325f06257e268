"""How roster headers map onto the canonical fields (:mod:`provisioning.fields`), and the ``--mapping`` file.

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
from provisioning.fields import BLOCK_SIGN_IN, FIELD_BY_NAME, FIELDS
from provisioning.roster.derive import TemplateError, parse_template

ALIASES: dict[str, str] = {
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
    if key in ALIASES:
        return ALIASES[key]
    stripped = _REQUIRED_SUFFIX.sub("", key)
    return _NORMAL.get(stripped) or ALIASES.get(stripped)


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
