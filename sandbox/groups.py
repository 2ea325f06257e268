"""Graph ``/groups``: the tenant's fixed groups, listing, and membership (graph-facts 9.2).

The groups are defined here (:data:`GROUPS`, fixed ids, never reset): "All Staff" and "Sales" (Microsoft 365
groups), "Engineering" and "Finance" (security groups), "Helpdesk Admins" (role-assignable security group).
Memberships persist in the store and are emptied by ``reset``. Members are users (nested groups are not modelled).

Routes and behaviour:
- ``GET /groups``: ``$filter`` (``eq``, ``startsWith``, ``in`` on displayName, mailNickname, mail, id, description,
  securityEnabled, mailEnabled, isAssignableToRole), ``$select``, ``$top`` 1..999, ``@odata.nextLink`` paging.
- ``GET /groups/{id}``; unknown id -> 404 Request_ResourceNotFound.
- ``GET /groups/{id}/members`` (3 RU): users as directoryObjects (``@odata.type``), ``$select``, ``$top``, paging.
- ``POST /groups/{id}/members/$ref`` ``{"@odata.id": ".../directoryObjects/{id}"}`` (or ``.../users/{id}``) -> 204;
  already a member -> 400 Request_BadRequest ``MSG_EXISTS`` [OBS]; member or group missing, or the member still
  within replication lag -> 404 Request_ResourceNotFound.
- ``PATCH /groups/{id}`` with ``"members@odata.bind": [urls]``: at most 20 (more -> 400, text UNCONFIRMED),
  all-or-nothing (any bad, missing or existing member -> nothing added), 204. Other properties: 400 (groups are
  fixed in the sandbox).
- ``DELETE /groups/{id}/members/{memberId}/$ref`` -> 204, or 404 when not a member.
- ``GET /users/{id | upn}/memberOf`` (1 RU): the user's direct groups as directoryObjects (``@odata.type``
  ``#microsoft.graph.group``), ``$select``, ``$top``, paging (user-list-memberof page; read permissions as for
  the groups). A user missing or within replication lag -> 404 Request_ResourceNotFound.

Group objects carry the v1.0 CSDL's properties only (no ``creationOptions``, a beta property).

Permissions: reads need GroupMember.Read.All / Group.Read.All / Directory.Read.All (or their ReadWrite forms);
membership writes need GroupMember.ReadWrite.All (or Group.ReadWrite.All / Directory.ReadWrite.All) **and**
User.ReadWrite.All (or Directory.ReadWrite.All) for a user member, as graph-facts 9.2 reads the page; a
role-assignable group additionally needs RoleManagement.ReadWrite.Directory. Missing -> 403
Authorization_RequestDenied "Insufficient privileges to complete the operation.".
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from . import users
from .odata import FilterError, parse_filter
from .refs import USER, directory_object, find_user_or_404, has_any, read_ref, ref_target, visible_user
from .wire import GRAPH_CONTEXT, MSG_DENIED, Request, Response, Router, error, not_found

GROUP_READ = ("GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All",
              "Directory.Read.All", "Directory.ReadWrite.All")
MEMBER_WRITE = ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All")
USER_WRITE = ("User.ReadWrite.All", "Directory.ReadWrite.All")
ROLE_WRITE = ("RoleManagement.ReadWrite.Directory",)
BIND = "members@odata.bind"
MAX_BIND = 20

GROUP_ODATA_TYPE = "#microsoft.graph.group"

MSG_EXISTS = "One or more added object references already exist for the following modified properties: 'members'."
MSG_TOO_MANY_BIND = f"The number of references in 'members@odata.bind' exceeds the maximum of {MAX_BIND}."
MSG_READ_ONLY = "Property '{0}' of the sandbox's predefined groups cannot be changed."
MSG_SELECT = "Could not find a property named '{0}' on type 'microsoft.graph.group'."
MSG_FILTER_PROP = "Unsupported or invalid query filter clause specified for property '{0}' of resource 'Group'."


def _group(gid: str, name: str, nickname: str, description: str, *, unified: bool,
           role_assignable: bool = False) -> dict[str, Any]:
    return {
        "id": gid, "deletedDateTime": None, "classification": None, "createdDateTime": "2024-01-01T00:00:00Z",
        "description": description, "displayName": name, "expirationDateTime": None,
        "groupTypes": ["Unified"] if unified else [], "isAssignableToRole": True if role_assignable else None,
        "mail": f"{nickname}@contoso.com" if unified else None, "mailEnabled": unified,
        "mailNickname": nickname, "membershipRule": None, "membershipRuleProcessingState": None,
        "onPremisesSyncEnabled": None, "preferredDataLocation": None, "preferredLanguage": None,
        "proxyAddresses": [f"SMTP:{nickname}@contoso.com"] if unified else [], "renewedDateTime":
            "2024-01-01T00:00:00Z", "resourceBehaviorOptions": [], "resourceProvisioningOptions": [],
        "securityEnabled": True, "securityIdentifier": f"S-1-12-1-{int(gid[:8], 16)}-{int(gid[9:13], 16)}",
        "theme": None, "visibility": "Private" if unified else None,
    }


GROUPS: tuple[dict[str, Any], ...] = (
    _group("3eb50601-ad06-45a4-ab30-12e4a5c86829", "All Staff", "allstaff", "Everyone in the organisation",
           unified=True),
    _group("94015d12-d593-44b5-ad4b-ab79c5173796", "Engineering", "engineering", "Engineering department",
           unified=False),
    _group("ceb5a0f4-3a30-4b35-a9cf-65f4106a82be", "Sales", "sales", "Sales team", unified=True),
    _group("3f7d7fab-7bf2-4111-9b22-e8f6b3a646d2", "Finance", "finance", "Finance department", unified=False),
    _group("88ebd16a-7867-4de8-b268-88513a626b70", "Helpdesk Admins", "helpdeskadmins",
           "Role-assignable group for helpdesk administrators", unified=False, role_assignable=True),
)
BY_ID: dict[str, dict[str, Any]] = {g["id"]: g for g in GROUPS}
PROPERTIES = tuple(GROUPS[0])
FILTERABLE = ("id", "displayName", "mailNickname", "mail", "description", "securityEnabled", "mailEnabled",
              "isAssignableToRole", "proxyAddresses")


def register(router: Router) -> None:
    """Add the groups routes."""
    router.add("GET", r"/groups", GROUP_READ, list_groups)
    router.add("GET", r"/groups/([^/]+)", GROUP_READ, get_group)
    router.add("PATCH", r"/groups/([^/]+)", MEMBER_WRITE, patch_group)
    router.add("GET", r"/groups/([^/]+)/members", GROUP_READ, list_members)
    router.add("POST", r"/groups/([^/]+)/members/\$ref", MEMBER_WRITE, add_member_ref)
    router.add("DELETE", r"/groups/([^/]+)/members/([^/]+)/\$ref", MEMBER_WRITE, remove_member_ref)
    router.add("GET", USER + r"/memberOf", GROUP_READ, list_member_of)


# -- paging shared by the two collections ----------------------------------------------------------------------
def _top(req: Request) -> int | Response:
    raw = req.query.get("$top")
    if raw is None:
        return 100
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 999:
        return error(req, 400, "Request_UnsupportedQuery", users.MSG_PAGE_SIZE.format(raw))
    return int(raw)


def _page(req: Request, svc: Any, docs: list[dict[str, Any]], path: str, context: str) -> Response:
    """One page of ``docs`` (already filtered and shaped) with an opaque ``$skiptoken`` for the next one."""
    top = _top(req)
    if isinstance(top, Response):
        return top
    start = 0
    if "$skiptoken" in req.query:
        decoded = users._decode_token(req.query["$skiptoken"])
        if decoded is None:
            return error(req, 400, "Directory_ExpiredPageToken", users.MSG_TOKEN)
        start = decoded
    body: dict[str, Any] = {"@odata.context": context}
    if start + top < len(docs):
        params = [f"{k}={quote(v, safe=chr(36) + ',()=')}" for k, v in req.query.items() if k != "$skiptoken"]
        params.append(f"$skiptoken={users._encode_token(start + top)}")
        body["@odata.nextLink"] = f"{svc.base_url}/v1.0{path}?" + "&".join(params)
    body["value"] = docs[start:start + top]
    return Response(200, body)


def _select(req: Request) -> list[str] | Response | None:
    return users.parse_select(req, PROPERTIES, MSG_SELECT)


def _shape(group: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if select is None:
        return dict(group)
    out = {p: group.get(p) for p in select}
    out.setdefault("id", group["id"])
    return out


# -- handlers ----------------------------------------------------------------------------------------------------
def list_groups(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /groups."""
    select = _select(req)
    if isinstance(select, Response):
        return select
    predicate = None
    if req.query.get("$filter"):
        try:
            predicate = parse_filter(req.query["$filter"], FILTERABLE)
        except FilterError as exc:
            if exc.unsupported_query:
                return error(req, 400, "Request_UnsupportedQuery", str(exc))
            if exc.unsupported_property:
                return error(req, 400, "Request_UnsupportedQuery", MSG_FILTER_PROP.format(exc.unsupported_property))
            return error(req, 400, "BadRequest", f"Invalid filter clause: {exc}")
    docs = [_shape(g, select) for g in GROUPS if predicate is None or predicate(g)]
    context = f"{GRAPH_CONTEXT}#groups" + (f"({','.join(select)})" if select else "")
    return _page(req, svc, docs, "/groups", context)


