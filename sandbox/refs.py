"""Shared pieces of the follow-up resources: user addressing, replication-lag lookups and ``@odata.id`` references.

- :data:`USER` is the route fragment for ``/users/{id | userPrincipalName}`` and ``/users('{upn}')``.
- :func:`visible_user` finds a user the way a replica would: absent *or* younger than ``replication_lag_ms``
  both mean 404 Request_ResourceNotFound (graph-facts 5, 9.2).
- :func:`ref_target` reads the object id out of a reference URL. Accepted (lenient, any host, ``v1.0`` or
  ``beta``, or a relative path): ``.../directoryObjects/{id}`` and ``.../users/{id | upn}``; anything else is a
  400 with ``MSG_BAD_REF`` (text UNCONFIRMED).
"""
from __future__ import annotations

import re
from typing import Any

from .store import UserRow
from .wire import GRAPH_CONTEXT, Request, Response, error, not_found

USER = r"/users(?:\('(.+?)'\)|/([^/()]+))"
MSG_BAD_REF = "Invalid URL format specified in @odata.bind for {0}"
MSG_MISSING_REF = "Missing '@odata.id' in the request body."
_REF = re.compile(r"(?:^|/)(directoryObjects|users)(?:/([^/?#()]+)|\('(.+?)'\))/?$", re.IGNORECASE)

USER_ODATA_TYPE = "#microsoft.graph.user"


def user_key(groups: tuple[str | None, ...]) -> str:
    """The id or UPN captured by :data:`USER` (first two groups)."""
    quoted, plain = groups[0], groups[1]
    return quoted.replace("''", "'") if quoted is not None else str(plain)


def visible_user(svc: Any, key: str) -> UserRow | None:
    """The user ``key`` (id or UPN) if it exists and replication has caught up with it."""
    row = svc.store.find(key)
    return row if row is not None and svc.visible(row) else None


def find_user_or_404(req: Request, svc: Any, groups: tuple[str | None, ...]) -> UserRow | Response:
    """The addressed user, or the 404 a replica answers."""
    key = user_key(groups)
    row = visible_user(svc, key)
    return row if row is not None else not_found(req, key)


def ref_target(url: Any) -> str | None:
    """The id (or UPN) named by a reference URL, or None when it is not a directoryObject/user URL."""
    if not isinstance(url, str) or not url.strip():
        return None
    path = url.strip().split("?", 1)[0]
    m = _REF.search(path)
    if m is None:
        return None
    return m.group(2) or m.group(3).replace("''", "'")


def read_ref(req: Request, prop: str) -> str | Response:
    """The target of a ``{"@odata.id": url}`` body, or a 400 answer."""
    body = req.body
    if not isinstance(body, dict):
        return error(req, 400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                                             "header is set and payload is of valid JSON format.")
    if "@odata.id" not in body:
        return error(req, 400, "BadRequest", MSG_MISSING_REF)
    target = ref_target(body["@odata.id"])
    if target is None:
        return error(req, 400, "BadRequest", MSG_BAD_REF.format(prop))
    return target


def directory_object(shaped: dict[str, Any]) -> dict[str, Any]:
    """A user as a directoryObject in a collection (``@odata.type`` first)."""
    return {"@odata.type": USER_ODATA_TYPE, **shaped}


def entity_context(kind: str) -> str:
    """``@odata.context`` of a single entity of ``kind`` (``users``, ``groups``, ``directoryObjects``)."""
    return f"{GRAPH_CONTEXT}#{kind}/$entity"


def has_any(req: Request, roles: tuple[str, ...]) -> bool:
    """Whether the token carries one of ``roles``."""
    return bool(set(roles) & set(req.claims.get("roles") or ()))
