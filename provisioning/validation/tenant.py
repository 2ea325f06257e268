"""Pre-flight with the tenant: a :class:`~provisioning.models.TenantView` over the Graph client.

Validation asks it for the verified and federated domains (a UPN on any other domain is an *invalid row*, never a
failed POST) and for existing users (derived-UPN collisions); the plan asks it again for every valid row's UPN.
Lookups are batched by the client (``$filter=userPrincipalName in (...)`` inside ``$batch``) and cached, so
each UPN is asked about once per run. :func:`find_by_employee_id` finds the users holding the roster's
employeeIds, :func:`find_deleted` the users in Deleted users (``/directory/deletedItems``) holding the roster's
UPNs, mailNicknames or employeeIds; both send ``prop in (...)`` filters of :data:`CHUNK` values inside ``$batch``.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graph.batch import BatchRequest
from graph.odata import in_, query_string
from provisioning.models import DeletedUser, ExistingUser

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

#: What a lookup selects: enough to tell whether a user found is the one this run sent.
LOOKUP_SELECT = ("id", "userPrincipalName", "displayName", "employeeId", "mail")
#: Values per ``$filter=prop in (...)``: the directory counts each value as one of at most 15 ``or`` clauses.
CHUNK = 15
#: The deleted users' list path (the OData cast is required).
DELETED_USERS = "/directory/deletedItems/microsoft.graph.user"
DELETED_SELECT = ("id", "userPrincipalName", "displayName", "mailNickname", "employeeId", "deletedDateTime")


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def to_existing(user: Any) -> ExistingUser:
    """An :class:`ExistingUser` from a Graph user (a dict or an object with the same attribute names)."""
    return ExistingUser(id=str(_get(user, "id", "") or ""),
                        userPrincipalName=str(_get(user, "userPrincipalName", "") or ""),
                        displayName=_get(user, "displayName"), employeeId=_get(user, "employeeId"),
                        mail=_get(user, "mail"))


def find_users(client: GraphClient, upns: Iterable[str]) -> dict[str, ExistingUser]:
    """Existing users among ``upns`` keyed by lower-case UPN.

    One call to the client's ``find_users_by_upn``, which packs ``userPrincipalName in (...)`` filters into
    ``$batch`` requests, several in flight: thousands of UPNs cost a few round trips, not one GET per row.
    """
    wanted = sorted({u.strip().lower() for u in upns if u and u.strip()})
    if not wanted:
        return {}
    found = client.find_users_by_upn(wanted, select=LOOKUP_SELECT)
    result: dict[str, ExistingUser] = {}
    for user in found.values():
        existing = to_existing(user)
        if existing.userPrincipalName:
            result[existing.userPrincipalName.lower()] = existing
    return result


def _find(client: GraphClient, path: str, prop: str, values: Iterable[str], select: Sequence[str]) \
        -> list[dict[str, Any]]:
    """The objects under ``path`` whose ``prop`` is one of ``values``: ``$filter=prop in (...)`` items of
    :data:`CHUNK` values each, inside ``$batch``. Raises the item's :class:`GraphError` if a lookup fails."""
    unique = sorted({v for v in values if v})
    reqs = [BatchRequest(str(n), "GET", f"{path}?" + query_string({
        "$filter": in_(prop, unique[i:i + CHUNK]), "$select": ",".join(select), "$top": "999"}))
        for n, i in enumerate(range(0, len(unique), CHUNK))]
    found: list[dict[str, Any]] = []
    for answer in client.send_batch(reqs) if reqs else ():
        if answer.error is not None:
            raise answer.error
        found.extend((answer.body or {}).get("value", []))
    return found


def find_by_employee_id(client: GraphClient, values: Iterable[str]) -> dict[str, ExistingUser]:
    """employeeId -> the tenant's user holding it (the first one found, should several), among ``values``."""
    found: dict[str, ExistingUser] = {}
    for user in _find(client, "/users", "employeeId", values, LOOKUP_SELECT):
        found.setdefault(str(user.get("employeeId") or ""), to_existing(user))
    found.pop("", None)
    return found




def find_deleted(client: GraphClient, *, upns: Iterable[str] = (), nicknames: Iterable[str] = (),
                 employee_ids: Iterable[str] = ()) -> list[DeletedUser]:
    """The deleted users holding one of ``upns``, ``nicknames`` (mailNickname) or ``employee_ids``, each once,
    most recently deleted first."""
    found: dict[str, DeletedUser] = {}
    for prop, values in (("userPrincipalName", upns), ("mailNickname", nicknames), ("employeeId", employee_ids)):
        for d in _find(client, DELETED_USERS, prop, values, DELETED_SELECT):
            uid = str(d.get("id") or "")
            if uid:
                found.setdefault(uid, DeletedUser(uid, str(d.get("userPrincipalName") or ""),
                                                  str(d.get("displayName") or ""), str(d.get("mailNickname") or ""),
                                                  str(d.get("employeeId") or ""),
                                                  str(d.get("deletedDateTime") or "")))
    return sorted(found.values(), key=lambda d: d.deleted, reverse=True)


