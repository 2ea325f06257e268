"""Roster -> validated rows: derivation, every rule of :mod:`provisioning.validation.rules`, duplicates, tenant checks.

:func:`check_roster` does the work column by column: each check asks a cheap whole-column question in C first (see
:mod:`provisioning.validation.checks` and the numpy scan of :mod:`provisioning.validation.colscan`), derivation
cleans each distinct
value once and applies the naming template with ``map`` (see :func:`provisioning.roster.derive.make_upns`), and per-cell
Python runs only on the rows where something was found, so it is linear and fast on 100,000 rows.
:func:`validate_roster` adds the per-row :class:`~provisioning.models.UserRow` objects (with generated passwords)
that the run engine needs; both run the same rules.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import compress
from operator import ne, not_
from typing import Any

import numpy as np

from provisioning.bulk import gc_paused
from provisioning.fields import BLOCK_SIGN_IN, PHONE_FIELDS
from provisioning.models import Issue, Roster, TenantView, UserRow, Validation
from provisioning.roster import derive
from provisioning.roster.identity import identity_keys
from provisioning.validation import people, rules
from provisioning.validation.checks import (
    Collector,
    check_cells,
    check_field,
    check_passwords,
    check_relations,
    duplicates,
    invert_block,
    split_list,
    tenant_domains,
)
from provisioning.validation.colscan import SEP, ColumnScan
from provisioning.validation.passwords import generate_passwords

log = logging.getLogger(__name__)

_LIST_FIELDS = ("businessPhones", "otherMails", "groups", "licenses")
_split = split_list
_GIVEN_UPNS = "\x00given userPrincipalName"  # scratch key in ``values`` while checking


@dataclass(frozen=True, slots=True)
class Checked:
    """Columnar result of :func:`check_roster`: final text per field and row, what was derived, the issues."""

    roster: Roster
    values: dict[str, Sequence[str]]  # canonical field -> text per row ("" = empty); accountEnabled as "true"/"false"
    derived: dict[str, list[int]]  # canonical field -> row indexes where it was derived (ascending)
    issues: tuple[Issue, ...]
    error_rows: frozenset[int]  # row indexes (not Excel numbers) with at least one error


def _empty(col: Sequence[str], found: ColumnScan | None = None) -> list[int]:
    """Indexes of the empty cells of a column (from its scan's cell lengths when it has them)."""
    if found is not None and found.lengths is not None:
        return np.flatnonzero(found.lengths == 0).tolist()
    if "" not in col:
        return []
    return list(compress(range(len(col)), map(not_, col)))


def _filled(col: Sequence[str], found: ColumnScan | None = None) -> list[int]:
    """Indexes of the non-empty cells of a column (see :func:`_empty`)."""
    if found is not None and found.lengths is not None:
        return np.flatnonzero(found.lengths).tolist()
    return list(compress(range(len(col)), col))


def _scatter(col: Sequence[str] | None, rows: list[int], new: list[str], n: int) -> list[str]:
    """A copy of ``col`` (``n`` empty cells if None) with ``col[rows[k]] = new[k]``."""
    if len(rows) == n:
        return list(new)
    out = list(col) if col is not None else [""] * n
    for i, v in zip(rows, new, strict=True):
        out[i] = v
    return out


#: What :func:`check_roster` hands to its ``meanwhile``: the final text per field, what was derived, and the row
#: indexes with an error so far (all but the tenant's domains).
Meanwhile = Callable[[Mapping[str, Sequence[str]], Mapping[str, list[int]], frozenset[int]], None]


def check_roster(roster: Roster, *, tenant: TenantView | None = None, naming_template: str | None = None,
                 default_domain: str | None = None, meanwhile: Meanwhile | None = None) -> Checked:
    """Derive empty fields and run every rule, column-wise; see :func:`validate_roster` for the arguments.

    ``meanwhile`` is called once every rule but the tenant's domains has run, before those are checked: pre-flight
    reads the domains while the roster is checked, and the rest of the work (:func:`validate_roster` builds the
    rows) is done while the read may still be on its way instead of after it."""
    with gc_paused():
        return _check_roster(roster, tenant, naming_template, default_domain, meanwhile)


def _check_roster(roster: Roster, tenant: TenantView | None, naming_template: str | None,
                  default_domain: str | None, meanwhile: Meanwhile | None = None) -> Checked:
    n = len(roster.row_numbers)
    out = Collector(roster)
    columns = roster.columns
    header_of: dict[str, str] = {}
    values: dict[str, Sequence[str]] = {}
    scans: dict[str, ColumnScan] = {}
    every: list[tuple[str, Sequence[str], ColumnScan, bool]] = []
    for j, header in enumerate(roster.headers):
        heading = header or f"column {j + 1}"
        field = roster.column_map.get(header)
        found, col = check_cells(columns[j] if j < len(columns) else ("",) * n, heading, out,
                                 secret=field == "password", phone=field in PHONE_FIELDS)
        every.append((heading, col, found, field == "password"))
        if field is not None:
            values[field] = col
            header_of[field] = header
            scans[field] = found
    footers = _footer_rows(every, n, out)
    del every
    if BLOCK_SIGN_IN in values:
        values["accountEnabled"] = invert_block(values.pop(BLOCK_SIGN_IN), header_of[BLOCK_SIGN_IN], out)
        header_of["accountEnabled"] = header_of.pop(BLOCK_SIGN_IN)
    for name, constant in roster.constants.items():
        typed_col = values.get(name)
        values[name] = [constant] * n if typed_col is None else [v or constant for v in typed_col]
        scans.pop(name, None)
    label = header_of.get
    derived: dict[str, list[int]] = {}

    for name, col in values.items():
        check_field(name, col, label(name, name), out, scans.get(name))

    # displayName
    dn = values.get("displayName")
    missing = list(range(n)) if dn is None else _empty(dn, scans.get("displayName"))
    if missing:
        template = roster.display_name_template or derive.DEFAULT_DISPLAY_NAME_TEMPLATE
        parts = {k: derive.pick(values[k], missing) for k in derive.template_fields(template) if k in values}
        made = derive.display_names(template, parts, len(missing))
        dn = _scatter(dn, missing, made, n)
        got = list(compress(missing, made))
        if len(got) < len(missing):
            for i in compress(missing, map(not_, made)):
                out.add(i, label("displayName", "displayName"),
                        ("display-name-missing", "displayName is empty and givenName/surname are too; fill in "
                                                 "displayName or givenName and surname"))
        derived["displayName"] = got
        values["displayName"] = dn

    repeat_of, apart = _repeated_rows(roster, values, label, out)
    upn_rows, upn_locals, typed = _derive_upns(roster, values, derived, label, out, tenant, naming_template,
                                               default_domain, scans.get("userPrincipalName"), repeat_of)
    upns = values["userPrincipalName"]

    # mailNickname: the local part of a derived UPN as is, else the typed UPN's cleaned
    nick = values.get("mailNickname")
    missing = list(range(n)) if nick is None else _empty(nick, scans.get("mailNickname"))
    if missing:
        made = derive.mail_nicknames(upns, upn_rows, upn_locals, typed)
        if nick is not None and len(missing) < n:
            for i in compress(range(n), nick):
                made[i] = nick[i]
        derived["mailNickname"] = list(compress(missing, map(made.__getitem__, missing)))
        values["mailNickname"] = made

    check_passwords(values, label, out)
    check_relations(values, label, out)
    # derived UPNs are unique by construction (every UPN of the file is taken before suffixing): only the given
    # ones can repeat each other
    given_upns = values.pop(_GIVEN_UPNS)
    # (a row that repeats another is reported once, as such)
    if apart != "userPrincipalName":
        duplicates(derive.pick(given_upns, typed), label("userPrincipalName", "userPrincipalName"),
                   "duplicate-upn", out, rows=typed, skip=repeat_of)
    for name, code in (("mailNickname", "duplicate-mail-nickname"), ("employeeId", "duplicate-employee-id")):
        if name in values and name != apart:
            duplicates(values[name], label(name, name), code, out, skip=repeat_of)
    if meanwhile is not None:
        meanwhile(values, derived, frozenset(out.error_rows))
    if tenant is not None:
        tenant_domains(values, label, out, tenant)
    refused = {i.row for i in roster.warnings if i.code == "totals-row"}
    if refused:  # a totals row is refused whole (its cells emptied): the rules' findings on it would be noise
        out.issues = [i for i in out.issues if i.row not in refused or i.code == "totals-row"]
    if footers:  # a footer line gets its one issue, not also those of a person with no name
        out.issues = [i for i in out.issues if i.row not in footers or i.code == "not-a-person"]
    issues = sorted(out.issues, key=lambda i: i.row)
    return Checked(roster, values, derived, tuple(issues), frozenset(out.error_rows))


def _repeated_rows(roster: Roster, values: dict[str, Sequence[str]], label: Callable[[str, str], str],
                   out: Collector) -> tuple[dict[int, int], str | None]:
    """``duplicate-row`` on each row that repeats an earlier row's person (see
    :mod:`provisioning.validation.people`); the UPN and mailNickname columns are still as typed here. Returns
    the rows that repeat one, and the column that tells every row apart, if one does
    (:func:`people.telling_apart`: it then has no duplicates to look for)."""
    columns = {f: values[f] for f in people.IDENTITY_FIELDS if f in values}
    apart = people.telling_apart(columns)
    if apart is not None:
        return {}, apart
    repeat_of, messages = people.repeated_rows(columns, roster.headers, roster.columns, out.rownums, label,
                                               apart=False)
    out.add_many(repeat_of, label("displayName", "displayName"), "duplicate-row", messages)
    return repeat_of, None


def _footer_rows(columns: list[tuple[str, Sequence[str], ColumnScan, bool]], n: int, out: Collector) -> set[int]:
    """Report the rows that are an export's footer line (``not-a-person``); return their Excel row numbers.

    Such a row has one filled cell reading like "Total: 2 employees", "Page 1 of 1" or "Generated on ...", or a
    cell such as "Total" or "Page" whose count or date fills the next cells (at most four cells in all;
    :func:`rules.footer_problem` on them joined). A person has at least a name and an address or number besides;
    a row with only a given name, however odd, is left to the person rules, and so is one with a password
    (which no message may quote)."""
    counts = np.zeros(n, dtype=np.int32)
    for _, col, found, _ in columns:
        if found.lengths is not None:
            counts += found.lengths > 0
        elif found.full:  # (a column of few distinct values: no lengths, but whether one is empty)
            counts += 1
        else:
            counts += np.fromiter(map(bool, col), bool, n)
    candidates = set(np.flatnonzero(counts == 1).tolist())
    few = counts <= 4
    short = np.flatnonzero(few).tolist()
    if len(short) * 8 < n:  # few short rows (a roster of people): their cells alone, not whole columns
        for _, col, _, secret in columns:
            if not secret:
                candidates.update(i for i in short if col[i] and rules.FOOTER_LABEL.match(SEP + col[i] + SEP))
        return _footer_problems(columns, candidates, out)
    for _, col, found, secret in columns:  # a footer label in a short row's cell, found in the whole column
        joined = found.joined or SEP + SEP.join(col) + SEP
        if secret or not rules.FOOTER_LABEL.search(joined):
            continue
        if joined.count(SEP) != n + 1:  # a cell holds a NUL: the separators do not tell the cells apart
            candidates.update(i for i, v in enumerate(col) if few[i] and rules.FOOTER_LABEL.match(SEP + v + SEP))
            continue
        index = last = 0  # the cell a match starts is the number of separators before it
        for m in rules.FOOTER_LABEL.finditer(joined):
            index += joined.count(SEP, last, m.start())
            last = m.start()
            if index < n and few[index]:
                candidates.add(index)
    return _footer_problems(columns, candidates, out)


def _footer_problems(columns: list[tuple[str, Sequence[str], ColumnScan, bool]], candidates: set[int],
                     out: Collector) -> set[int]:
    """``not-a-person`` on each candidate row whose cells read as a footer line; their Excel row numbers."""
    rows: set[int] = set()
    for i in sorted(candidates):
        filled = [(label, col[i], secret) for label, col, _, secret in columns if col[i]]
        if any(secret for _, _, secret in filled) or not all(
                rules.FOOTER_COUNT.fullmatch(v) for _, v, _ in filled[1:]):
            continue
        problem = rules.footer_problem(" ".join(v for _, v, _ in filled), out.rownums[i])
        if problem is not None:
            out.add(i, filled[0][0], problem)
            rows.add(out.rownums[i])
    return rows


def _derive_upns(roster: Roster, values: dict[str, Sequence[str]], derived: dict[str, list[int]],
                 label: Callable[[str, str], str], out: Collector, tenant: TenantView | None,
                 naming_template: str | None, default_domain: str | None, found: ColumnScan | None,
                 repeat_of: dict[int, int]) -> tuple[list[int], list[str], list[int]]:
    """Fill empty UPNs from the naming template, unique in the file and matched to the tenant's users
    (:func:`provisioning.validation.people.unique_upns`); a row that repeats another takes that row's UPN.

    Returns the row indexes that were to be derived, the local part of each one's UPN (``""`` when none), and the
    row indexes with a UPN as typed."""
    n = len(roster.row_numbers)
    given = values.get("userPrincipalName")
    missing = list(range(n)) if given is None else _empty(given, found)
    typed_rows = [] if given is None else _filled(given, found)
    given = given or [""] * n
    values[_GIVEN_UPNS] = given
    upns = list(given)
    values["userPrincipalName"] = upns
    if not missing:
        return [], [], typed_rows
    column = label("userPrincipalName", "userPrincipalName")
    template = naming_template or roster.naming_template or derive.DEFAULT_NAMING_TEMPLATE
    domain = default_domain or roster.domain or (tenant.default_domain if tenant is not None else None)
    if not domain and "{domain" in template:
        for i in missing:
            out.add(i, column, ("upn-no-domain", "userPrincipalName is empty and no domain is known to derive "
                                                 "it; fill in userPrincipalName, or give a domain with --domain or "
                                                 "a mapping file's \"domain\" setting"))
        return missing, [""] * len(missing), typed_rows
    fields = sorted(derive.template_fields(template) - {"domain"})
    # work on the rows to derive only: made[k] is the UPN for row missing[k] ("" when the template gives none)
    made, locals_ = derive.make_upns(template, domain, {f: values[f] for f in fields if f in values}, missing)
    if "" in made:
        for i in compress(missing, map(not_, made)):
            out.add(i, column, ("upn-missing", f"userPrincipalName is empty and the naming template {template!r} "
                                               f"gives nothing for this row; fill in userPrincipalName or "
                                               f"{' / '.join(fields)}"))
    typed: dict[str, int] = {}
    if typed_rows:  # typed UPN -> its first row (the earliest row is written last)
        typed = dict(zip(reversed(identity_keys(derive.pick(given, typed_rows))), reversed(typed_rows), strict=True))
    person = people.Person(values["displayName"], values.get("employeeId"), out.rownums)
    result = people.unique_upns(made, missing, repeat_of, typed, person, tenant)
    final = result.final
    if len(missing) == n:
        upns[:] = final
    else:
        for i, upn in zip(missing, final, strict=True):
            upns[i] = upn
    derived["userPrincipalName"] = list(compress(missing, final))
    for k in compress(range(len(made)), map(ne, final, made)):
        if final[k]:
            locals_[k] = final[k].rpartition("@")[0]
    out.add_many(map(missing.__getitem__, result.suffixed), column, "upn-suffixed", result.suffixed.values())
    out.add_many(map(missing.__getitem__, result.matched), column, "user-exists", result.matched.values())
    # derived UPNs are valid by construction apart from the domain: check it once, report on each row
    sample = next(filter(None, final), None)
    problems = rules.upn_problems(sample, column) if sample else []
    for i in compress(missing, final) if problems else ():
        for problem in rules.upn_problems(upns[i], column):
            out.add(i, column, problem)
    return missing, locals_, typed_rows


def validate_roster(roster: Roster, *, tenant: TenantView | None = None, naming_template: str | None = None,
                    default_domain: str | None = None, password_length: int = 16) -> Validation:
    """Derive, validate and build one :class:`UserRow` per source row (same order, valid or not).

    Pure apart from ``tenant.lookup`` (called in bulk). ``naming_template`` and ``default_domain`` override the
    mapping file's; without either, and without a tenant, a row whose UPN must be derived gets ``upn-no-domain``.
    Empty passwords are generated (``password_length`` characters, CSPRNG, never logged).
    """
    with gc_paused():
        return _validate_roster(roster, tenant, naming_template, default_domain, password_length)


def _validate_roster(roster: Roster, tenant: TenantView | None, naming_template: str | None,
                     default_domain: str | None, password_length: int) -> Validation:
    built: list[tuple[list[UserRow], frozenset[int]]] = []

    def build(values: Mapping[str, Sequence[str]], derived: Mapping[str, list[int]],
              error_rows: frozenset[int]) -> None:
        built.append((_user_rows(roster, values, derived, error_rows, password_length), error_rows))

    checked = check_roster(roster, tenant=tenant, naming_template=naming_template, default_domain=default_domain,
                           meanwhile=build)
    (out, early), = built
    for i in checked.error_rows - early:  # an error found after the rows were built: the tenant's domains
        out[i] = replace(out[i], has_errors=True)
    return Validation(rows=tuple(out), issues=checked.issues)


def _user_rows(roster: Roster, values: Mapping[str, Sequence[str]], derived: Mapping[str, list[int]],
               error_rows: frozenset[int], password_length: int) -> list[UserRow]:
    """One :class:`UserRow` per source row, from the checked columns (``error_rows``: row indexes with an error)."""
    n = len(roster.rows)
    extras_idx = [(j, h) for j, h in enumerate(roster.headers) if h and roster.column_map.get(h) is None]
    pw = values.get("password") or [""] * n
    force = values.get("forceChangePasswordNextSignIn") or [""] * n
    body_fields = [(k, v) for k, v in values.items()
                   if k not in ("accountEnabled", "password", "forceChangePasswordNextSignIn")]
    enabled = values.get("accountEnabled") or [""] * n
    derived_by_row: dict[int, set[str]] = {}
    for name, idx in derived.items():
        for i in idx:
            derived_by_row.setdefault(i, set()).add(name)
    out: list[UserRow] = []
    fresh = iter(generate_passwords(sum(1 for p in pw if not p), password_length))
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
        password = next(fresh) if generated else pw[i]
        if generated:
            d.add("password")
        out.append(UserRow(row=src.row, fields=fields, password=password, password_generated=generated,
                           force_change_password=rules.BOOLEANS.get(force[i].lower(), True) if force[i] else True,
                           derived=frozenset(d), extras={h: src.cells[j] for j, h in extras_idx},
                           has_errors=i in error_rows))
    return out


def summarise(issues: Collection[Issue]) -> dict[str, int]:
    """Counts per code (for the summary line)."""
    counts: dict[str, int] = {}
    for i in issues:
        counts[i.code] = counts.get(i.code, 0) + 1
    return counts
