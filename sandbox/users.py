"""Graph ``/users``: create, get by id or UPN, list (``$filter``, ``$select``, ``$expand``, ``$top``, paging), patch,
delete.

Behaviour (graph-facts 1, 5, 6.1):
- ``POST /users`` -> 201 with ``@odata.context``, ``@odata.id`` and the default property set (unset ones null,
  ``businessPhones`` []); no ``Location`` header (UNCONFIRMED item 5). Validation order and messages: see
  :mod:`sandbox.userrules`. Duplicate UPN (case-insensitive, UNCONFIRMED item 7 assumed) -> 400 with
  ``details: [{"target": "userPrincipalName", "code": "ObjectConflict"}]``. mailNickname uniqueness is not
  enforced (UNCONFIRMED item 7). Object quota -> 403 Directory_QuotaExceeded (legacy wording, item 8).
- Replication lag: users younger than ``replication_lag_ms`` are invisible to GET, list and PATCH (404); a
  usageLocation PATCHed onto a user that had none is remembered with its time, for ``assignLicense``.
- ``$select=assignedLicenses`` shows the licences of :mod:`sandbox.licenses` (``[]`` when none).
- ``GET /users`` pages of 100 by default, ``$top`` 1..999, ``@odata.nextLink`` with an opaque ``$skiptoken``.
- ``@odata.context`` names the ``$select`` list: ``...#users(id,displayName)/$entity`` for one user,
  ``...#users(id,displayName)`` for a list (user-get, user-list examples).
- ``identities`` is a collection (CSDL): a user created without it has the one ``userPrincipalName`` identity
  (issuer: the default domain), as in the user-get example; it follows UPN changes.
- ``$expand=manager`` (also ``manager($select=a,b)``) puts the manager inline as ``manager`` with
  ``@odata.type`` (user-list-manager page); a user without one has no ``manager`` property. Other ``$expand``
  targets -> 400 (not modelled).
- ``DELETE /users/{id | upn}`` -> 204 (User.ReadWrite.All); the user moves to ``/directory/deletedItems``
  (:mod:`sandbox.deleted`), its memberships and manager links are dropped, its licences kept for a restore
  (user-delete page). A deleted user's UPN does not block a new user with that UPN (UNCONFIRMED, graph-facts).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from . import userrules as rules
from .config import DOMAINS, PASSWORD_RESET_ROLES
from .odata import FilterError, parse_filter
from .wire import GRAPH_CONTEXT, MSG_DENIED, Request, Response, Router, error, not_found

DEFAULT_PROPERTIES = ("businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone",
                      "officeLocation", "preferredLanguage", "surname", "userPrincipalName")
READ = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
WRITE = ("User.ReadWrite.All", "Directory.ReadWrite.All")
LIST_PROPERTIES = (*rules.COLLECTIONS, "assignedLicenses", "proxyAddresses", "imAddresses", "identities")
DEFAULT_DOMAIN = next(name for name, _, is_default, _, _ in DOMAINS if is_default)
USAGE_SET_AT = "@sandbox.usageLocationSetAt"  # when a missing usageLocation was set (assignLicense sees it late)
MSG_PAGE_SIZE = "Invalid page size specified: '{0}'. Must be between 1 and 999 inclusive."
MSG_FILTER_PROP = "Unsupported or invalid query filter clause specified for property '{0}' of resource 'User'."
MSG_SELECT = "Could not find a property named '{0}' on type 'microsoft.graph.user'."
MSG_TOKEN = "The specified page token value has expired and can no longer be included in your request."
MSG_QUOTA = ("The directory object quota limit for the Tenant has been exceeded. Please ask your administrator to "
             "increase the directory object quota limit for the Tenant.")


def register(router: Router) -> None:
    """Add the users routes."""
    router.add("POST", r"/users", WRITE, create_user)
    router.add("GET", r"/users", READ, list_users)
    router.add("GET", r"/users(?:\('(.+)'\)|/([^/]+))", READ, get_user)
    router.add("PATCH", r"/users(?:\('(.+)'\)|/([^/]+))", WRITE, patch_user)
    router.add("DELETE", r"/users(?:\('(.+)'\)|/([^/]+))", WRITE, delete_user)


def now_iso() -> str:
    """``createdDateTime`` format."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shape(doc: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    """The properties returned for ``doc``: the default set or the ``$select`` list."""
    out: dict[str, Any] = {}
    for prop in select or DEFAULT_PROPERTIES:
        value = identities(doc) if prop == "identities" else doc.get(prop)
        out[prop] = [] if value is None and prop in LIST_PROPERTIES else value
    if select is not None and "id" not in select:
        out["id"] = doc["id"]
    return out


def identities(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The user's identities: the stored ones other than the UPN identity, then the UPN identity."""
    stored = [i for i in doc.get("identities") or [] if isinstance(i, dict)
              and str(i.get("signInType", "")).lower() != "userprincipalname"]
    return [*stored, {"signInType": "userPrincipalName", "issuer": DEFAULT_DOMAIN,
                      "issuerAssignedId": doc.get("userPrincipalName")}]


