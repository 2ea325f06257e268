"""Column-wise checks for :mod:`provisioning.validation.engine`: each takes whole columns and reports
:class:`Issue` values.

Every check first asks a cheap whole-column question that runs in C (a join searched for a formula trigger,
``map(str.strip, ...)``, ``max(map(len, ...))``, one regular expression over the joined column, the set of distinct
values) and only walks the cells one by one in Python when that question found something, so validating 100,000
clean rows costs a few milliseconds per column. The messages come from :mod:`provisioning.validation.rules`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace
from itertools import compress
from operator import eq

from provisioning import codes
from provisioning.cells import INVISIBLE, looks_like_formula, strip_blanks
from provisioning.fields import FIELD_BY_NAME, PHONE_FIELDS
from provisioning.models import Issue, Roster, Severity, TenantView
from provisioning.roster.derive import lowered
from provisioning.roster.identity import identity_keys
from provisioning.validation import rules
from provisioning.validation.colscan import SEP as _SEP
from provisioning.validation.colscan import ColumnScan, plain_phones, plain_upns, scan
from provisioning.validation.passwords import password_problems
from provisioning.validation.patterns import BAD_UPN_DOMAIN, FORMULA_LIKE, PHONE_COLUMN, UPN_SHAPES

# NUL and control characters other than tab, line feed and carriage return (a line break in a cell is legitimate)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
VALUE_RULES: dict[str, Callable[[str, str], tuple[str, str] | None]] = {
    "usageLocation": rules.usage_location_problem, "mail": rules.mail_problem,
    "employeeHireDate": rules.date_problem, "preferredLanguage": rules.language_problem,
    "passwordPolicies": rules.policies_problem, "onPremisesImmutableId": rules.immutable_id_problem,
    "mailNickname": rules.mail_nickname_problem,
}


class Collector:
    """Issues for one roster, with the column name as written and Excel row numbers."""

    def __init__(self, roster: Roster) -> None:
        self.rownums = roster.row_numbers
        self.issues: list[Issue] = list(roster.warnings)
        self.error_rows: set[int] = set()
        # issues the reader found in single cells (e.g. Excel error values) may exclude their row
        bad = {w.row for w in roster.warnings if w.row and w.severity is Severity.ERROR}
        if bad:
            self.error_rows.update(i for i, r in enumerate(self.rownums) if r in bad)

    def add(self, index: int, column: str, found: tuple[str, str] | None) -> None:
        """Record ``found`` (``(code, message)``, or None for nothing) for row index ``index``."""
        if found is None:
            return
        code, message = found
        item = codes.issue(self.rownums[index], column, code, message)
        if item.severity is Severity.ERROR:
            self.error_rows.add(index)
        self.issues.append(item)

    def add_many(self, indexes: Iterable[int], column: str, code: str, messages: Iterable[str]) -> None:
        """Record one ``code`` issue per row index, ``messages`` in the same order (many rows at a time)."""
        severity = codes.RULES[code].severity
        rownums = self.rownums
        rows = list(indexes)
        self.issues.extend([Issue(rownums[i], column, code, severity, m) for i, m in zip(rows, messages, strict=True)])
        if severity is Severity.ERROR:
            self.error_rows.update(rows)


def split_list(text: str) -> list[str]:
    """``'a; b,c'`` -> ``['a', 'b', 'c']`` (list fields: phones, other mails, groups, licences)."""
    return [p.strip() for p in re.split(r"[;,]", text) if p.strip()]


def check_cells(col: Sequence[str], label: str, out: Collector, *, secret: bool = False, phone: bool = False) \
        -> tuple[ColumnScan, Sequence[str]]:
    """Formula-looking cells, control characters, and leading/trailing whitespace (trimmed, with a warning).

    ``secret`` (the password column): no message quotes the cell, and blanks are kept (Entra allows them, and
    trimming would change the password the administrator hands out). ``phone`` (a phone field): no formula rule,
    as the phone rule of :func:`check_field` refuses every value that is no phone number, formulas included, and
    says what one looks like. Returns the column's :class:`ColumnScan`
    (its ``joined`` text is ``""`` and its ``lengths`` None when a cell was trimmed, or when only the distinct
    values were scanned: they do not describe the cells; ``full`` then says whether no cell of the column
    returned is empty) and the column to go on with: ``col`` itself, or a
    trimmed copy (``col`` is never changed).

    Every check here is about one value, so a column of few distinct values (a department, a country, a manager)
    is checked value by value and the findings reported on the rows holding each value.
    """
    few = _few_distinct(col)
    if few is None:
        return _check_cells(col, label, out.add, secret, phone)
    found: list[tuple[int, str, tuple[str, str]]] = []

    def record(k: int, column: str, problem: tuple[str, str] | None) -> None:
        if problem is not None:
            found.append((k, column, problem))

    scanned, fixed = _check_cells(few, label, record, secret, phone)
    column_scan = replace(scanned, joined="", lengths=None, edge_blank_rows=(), full="" not in fixed,
                          phones=scanned.phones and fixed is few)
    if not found:
        return column_scan, col
    rows: dict[str, list[int]] = {few[k]: [] for k, _, _ in found}
    for i, v in enumerate(col):
        if v in rows:
            rows[v].append(i)
    for k, column, problem in found:
        for i in rows[few[k]]:
            out.add(i, column, problem)
    if fixed is few:
        return column_scan, col
    trimmed = list(col)
    for old, new in zip(few, fixed, strict=True):
        if old != new:
            for i in rows[old]:
                trimmed[i] = new
    return column_scan, trimmed


_FEW_SAMPLE = 256


def _few_distinct(col: Sequence[str]) -> list[str] | None:
    """The distinct values of a long column that has at most one per eight cells; None otherwise (a sample of
    its first cells rules out most columns of unique values at once)."""
    if len(col) < 4 * _FEW_SAMPLE or len(set(col[:_FEW_SAMPLE])) > _FEW_SAMPLE // 4:
        return None
    distinct = set(col)
    return list(distinct) if len(distinct) * 8 <= len(col) else None


def _check_cells(col: Sequence[str], label: str, add: Callable[[int, str, tuple[str, str] | None], None],
                 secret: bool, phone: bool = False) -> tuple[ColumnScan, Sequence[str]]:
    """:func:`check_cells` over the cells of ``col`` (``add(index, column, problem)`` records a finding).

    The cells are trimmed first and the formula and invisible-character rules look at the trimmed text, the
    text that is sent: blanks ahead of ``=`` must not hide it (the password column is not trimmed, and the rules
    skip its leading blanks instead)."""
    found_scan = scan(col, phone=phone)
    work: Sequence[str] = col
    trimmed: list[str] | None = None
    if not secret:
        for i in found_scan.edge_blank_rows:
            v = col[i]
            s = strip_blanks(v)
            if s != v:
                if trimmed is None:
                    trimmed = list(col)
                trimmed[i] = s
                add(i, label, ("whitespace-trimmed", f"{label} {v!r}: leading/trailing blanks removed "
                                                     f"(now {s!r}); check the cell") if s else
                    ("whitespace-trimmed", f"{label} {v!r}: a cell of blanks only was treated as empty"))
        if trimmed is not None:
            work = trimmed
    if phone:
        rows: Iterable[int] = ()
    elif found_scan.formula_like and (found_scan.exact or FORMULA_LIKE.search(found_scan.joined)):
        rows = range(len(col))
    else:  # no cell starts with a trigger: only one behind blanks can look like a formula
        rows = found_scan.edge_blank_rows
    for i in rows:
        v = work[i]
        if looks_like_formula(v):
            found = rules.formula_problem(v, label)
            if found and secret:
                first = strip_blanks(v)[:1] or v[:1]
                found = (found[0], f"{label}: the password starts with {first!r}, so a spreadsheet would run "
                                   "it as a formula; choose another password (it is not repeated here)")
            add(i, label, found)
    if found_scan.control:
        for i, v in enumerate(col):
            if _CONTROL.search(v):
                add(i, label, rules.control_char_problem(v, label, secret=secret))
    if found_scan.invisible:
        for i, v in enumerate(work):
            if INVISIBLE.search(v):
                add(i, label, rules.invisible_problem(v, label, secret=secret))
    return (found_scan, col) if trimmed is None else (replace(found_scan, joined="", lengths=None, phones=False),
                                                      trimmed)


def _each(col: Sequence[str], verdict: dict[str, tuple[str, str] | None], label: str, out: Collector) -> None:
    """Report ``verdict[value]`` on every row holding a value that has one."""
    bad = {v for v, found in verdict.items() if found}
    if bad:
        for i, v in enumerate(col):
            if v in bad:
                out.add(i, label, verdict[v])


def check_field(name: str, col: Sequence[str], label: str, out: Collector, found: ColumnScan | None = None) -> None:
    """Length, booleans and per-value rules of one canonical field (distinct values checked once).

    ``found`` is the column's scan by :func:`check_cells` when ``col`` is still the scanned column (its byte lengths
    bound the character lengths, and its joined text spares a join).
    """
    spec = FIELD_BY_NAME.get(name)
    limit = spec.max_len if spec else None
    if (limit and name not in ("userPrincipalName", "password") and col
            and (found is None or found.max_bytes > limit) and max(map(len, col)) > limit):
        for i, v in enumerate(col):
            if len(v) > limit and not (name == "businessPhones" and ";" in v):
                out.add(i, label, rules.too_long(v, label, name, limit))
    if spec is not None and spec.kind == "bool":
        _each(col, {v: rules.boolean_problem(v, label) for v in set(col) if v and v.lower() not in rules.BOOLEANS},
              label, out)
    check = VALUE_RULES.get(name)
    if check is not None:
        _each(col, {v: check(v, label) for v in set(col) if v}, label, out)
    if name == "userPrincipalName":
        if found is not None and found.joined:  # (empty cells, to be derived, pass both tests)
            joined = found.joined
        elif "" in col:  # the empty cells need no look: leave them out of the joined text
            joined = _SEP + _SEP.join(filter(None, col)) + _SEP
        else:
            joined = _SEP + _SEP.join(col) + _SEP
        longest = found.max_bytes if found is not None else max(map(len, col), default=0)
        if not ((plain_upns(joined) or UPN_SHAPES.fullmatch(joined)) and not BAD_UPN_DOMAIN.search(joined)
                and (longest <= 113 or max(map(len, col)) <= 113)):
            problems = {v: rules.upn_problems(v, label) for v in set(col) if v}
            for i, v in enumerate(col):
                for problem in problems.get(v, ()):
                    out.add(i, label, problem)
    elif name in PHONE_FIELDS and col and not (found is not None and found.phones):
        joined = found.joined if found is not None and found.joined else _SEP + _SEP.join(col) + _SEP
        if not (plain_phones(joined) or PHONE_COLUMN.fullmatch(joined)):
            _each(col, {v: _phone_problem(name, v, label) for v in set(col) if v}, label, out)
    elif name == "otherMails":
        verdict: dict[str, tuple[str, str] | None] = {}
        for v in {v for v in set(col) if v}:
            bad = [m for m in split_list(v) if rules.mail_problem(m, label)]
            verdict[v] = rules.mail_problem(bad[0], label) if bad else None
        _each(col, verdict, label, out)


def _phone_problem(name: str, value: str, label: str) -> tuple[str, str] | None:
    """``phone-multiple`` for a list of phone numbers in businessPhones, else :func:`rules.phone_problem`."""
    parts = split_list(value) if name == "businessPhones" else [value]
    if len(parts) > 1 and not any(rules.phone_problem(p, label) for p in parts):
        return ("phone-multiple", f"{label} {value!r}: Graph takes only one office phone number; keep one")
    return rules.phone_problem(value, label)


def invert_block(col: Sequence[str], label: str, out: Collector) -> list[str]:
    """The Entra template's "Block sign in" (Yes = blocked) as accountEnabled texts; a cell that is no Yes/No value
    is reported here, once, and left empty in the result (so the accountEnabled check does not report it again)."""
    res = []
    for i, v in enumerate(col):
        b = rules.BOOLEANS.get(v.lower()) if v else None
        if v and b is None:
            out.add(i, label, rules.boolean_problem(v, label))
            res.append("")
        else:
            res.append("" if b is None else ("false" if b else "true"))
    return res


def check_passwords(values: dict[str, Sequence[str]], label: Callable[[str, str], str], out: Collector) -> None:
    """The Entra password policy on every given password (never repeated in a message)."""
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


def check_relations(values: dict[str, Sequence[str]], label: Callable[[str, str], str], out: Collector) -> None:
    """manager shape and self-reference; licences need usageLocation."""
    upns = values["userPrincipalName"]
    managers = values.get("manager")
    if managers:
        column = label("manager", "manager")
        verdict = {m: rules.manager_problem(m, column, "") for m in set(managers) if m}
        _each(managers, verdict, column, out)
        same = map(eq, lowered(managers), lowered(upns))
        for i in compress(range(len(managers)), same):
            if managers[i] and not verdict[managers[i]]:
                out.add(i, column, rules.manager_problem(managers[i], column, upns[i]))
    lic = values.get("licenses")
    if lic:
        loc = values.get("usageLocation") or [""] * len(lic)
        column = label("usageLocation", "usageLocation")
        for i in compress(range(len(lic)), map(bool, lic)):
            if not loc[i]:
                out.add(i, column, ("usage-location-required", f"licenses {lic[i]!r} are given but usageLocation "
                                                               f"is empty; licences need it (e.g. US, GB)"))


def duplicates(col: Sequence[str], column: str, code: str, out: Collector, *, rows: Sequence[int] | None = None,
               skip: Collection[int] = ()) -> None:
    """Flag every row after the first that repeats a non-empty value, compared as
    :func:`~provisioning.roster.identity.identity_key` (Unicode form and case aside). ``rows``: the row index of each
    value of ``col`` (default: its position); rows in ``skip`` are not flagged (they are reported otherwise)."""
    keys = identity_keys(col)
    distinct = set(keys)
    distinct.discard("")
    if len(distinct) == len(col) - col.count(""):
        return
    first: dict[str, int] = {}
    index = rows if rows is not None else range(len(col))
    for k, (i, key) in enumerate(zip(index, keys, strict=True)):
        if not key:
            continue
        j = first.setdefault(key, i)
        if j != i and i not in skip:
            out.add(i, column, (code, f"{column} {col[k]!r} is already used in row {out.rownums[j]}; each user "
                                      f"needs their own"))


def tenant_domains(values: dict[str, Sequence[str]], label: Callable[[str, str], str], out: Collector,
                   tenant: TenantView) -> None:
    """Verified domains, and onPremisesImmutableId on federated ones."""
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
