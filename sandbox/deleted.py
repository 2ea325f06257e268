"""Graph ``/directory/deletedItems`` for users (user-delete, directory-deleteditems-list/-get/-restore pages).

- ``GET /directory/deletedItems/microsoft.graph.user`` (or the alias ``graph.user``): the soft-deleted users,
  oldest deletion first, with ``deletedDateTime``; ``$filter`` (the /users grammar and its 15-clause limit; the
  list page supports it), ``$select``, ``$top`` 1..999 (100 by default),
  ``@odata.nextLink`` paging; ``@odata.context`` ``...#users`` (``...#users(a,b)`` with ``$select``), as in the
  list page's examples.
  User.Read.All (or higher). The cast is required: ``GET /directory/deletedItems`` alone -> 400 (text chosen:
  the unknown-segment one, UNCONFIRMED); other casts (groups, applications, ...) are not modelled (an empty list).
- ``GET /directory/deletedItems/{id}``: the deleted user as a directoryObject (``@odata.type``), 404
  Request_ResourceNotFound when there is no deleted object with that id.
- ``POST /directory/deletedItems/{id}/restore`` (User.ReadWrite.All): 200 with the restored user as a
  directoryObject (``@odata.context`` ``...#directoryObjects/$entity``); the user is back under ``/users`` with its
  id, properties and licences (memberships and manager links are not restored: UNCONFIRMED). Optional body
  ``{"newUserPrincipalName": upn, "autoReconcileProxyConflict": bool}`` (documented parameters;
  ``autoReconcileProxyConflict`` is accepted and has nothing to reconcile here). A restore whose UPN is now used
  by an active user -> 400 Request_BadRequest with the ObjectConflict details of POST /users (UNCONFIRMED text);
  a ``newUserPrincipalName`` is checked like a UPN on create.
- ``DELETE /directory/deletedItems/{id}`` -> 204: permanently deleted (directory-deleteditems-delete page).
Deleted items stay until purged or ``reset``: the 30-day retention is not modelled.
"""
from __future__ import annotations

from typing import Any

from . import userrules as rules
from . import users
from .groups import _page
from .odata import FilterError, parse_filter
from .refs import directory_object, entity_context
from .wire import MSG_SEGMENT, Request, Response, Router, error, not_found

USER_CAST = "microsoft.graph.user"
#: Graph's namespace alias: msgraph-sdk sends ``/directory/deletedItems/graph.user``
CASTS = ("microsoft.graph.group", "microsoft.graph.application", "microsoft.graph.servicePrincipal",
         "microsoft.graph.administrativeUnit", "microsoft.graph.device")


def register(router: Router) -> None:
    """Add the deleted-items routes."""
    router.add("GET", r"/directory/deletedItems", users.READ, list_uncast)
    router.add("GET", r"/directory/deletedItems/([^/]+)", users.READ, get_item)
    router.add("DELETE", r"/directory/deletedItems/([^/]+)", users.WRITE, purge_item)
    router.add("POST", r"/directory/deletedItems/([^/]+)/restore", users.WRITE, restore_item)


def list_uncast(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /directory/deletedItems without the OData cast: not supported (list page)."""
    return error(req, 400, "BadRequest", MSG_SEGMENT.format("deletedItems"))


def _cast(key: str) -> str | None:
    """The OData cast ``key`` names (``microsoft.graph.user`` or its alias ``graph.user``), or None for an id."""
    low = key.lower()
    low = "microsoft." + low if low.startswith("graph.") else low
    return next((c for c in (USER_CAST, *CASTS) if c.lower() == low), None)


def _list(req: Request, svc: Any, cast: str) -> Response:
    select = users.parse_select(req)
    if isinstance(select, Response):
        return select
    predicate = None
    if req.query.get("$filter"):
        try:
            predicate = parse_filter(req.query["$filter"], rules.FILTERABLE)
        except FilterError as exc:
            if exc.unsupported_query:
                return error(req, 400, "Request_UnsupportedQuery", str(exc))
            if exc.unsupported_property:
                return error(req, 400, "Request_UnsupportedQuery",
                             users.MSG_FILTER_PROP.format(exc.unsupported_property))
            return error(req, 400, "BadRequest", f"Invalid filter clause: {exc}")
    with svc.store.lock:
        rows = list(svc.store.deleted.values()) if cast == USER_CAST else []
        rows = [r for r in rows if predicate is None or predicate(r.data)]
        docs = [users.shape(r.data, select if select else [*users.DEFAULT_PROPERTIES, "deletedDateTime"])
                for r in rows]
    return _page(req, svc, docs, f"/directory/deletedItems/{cast}",
                 users.select_context("users", select, entity=False))


def get_item(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /directory/deletedItems/{id} (or the list with an OData cast)."""
    key = groups[0]
    cast = _cast(key)
    if cast is not None:
        return _list(req, svc, cast)
    select = users.parse_select(req)
    if isinstance(select, Response):
        return select
    row = svc.store.deleted.get(key.lower())
    if row is None:
        return not_found(req, key)
    shaped = users.shape(row.data, select if select else [*users.DEFAULT_PROPERTIES, "deletedDateTime"])
    return Response(200, {"@odata.context": entity_context("directoryObjects"), **directory_object(shaped)})


def restore_item(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """POST /directory/deletedItems/{id}/restore -> 200 with the restored user."""
    key = groups[0]
    svc.count("restore_requests")  # every restore asked for, answered or refused
    body = req.body if isinstance(req.body, dict) else {}
    new_upn = body.get("newUserPrincipalName")
    if new_upn is not None:
        problem = (rules.check_upn(new_upn, svc.domains, None) if isinstance(new_upn, str)
                   else (rules.BAD, rules.MSG_UPN_INVALID, None))
        if problem is not None:
            return error(req, 400, problem[0], problem[1], details=problem[2])
    with svc.store.lock:
        row = svc.store.deleted.get(key.lower())
        if row is None:
            return not_found(req, key)
        upn = new_upn or row.data["userPrincipalName"]
        if upn.lower() in svc.store.by_upn:
            return error(req, 400, rules.BAD, rules.MSG_DUPLICATE,
                         details=[{"target": "userPrincipalName", "code": "ObjectConflict"}])
        restored = svc.store.restore_user(row.data["id"], {"userPrincipalName": upn})
    svc.count("users_restored")
    return Response(200, {"@odata.context": entity_context("directoryObjects"),
                          **directory_object(users.shape(restored.data, None))})


def purge_item(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """DELETE /directory/deletedItems/{id} -> 204 (permanent)."""
    with svc.store.lock:
        if not svc.store.purge_user(groups[0].lower()):
            return not_found(req, groups[0])
    return Response(204)
