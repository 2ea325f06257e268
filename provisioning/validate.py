"""Roster -> validated rows: derivation, every rule of :mod:`provisioning.rules`, duplicates, tenant checks.

:func:`check_roster` does the work column by column (each check touches a column once, mostly in C: joins,
``max(map(len, ...))``, sets of distinct values; per-cell Python runs only on columns where a cheap test found
something), so it is linear and fast on 100,000 rows. :func:`validate_roster` adds the per-row
:class:`~provisioning.models.UserRow` objects (with generated passwords) that the run engine needs.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, Collection

from . import derive, rules
from .cells import FORMULA_TRIGGERS
from .fields import BLOCK_SIGN_IN, FIELD_BY_NAME
from .models import Issue, Roster, Severity, TenantView, UserRow, Validation
from .passwords import generate_password, password_problems

log = logging.getLogger(__name__)

_SEP = "\x00"
_PHONES = re.compile(r"(?:\x00(?:[+-]?[\d \-().,;/+]*))*\x00")  # a column of phone-like cells only
_VALUE_RULES: dict[str, Callable[[str, str], tuple[str, str] | None]] = {
    "usageLocation": rules.usage_location_problem, "mail": rules.mail_problem,
    "employeeHireDate": rules.date_problem, "preferredLanguage": rules.language_problem,
    "passwordPolicies": rules.policies_problem, "onPremisesImmutableId": rules.immutable_id_problem,
    "mailNickname": rules.mail_nickname_problem,
}
_LIST_FIELDS = ("businessPhones", "otherMails", "groups", "licenses")


@dataclass(frozen=True, slots=True)
class Checked:
    """Columnar result of :func:`check_roster`: final text per field and row, what was derived, the issues."""

    roster: Roster
    values: dict[str, list[str]]  # canonical field -> text per row ("" = empty); accountEnabled as "true"/"false"
    derived: dict[str, set[int]]  # canonical field -> row indexes where it was derived
    issues: tuple[Issue, ...]
    error_rows: frozenset[int]  # row indexes (not Excel numbers) with at least one error


class _Collector:
    """Issues for one roster, with the column name as written and Excel row numbers."""

    def __init__(self, roster: Roster) -> None:
        self.rownums = roster.row_numbers
        self.issues: list[Issue] = list(roster.warnings)
        self.error_rows: set[int] = set()

    def add(self, index: int, column: str, found: tuple[str, str] | None) -> None:
        if found is None:
            return
        code, message = found
        item = rules.issue(self.rownums[index], column, code, message)
        if item.severity is Severity.ERROR:
            self.error_rows.add(index)
        self.issues.append(item)


def check_roster(roster: Roster, *, tenant: TenantView | None = None, naming_template: str | None = None,
                 default_domain: str | None = None) -> Checked:
    """Derive empty fields and run every rule, column-wise; see :func:`validate_roster` for the arguments."""
    n = len(roster.row_numbers)
    out = _Collector(roster)
    columns = roster.columns
    header_of: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for j, header in enumerate(roster.headers):
        col = list(columns[j]) if j < len(columns) else [""] * n
        label = header or f"column {j + 1}"
        _check_cells(col, label, out)
        field = roster.column_map.get(header)
        if field is not None:
            values[field] = col
            header_of[field] = header
    if BLOCK_SIGN_IN in values:
        values["accountEnabled"] = _invert_block(values.pop(BLOCK_SIGN_IN), header_of[BLOCK_SIGN_IN], out)
        header_of["accountEnabled"] = header_of.pop(BLOCK_SIGN_IN)
    for name, constant in roster.constants.items():
        col = values.get(name)
        values[name] = [constant] * n if col is None else [v or constant for v in col]
    label = header_of.get
    derived: dict[str, set[int]] = {}

    for name, col in values.items():
        _check_field(name, col, label(name, name), out)

    # displayName
    dn = values.get("displayName") or [""] * n
    missing = [i for i, v in enumerate(dn) if not v]
    if missing:
        made = derive.display_names(roster.display_name_template or derive.DEFAULT_DISPLAY_NAME_TEMPLATE,
                                    {k: [values[k][i] for i in missing] for k in ("givenName", "surname")
                                     if k in values}, len(missing))
        dn = list(dn)
        for i, v in zip(missing, made):
            if v:
                dn[i] = v
            else:
                out.add(i, label("displayName", "displayName"),
                        ("display-name-missing", "displayName is empty and givenName/surname are too; fill in "
                                                 "displayName or givenName and surname"))
        derived["displayName"] = {i for i in missing if dn[i]}
        values["displayName"] = dn

    _derive_upns(roster, values, derived, label, out, tenant, naming_template, default_domain)
    upns = values["userPrincipalName"]

    # mailNickname
    nick = values.get("mailNickname") or [""] * n
    missing = [i for i, v in enumerate(nick) if not v]
    if missing:
        nick = list(nick)
        upn_derived = derived.get("userPrincipalName", set())
        for i in missing:  # a derived UPN's local part is already a valid mailNickname
            u = upns[i]
            nick[i] = u.rpartition("@")[0] if i in upn_derived else derive.mail_nickname_from(u) if u else ""
        derived["mailNickname"] = {i for i in missing if nick[i]}
        values["mailNickname"] = nick

    _check_passwords(values, label, out)
    _check_relations(values, label, out)
    for name, code in (("userPrincipalName", "duplicate-upn"), ("mailNickname", "duplicate-mail-nickname"),
                       ("employeeId", "duplicate-employee-id")):
        if name in values:
            _duplicates(values[name], label(name, name), code, out, casefold=name != "employeeId")
    if tenant is not None:
        _tenant_domains(values, label, out, tenant)
    issues = sorted(out.issues, key=lambda i: i.row)
    return Checked(roster, values, derived, tuple(issues), frozenset(out.error_rows))


def _check_cells(col: list[str], label: str, out: _Collector) -> None:
    """Formula-looking cells and leading/trailing whitespace (trimmed in place, with a warning)."""
    joined = _SEP + _SEP.join(col) + _SEP
    found = [t for t in FORMULA_TRIGGERS if _SEP + t in joined]
    if found and not (set(found) <= {"+", "-"} and _PHONES.fullmatch(joined)):
        for i, v in enumerate(col):
            if v[:1] and v[0] in "=+-@\t\r":
                out.add(i, label, rules.formula_problem(v, label))
    stripped = list(map(str.strip, col))
    if stripped != col:
        for i, (v, s) in enumerate(zip(col, stripped)):
            if s is not v and s != v:
                col[i] = s
                out.add(i, label, ("whitespace-trimmed", f"{label} {v!r}: leading/trailing blanks removed "
                                                         f"(now {s!r}); check the cell") if s else
                        ("whitespace-trimmed", f"{label} {v!r}: a cell of blanks only was treated as empty"))


def _check_field(name: str, col: list[str], label: str, out: _Collector) -> None:
    """Length, booleans and per-value rules of one canonical field (distinct values checked once)."""
    spec = FIELD_BY_NAME.get(name)
    limit = spec.max_len if spec else None
    if limit and name not in ("userPrincipalName", "password") and col and max(map(len, col)) > limit:
        for i, v in enumerate(col):
            if len(v) > limit and not (name == "businessPhones" and ";" in v):
                out.add(i, label, rules.too_long(v, label, name, limit))
    if spec is not None and spec.kind == "bool":
        bad = {v for v in set(col) if v and v.lower() not in rules.BOOLEANS}
        for i, v in enumerate(col):
            if v in bad:
                out.add(i, label, rules.boolean_problem(v, label))
    check = _VALUE_RULES.get(name)
    if check is not None:
        verdict = {v: check(v, label) for v in set(col) if v}
        if any(verdict.values()):
            for i, v in enumerate(col):
                if v:
                    out.add(i, label, verdict[v])
    if name == "userPrincipalName":
        for i, v in enumerate(col):
            if v:
                for found in rules.upn_problems(v, label):
                    out.add(i, label, found)
    elif name == "businessPhones":
        if any(";" in v or "," in v for v in set(col)):
            for i, v in enumerate(col):
                if ";" in v or "," in v:
                    out.add(i, label, ("phone-multiple", f"{label} {v!r}: Graph takes only one office phone "
                                                         f"number; keep one"))
    elif name == "otherMails":
        for v in {v for v in set(col) if v}:
            bad = [m for m in _split(v) if rules.mail_problem(m, label)]
            if bad:
                for i, w in enumerate(col):
                    if w == v:
                        out.add(i, label, rules.mail_problem(bad[0], label))


def _invert_block(col: list[str], label: str, out: _Collector) -> list[str]:
    """The Entra template's "Block sign in" (Yes = blocked) as accountEnabled texts."""
    res = []
    for i, v in enumerate(col):
        b = rules.BOOLEANS.get(v.lower()) if v else None
        if v and b is None:
            out.add(i, label, rules.boolean_problem(v, label))
            res.append(v)
        else:
            res.append("" if b is None else ("false" if b else "true"))
    return res


