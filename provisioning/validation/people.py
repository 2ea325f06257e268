"""Nobody twice: rows that repeat a person, namesakes, and derived UPNs matched to the tenant's users.

- **Repeated rows.** Two rows identical in every identity field (:data:`IDENTITY_FIELDS`, compared as
  :func:`~provisioning.roster.identity.identity_key`) describe one person: the later row is an error
  (``duplicate-row``), never a second account with a numbered UPN.
- **Namesakes in the file.** Rows that derive one UPN but differ in an identity field get numbered UPNs
  (``ann.lee@``, ``ann.lee2@``) and a ``upn-suffixed`` warning that says how to tell them apart.
- **The tenant.** A row whose derived UPN, or one of its numbered forms, already belongs to the same person (the
  same employeeId when both have one, else the same displayName after normalisation) is matched to that user
  (``user-exists``: the plan skips it, or updates it with ``--existing update``); a true namesake in the tenant
  makes the row take the lowest free number.
- **The person, not the UPN.** :func:`match_existing` matches each valid row to a tenant user: by employeeId when
  the row has one and a user holds it (whatever that user's UPN: a changed name is the same person), else by
  userPrincipalName; a row whose UPN belongs to one user and its employeeId to another is an error
  (``employee-id-conflict``). :func:`match_deleted` finds, for the rows still to create, a user in Deleted users
  with the same employeeId, userPrincipalName or mailNickname (``user-deleted`` unless ``--restore-deleted``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import ne
from typing import cast

import numpy as np

from provisioning import codes
from provisioning.models import DeletedUser, ExistingUser, Issue, TenantView, UserRow
from provisioning.roster import derive
from provisioning.roster.identity import identity_key, identity_keys

#: The fields that say who a row's person is: names, identifiers and personal contact data (not the job: two
#: rows that differ only in department or job title still describe one person). userPrincipalName and
#: mailNickname count as typed (empty when they are to be derived), displayName as derived when empty.
IDENTITY_FIELDS = ("givenName", "surname", "displayName", "employeeId", "employeeHireDate", "mail", "otherMails",
                   "mobilePhone", "onPremisesImmutableId", "userPrincipalName", "mailNickname")


def telling_apart(columns: Mapping[str, Sequence[str]]) -> str | None:
    """employeeId or userPrincipalName when that column is filled on every row and no two of its values are the
    same (as compared, :func:`identity_key`): then no row repeats another, and that column has no duplicate."""
    for name in ("employeeId", "userPrincipalName"):  # usually one of them tells every row apart
        col = columns.get(name)
        if col is not None and "" not in col and len(set(identity_keys(col))) == len(col):
            return name
    return None


def repeated_rows(columns: Mapping[str, Sequence[str]], headers: Sequence[str], cells: Sequence[Sequence[str]],
                  rownums: Sequence[int], label: Callable[[str, str], str], *, apart: bool = True) \
        -> tuple[dict[int, int], list[str]]:
    """``({later row index: first row index}, messages)`` for the rows that repeat an earlier row's person.

    ``columns``: identity field -> text per row (the fields of :data:`IDENTITY_FIELDS` the roster has);
    ``headers``/``cells``: the roster's own headers and columns (``cells[j][i]``), to name those that differ.
    Rows without a displayName are left out (they are invalid already). Only the rows whose displayName occurs
    more than once are compared field by field. ``apart=False``: :func:`telling_apart` was asked already (it
    found no such column).
    """
    names = columns.get("displayName")
    if names is None or (apart and telling_apart(columns)):
        return {}, []
    maybe = _not_unique(identity_keys(names))
    if not maybe:
        return {}, []
    picked = [derive.pick(c, maybe) for c in columns.values()]
    keys = list(zip(*(identity_keys(c) for c in picked if any(c)), strict=True))
    first = dict(zip(reversed(keys), reversed(maybe), strict=False))
    repeats = {i: j for i, j in zip(maybe, map(first.__getitem__, keys), strict=False) if i != j and names[i]}
    messages = [_repeat_message(i, j, columns, headers, cells, rownums, label) for i, j in repeats.items()]
    return repeats, messages


def _not_unique(keys: Sequence[str]) -> list[int]:
    """The indexes (ascending) of the values that occur more than once in ``keys``."""
    n = len(keys)
    if len(set(keys)) == n:
        return []
    first = dict(zip(reversed(keys), range(n - 1, -1, -1), strict=True))
    firsts = np.fromiter(map(first.__getitem__, keys), dtype=np.int64, count=n)
    seen = firsts != np.arange(n)
    seen[firsts[seen]] = True
    return np.flatnonzero(seen).tolist()


def _repeat_message(i: int, j: int, columns: Mapping[str, Sequence[str]], headers: Sequence[str],
                    cells: Sequence[Sequence[str]], rownums: Sequence[int], label: Callable[[str, str], str]) -> str:
    same = [label(f, f) for f, col in columns.items() if col[i]]
    differ = [h or f"column {k + 1}" for k, h in enumerate(headers)
              if k < len(cells) and identity_key(cells[k][i].strip()) != identity_key(cells[k][j].strip())]
    listed = same[0] if len(same) == 1 else f"{', '.join(same[:-1])} and {same[-1]}"
    if any(col[i] != col[j] for col in columns.values()):
        listed += " (written in another Unicode form or case)"
    text = (f"row {rownums[i]} repeats row {rownums[j]}: the same {listed}, and no other identity field (employeeId, "
            f"mail, userPrincipalName...) tells them apart")
    if differ:
        text += f" (the rows differ only in {', '.join(differ)})"
    return text + "; delete one of the rows, or if they are two people give each their employeeId"


@dataclass(slots=True)
class Derived:
    """Final derived UPNs (one per row to derive) and why some are not the UPN the template gave."""

    final: list[str]  # "" where the template gives nothing
    suffixed: dict[int, str] = field(default_factory=dict)  # k -> upn-suffixed message
    matched: dict[int, str] = field(default_factory=dict)  # k -> user-exists message


@dataclass(frozen=True, slots=True)
class Person:
    """What tells the rows' people apart: displayName and employeeId per row index (normalised when asked: only
    rows that collide are)."""

    display_names: Sequence[str]
    employee_ids: Sequence[str] | None
    rownums: Sequence[int]

    def name(self, i: int) -> str:
        """Row ``i``'s displayName as compared."""
        return identity_key(self.display_names[i])

    def employee_id(self, i: int) -> str:
        """Row ``i``'s employeeId as compared (``""`` for none)."""
        return identity_key(self.employee_ids[i]) if self.employee_ids else ""

    def names(self, rows: Sequence[int]) -> dict[int, str]:
        """:meth:`name` of each of ``rows`` (normalised in one batch)."""
        return dict(zip(rows, identity_keys(derive.pick(self.display_names, rows)), strict=True))

    def employee_ids_of(self, rows: Sequence[int]) -> dict[int, str]:
        """:meth:`employee_id` of each of ``rows`` (normalised in one batch)."""
        if not self.employee_ids:
            return dict.fromkeys(rows, "")
        return dict(zip(rows, identity_keys(derive.pick(self.employee_ids, rows)), strict=True))

    def same_as(self, i: int, user: ExistingUser) -> bool:
        """Row ``i`` is ``user``: the same employeeId when both have one, else the same displayName."""
        mine, theirs = self.employee_id(i), identity_key(user.employeeId or "")
        if mine and theirs:
            return mine == theirs
        return bool(self.display_names[i]) and self.name(i) == identity_key(user.displayName or "")


