"""Validation of user documents for ``POST /users`` and ``PATCH /users/{id}`` (graph-facts 1.2-1.8 and 2).

Each check returns ``None`` or ``(code, message, details)``. The order follows graph-facts 11: JSON shape and
required properties -> property values -> UPN syntax and length -> domain verified -> password policy; the caller
then checks uniqueness and the object quota.

Messages: see the ``MSG_*`` constants. Where graph-facts marks a text UNCONFIRMED the sandbox uses the documented
pattern ``Invalid value specified for property '{prop}' of resource 'User'.``. From the graph-facts addendum: a
missing required property -> "Property {name} value is required but is empty or missing."
(MSGraph-SDK-Code-Generator#244); an invalid mailNickname also carries ``details: [{"code": "InvalidValue",
"target": "mailNickname"}]`` (microsoft-graph-docs#5777); a federated domain without onPremisesImmutableId ->
"One or more properties contains invalid values." (microsoftgraph/dotnetcore-console-sample#46), the
"domain portion" text being for unverified or unknown domains.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

Problem = tuple[str, str, list[dict[str, Any]] | None]
BAD = "Request_BadRequest"

MSG_INVALID = "Invalid value specified for property '{0}' of resource 'User'."
# "Property {name} value is required but is empty or missing." is the pattern Microsoft states for every required
# property (MSGraph-SDK-Code-Generator#244; captured for mailNickname)
MSG_REQUIRED = "Property {0} value is required but is empty or missing."
MSG_NICKNAME_REQUIRED = MSG_REQUIRED.format("mailNickname")
MSG_NO_PASSWORD = "A password must be specified to create a new user."
MSG_WEAK_PASSWORD = ("The specified password does not comply with password complexity requirements. "
                     "Please provide a different password.")
MSG_PASSWORD_USERNAME = "Password cannot contain username."
MSG_UPN_MALFORMED = "One or more properties contains invalid values."
MSG_UPN_INVALID = "Property userPrincipalName is invalid."
#: a federated domain without onPremisesImmutableId (microsoftgraph/dotnetcore-console-sample#46)
MSG_FEDERATED = MSG_UPN_MALFORMED
MSG_DOMAIN = ("The domain portion of the userPrincipalName property is invalid. You must use one of the verified "
              "domain names in your organization.")
MSG_DUPLICATE = "Another object with the same value for property userPrincipalName already exists."
MSG_UNKNOWN_PROPERTY = "Property '{0}' does not exist as a declared property or extension property."
MSG_DISPLAYNAME_CLEAR = "Invalid value specified for property 'displayName' of resource 'User'."

#: string properties with their documented maximum length (None: no documented limit)
STRINGS: dict[str, int | None] = {
    "displayName": 256, "givenName": 64, "surname": 64, "mailNickname": 64, "jobTitle": 128, "department": 64,
    "companyName": 64, "employeeId": 16, "officeLocation": 128, "mobilePhone": 64, "streetAddress": 1024,
    "city": 128, "state": 128, "postalCode": 40, "country": 128, "employeeType": None, "preferredLanguage": None,
    "mail": None, "usageLocation": None, "onPremisesImmutableId": None, "passwordPolicies": None,
    "userPrincipalName": None, "faxNumber": None, "ageGroup": None, "consentProvidedForMinor": None,
    "employeeHireDate": None, "userType": None, "aboutMe": None,
}
COLLECTIONS = ("businessPhones", "otherMails")
OBJECTS = ("passwordProfile", "employeeOrgData", "onPremisesExtensionAttributes", "identities")
BOOLEANS = ("accountEnabled",)
WRITABLE = set(STRINGS) | set(COLLECTIONS) | set(OBJECTS) | set(BOOLEANS)
READ_ONLY = ("id", "createdDateTime", "creationType", "proxyAddresses", "imAddresses", "onPremisesSyncEnabled",
             "securityIdentifier", "assignedLicenses", "externalUserState", "deletedDateTime")
#: every property that may be named in $select / $filter
ALL_PROPERTIES = tuple(sorted(WRITABLE | set(READ_ONLY)))
FILTERABLE = ("id", "userPrincipalName", "mail", "employeeId", "displayName", "givenName", "surname",
              "mailNickname", "accountEnabled", "jobTitle", "department", "companyName", "city", "country",
              "state", "postalCode", "usageLocation", "employeeType", "officeLocation", "userType",
              "otherMails", "proxyAddresses", "businessPhones", "mobilePhone", "preferredLanguage",
              "onPremisesImmutableId", "createdDateTime", "employeeHireDate", "creationType")

# Graph's rules, copied because the sandbox imports nothing of provisioning (tests/test_patterns.py checks that they
# agree): UPN_LOCAL is the class of provisioning.cells.UPN_LOCAL_CHARS; DOMAIN_RE is
# provisioning.validation.patterns.DOMAIN with Graph's 63-character limit on a label; NICKNAME_FORBIDDEN is the
# printable part of provisioning.cells.NICKNAME_BAD; LANG_RE is provisioning.validation.patterns.LANGUAGE.
UPN_LOCAL = re.compile(r"[A-Za-z0-9'.\-_!#^~]+")
DOMAIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                       r"[A-Za-z0-9])?)+")
NICKNAME_FORBIDDEN = set('@()\\[]";:<>, ')
PASSWORD_SYMBOLS = set("@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ")
PASSWORD_POLICIES = {"DisableStrongPassword", "DisablePasswordExpiration", "None"}
LANG_RE = re.compile(r"[a-zA-Z]{2,3}(?:-[A-Za-z0-9]{2,8})*")


#: an invalid mailNickname carries details (microsoft-graph-docs#5777; ms-identity-dotnetcore-b2c-account-management#16)
NICKNAME_INVALID: Problem = (BAD, MSG_INVALID.format("mailNickname"),
                             [{"code": "InvalidValue", "target": "mailNickname"}])


def _bad(prop: str) -> Problem:
    return BAD, MSG_INVALID.format(prop), None


def _is_ascii_printable(s: str) -> bool:
    return all(32 <= ord(c) < 127 for c in s)


def _country_ok(code: str) -> bool:
    if not re.fullmatch(r"[A-Za-z]{2}", code):
        return False
    try:
        import pycountry
    except ImportError:  # pragma: no cover - pycountry is a project dependency
        return True
    return pycountry.countries.get(alpha_2=code.upper()) is not None


def check_shape(body: Any, *, creating: bool) -> Problem | None:
    """Unknown properties, JSON types, and (when creating) the required properties."""
    for key, value in body.items():
        if key.startswith("@odata.") or "@odata." in key:
            continue
        if key not in WRITABLE:
            return BAD, MSG_UNKNOWN_PROPERTY.format(key), None
        if value is None:
            continue
        if key in STRINGS and not isinstance(value, str) \
                or key in BOOLEANS and not isinstance(value, bool) \
                or key in COLLECTIONS and not (isinstance(value, list) and all(isinstance(v, str) for v in value)) \
                or key in OBJECTS and not isinstance(value, list if key == "identities" else dict):
            return _bad(key)
    if creating and not body.get("identities"):
        for prop in ("accountEnabled", "displayName"):
            if body.get(prop) is None:
                return BAD, MSG_REQUIRED.format(prop), None
        if not body.get("mailNickname"):
            return BAD, MSG_NICKNAME_REQUIRED, None
        if body.get("userPrincipalName") is None:
            return BAD, MSG_REQUIRED.format("userPrincipalName"), None
    if creating:
        profile = body.get("passwordProfile") or {}
        if not profile.get("password"):
            return BAD, MSG_NO_PASSWORD, None
    return None


def check_values(body: dict[str, Any]) -> Problem | None:
    """Lengths and formats of every supplied property except the UPN (graph-facts 1.3, 1.5)."""
    for prop, limit in STRINGS.items():
        value = body.get(prop)
        if value is None or prop == "userPrincipalName":
            continue
        if limit is not None and len(value) > limit:
            return NICKNAME_INVALID if prop == "mailNickname" else _bad(prop)
        if prop in ("displayName", "mailNickname") and not value.strip():
            return (BAD, MSG_NICKNAME_REQUIRED, None) if prop == "mailNickname" else _bad(prop)
    nick = body.get("mailNickname")
    if nick is not None and (not _is_ascii_printable(nick) or NICKNAME_FORBIDDEN & set(nick)):
        return NICKNAME_INVALID
    if "usageLocation" in body and not (isinstance(body["usageLocation"], str) and _country_ok(body["usageLocation"])):
        return _bad("usageLocation")
    for prop in ("mail",):
        v = body.get(prop)
        if v is not None and (not v.isascii() or v.count("@") != 1 or " " in v):
            return _bad(prop)
    if any(not v.isascii() or "@" not in v for v in body.get("otherMails") or []):
        return _bad("otherMails")
    if len(body.get("businessPhones") or []) > 1:
        return _bad("businessPhones")
    imm = body.get("onPremisesImmutableId")
    if imm is not None and ("$" in imm or "_" in imm):
        return _bad("onPremisesImmutableId")
    pol = body.get("passwordPolicies")
    if pol is not None and not all(p.strip() in PASSWORD_POLICIES for p in pol.split(",")):
        return _bad("passwordPolicies")
    lang = body.get("preferredLanguage")
    if lang is not None and not LANG_RE.fullmatch(lang):
        return _bad("preferredLanguage")
    hire = body.get("employeeHireDate")
    if hire is not None:
        try:
            dt.datetime.fromisoformat(hire.replace("Z", "+00:00"))
        except ValueError:
            return _bad("employeeHireDate")
    profile = body.get("passwordProfile")
    if profile is not None:
        for k, v in profile.items():
            if k not in ("password", "forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa") \
                    or (k == "password" and v is not None and not isinstance(v, str)) \
                    or (k != "password" and v is not None and not isinstance(v, bool)):
                return _bad("passwordProfile")
    ext = body.get("onPremisesExtensionAttributes")
    if ext is not None and any(not re.fullmatch(r"extensionAttribute(?:[1-9]|1[0-5])", k)
                               or (v is not None and (not isinstance(v, str) or len(v) > 1024))
                               for k, v in ext.items()):
        return _bad("onPremisesExtensionAttributes")
    org = body.get("employeeOrgData")
    if org is not None and any(k not in ("division", "costCenter") or (v is not None and not isinstance(v, str))
                               for k, v in org.items()):
        return _bad("employeeOrgData")
    return None


def check_upn(upn: str, domains: dict[str, dict[str, Any]], immutable_id: str | None) -> Problem | None:
    """UPN syntax, lengths (113 / 64 / 48) and domain (verified; federated needs onPremisesImmutableId)."""
    if upn.count("@") != 1:
        return BAD, MSG_UPN_MALFORMED, None
    local, domain = upn.split("@")
    if (not local or not domain or len(upn) > 113 or len(local) > 64 or len(domain) > 48
            or not UPN_LOCAL.fullmatch(local) or local.endswith(".") or local.startswith(".") or ".." in local
            or not DOMAIN_RE.fullmatch(domain)):
        return BAD, MSG_UPN_INVALID, None
    info = domains.get(domain.lower())
    if info is None or not info["isVerified"]:
        return BAD, MSG_DOMAIN, None
    if info["authenticationType"] == "Federated" and not immutable_id:
        return BAD, MSG_FEDERATED, None
    return None


def check_password(password: str, policies: str | None, upn: str | None) -> Problem | None:
    """Entra's cloud password policy (graph-facts 2): 8-256 ASCII chars, 3 of 4 classes, not the user name."""
    weak = (BAD, MSG_WEAK_PASSWORD, None)
    if not all(c.isascii() and (c.isalnum() or c in PASSWORD_SYMBOLS) for c in password):
        return weak
    if not 8 <= len(password) <= 256:
        return weak
    if "disablestrongpassword" not in (policies or "").lower():
        classes = (any(c.islower() for c in password) + any(c.isupper() for c in password)
                   + any(c.isdigit() for c in password) + any(c in PASSWORD_SYMBOLS for c in password))
        if classes < 3:
            return weak
    local = (upn or "").split("@")[0].lower()
    if len(local) >= 3 and local in password.lower():
        return BAD, MSG_PASSWORD_USERNAME, None
    return None
