"""Roster -> validated rows: derivation, every rule of :mod:`provisioning.rules`, duplicates, tenant checks.

:func:`check_roster` does the work column by column: each check asks a cheap whole-column question in C first
(see :mod:`provisioning.checks`), derivation cleans each distinct value once and applies the naming template with
``map`` (see :func:`provisioning.derive.make_upns`), and per-cell Python runs only on the rows where something was
found, so it is linear and fast on 100,000 rows. :func:`validate_roster` adds the per-row
:class:`~provisioning.models.UserRow` objects (with generated passwords) that the run engine needs; both run the
same rules.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import compress, repeat
from operator import itemgetter, ne, not_
from typing import Any, Callable, Collection

from . import derive, rules
from .checks import (Collector, check_cells, check_field, check_passwords, check_relations, duplicates,
                     invert_block, split_list, tenant_domains)
from .fields import BLOCK_SIGN_IN
from .models import Issue, Roster, TenantView, UserRow, Validation
from .passwords import generate_password

log = logging.getLogger(__name__)

_LIST_FIELDS = ("businessPhones", "otherMails", "groups", "licenses")
_Collector = Collector  # backward-compatible name
_split = split_list
_GIVEN_UPNS = "\x00given userPrincipalName"  # scratch key in ``values`` while checking


@dataclass(frozen=True, slots=True)
class Checked:
    """Columnar result of :func:`check_roster`: final text per field and row, what was derived, the issues."""

    roster: Roster
    values: dict[str, list[str]]  # canonical field -> text per row ("" = empty); accountEnabled as "true"/"false"
    derived: dict[str, set[int]]  # canonical field -> row indexes where it was derived
    issues: tuple[Issue, ...]
    error_rows: frozenset[int]  # row indexes (not Excel numbers) with at least one error


def _empty(col: list[str]) -> list[int]:
    """Indexes of the empty cells of a column."""
    return list(compress(range(len(col)), map(not_, col)))


def check_roster(roster: Roster, *, tenant: TenantView | None = None, naming_template: str | None = None,
                 default_domain: str | None = None) -> Checked:
    """Derive empty fields and run every rule, column-wise; see :func:`validate_roster` for the arguments."""
    n = len(roster.row_numbers)
    out = Collector(roster)
    columns = roster.columns
    header_of: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for j, header in enumerate(roster.headers):
        col = list(columns[j]) if j < len(columns) else [""] * n
        label = header or f"column {j + 1}"
        field = roster.column_map.get(header)
        check_cells(col, label, out, secret=field == "password")
        if field is not None:
            values[field] = col
            header_of[field] = header
    if BLOCK_SIGN_IN in values:
        values["accountEnabled"] = invert_block(values.pop(BLOCK_SIGN_IN), header_of[BLOCK_SIGN_IN], out)
        header_of["accountEnabled"] = header_of.pop(BLOCK_SIGN_IN)
    for name, constant in roster.constants.items():
        col = values.get(name)
        values[name] = [constant] * n if col is None else [v or constant for v in col]
    label = header_of.get
    derived: dict[str, set[int]] = {}

    for name, col in values.items():
        check_field(name, col, label(name, name), out)

    # displayName
    dn = values.get("displayName") or [""] * n
    missing = _empty(dn)
    if missing:
        pick = itemgetter(*missing)
        parts = {k: (list(pick(values[k])) if len(missing) > 1 else [pick(values[k])])
                 for k in ("givenName", "surname") if k in values}
        made = derive.display_names(roster.display_name_template or derive.DEFAULT_DISPLAY_NAME_TEMPLATE,
                                    parts, len(missing))
        dn = list(dn)
        got = set()
        for i, v in zip(missing, made):
            if v:
                dn[i] = v
                got.add(i)
            else:
                out.add(i, label("displayName", "displayName"),
                        ("display-name-missing", "displayName is empty and givenName/surname are too; fill in "
                                                 "displayName or givenName and surname"))
        derived["displayName"] = got
        values["displayName"] = dn

    _derive_upns(roster, values, derived, label, out, tenant, naming_template, default_domain)
    upns = values["userPrincipalName"]

    # mailNickname
    nick = values.get("mailNickname") or [""] * n
    missing = _empty(nick)
    if missing:
        made = derive.mail_nicknames(upns, derived.get("userPrincipalName", set()))
        if len(missing) < n:
            for i in compress(range(n), nick):
                made[i] = nick[i]
        nick = made
        derived["mailNickname"] = set(missing).difference(_empty(nick))
        values["mailNickname"] = nick

    check_passwords(values, label, out)
    check_relations(values, label, out)
    # derived UPNs are unique by construction (every UPN of the file is taken before suffixing): only the given
    # ones can repeat each other
    given_upns = values.pop(_GIVEN_UPNS)
    duplicates(given_upns, label("userPrincipalName", "userPrincipalName"), "duplicate-upn", out, casefold=True)
    for name, code in (("mailNickname", "duplicate-mail-nickname"), ("employeeId", "duplicate-employee-id")):
        if name in values:
            duplicates(values[name], label(name, name), code, out, casefold=name != "employeeId")
    if tenant is not None:
        tenant_domains(values, label, out, tenant)
    issues = sorted(out.issues, key=lambda i: i.row)
    return Checked(roster, values, derived, tuple(issues), frozenset(out.error_rows))


def _derive_upns(roster: Roster, values: dict[str, list[str]], derived: dict[str, set[int]],
                 label: Callable[[str, str], str], out: Collector, tenant: TenantView | None,
                 naming_template: str | None, default_domain: str | None) -> None:
    """Fill empty UPNs from the naming template, with numeric suffixes on collision (file, then tenant)."""
    n = len(roster.row_numbers)
    given = values.get("userPrincipalName") or [""] * n
    values[_GIVEN_UPNS] = given
    upns = list(given)
    values["userPrincipalName"] = upns
    missing = _empty(upns)
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
    fields = sorted(derive.template_fields(template) - {"domain"})
    made = derive.make_upns(template, domain, {f: values[f] for f in fields if f in values}, missing)
    candidates: list[str | None] = [None] * n
    for i, upn in zip(missing, made):
        if upn:
            candidates[i] = upn
        else:
            out.add(i, column, ("upn-missing", f"userPrincipalName is empty and the naming template {template!r} "
                                               f"gives nothing for this row; fill in userPrincipalName or "
                                               f"{' / '.join(fields)}"))
    taken = {u.lower() for u in upns if u}
    final = derive.assign_suffixes(candidates, taken)
    if tenant is not None:
        _tenant_suffixes(final, candidates, values, taken, tenant, out, column)
    got_idx = list(compress(missing, map(final.__getitem__, missing)))
    for i in got_idx:
        upns[i] = final[i]  # type: ignore[assignment]
    got = derived.setdefault("userPrincipalName", set())
    got.update(got_idx)
    for i in compress(range(n), map(ne, final, candidates)):
        if final[i]:
            out.add(i, column, ("upn-suffixed", f"userPrincipalName {candidates[i]!r} is already taken; "
                                                f"derived {final[i]!r} instead (fill in userPrincipalName to choose)"))
    # derived UPNs are valid by construction apart from the domain: check it once, report on each row
    sample = next((upns[i] for i in got), None)
    problems = rules.upn_problems(sample, column) if sample else []
    for i in got if problems else ():
        for found in rules.upn_problems(upns[i], column):
            out.add(i, column, found)


def _tenant_suffixes(final: list[str | None], base: list[str | None], values: dict[str, list[str]],
                     taken: set[str], tenant: TenantView, out: Collector, column: str) -> None:
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