def _who(user: ExistingUser) -> str:
    return (user.displayName or user.userPrincipalName) + (f", employeeId {user.employeeId}" if user.employeeId
                                                           else "")


def unique_upns(made: Sequence[str], rows: Sequence[int], repeat_of: Mapping[int, int], typed: Mapping[str, int],
                person: Person, tenant: TenantView | None) -> Derived:
    """Give each row to derive (``rows[k]``, template result ``made[k]``, ``""`` for none) a UPN of its own.

    ``typed`` maps the file's typed UPNs (lower-case) to their first row index. Rows in ``repeat_of`` take the
    UPN of the row they repeat. The rest: :func:`derive.assign_suffixes` in the file, then the tenant (see the
    module text); every number given is checked against the tenant too. Only the rows whose UPN is not the
    template's, or whose UPN the tenant holds, are looked at one by one.
    """
    cands = list(made)
    copies: dict[int, int] = {}  # k of a repeating row -> k of the row it repeats
    if repeat_of:
        k_of = {i: k for k, i in enumerate(rows)}
        copies = {k_of[i]: k_of[j] for i, j in repeat_of.items() if i in k_of and j in k_of}
        for k in copies:
            cands[k] = ""
    taken = set(typed)
    low = derive.lowered(cands)
    final = cast(list[str], derive.assign_suffixes(cands, taken, low))  # str candidates (no None) give str UPNs
    found: dict[str, dict[int, ExistingUser]] = {}
    matched: dict[int, ExistingUser] = {}
    if tenant is not None and any(cands):
        found = _match_tenant(tenant, low, cands, final, taken, person, rows, matched)
    for k, j in copies.items():
        final[k] = final[j] if made[k] else ""
    out = Derived(final)
    for k, user in matched.items():
        out.matched[k] = (f"userPrincipalName {final[k]!r} already belongs to this person in the tenant "
                          f"({_who(user)}); the row is matched to that user: skipped, or updated with "
                          f"--existing update")
    changed = [k for k in compress(range(len(cands)), map(ne, final, cands)) if cands[k] and k not in matched]
    if changed:
        out.suffixed = _suffix_messages(changed, low, cands, final, found, matched, typed, person, rows)
    return out