def get_group(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /groups/{id}."""
    select = _select(req)
    if isinstance(select, Response):
        return select
    group = BY_ID.get(groups[0].lower())
    if group is None:
        return not_found(req, groups[0])
    return Response(200, {"@odata.context": users.select_context("groups", select, entity=True),
                          **_shape(group, select)})


def list_members(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /groups/{id}/members."""
    group = BY_ID.get(groups[0].lower())
    if group is None:
        return not_found(req, groups[0])
    select = users.parse_select(req)
    if isinstance(select, Response):
        return select
    docs = []
    with svc.store.lock:
        for member_id in svc.store.member_ids(group["id"]):
            row = svc.store.by_id.get(member_id)
            if row is not None:
                docs.append(directory_object(users.shape(row.data, select)))
    return _page(req, svc, docs, f"/groups/{group['id']}/members", f"{GRAPH_CONTEXT}#directoryObjects")


def list_member_of(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /users/{id}/memberOf: the groups the user is a direct member of, in the groups' fixed order."""
    row = find_user_or_404(req, svc, groups)
    if isinstance(row, Response):
        return row
    select = _select(req)
    if isinstance(select, Response):
        return select
    user_id = row.data["id"]
    with svc.store.lock:
        docs = [{"@odata.type": GROUP_ODATA_TYPE, **_shape(g, select)} for g in GROUPS
                if user_id in svc.store.members.get(g["id"], {})]
    return _page(req, svc, docs, f"/users/{user_id}/memberOf", f"{GRAPH_CONTEXT}#directoryObjects")


def _write_denied(req: Request, group: dict[str, Any]) -> Response | None:
    """403 unless the token may change this group's members (user members, role-assignable groups)."""
    if not has_any(req, USER_WRITE) or group.get("isAssignableToRole") and not has_any(req, ROLE_WRITE):
        return error(req, 403, "Authorization_RequestDenied", MSG_DENIED)
    return None


def _writable_group(req: Request, key: str) -> dict[str, Any] | Response:
    """The group ``key`` names whose members this token may change, or the 404/403 answer."""
    group = BY_ID.get(key.lower())
    if group is None:
        return not_found(req, key)
    denied = _write_denied(req, group)
    return group if denied is None else denied


def add_member_ref(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """POST /groups/{id}/members/$ref -> 204."""
    group = _writable_group(req, groups[0])
    if isinstance(group, Response):
        return group
    target = read_ref(req, "members")
    if isinstance(target, Response):
        return target
    with svc.store.lock:
        row = visible_user(svc, target)
        if row is None:
            return not_found(req, target)
        if not svc.store.add_member(group["id"], row.data["id"]):
            return error(req, 400, "Request_BadRequest", MSG_EXISTS)
    svc.count("members_added")
    return Response(204)


def remove_member_ref(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """DELETE /groups/{id}/members/{memberId}/$ref -> 204."""
    group = _writable_group(req, groups[0])
    if isinstance(group, Response):
        return group
    with svc.store.lock:
        row = visible_user(svc, groups[1])
        if row is None or not svc.store.remove_member(group["id"], row.data["id"]):
            return not_found(req, groups[1])
    svc.count("members_removed")
    return Response(204)


def patch_group(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """PATCH /groups/{id} with ``members@odata.bind`` (all-or-nothing) -> 204."""
    group = BY_ID.get(groups[0].lower())
    if group is None:
        return not_found(req, groups[0])
    body = req.body
    if not isinstance(body, dict):
        return error(req, 400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                                             "header is set and payload is of valid JSON format.")
    for key in body:
        if key != BIND:
            return error(req, 400, "Request_BadRequest", MSG_READ_ONLY.format(key))
    urls = body.get(BIND, [])
    if not isinstance(urls, list):
        return error(req, 400, "BadRequest", "Invalid URL format specified in @odata.bind for members")
    if len(urls) > MAX_BIND:
        return error(req, 400, "Request_BadRequest", MSG_TOO_MANY_BIND)
    denied = _write_denied(req, group)
    if denied is not None:
        return denied
    targets = [ref_target(u) for u in urls]
    if any(t is None for t in targets):
        return error(req, 400, "BadRequest", "Invalid URL format specified in @odata.bind for members")
    with svc.store.lock:
        ids: list[str] = []
        for target in targets:
            row = visible_user(svc, str(target))
            if row is None:
                return not_found(req, str(target))
            ids.append(row.data["id"])
        existing = set(svc.store.member_ids(group["id"]))
        if len(set(ids)) != len(ids) or existing & set(ids):
            return error(req, 400, "Request_BadRequest", MSG_EXISTS)
        for member_id in ids:
            svc.store.add_member(group["id"], member_id)
    svc.count("members_added", len(ids))
    return Response(204)