def select_context(kind: str, select: list[str] | None, entity: bool) -> str:
    """``@odata.context`` naming the ``$select`` list, e.g. ``...#users(id,mail)/$entity``."""
    return f"{GRAPH_CONTEXT}#{kind}" + (f"({','.join(select)})" if select else "") + ("/$entity" if entity else "")


def parse_expand(req: Request) -> list[str] | Response | None:
    """``$expand=manager`` or ``manager($select=a,b)``: None (no expand), the manager's $select list ([] for the
    default properties), or a 400 for anything else."""
    raw = req.query.get("$expand")
    if raw is None:
        return None
    m = re.fullmatch(r"\s*manager\s*(?:\(\s*\$select\s*=\s*([^)]*)\))?\s*", raw, re.IGNORECASE)
    if m is None:
        name = re.split(r"[(,]", raw, maxsplit=1)[0].strip()
        return error(req, 400, "BadRequest", MSG_SELECT.format(name))
    sub = Request(req.method, req.path, {"$select": m.group(1)} if m.group(1) else {}, req.headers)
    select = parse_select(sub)
    return select if isinstance(select, Response) else (select or [])


def with_manager(out: dict[str, Any], svc: Any, user_id: str, select: list[str] | None) -> dict[str, Any]:
    """``out`` with the user's manager inline, when ``$expand=manager`` was asked for and there is one."""
    if select is None:
        return out
    manager_id = svc.store.managers.get(user_id)
    manager = svc.store.by_id.get(manager_id) if manager_id else None
    if manager is not None:
        out["manager"] = {"@odata.type": "#microsoft.graph.user", **shape(manager.data, select or None)}
    return out


def parse_select(req: Request, properties: Iterable[str] = rules.ALL_PROPERTIES,
                 message: str = MSG_SELECT) -> list[str] | Response | None:
    """``$select`` as a list of ``properties`` (any case in the query), or an error response naming an unknown one
    with ``message`` (``{0}``: the name). Defaults: the user properties."""
    raw = req.query.get("$select")
    if raw is None:
        return None
    known = {p.lower(): p for p in properties}
    out = []
    for name in (s.strip() for s in raw.split(",") if s.strip()):
        if name.lower() not in known:
            return error(req, 400, "BadRequest", message.format(name))
        out.append(known[name.lower()])
    return out