def _suffix_messages(changed: Sequence[int], low: Sequence[str], cands: Sequence[str], final: Sequence[str],
                     found: Mapping[str, Mapping[int, ExistingUser]], matched: Mapping[int, ExistingUser],
                     typed: Mapping[str, int], person: Person, rows: Sequence[int]) -> dict[int, str]:
    """``{k: upn-suffixed message}`` for the rows ``changed`` (see :func:`_suffix_message`).

    The usual case, a namesake in the file (a base neither the tenant's nor typed, that an earlier row holds),
    is written here for all such rows at once: each base's holder is found once, and the displayNames and
    employeeIds compared are normalised in one batch rather than four times per row (7,682 messages in the
    100,000-row benchmark roster)."""
    families = _families(low, {low[k] for k in changed})
    messages: dict[int, str | None] = {}
    holders: dict[str, int] = {}  # base -> the k of the row that keeps it
    for k in changed:
        base, users = cands[k], found.get(low[k])
        if (users and users.get(1) is not None) or base.lower() in typed:
            messages[k] = _suffix_message(k, families[low[k]], base, final, users or {}, matched, typed, person,
                                          rows)
            continue
        messages[k] = None
        if base not in holders:  # (usually the family's first row)
            ks = families[low[k]]
            holders[base] = ks[0] if final[ks[0]] == base else next(k2 for k2 in ks if final[k2] == base)
    pairs = [(rows[k], rows[holders[cands[k]]], k) for k, m in messages.items() if m is None]
    if pairs:
        involved = sorted({i for i, _, _ in pairs} | {j for _, j, _ in pairs})
        names, ids = person.names(involved), person.employee_ids_of(involved)
        rownums = person.rownums
        for i, j, k in pairs:
            kin = "has the same name as" if names[i] == names[j] else "derives the same userPrincipalName as"
            advice = _TWO_PEOPLE if ids[i] and ids[j] else _ONE_OR_TWO
            messages[k] = (f"row {rownums[i]} {kin} row {rownums[j]}; they get different userPrincipalNames "
                           f"({final[holders[cands[k]]]!r}, {final[k]!r})" + advice)
    return cast(dict[int, str], messages)