def _derive_upns(roster: Roster, values: dict[str, list[str]], derived: dict[str, set[int]],
                 label: Callable[[str, str], str], out: _Collector, tenant: TenantView | None,
                 naming_template: str | None, default_domain: str | None) -> None:
    """Fill empty UPNs from the naming template, with numeric suffixes on collision (file, then tenant)."""
    n = len(roster.row_numbers)
    upns = list(values.get("userPrincipalName") or [""] * n)
    values["userPrincipalName"] = upns
    missing = [i for i, v in enumerate(upns) if not v]
    if not missing:
        return
    column = label("userPrincipalName", "userPrincipalName")
    template = naming_template or roster.naming_template or derive.DEFAULT_NAMING_TEMPLATE
    domain = default_domain or roster.domain or (tenant.default_domain if tenant is not None else None)
    if not domain and "{domain" in template:
        for i in missing:
            out.add(i, column, ("upn-no-domain", "userPrincipalName is empty and no domain is known to derive "
                                                 "it; fill in userPrincipalName, or give a domain with --domain or "
                                                 "a mapping file's \"domain\" setting"))
        return
    fields, make = derive.make_upn_maker(template, domain)
    cols = [values.get(f) or [""] * n for f in fields]
    candidates: list[str | None] = [None] * n
    for i in missing:
        candidates[i] = make(*[c[i] for c in cols]) or None
    for i in missing:
        if candidates[i] is None:
            out.add(i, column, ("upn-missing", f"userPrincipalName is empty and the naming template {template!r} "
                                               f"gives nothing for this row; fill in userPrincipalName or "
                                               f"{' / '.join(fields)}"))
    taken = {u.lower() for u in upns if u}
    final = derive.assign_suffixes(candidates, taken)
    if tenant is not None:
        _tenant_suffixes(final, candidates, values, taken, tenant, out, column)
    got = derived.setdefault("userPrincipalName", set())
    for i in missing:
        upn = final[i]
        if upn:
            upns[i] = upn
            got.add(i)
            if upn != candidates[i]:
                out.add(i, column, ("upn-suffixed", f"userPrincipalName {candidates[i]!r} is already taken; "
                                                    f"derived {upn!r} instead (fill in userPrincipalName to choose)"))
    # derived UPNs are valid by construction apart from the domain: check it once, report on each row
    sample = next((upns[i] for i in got), None)
    problems = rules.upn_problems(sample, column) if sample else []
    for i in got if problems else ():
        for found in rules.upn_problems(upns[i], column):
            out.add(i, column, found)


