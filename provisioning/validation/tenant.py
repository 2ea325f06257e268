"""Pre-flight with the tenant: a :class:`~provisioning.models.TenantView` over the Graph client.

Validation asks it for the verified and federated domains (a UPN on any other domain is an *invalid row*, never a
failed POST) and for existing users (derived-UPN collisions); the plan asks it again for every valid row's UPN and
employeeId, in one wave (:meth:`GraphTenantView.look_up`): ``$filter=prop in (...)`` items of 15 values inside
``$batch``, several in flight, cached, so each UPN and employeeId is asked about once per run.

A tenant of at most a page of users (999, ``GET /users``) is read whole instead, when the roster's lookups would
take more requests than that page (:data:`LIST_MIN_ITEMS`): a new or small tenant, the commonest onboarding, then
costs one request (and one resource unit) for what 800 filter items cost a 6,000-row roster; a longer tenant (the
page has a ``@odata.nextLink``) is looked up by the filters as before.

Deleted users and the organization are read in the background while the domains are read and the roster is
validated: Deleted users as a list (``GET /directory/deletedItems/microsoft.graph.user``, the form the list page
documents), which in almost every tenant is one page (users stay there 30 days), so that finding the rows to create
among them costs one request instead of three filters per 15 rows; only when it is longer than a page does
:func:`find_deleted` send the filters (UPN, mailNickname, employeeId) for the rows to create.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graph.batch import IN_CHUNK, BatchRequest, BatchResponse, in_requests
from graph.errors import GraphError
from provisioning.models import DeletedUser, ExistingUser

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

#: What a lookup selects: enough to tell whether a user found is the one this run sent.
LOOKUP_SELECT = ("id", "userPrincipalName", "displayName", "employeeId", "mail")
#: The deleted users' list path (the OData cast is required).
DELETED_USERS = "/directory/deletedItems/microsoft.graph.user"
DELETED_SELECT = ("id", "userPrincipalName", "displayName", "mailNickname", "employeeId", "deletedDateTime")
#: One page of the Deleted users list (the largest ``$top`` the list takes).
DELETED_PAGE = 999
#: One page of the users list (the largest ``$top``, graph-facts 6.1): a tenant that fits in it is read whole.
USERS_PAGE = 999
#: The fewest lookup items (``in`` filters of 15 values) for which the users page is read first: two ``$batch``
#: requests' worth. Fewer cost less than a page of 999 users, and they wait on no page read.
LIST_MIN_ITEMS = 40


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
    """Existing users among ``upns`` keyed by lower-case UPN: ``userPrincipalName in (...)`` filters packed into
    ``$batch`` requests, several in flight (see :meth:`GraphTenantView.look_up` for pre-flight's cached form)."""
    wanted = sorted({u.strip().lower() for u in upns if u and u.strip()})
    if not wanted:
        return {}
    found = client.find_users_by_upn(wanted, select=LOOKUP_SELECT)
    return {e.userPrincipalName.lower(): e for e in map(to_existing, found.values()) if e.userPrincipalName}


def _found(answers: Iterable[BatchResponse]) -> list[dict[str, Any]]:
    """The objects the filter items found; raises the first item's :class:`~graph.errors.GraphError`."""
    found: list[dict[str, Any]] = []
    for answer in answers:
        if answer.error is not None:
            raise answer.error
        found.extend((answer.body or {}).get("value", []))
    return found


def _find(client: GraphClient, path: str, prop: str, values: Iterable[str], select: Sequence[str]) \
        -> list[dict[str, Any]]:
    """The objects under ``path`` whose ``prop`` is one of ``values``: ``$filter=prop in (...)`` items of 15 values
    each, inside ``$batch``. Raises the item's :class:`~graph.errors.GraphError` if a lookup fails."""
    reqs = in_requests("", path, prop, sorted({v for v in values if v}), select=select)
    return _found(client.send_batch(reqs)) if reqs else []


def _by_employee_id(users: Iterable[Mapping[str, Any]]) -> dict[str, ExistingUser]:
    found: dict[str, ExistingUser] = {}
    for user in users:
        found.setdefault(str(user.get("employeeId") or ""), to_existing(user))
    found.pop("", None)
    return found


def find_by_employee_id(client: GraphClient, values: Iterable[str]) -> dict[str, ExistingUser]:
    """employeeId -> the tenant's user holding it (the first one found, should several), among ``values``."""
    return _by_employee_id(_find(client, "/users", "employeeId", values, LOOKUP_SELECT))


def _deleted_user(d: Mapping[str, Any]) -> DeletedUser:
    return DeletedUser(str(d.get("id") or ""), str(d.get("userPrincipalName") or ""), str(d.get("displayName") or ""),
                       str(d.get("mailNickname") or ""), str(d.get("employeeId") or ""),
                       str(d.get("deletedDateTime") or ""))


def _newest_first(users: Iterable[Mapping[str, Any]]) -> list[DeletedUser]:
    """Each deleted user once (by id), most recently deleted first."""
    found: dict[str, DeletedUser] = {}
    for d in users:
        if d.get("id"):
            found.setdefault(str(d["id"]), _deleted_user(d))
    return sorted(found.values(), key=lambda d: d.deleted, reverse=True)


def find_deleted(client: GraphClient, *, upns: Iterable[str] = (), nicknames: Iterable[str] = (),
                 employee_ids: Iterable[str] = ()) -> list[DeletedUser]:
    """The deleted users holding one of ``upns``, ``nicknames`` (mailNickname) or ``employee_ids``, each once,
    most recently deleted first: one wave of ``in`` filters (for a Deleted users list longer than a page)."""
    reqs = [r for n, (prop, values) in enumerate((("userPrincipalName", upns), ("mailNickname", nicknames),
                                                   ("employeeId", employee_ids)))
            for r in in_requests(f"{n}.", DELETED_USERS, prop, sorted({v for v in values if v}),
                                 select=DELETED_SELECT)]
    return _newest_first(_found(client.send_batch(reqs))) if reqs else []


def list_users(client: GraphClient) -> list[ExistingUser] | None:
    """Every user of the tenant when they fit in one page; None when there are more (the caller then looks its
    values up with the filters). Raises :class:`~graph.errors.GraphError`."""
    page = client.get("/users", {"$select": ",".join(LOOKUP_SELECT), "$top": str(USERS_PAGE)})
    if page.get("@odata.nextLink"):
        return None
    return [to_existing(u) for u in page.get("value") or ()]


def list_deleted(client: GraphClient) -> list[DeletedUser] | None:
    """Every user in Deleted users, most recently deleted first, when they fit in one page; None when there are
    more (the caller then looks for its rows with :func:`find_deleted`). Raises :class:`~graph.errors.GraphError`."""
    page = client.get(DELETED_USERS, {"$select": ",".join(DELETED_SELECT), "$top": str(DELETED_PAGE)})
    if page.get("@odata.nextLink"):
        return None
    return _newest_first(page.get("value") or ())


class GraphTenantView:
    """The tenant as validation and the plan see it: the domains (read once), a cached, batched lookup of users by
    UPN and employeeId, and Deleted users and the organization, read in the background from the start."""

    def __init__(self, client: GraphClient, *, upns: Iterable[str] = (), employee_ids: Iterable[str] = ()) -> None:
        """``upns``/``employee_ids``: the roster's as typed, looked up in the background from the start (what
        validation then cleans or derives differently is looked up when asked for)."""
        self._client = client
        self._lock = threading.Lock()
        self._fill_lock = threading.Lock()
        self._known: dict[str, ExistingUser | None] = {}  # lower-case UPN -> the user, None: asked, not there
        self._holders: dict[str, ExistingUser | None] = {}  # employeeId -> the first user found holding it
        self.lookups = 0  # UPNs asked about
        # Started before the domains are read, so that they are in by the time validation and the plan need them;
        # a read that fails raises when it is asked for (the organization is only shown: its caller forgives it).
        pool = ThreadPoolExecutor(max_workers=5, thread_name_prefix="preflight")
        # the domains too: validation asks for them only at its end (or to derive a UPN), so the first round trips
        # of the run (the token, the TLS handshake) go while the rows are checked
        self._domains_read: Future[list[Any]] = pool.submit(client.domains)
        self._deleted = pool.submit(list_deleted, client)
        self._organization = pool.submit(client.organization)
        typed, eids = list(upns), list(employee_ids)
        items = -(-len(set(typed)) // IN_CHUNK) - (-len(set(eids)) // IN_CHUNK)
        # read first, when it may save more requests than it costs; the lookups then wait for it (see _fill)
        self._listing: Future[list[ExistingUser] | None] | None = (
            pool.submit(list_users, client) if items >= LIST_MIN_ITEMS else None)
        self._whole = False  # every user of the tenant is in the cache: what is not there does not exist
        self._early: Future[Any] | None = pool.submit(self._fill, typed, eids) if typed or eids else None
        pool.shutdown(wait=False)
        self._domains: tuple[frozenset[str], frozenset[str], str] | None = None

    def _domain_sets(self) -> tuple[frozenset[str], frozenset[str], str]:
        """(verified, federated, default), read once; raises the read's :class:`~graph.errors.GraphError`."""
        with self._lock:
            if self._domains is not None:
                return self._domains
        verified: set[str] = set()
        federated: set[str] = set()
        default = ""
        for d in self._domains_read.result():
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
        found = (frozenset(verified), frozenset(federated), default or (sorted(verified)[0] if verified else ""))
        with self._lock:
            if self._domains is None:
                self._domains = found
                log.info("tenant domains: verified %s, federated %s, default %s", sorted(verified),
                         sorted(federated), found[2])
            return self._domains

    @property
    def verified_domains(self) -> frozenset[str]:
        """The tenant's verified domains, lower-case (waits for their read)."""
        return self._domain_sets()[0]

    @property
    def federated_domains(self) -> frozenset[str]:
        """The verified domains whose sign-in is federated, lower-case."""
        return self._domain_sets()[1]

    @property
    def default_domain(self) -> str:
        """The tenant's default domain (the first verified one when none is marked), lower-case."""
        return self._domain_sets()[2]

    def lookup(self, upns: Collection[str]) -> Mapping[str, ExistingUser]:
        """Existing users among ``upns``, keyed by lower-case UPN (each UPN is asked about once per run)."""
        return self.look_up(upns)[0]

    def look_up(self, upns: Iterable[str], employee_ids: Iterable[str] = ()) \
            -> tuple[dict[str, ExistingUser], dict[str, ExistingUser]]:
        """The tenant's users among ``upns`` (by lower-case UPN) and those holding ``employee_ids`` (by employeeId,
        the first found should several hold one): what was not asked before goes in one wave of ``in`` filters
        inside ``$batch``. Raises the first failed item's :class:`~graph.errors.GraphError`."""
        early, self._early = self._early, None
        if early is not None:
            early.result()  # the roster's typed values, asked in the background: in the cache once it is done
        return self._fill(upns, employee_ids)

    def _read_whole(self) -> None:
        """Take in the users page, once it is read: the whole tenant, or nothing when it is longer than a page or
        the read failed (the filters then ask, and a failure that is the tenant's shows on them)."""
        listing, self._listing = self._listing, None
        if listing is None:
            return
        try:
            users = listing.result()
        except GraphError as exc:
            log.info("pre-flight: the users page could not be read (%s): looking the roster's users up instead", exc)
            return
        if users is None:
            log.info("pre-flight: the tenant has more than %d users: looking the roster's users up", USERS_PAGE)
            return
        with self._lock:
            for u in users:
                if u.userPrincipalName:
                    self._known.setdefault(u.userPrincipalName.lower(), u)
                if u.employeeId:
                    self._holders.setdefault(str(u.employeeId), u)
            self._whole = True
        log.info("pre-flight: the tenant's %d users read in one page: no lookup needed", len(users))

    def _fill(self, upns: Iterable[str], employee_ids: Iterable[str]) \
            -> tuple[dict[str, ExistingUser], dict[str, ExistingUser]]:
        wanted = {u.strip().lower() for u in upns if u and u.strip()}
        eids = {e.strip() for e in employee_ids if e and e.strip()}
        if self._listing is not None:
            with self._fill_lock:  # one caller takes the page in; the others wait for it, then use it
                self._read_whole()
        with self._lock:  # the whole tenant read: what is not in the cache does not exist, nothing to ask
            missing = [] if self._whole else sorted(u for u in wanted if u not in self._known)
            unheld = [] if self._whole else sorted(e for e in eids if e not in self._holders)
        fields = list(dict.fromkeys(["userPrincipalName", *LOOKUP_SELECT]))
        reqs = [*in_requests("u", "/users", "userPrincipalName", missing, select=fields, top=15),
                *in_requests("e", "/users", "employeeId", unheld, select=LOOKUP_SELECT)]
        if reqs:
            answers = self._client.send_batch(reqs)
            by_upn = {u.userPrincipalName.lower(): u for u in map(to_existing, _found(
                a for a in answers if a.id.startswith("u"))) if u.userPrincipalName}
            by_eid = _by_employee_id(_found(a for a in answers if a.id.startswith("e")))
            with self._lock:
                self.lookups += len(missing)
                for u in missing:
                    self._known[u] = by_upn.get(u)
                for e in unheld:
                    self._holders[e] = by_eid.get(e)
        with self._lock:
            return ({u: x for u in wanted if (x := self._known.get(u)) is not None},
                    {e: x for e in eids if (x := self._holders.get(e)) is not None})

    def deleted(self, *, upns: Iterable[str], nicknames: Iterable[str], employee_ids: Iterable[str]) \
            -> list[DeletedUser]:
        """The users in Deleted users the rows to create may be (most recently deleted first): the whole list when
        it is one page (:func:`list_deleted`, read in the background), else the filters of :func:`find_deleted`.
        Raises :class:`~graph.errors.GraphError`."""
        listed = self._deleted.result()
        if listed is not None:
            return listed
        log.info("pre-flight: Deleted users hold more than %d users: looking the rows up in it", DELETED_PAGE)
        return find_deleted(self._client, upns=upns, nicknames=nicknames, employee_ids=employee_ids)

    def organization(self) -> dict[str, Any]:
        """The tenant's organization object, as read in the background; raises its :class:`~graph.errors.GraphError`."""
        return self._organization.result()


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