def _families(low: Sequence[str], bases: set[str]) -> dict[str, list[int]]:
    """The indexes of ``low`` holding each of ``bases``, in order."""
    out: dict[str, list[int]] = {b: [] for b in bases}
    for k in compress(range(len(low)), map(bases.__contains__, low)):
        out[low[k]].append(k)
    return out


class _Family:
    """The rows deriving one base UPN, and what the tenant holds of its numbered forms (1 = the base itself)."""

    def __init__(self, base: str, ks: Sequence[int]) -> None:
        self.base, self.ks = base, ks
        self.users: dict[int, ExistingUser] = {}
        self.probed = 0  # numbers 1..probed have been asked about
        self.target = 1  # ... and are to be
        self.full = False  # True once the rows not matched at the base are being looked for further

    def upn(self, number: int) -> str:
        return self.base if number == 1 else derive.with_suffix(self.base, number)


def _match_tenant(tenant: TenantView, low: Sequence[str], cands: Sequence[str], final: list[str], taken: set[str],
                  person: Person, rows: Sequence[int], matched: dict[int, ExistingUser]) \
        -> dict[str, dict[int, ExistingUser]]:
    """Settle the file's UPNs against the tenant, in rounds of one bulk lookup each: first every derived UPN and
    base (``low``: the bases lower-case); then, for each family of rows whose UPNs the tenant holds any of and
    whose rows are not all their base's user, its numbered forms until ``len(rows) + 1`` free numbers follow the
    last one in use. Returns the tenant's users by
    family (lower-case base) and number."""
    known: dict[str, ExistingUser | None] = {}

    def ask(upns: set[str]) -> None:
        wanted = upns - known.keys()
        wanted.discard("")
        if wanted:
            hits = tenant.lookup(wanted)
            known.update({u: hits.get(u) for u in wanted})

    low_final = derive.lowered(final)
    ask({*low, *low_final})
    held = {u for u, user in known.items() if user is not None}
    hit = {b for b in set(low) if b in held}
    hit.update(low[k] for k in compress(range(len(low)), map(held.__contains__, low_final)) if low[k])
    pending = [_Family(cands[ks[0]], ks) for ks in _families(low, hit).values()]
    done: dict[str, dict[int, ExistingUser]] = {}
    while pending:
        ask({f.upn(m).lower() for f in pending for m in range(f.probed + 1, f.target + 1)})
        still = []
        for f in pending:
            for m in range(f.probed + 1, f.target + 1):
                user = known[f.upn(m).lower()]
                if user is not None:
                    f.users[m] = user
            f.probed = f.target
            if not f.full:  # the usual re-run: every row is its base's user, nothing more to ask
                f.full = True
                if _settle(f, final, taken, person, rows, matched, complete=False):
                    done[f.base.lower()] = f.users
                    continue
            f.target = max(max(f.users, default=0) + len(f.ks) + 1, f.probed)
            if f.target > f.probed or not _settle(f, final, taken, person, rows, matched, complete=True):
                still.append(f)
            else:
                done[f.base.lower()] = f.users
        pending = still
    return done


