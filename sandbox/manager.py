"""Graph ``/users/{id}/manager`` (graph-facts 9.3).

- ``PUT /users/{id | upn}/manager/$ref`` ``{"@odata.id": ".../users/{managerId}"}`` (or ``directoryObjects/{id}``)
  -> 204 (1 RU + 1 write). The user or the manager missing, or either still within replication lag -> 404
  Request_ResourceNotFound naming the one not found (text: the general directory 404; UNCONFIRMED item 10).
  A user as their own manager -> 400 Request_BadRequest ``MSG_SELF`` (UNCONFIRMED).
- ``GET /users/{id | upn}/manager`` -> 200 the manager as a directoryObject (``@odata.type`` user, default
  properties or ``$select``); no manager -> 404 Request_ResourceNotFound "Resource 'manager' does not exist or one
  of its queried reference-property objects are not present." [OBS].
- ``GET /users/{id | upn}/manager/$ref`` -> ``{"@odata.id": ...}``; ``DELETE .../manager/$ref`` -> 204.
Permissions: writes User.ReadWrite.All / Directory.ReadWrite.All; reads User.Read.All and up.
"""
from __future__ import annotations

from typing import Any

from . import users
from .refs import USER, directory_object, entity_context, find_user_or_404, read_ref, visible_user
from .wire import Request, Response, Router, error, not_found

MSG_SELF = "A user cannot be their own manager."


def register(router: Router) -> None:
    """Add the manager routes."""
    router.add("PUT", USER + r"/manager/\$ref", users.WRITE, put_manager)
    router.add("DELETE", USER + r"/manager/\$ref", users.WRITE, delete_manager)
    router.add("GET", USER + r"/manager/\$ref", users.READ, get_manager_ref)
    router.add("GET", USER + r"/manager", users.READ, get_manager)


def put_manager(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """PUT /users/{id}/manager/$ref -> 204."""
    row = find_user_or_404(req, svc, groups)
    if isinstance(row, Response):
        return row
    target = read_ref(req, "manager")
    if isinstance(target, Response):
        return target
    with svc.store.lock:
        manager = visible_user(svc, target)
        if manager is None:
            return not_found(req, target)
        if manager.data["id"] == row.data["id"]:
            return error(req, 400, "Request_BadRequest", MSG_SELF)
        svc.store.set_manager(row.data["id"], manager.data["id"])
    svc.count("managers_set")
    return Response(204)


def delete_manager(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """DELETE /users/{id}/manager/$ref -> 204 (404 when there is none)."""
    row = find_user_or_404(req, svc, groups)
    if isinstance(row, Response):
        return row
    with svc.store.lock:
        if row.data["id"] not in svc.store.managers:
            return not_found(req, "manager")
        svc.store.set_manager(row.data["id"], None)
    svc.count("managers_removed")
    return Response(204)


def _manager_row(req: Request, svc: Any, groups: tuple[str, ...]) -> Any:
    row = find_user_or_404(req, svc, groups)
    if isinstance(row, Response):
        return row
    manager_id = svc.store.managers.get(row.data["id"])
    manager = svc.store.by_id.get(manager_id) if manager_id else None
    return manager if manager is not None else not_found(req, "manager")


def get_manager(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /users/{id}/manager."""
    select = users.parse_select(req)
    if isinstance(select, Response):
        return select
    manager = _manager_row(req, svc, groups)
    if isinstance(manager, Response):
        return manager
    body = {"@odata.context": entity_context("directoryObjects")}
    body.update(directory_object(users.shape(manager.data, select)))
    return Response(200, body)


def get_manager_ref(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /users/{id}/manager/$ref."""
    manager = _manager_row(req, svc, groups)
    if isinstance(manager, Response):
        return manager
    return Response(200, {"@odata.context": entity_context("directoryObjects"),
                          "@odata.id": f"https://graph.microsoft.com/v2/{svc.tenant_id}/directoryObjects/"
                                       f"{manager.data['id']}/Microsoft.DirectoryServices.User"})
