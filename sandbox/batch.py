"""``POST /v1.0/$batch`` (graph-facts 4).

- At most 20 requests; more -> 400 BadRequest (text UNCONFIRMED item 1, see ``MSG_TOO_MANY``).
- URLs must be relative to the version (``/users``); an absolute URL, a duplicate or missing id, a body without a
  ``Content-Type`` header, or a ``dependsOn`` naming an unknown id -> 400 for the whole batch.
- Each item goes through the same dispatcher as a plain request: faults (``503`` only), throttling evaluated per
  item, roles, handler. The outer answer is 200 even when items fail.
- ``dependsOn``: an item runs after its dependencies; if one of them did not succeed (non-2xx) it is answered
  424 without being executed.
- Responses are returned in a shuffled order (order not guaranteed; correlate by ``id``). Inner headers carry
  ``Retry-After`` spelled like that (casing UNCONFIRMED item 2; compare case-insensitively).
"""
from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .wire import Request, Response, error

MAX_REQUESTS = 20
MSG_TOO_MANY = f"The batch request exceeds the maximum number of requests allowed ({MAX_REQUESTS})."
MSG_FORMAT = "Invalid batch payload format."
MSG_DEPENDENCY = "Request failed due to a failed dependency."
METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}
INNER_HEADERS = ("retry-after", "x-ms-throttle-scope", "x-ms-throttle-information", "x-ms-resource-unit",
                 "x-ms-throttle-limit-percentage", "www-authenticate", "location")
JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def _validate(req: Request) -> list[dict[str, Any]] | Response:
    body = req.body
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        return error(req, 400, "BadRequest", MSG_FORMAT)
    items = body["requests"]
    if len(items) > MAX_REQUESTS:
        return error(req, 400, "BadRequest", MSG_TOO_MANY)
    if not items:
        return error(req, 400, "BadRequest", MSG_FORMAT)
    ids: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            return error(req, 400, "BadRequest", MSG_FORMAT)
        rid, method, url = item.get("id"), item.get("method"), item.get("url")
        if not isinstance(rid, str) or not rid or rid in ids:
            return error(req, 400, "BadRequest", "Batch request ids must be non-empty unique strings."
                         if isinstance(rid, str) and rid else MSG_FORMAT)
        ids.add(rid)
        if not isinstance(method, str) or method.upper() not in METHODS or not isinstance(url, str) or not url:
            return error(req, 400, "BadRequest", MSG_FORMAT)
        if "://" in url or url.lower().startswith("//"):
            return error(req, 400, "BadRequest", f"Batch request url '{url}' must be relative to the batch "
                                                 "endpoint's version, for example '/users'.")
        headers = item.get("headers") or {}
        if not isinstance(headers, dict):
            return error(req, 400, "BadRequest", MSG_FORMAT)
        if "body" in item and item["body"] is not None \
                and "content-type" not in {str(k).lower() for k in headers}:
            return error(req, 400, "BadRequest", f"Content-Type header is required for request '{rid}' "
                                                 "because it has a body.")
    for item in items:
        deps = item.get("dependsOn") or []
        if not isinstance(deps, list) or any(d not in ids or d == item["id"] for d in deps):
            return error(req, 400, "BadRequest", f"Request '{item['id']}' has an invalid dependsOn value.")
    return items


def _inner_request(item: dict[str, Any], outer: Request) -> Request:
    url = item["url"] if item["url"].startswith("/") else "/" + item["url"]
    parts = urlsplit(url)
    path = unquote(parts.path)
    if path.lower().startswith("/v1.0/"):
        path = path[5:]
    headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    headers.setdefault("client-request-id", outer.client_request_id)
    return Request(method=item["method"].upper(), path="/v1.0" + path,
                   query=dict(parse_qsl(parts.query, keep_blank_values=True)), headers=headers,
                   body=item.get("body"), request_id=str(uuid.uuid4()), claims=outer.claims, in_batch=True)


def _inner_response(rid: str, resp: Response) -> dict[str, Any]:
    headers: dict[str, str] = {}
    if resp.body is not None:
        headers["Content-Type"] = JSON_TYPE
    for key, value in resp.headers.items():
        if key.lower() in INNER_HEADERS:
            headers["Retry-After" if key.lower() == "retry-after" else key] = value
    out: dict[str, Any] = {"id": rid, "status": resp.status, "headers": headers}
    if resp.body is not None:
        out["body"] = resp.body
    return out


def handle_batch(req: Request, svc: Any) -> Response:
    """Run a JSON batch; ``svc.dispatch`` handles each item."""
    items = _validate(req)
    if isinstance(items, Response):
        return items
    status: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    pending = list(items)
    total_ru = 0
    while pending:
        progressed = False
        for item in list(pending):
            deps = item.get("dependsOn") or []
            if any(d not in status for d in deps):
                continue
            pending.remove(item)
            progressed = True
            inner = _inner_request(item, req)
            if any(not 200 <= status[d] < 300 for d in deps):
                resp = error(inner, 424, "FailedDependency", MSG_DEPENDENCY)
            else:
                resp = svc.dispatch(inner)
            total_ru += int(resp.headers.get("x-ms-resource-unit", 0))
            status[item["id"]] = resp.status
            svc.count_batch_item(resp.status)
            results.append(_inner_response(item["id"], resp))
        if not progressed:  # a dependency cycle
            for item in pending:
                inner = _inner_request(item, req)
                resp = error(inner, 424, "FailedDependency", MSG_DEPENDENCY)
                svc.count_batch_item(resp.status)
                results.append(_inner_response(item["id"], resp))
            break
    svc.shuffle(results)
    return Response(200, {"responses": results}, {"x-ms-resource-unit": str(total_ru)})