def _settle(f: _Family, final: list[str], taken: set[str], person: Person, rows: Sequence[int],
            matched: dict[int, ExistingUser], *, complete: bool) -> bool:
    """Match the family's rows to its tenant users (the same person), give the rest the lowest free numbers; False
    (to be settled again) when a number given is beyond those asked about (``f.target`` then says how far to ask),
    or, unless ``complete``, when a row is left unmatched (its file UPN is kept meanwhile)."""
    for k in f.ks:
        taken.discard(final[k].lower())
        matched.pop(k, None)
    claimed = {m for m in f.users if f.upn(m).lower() in taken}  # the file names them otherwise (a typed UPN)
    for k in f.ks:
        for m in sorted(f.users):
            if m not in claimed and person.same_as(rows[k], f.users[m]):
                claimed.add(m)
                matched[k] = f.users[m]
                final[k] = f.users[m].userPrincipalName
                taken.add(final[k].lower())
                break
    if not complete and len(matched.keys() & set(f.ks)) < len(f.ks):
        taken.update(final[k].lower() for k in f.ks if k not in matched)
        return False
    m = 0
    for k in f.ks:
        if k not in matched:
            m += 1
            while m in f.users or f.upn(m).lower() in taken:
                m += 1
            final[k] = f.upn(m)
            taken.add(final[k].lower())
    if m <= f.probed:
        return True
    f.target = m
    return False


def _suffix_message(k: int, ks: Sequence[int], base: str, final: Sequence[str | None],
                    users: Mapping[int, ExistingUser], matched: Mapping[int, ExistingUser], typed: Mapping[str, int],
                    person: Person, rows: Sequence[int]) -> str:
    """Why row ``rows[k]`` got ``final[k]`` instead of ``base``, and what to do about it."""
    i, new = rows[k], final[k]
    holder = users.get(1)
    if holder is not None:
        twin = next((k2 for k2, u in matched.items() if u is holder), None)
        if twin is not None:
            return (f"userPrincipalName {base!r} belongs to {_who(holder)} in the tenant, who is row "
                    f"{person.rownums[rows[twin]]}; derived {new!r} for this row; if they are one person delete one "
                    f"row, if two give each an employeeId")
        return (f"userPrincipalName {base!r} already belongs to another person in the tenant ({_who(holder)}); "
                f"derived {new!r} instead; if this row is that person, fill in userPrincipalName {base!r}")
    if base.lower() in typed:
        j = typed[base.lower()]
        return (f"userPrincipalName {base!r} is typed in row {person.rownums[j]}; derived {new!r} instead"
                + _namesake_advice(i, j, person))
    first = next(k2 for k2 in ks if final[k2] == base)  # a base neither typed nor the tenant's: a row holds it
    j = rows[first]
    kin = "has the same name as" if person.name(i) == person.name(j) else "derives the same userPrincipalName as"
    return (f"row {person.rownums[i]} {kin} row {person.rownums[j]}; they get different userPrincipalNames "
            f"({final[first]!r}, {new!r})" + _namesake_advice(i, j, person))


_TWO_PEOPLE = ("; their employeeIds differ, so they are taken for two people (if they are one, delete one row; to "
               "choose the UPN, fill in userPrincipalName)")
_ONE_OR_TWO = "; if they are one person delete one row, if two give each an employeeId (or fill in userPrincipalName)"


def _namesake_advice(i: int, j: int, person: Person) -> str:
    return _TWO_PEOPLE if person.employee_id(i) and person.employee_id(j) else _ONE_OR_TWO


# -- the tenant's people: matching by employeeId, and Deleted users ------------------------------------------------

#: The issue codes of tenant matching and Deleted users (exact texts: tests/run/test_people_e2e.py).
CODES = ("employee-id-matched", "employee-id-conflict", "user-deleted")
BY_EMPLOYEE_ID = "employeeId"
BY_UPN = "userPrincipalName"


@dataclass(frozen=True, slots=True)
class TenantMatch:
    """The tenant user a row is matched to, and by which property (:data:`BY_EMPLOYEE_ID` or :data:`BY_UPN`)."""

    user: ExistingUser
    by: str


@dataclass(frozen=True, slots=True)
class DeletedMatch:
    """The user in Deleted users a row matches: by which property, with which value."""

    user: DeletedUser
    by: str  # employeeId, userPrincipalName or mailNickname
    value: str


