"""Pre-flight resolution of the roster's follow-up references: ``groups``, ``licenses`` and ``manager``.

Every name is resolved once per run, in bulk, before anything is sent:

- groups by ``displayName`` (or object id) through ``GET /groups?$filter=displayName in (...)`` (15 per filter);
- SKUs from ``GET /subscribedSkus`` by part number (``ENTERPRISEPACK``) or skuId, with their free seats
  (``prepaidUnits.enabled - consumedUnits``);
- managers: another row of the same roster, or a user already in the tenant (batched UPN lookup).

:func:`check_references` is pure: it turns the resolved names into row issues. A reference that cannot be resolved
makes the row *invalid* (nothing is sent for it). Seats are counted against the roster's demand: the rows that
would need a new seat of a SKU (a user who already holds it needs none) are served in roster order, and **the last
rows in roster order** beyond the free seats are invalid, each with an issue naming the SKU, the free seats, the
demand and the rows that cannot get one.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graph.odata import in_
from provisioning.models import ExistingUser, Issue, Severity, TenantView, UserRow

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CHUNK = 15  # values per ``in (...)`` filter

GROUP_NOT_FOUND = "group-not-found"
GROUP_AMBIGUOUS = "group-ambiguous"
LICENSE_NOT_FOUND = "license-not-found"
LICENSE_SEATS = "license-seats"
MANAGER_NOT_FOUND = "manager-not-found"
#: The issue codes this module adds (registered in :data:`provisioning.codes.RULES`).
CODES = (GROUP_NOT_FOUND, GROUP_AMBIGUOUS, LICENSE_NOT_FOUND, LICENSE_SEATS, MANAGER_NOT_FOUND)


@dataclass(frozen=True, slots=True)
class Group:
    """A group as resolved: its id and display name."""

    id: str
    display_name: str
    #: Adding members to a role-assignable group also needs RoleManagement.ReadWrite.Directory.
    role_assignable: bool = False


@dataclass(frozen=True, slots=True)
class Sku:
    """A subscribed SKU: id, part number and free seats at pre-flight."""

    id: str
    part: str
    free: int


@dataclass(frozen=True, slots=True)
class References:
    """What the tenant told pre-flight about the roster's references. Keys are lower-case.

    ``groups``: name or id -> the groups with it (more than one = ambiguous name); ``skus``: part number or skuId
    -> SKU; ``managers``: UPN -> object id of managers already in the tenant; ``held``: UPN -> skuIds an existing
    user already holds.
    """

    groups: Mapping[str, tuple[Group, ...]] = field(default_factory=dict)
    skus: Mapping[str, Sku] = field(default_factory=dict)
    managers: Mapping[str, str] = field(default_factory=dict)
    held: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _chunks(values: Sequence[str], n: int = CHUNK) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), n):
        yield values[i:i + n]


def fetch_groups(client: GraphClient, names: Iterable[str]) -> dict[str, tuple[Group, ...]]:
    """Resolve group names and ids (lower-case keys) with ``$filter ... in (...)``, 15 values per request."""

    wanted = sorted({n.strip() for n in names if n and n.strip()}, key=str.lower)
    ids = [n for n in wanted if GUID.match(n)]
    out: dict[str, list[Group]] = {}
    for prop, values in (("displayName", wanted), ("id", ids)):
        for chunk in _chunks(values):
            params = {"$filter": in_(prop, chunk), "$select": "id,displayName,isAssignableToRole", "$top": "999"}
            for page in client.iter_pages("/groups", params):
                for g in page:
                    group = Group(str(g.get("id", "")), str(g.get("displayName", "")),
                                  bool(g.get("isAssignableToRole")))
                    key = (group.display_name if prop == "displayName" else group.id).lower()
                    if group not in out.setdefault(key, []):
                        out[key].append(group)
    return {k: tuple(v) for k, v in out.items()}


def fetch_skus(client: GraphClient) -> dict[str, Sku]:
    """The tenant's SKUs by lower-case part number and skuId, with their free seats."""
    out: dict[str, Sku] = {}
    for s in client.subscribed_skus():
        enabled = int((s.get("prepaidUnits") or {}).get("enabled", 0) or 0)
        sku = Sku(str(s.get("skuId", "")).lower(), str(s.get("skuPartNumber", "")),
                  max(enabled - int(s.get("consumedUnits", 0) or 0), 0))
        out[sku.part.lower()] = sku
        out[sku.id] = sku
    return out