class GraphTenantView:
    """The tenant as validation and the plan see it: domains (read once) and a cached, batched user lookup."""

    def __init__(self, client: GraphClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._known: dict[str, ExistingUser | None] = {}
        verified: set[str] = set()
        federated: set[str] = set()
        default = ""
        for d in client.domains():
            name = str(_get(d, "id", "") or _get(d, "name", "")).lower()
            if not name:
                continue
            if _get(d, "isVerified", _get(d, "is_verified", False)):
                verified.add(name)
            auth = str(_get(d, "authenticationType", _get(d, "authentication_type", "")) or "")
            if auth.lower() == "federated":
                federated.add(name)
            if _get(d, "isDefault", _get(d, "is_default", False)):
                default = name
        self.verified_domains: frozenset[str] = frozenset(verified)
        self.federated_domains: frozenset[str] = frozenset(federated)
        self.default_domain: str = default or (sorted(verified)[0] if verified else "")
        self.lookups = 0
        log.info("tenant domains: verified %s, federated %s, default %s", sorted(verified), sorted(federated),
                 self.default_domain)

    def lookup(self, upns: Collection[str]) -> Mapping[str, ExistingUser]:
        """Existing users among ``upns``, keyed by lower-case UPN (each UPN is asked about once per run)."""
        wanted = {u.strip().lower() for u in upns if u and u.strip()}
        with self._lock:
            missing = [u for u in wanted if u not in self._known]
        if missing:
            found = find_users(self._client, missing)
            self.lookups += len(missing)
            with self._lock:
                for u in missing:
                    self._known[u] = found.get(u)
        with self._lock:
            return {u: e for u in wanted if (e := self._known.get(u)) is not None}


@dataclass(frozen=True, slots=True)
class Held:
    """What an existing user already has, as pre-flight read it; None where it was not read (not asked for, or
    the read failed): the follow-ups of that kind are then sent as before."""

    group_ids: frozenset[str] | None = None  # direct memberships, lower-case ids
    sku_ids: frozenset[str] | None = None  # assigned licences, lower-case skuIds
    manager_id: str | None = None  # lower-case; "" when the user has no manager


@dataclass(frozen=True, slots=True)
class Wanted:
    """Which follow-up kinds a row asks for, so that pre-flight reads only what is needed."""

    groups: bool = False
    licenses: bool = False
    manager: bool = False


def read_held(client: GraphClient, users: Mapping[str, Wanted]) -> dict[str, Held]:
    """For each existing user (object id -> what its row asks for): its direct groups (``GET /users/{id}/memberOf``)
    and its licences and manager (``GET /users/{id}?$select=assignedLicenses&$expand=manager``), batched 20 to a
    ``$batch`` by the client. A read that fails, or more than 999 groups (a second page), leaves that part None."""
    reqs: list[BatchRequest] = []
    for n, (oid, wanted) in enumerate(users.items()):
        if wanted.groups:
            reqs.append(BatchRequest(f"g{n}", "GET", f"/users/{oid}/memberOf?$select=id&$top=999"))
        if wanted.licenses or wanted.manager:
            reqs.append(BatchRequest(f"u{n}", "GET", f"/users/{oid}?$select=id,assignedLicenses"
                                                    "&$expand=manager($select=id)"))
    if not reqs:
        return {}
    answers = {a.id: a for a in client.send_batch(reqs)}
    out: dict[str, Held] = {}
    failed = 0
    for n, oid in enumerate(users):
        groups: frozenset[str] | None = None
        skus: frozenset[str] | None = None
        manager: str | None = None
        g, u = answers.get(f"g{n}"), answers.get(f"u{n}")
        if g is not None:
            body = g.body or {}
            if g.ok and "@odata.nextLink" not in body:
                groups = frozenset(str(d.get("id", "")).lower() for d in body.get("value") or ())
            else:
                failed += 1
        if u is not None:
            body = u.body or {}
            if u.ok:
                skus = frozenset(str(a.get("skuId", "")).lower() for a in body.get("assignedLicenses") or ())
                boss = body.get("manager")
                manager = str(boss.get("id", "")).lower() if isinstance(boss, Mapping) else ""
            else:
                failed += 1
        out[oid] = Held(groups, skus, manager)
    if failed:
        log.warning("pre-flight: %d reads of what existing users already have failed; their follow-ups are sent",
                    failed)
    return out