def _tenant_suffixes(final: list[str | None], base: list[str | None], values: dict[str, list[str]],
                     taken: set[str], tenant: TenantView, out: _Collector, column: str) -> None:
    """Re-suffix derived UPNs that exist in the tenant for someone else; keep those of the same person."""
    pending = {i: u for i, u in enumerate(final) if u}
    numbers = {i: 1 for i in pending}
    emp, dn = values.get("employeeId"), values.get("displayName")
    while pending:
        found = tenant.lookup(list(pending.values()))
        nxt: dict[int, str] = {}
        for i, upn in pending.items():
            user = found.get(upn.lower())
            if user is None:
                continue
            mine_emp = emp[i] if emp else ""
            if mine_emp and user.employeeId:
                same = mine_emp == user.employeeId
            else:
                same = bool(dn) and (user.displayName or "").lower() == dn[i].lower()
            if same:
                out.add(i, column, ("user-exists", f"userPrincipalName {upn!r} already exists in the tenant for "
                                                   f"this person ({user.displayName}); the run will skip the row"))
                continue
            stem = base[i] or upn
            num = max(numbers[i] + 1, 2)
            while derive.with_suffix(stem, num).lower() in taken:
                num += 1
            numbers[i] = num
            new = derive.with_suffix(stem, num)
            taken.add(new.lower())
            final[i] = nxt[i] = new
        pending = nxt


def _check_passwords(values: dict[str, list[str]], label: Callable[[str, str], str], out: _Collector) -> None:
    col = values.get("password")
    if not col:
        return
    policies = values.get("passwordPolicies")
    column = label("password", "password")
    for i, pw in enumerate(col):
        if pw:
            strong = not (policies and "disablestrongpassword" in policies[i].lower())
            local = values["userPrincipalName"][i].partition("@")[0]
            for code, message in password_problems(pw, user_names=(local,), strong=strong):
                out.add(i, column, (code, f"{column}: {message}"))