def resolve(client: GraphClient, tenant: TenantView, rows: Sequence[UserRow],
            existing: Mapping[str, ExistingUser]) -> References:
    """Ask the tenant about every group, SKU and manager the valid rows name (each name once)."""
    valid = [r for r in rows if not r.has_errors]
    names = {g for r in valid for g in r.groups}
    groups = fetch_groups(client, names) if names else {}
    wants_licence = [r for r in valid if r.licenses]
    skus = fetch_skus(client) if wants_licence else {}
    roster_upns = {r.upn.lower() for r in valid if r.upn}
    outside = {str(r.manager).lower() for r in valid if r.manager} - roster_upns
    managers = {upn: u.id for upn, u in tenant.lookup(outside).items()} if outside else {}
    held: dict[str, frozenset[str]] = {}
    existing_with_licence = [r.upn for r in wants_licence if r.upn.lower() in existing]
    if existing_with_licence:
        found = client.find_users_by_upn(existing_with_licence, select=("id", "assignedLicenses"))
        for upn, user in found.items():
            held[upn.lower()] = frozenset(str(a.get("skuId", "")).lower()
                                          for a in user.get("assignedLicenses") or ())
    log.info("references: %d group names, %d SKUs asked, %d managers outside the roster (%d found)", len(names),
             len({s for r in wants_licence for s in r.licenses}), len(outside), len(managers))
    return References(groups, skus, managers, held)


def _issue(row: int, columns: Mapping[str, str], name: str, code: str, message: str) -> Issue:
    return Issue(row, columns.get(name, name), code, Severity.ERROR, message)


def check_references(rows: Sequence[Any], refs: References, *, columns: Mapping[str, str] | None = None,
                     skip_rows: Iterable[int] = ()) -> list[Issue]:
    """Row issues for unresolvable groups, SKUs and managers, and for licences beyond the free seats (pure).

    ``rows`` are the validated rows in roster order; rows with errors are ignored (and a manager that is such a
    row is unresolvable). ``columns`` maps ``groups``/``licenses``/``manager`` to the header as written.
    ``skip_rows`` get no follow-ups at all (``--existing fail`` on an existing user): they need no seat.
    """
    cols = dict(columns or {})
    skip = set(skip_rows)
    issues: list[Issue] = []
    bad: set[int] = set()
    invalid_rows = {r.upn.lower(): r.row for r in rows if r.has_errors and r.upn}
    for r in rows:
        if r.has_errors or r.row in skip:
            continue
        for name in r.groups:
            found = refs.groups.get(name.strip().lower(), ())
            if not found:
                bad.add(r.row)
                issues.append(_issue(r.row, cols, "groups", GROUP_NOT_FOUND,
                                     f"group {name!r} was not found in the tenant (by displayName or id); "
                                     "check the spelling or give the group's object id"))
            elif len(found) > 1:
                bad.add(r.row)
                ids = ", ".join(g.id for g in found)
                issues.append(_issue(r.row, cols, "groups", GROUP_AMBIGUOUS,
                                     f"group {name!r}: {len(found)} groups have this name ({ids}); give the object id "
                                     "of the one you mean"))
        for name in r.licenses:
            if name.strip().lower() not in refs.skus:
                bad.add(r.row)
                issues.append(_issue(r.row, cols, "licenses", LICENSE_NOT_FOUND,
                                     f"licence {name!r} is not a SKU of this tenant; use a part number or skuId "
                                     "that `provision.py check` lists"))
    # managers last, to a fixed point: a row whose manager is a row made invalid here cannot get its manager
    changed = True
    while changed:
        changed = False
        valid_rows = {r.upn.lower(): r.row for r in rows if not r.has_errors and r.upn and r.row not in bad}
        for r in rows:
            manager = str(r.manager or "").strip().lower()
            if r.has_errors or r.row in skip or r.row in bad or not manager:
                continue
            if manager in valid_rows or manager in refs.managers:
                continue
            bad.add(r.row)
            changed = True
            row_no = invalid_rows.get(manager) or next((x.row for x in rows if x.upn.lower() == manager), None)
            where = (f"row {row_no} of this roster, which is invalid" if row_no is not None
                     else "neither a user in the tenant nor a row of this roster")
            issues.append(_issue(r.row, cols, "manager", MANAGER_NOT_FOUND,
                                 f"manager {r.manager!r} is {where}; "
                                 "fix the manager's userPrincipalName or clear the cell"))
    issues.extend(_seat_issues(rows, refs, cols, skip | bad))
    return issues


def _seat_issues(rows: Sequence[Any], refs: References, cols: Mapping[str, str], skip: set[int]) -> list[Issue]:
    demand: dict[str, list[int]] = {}
    for r in rows:
        if r.has_errors or r.row in skip:
            continue
        held = refs.held.get(r.upn.lower(), frozenset())
        for sku in dict.fromkeys(refs.skus[n.strip().lower()] for n in r.licenses):
            if sku.id not in held:
                demand.setdefault(sku.id, []).append(r.row)
    issues: list[Issue] = []
    for sku_id, asking in demand.items():
        sku = refs.skus[sku_id]
        if len(asking) <= sku.free:
            continue
        refused = asking[sku.free:]
        listed = ", ".join(map(str, refused))
        message = (f"licence {sku.part}: {sku.free} seats free, {len(asking)} rows ask for it; rows {listed} cannot "
                   "get one (the last rows in roster order) — buy seats or remove the licence from those rows")
        issues.extend(_issue(row, cols, "licenses", LICENSE_SEATS, message) for row in refused)
    return issues