def new_user_document(body: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """The stored document of a new user (the password itself is not kept)."""
    doc = {k: v for k, v in body.items() if not k.startswith("@") and "@odata." not in k}
    profile = dict(doc.get("passwordProfile") or {})
    profile["password"] = None
    profile.setdefault("forceChangePasswordNextSignIn", False)
    profile.setdefault("forceChangePasswordNextSignInWithMfa", False)
    doc["passwordProfile"] = profile
    doc["id"] = str(uuid.uuid4())
    doc.setdefault("businessPhones", [])
    doc.setdefault("userType", "Member")
    doc["createdDateTime"] = now_iso()
    if doc.get("usageLocation"):
        doc["usageLocation"] = doc["usageLocation"].upper()
    return doc


def entity_body(doc: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    """The 201 body of POST /users (graph-facts 1.6)."""
    body = {"@odata.context": f"{GRAPH_CONTEXT}#users/$entity",
            "@odata.id": f"https://graph.microsoft.com/v2/{tenant_id}/directoryObjects/{doc['id']}"
                         "/Microsoft.DirectoryServices.User"}
    body.update(shape(doc, None))
    return body


def create_user(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """POST /users."""
    body = req.body
    if not isinstance(body, dict):
        return error(req, 400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                                             "header is set and payload is of valid JSON format.")
    problem = rules.check_shape(body, creating=True) or rules.check_values(body)
    upn = body.get("userPrincipalName")
    if problem is None and upn is not None:
        problem = rules.check_upn(upn, svc.domains, body.get("onPremisesImmutableId"))
    if problem is None:
        problem = rules.check_password(body["passwordProfile"]["password"], body.get("passwordPolicies"), upn)
    if problem is not None:
        return error(req, 400, problem[0], problem[1], details=problem[2])
    with svc.store.lock:
        if upn is not None and upn.lower() in svc.store.by_upn:
            return error(req, 400, rules.BAD, rules.MSG_DUPLICATE,
                         details=[{"target": "userPrincipalName", "code": "ObjectConflict"}])
        if svc.store.count() >= svc.knobs.object_quota:
            return error(req, 403, "Directory_QuotaExceeded", MSG_QUOTA)
        doc = new_user_document(body, svc.tenant_id)
        svc.store.add_user(doc)
    svc.count("users_created")
    return Response(201, entity_body(doc, svc.tenant_id))


def _key(groups: Sequence[str | None]) -> str:
    quoted, plain = groups[0], groups[1]
    if quoted is not None:
        return quoted.replace("''", "'")
    assert plain is not None  # the route's pattern matches one of its two forms
    return plain


def get_user(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /users/{id | userPrincipalName} (also ``/users('...')``)."""
    select = parse_select(req)
    if isinstance(select, Response):
        return select
    expand = parse_expand(req)
    if isinstance(expand, Response):
        return expand
    key = _key(groups)
    row = svc.store.find(key)
    if row is None or not svc.visible(row):
        return not_found(req, key)
    body = {"@odata.context": select_context("users", select, entity=True)}
    body.update(shape(row.data, select))
    return Response(200, with_manager(body, svc, row.data["id"], expand))


def delete_user(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """DELETE /users/{id | userPrincipalName} -> 204; the user goes to /directory/deletedItems."""
    key = _key(groups)
    with svc.store.lock:
        row = svc.store.find(key)
        if row is None or not svc.visible(row):
            return not_found(req, key)
        svc.store.delete_user(row)
    svc.count("users_deleted")
    return Response(204)


def patch_user(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """PATCH /users/{id | userPrincipalName} -> 204."""
    body = req.body
    if not isinstance(body, dict):
        return error(req, 400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                                             "header is set and payload is of valid JSON format.")
    key = _key(groups)
    row = svc.store.find(key)
    if row is None or not svc.visible(row):
        return not_found(req, key)
    problem = rules.check_shape(body, creating=False) or rules.check_values(body)
    if problem is None and "displayName" in body and body["displayName"] is None:
        problem = (rules.BAD, rules.MSG_DISPLAYNAME_CLEAR, None)
    if problem is None and "mailNickname" in body and not body["mailNickname"]:
        problem = (rules.BAD, rules.MSG_NICKNAME_REQUIRED, None)
    if problem is None and "accountEnabled" in body and body["accountEnabled"] is None:
        problem = (rules.BAD, rules.MSG_INVALID.format("accountEnabled"), None)
    upn = body.get("userPrincipalName")
    if problem is None and "userPrincipalName" in body:
        problem = (rules.check_upn(upn, svc.domains, body.get("onPremisesImmutableId")
                                   or row.data.get("onPremisesImmutableId"))
                   if isinstance(upn, str) else (rules.BAD, rules.MSG_UPN_INVALID, None))
    password = (body.get("passwordProfile") or {}).get("password")
    if password and not PASSWORD_RESET_ROLES.intersection(req.claims.get("wids") or ()):
        # app-only: User.ReadWrite.All alone may not reset a password; the app needs a directory role for it
        return error(req, 403, "Authorization_RequestDenied", MSG_DENIED)
    if problem is None and password:
        problem = rules.check_password(password, body.get("passwordPolicies", row.data.get("passwordPolicies")),
                                       upn or row.data.get("userPrincipalName"))
    if problem is not None:
        return error(req, 400, problem[0], problem[1], details=problem[2])
    changes = {k: v for k, v in body.items() if not k.startswith("@") and "@odata." not in k}
    if "passwordProfile" in changes:
        profile = dict(row.data.get("passwordProfile") or {})
        profile.update(changes["passwordProfile"] or {})
        profile["password"] = None
        changes["passwordProfile"] = profile
    if changes.get("usageLocation"):
        changes["usageLocation"] = changes["usageLocation"].upper()
        if not row.data.get("usageLocation"):
            changes[USAGE_SET_AT] = time.time()
    with svc.store.lock:
        if upn is not None:
            other = svc.store.by_upn.get(upn.lower())
            if other is not None and other != row.data["id"]:
                return error(req, 400, rules.BAD, rules.MSG_DUPLICATE,
                             details=[{"target": "userPrincipalName", "code": "ObjectConflict"}])
        svc.store.update_user(row, changes)
    return Response(204)


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"sbx1:{seq}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, num = raw.partition(":")
    return int(num) if prefix == "sbx1" and num.isdigit() else None


def list_users(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /users with ``$filter``, ``$select``, ``$top``, ``$count`` and ``$skiptoken`` paging."""
    select = parse_select(req)
    if isinstance(select, Response):
        return select
    expand = parse_expand(req)
    if isinstance(expand, Response):
        return expand
    top_raw = req.query.get("$top")
    top = 100
    if top_raw is not None:
        if not top_raw.strip().isdigit() or not 1 <= int(top_raw) <= 999:
            return error(req, 400, "Request_UnsupportedQuery", MSG_PAGE_SIZE.format(top_raw))
        top = int(top_raw)
    advanced = (req.headers.get("consistencylevel", "").lower() == "eventual"
                and req.query.get("$count", "").lower() == "true")
    predicate = None
    if req.query.get("$filter"):
        try:
            predicate = parse_filter(req.query["$filter"], rules.FILTERABLE, advanced=advanced)
        except FilterError as exc:
            if exc.unsupported_query:
                return error(req, 400, "Request_UnsupportedQuery", str(exc))
            if exc.unsupported_property:
                return error(req, 400, "Request_UnsupportedQuery", MSG_FILTER_PROP.format(exc.unsupported_property))
            return error(req, 400, "BadRequest", f"Invalid filter clause: {exc}")
    after = 0
    if "$skiptoken" in req.query:
        decoded = _decode_token(req.query["$skiptoken"])
        if decoded is None:
            return error(req, 400, "Directory_ExpiredPageToken", MSG_TOKEN)
        after = decoded
    cutoff = time.time() - svc.knobs.replication_lag_ms / 1000.0
    page: list[dict[str, Any]] = []
    more = False
    last_seq = after
    total = 0
    with svc.store.lock:
        for row in svc.store.iter_from(0 if advanced else after):
            if row.created > cutoff or (predicate is not None and not predicate(row.data)):
                continue
            if row.seq <= after:
                total += 1
                continue
            if len(page) >= top:
                more = True
                if not advanced:
                    break
                total += 1
                continue
            page.append(with_manager(shape(row.data, select), svc, row.data["id"], expand))
            last_seq = row.seq
            total += 1
    body: dict[str, Any] = {"@odata.context": select_context("users", select, entity=False)}
    if advanced:
        body["@odata.count"] = total
    if more:
        params = [f"{k}={quote(v, safe=chr(36) + ',()=')}" for k, v in req.query.items() if k != "$skiptoken"]
        params.append(f"$skiptoken={_encode_token(last_seq)}")
        body["@odata.nextLink"] = f"{svc.base_url}/v1.0/users?" + "&".join(params)
    body["value"] = page
    return Response(200, body)


def seed_documents(start: int, stop: int) -> list[dict[str, Any]]:
    """Pre-seeded users ``seed.user{i:05d}@contoso.com`` for ``i`` in ``[start, stop)``."""
    docs = []
    created = now_iso()
    for i in range(start, stop):
        n = i + 1
        docs.append({
            "id": str(uuid.UUID(int=(0x5EED << 96) + n)), "accountEnabled": True,
            "displayName": f"Seed User {n:05d}", "givenName": "Seed", "surname": f"User{n:05d}",
            "mailNickname": f"seed.user{n:05d}", "userPrincipalName": f"seed.user{n:05d}@contoso.com",
            "mail": f"seed.user{n:05d}@contoso.com", "employeeId": f"S{n:06d}", "businessPhones": [],
            "userType": "Member", "createdDateTime": created, "usageLocation": "US",
            "passwordProfile": {"password": None, "forceChangePasswordNextSignIn": False,
                                "forceChangePasswordNextSignInWithMfa": False}})
    return docs