def _field(row: UserRow, name: str) -> str:
    return str((row.fields or {}).get(name) or "").strip()


def _user_text(user: ExistingUser) -> str:
    name = user.displayName or user.userPrincipalName
    extra = f", employeeId {user.employeeId}" if user.employeeId else ""
    return f"{name} ({user.userPrincipalName}{extra}, object id {user.id})"


def match_existing(rows: Sequence[UserRow], by_upn: Mapping[str, ExistingUser],
                   by_employee_id: Mapping[str, ExistingUser], *, columns: Mapping[str, str] | None = None) \
        -> tuple[dict[int, TenantMatch], list[Issue]]:
    """Each row (validated rows without errors) -> the tenant user it is matched to, and the
    ``employee-id-conflict`` issues of the rows whose UPN and employeeId name two different users (pure).

    ``by_upn``: the tenant's users by lower-case UPN; ``by_employee_id``: by employeeId (see
    :func:`provisioning.validation.tenant.find_by_employee_id`); ``columns``: field -> the roster's header, for
    the issues' column."""
    matches: dict[int, TenantMatch] = {}
    issues: list[Issue] = []
    for row in rows:
        num = row.row
        upn, eid = _field(row, "userPrincipalName"), _field(row, "employeeId")
        holder = by_employee_id.get(eid) if eid else None
        owner = by_upn.get(upn.lower()) if upn else None
        if holder is not None and owner is not None and holder.id.lower() != owner.id.lower():
            issues.append(codes.issue(num, (columns or {}).get("employeeId", "employeeId"), "employee-id-conflict",
                                      f"userPrincipalName {upn!r} belongs to {_user_text(owner)} but employeeId "
                                      f"{eid!r} belongs to another user, {_user_text(holder)}; correct the row (or "
                                      f"one of the two users) so that both name the same person"))
        elif holder is not None:
            matches[num] = TenantMatch(holder, BY_EMPLOYEE_ID)
        elif owner is not None:
            matches[num] = TenantMatch(owner, BY_UPN)
    return matches, issues


def match_deleted(rows: Sequence[UserRow], deleted: Sequence[DeletedUser]) -> dict[int, DeletedMatch]:
    """Each row (the valid rows still to create) -> the user in Deleted users that is its person (pure): the same
    employeeId, else the same userPrincipalName or mailNickname unless both have an employeeId and they differ (a
    namesake). The most recently deleted user wins; a deleted user goes to the first row that matches it."""
    by: dict[str, dict[str, DeletedUser]] = {"employeeId": {}, "userPrincipalName": {}, "mailNickname": {}}
    for d in deleted:  # most recently deleted first: setdefault keeps it
        for name, value in (("employeeId", d.employeeId), ("userPrincipalName", d.upn.lower()),
                            ("mailNickname", d.mailNickname.lower())):
            if value:
                by[name].setdefault(value, d)
    out: dict[int, DeletedMatch] = {}
    claimed: set[str] = set()
    for row in rows:
        eid = _field(row, "employeeId")
        for name in ("employeeId", "userPrincipalName", "mailNickname"):
            value = _field(row, name)
            found = by[name].get(value if name == "employeeId" else value.lower()) if value else None
            if found is None or found.id in claimed or (name != "employeeId" and eid and found.employeeId
                                                         and found.employeeId != eid):
                continue
            claimed.add(found.id)
            out[row.row] = DeletedMatch(found, name, value)
            break
    return out


def deleted_message(match: DeletedMatch) -> str:
    """The ``user-deleted`` issue of a row: who, deleted when, and how to restore."""
    d = match.user
    return (f"{match.by} {match.value!r} belongs to a deleted user: {d.displayName or d.upn} ({d.upn}, object id "
            f"{d.id}), deleted {d.deleted}; run with --restore-deleted to restore that account (same object id) "
            f"with this row's values, or delete it permanently from Deleted users to create a new account")