def _check_relations(values: dict[str, list[str]], label: Callable[[str, str], str], out: _Collector) -> None:
    """manager shape and self-reference; licences need usageLocation."""
    upns = values["userPrincipalName"]
    managers = values.get("manager")
    if managers:
        column = label("manager", "manager")
        verdict = {m: rules.manager_problem(m, column, "") for m in set(managers) if m}
        for i, (m, u) in enumerate(zip(managers, upns)):
            if m and (verdict[m] or m.lower() == u.lower()):
                out.add(i, column, verdict[m] or rules.manager_problem(m, column, u))
    lic = values.get("licenses")
    if lic:
        loc = values.get("usageLocation") or [""] * len(lic)
        column = label("usageLocation", "usageLocation")
        for i, v in enumerate(lic):
            if v and not loc[i]:
                out.add(i, column, ("usage-location-required", f"licenses {v!r} are given but usageLocation is "
                                                               f"empty; licences need it (e.g. US, GB)"))


def _duplicates(col: list[str], column: str, code: str, out: _Collector, *, casefold: bool) -> None:
    """Flag every row after the first that repeats a non-empty value."""
    keys = [v.lower() for v in col] if casefold else col
    if len(set(keys)) == len(keys):
        return
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if not k:
            continue
        j = first.setdefault(k, i)
        if j != i:
            out.add(i, column, (code, f"{column} {col[i]!r} is already used in row {out.rownums[j]}; each user "
                                      f"needs their own"))


def _tenant_domains(values: dict[str, list[str]], label: Callable[[str, str], str], out: _Collector,
                    tenant: TenantView) -> None:
    column = label("userPrincipalName", "userPrincipalName")
    verified = ", ".join(sorted(tenant.verified_domains))
    immutable = values.get("onPremisesImmutableId")
    for i, upn in enumerate(values["userPrincipalName"]):
        domain = upn.rpartition("@")[2].lower()
        if not domain:
            continue
        if domain not in tenant.verified_domains:
            out.add(i, column, ("upn-domain-unverified", f"{column} {upn!r}: {domain!r} is not a verified domain "
                                                         f"of the tenant; use one of: {verified}"))
        elif domain in tenant.federated_domains and not (immutable and immutable[i]):
            out.add(i, column, ("immutable-id-required", f"{column} {upn!r}: {domain!r} is federated, so "
                                                         f"onPremisesImmutableId is required; add it or use a "
                                                         f"managed domain"))


def _split(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[;,]", text) if p.strip()]


def validate_roster(roster: Roster, *, tenant: TenantView | None = None, naming_template: str | None = None,
                    default_domain: str | None = None, password_length: int = 16) -> Validation:
    """Derive, validate and build one :class:`UserRow` per source row (same order, valid or not).

    Pure apart from ``tenant.lookup`` (called in bulk). ``naming_template`` and ``default_domain`` override the
    mapping file's; without either, and without a tenant, a row whose UPN must be derived gets ``upn-no-domain``.
    Empty passwords are generated (``password_length`` characters, CSPRNG, never logged).
    """
    checked = check_roster(roster, tenant=tenant, naming_template=naming_template, default_domain=default_domain)
    values = checked.values
    n = len(roster.rows)
    extras_idx = [(j, h) for j, h in enumerate(roster.headers) if h and roster.column_map.get(h) is None]
    pw = values.pop("password", None) or [""] * n
    force = values.pop("forceChangePasswordNextSignIn", None) or [""] * n
    body_fields = [(k, v) for k, v in values.items() if k not in ("accountEnabled",)]
    enabled = values.get("accountEnabled") or [""] * n
    derived_by_row: dict[int, set[str]] = {}
    for name, idx in checked.derived.items():
        for i in idx:
            derived_by_row.setdefault(i, set()).add(name)
    out: list[UserRow] = []
    for i, src in enumerate(roster.rows):
        fields: dict[str, Any] = {}
        for name, col in body_fields:
            v = col[i]
            if v:
                fields[name] = _split(v) if name in _LIST_FIELDS else (v.upper() if name == "usageLocation" else v)
        fields["accountEnabled"] = rules.BOOLEANS.get(enabled[i].lower(), True) if enabled[i] else True
        d = set(derived_by_row.get(i, ()))
        if not enabled[i]:
            d.add("accountEnabled")
        generated = not pw[i]
        password = generate_password(password_length) if generated else pw[i]
        if generated:
            d.add("password")
        out.append(UserRow(row=src.row, fields=fields, password=password, password_generated=generated,
                           force_change_password=rules.BOOLEANS.get(force[i].lower(), True) if force[i] else True,
                           derived=frozenset(d), extras={h: src.cells[j] for j, h in extras_idx},
                           has_errors=i in checked.error_rows))
    return Validation(rows=tuple(out), issues=checked.issues)


def summarise(issues: Collection[Issue]) -> dict[str, int]:
    """Counts per code (for the summary line)."""
    counts: dict[str, int] = {}
    for i in issues:
        counts[i.code] = counts.get(i.code, 0) + 1
    return counts
