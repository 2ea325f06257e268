"""``POST /v1.0/$batch`` (graph-facts 4 and its addendum; json-batching page).

- At most 20 requests; more -> 400 BadRequest (text UNCONFIRMED item 1, see ``MSG_TOO_MANY``).
- Ids are "not case-sensitive. Must be unique in the batch, otherwise the batch request fails with a 400"
  (json-batching page): ``a`` and ``A`` in one batch -> 400 for the whole batch (text chosen: ``MSG_IDS``).
- URLs must be relative to the version (``/users`` or ``users``). An absolute URL -> 400 "Invalid batch payload
  format." for the whole batch (microsoft-graph-docs-contrib#8576). A URL that carries the version again
  (``/v1.0/users``) is resolved under the version like any other, so that *item* is answered 400 BadRequest
  "Resource not found for the segment 'v1.0'." (msgraph-sdk-javascript#1178). A missing id, a body without a
  ``Content-Type`` header, or a ``dependsOn`` naming an unknown id -> 400 for the whole batch.
- Each item goes through the same dispatcher as a plain request: faults (``503`` only), throttling evaluated per
  item, roles, handler. The outer answer is 200 even when items fail.
- ``dependsOn``: an item runs after its dependencies; if one of them did not succeed (non-2xx) it is answered
  424 without being executed.
- Responses are returned in a shuffled order (order not guaranteed; correlate by ``id``). Item headers, as in
  the json-batching page's example: ``Cache-Control: no-cache`` on every item; ``OData-Version: 4.0`` and the
  OData JSON ``Content-Type`` on a successful item with a body, plain ``application/json`` on an error body;
  ``x-ms-resource-unit`` and the throttling headers; ``Retry-After`` spelled like that (casing UNCONFIRMED item
  2; compare case-insensitively).
"""
from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .wire import Request, Response, error

MAX_REQUESTS = 20
MSG_TOO_MANY = f"The batch request exceeds the maximum number of requests allowed ({MAX_REQUESTS})."
MSG_FORMAT = "Invalid batch payload format."
MSG_IDS = "Batch request ids must be unique (compared case-insensitively) and non-empty."
MSG_DEPENDENCY = "Request failed due to a failed dependency."
METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}
INNER_HEADERS = ("retry-after", "x-ms-throttle-scope", "x-ms-throttle-information", "x-ms-resource-unit",
                 "x-ms-throttle-limit-percentage", "www-authenticate", "location")
JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def _validate(req: Request) -> list[dict[str, Any]] | Response:
    body = req.body
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        return error(req, 400, "BadRequest", MSG_FORMAT)
    items: list[Any] = body["requests"]  # JSON, checked item by item below
    if len(items) > MAX_REQUESTS:
        return error(req, 400, "BadRequest", MSG_TOO_MANY)
    if not items:
        return error(req, 400, "BadRequest", MSG_FORMAT)
    ids: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            return error(req, 400, "BadRequest", MSG_FORMAT)
        rid, method, url = item.get("id"), item.get("method"), item.get("url")
        if not isinstance(rid, str) or not rid or rid.lower() in ids:
            return error(req, 400, "BadRequest", MSG_IDS if isinstance(rid, str) and rid else MSG_FORMAT)
        ids.add(rid.lower())
        if not isinstance(method, str) or method.upper() not in METHODS or not isinstance(url, str) or not url:
            return error(req, 400, "BadRequest", MSG_FORMAT)
        if "://" in url or url.startswith("//"):
            return error(req, 400, "BadRequest", MSG_FORMAT)
        headers = item.get("headers") or {}
        if not isinstance(headers, dict):
            return error(req, 400, "BadRequest", MSG_FORMAT)
        if "body" in item and item["body"] is not None \
                and "content-type" not in {str(k).lower() for k in headers}:
            return error(req, 400, "BadRequest", f"Content-Type header is required for request '{rid}' "
                                                 "because it has a body.")
    for item in items:
        deps = item.get("dependsOn") or []
        if not isinstance(deps, list) or any(not isinstance(d, str) or d.lower() not in ids
                                             or d.lower() == item["id"].lower() for d in deps):
            return error(req, 400, "BadRequest", f"Request '{item['id']}' has an invalid dependsOn value.")
    return items


def _inner_request(item: dict[str, Any], outer: Request) -> Request:
    url = item["url"] if item["url"].startswith("/") else "/" + item["url"]
    parts = urlsplit(url)
    path = unquote(parts.path)
    headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    headers.setdefault("client-request-id", outer.client_request_id)
    return Request(method=item["method"].upper(), path="/v1.0" + path,
                   query=dict(parse_qsl(parts.query, keep_blank_values=True)), headers=headers,
                   body=item.get("body"), request_id=str(uuid.uuid4()), claims=outer.claims, in_batch=True)


def _inner_response(rid: str, resp: Response) -> dict[str, Any]:
    headers: dict[str, str] = {"Cache-Control": "no-cache"}
    if resp.body is not None and resp.status < 400:
        headers["OData-Version"] = "4.0"
        headers["Content-Type"] = JSON_TYPE
    elif resp.body is not None:
        headers["Content-Type"] = "application/json"
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
            deps = [d.lower() for d in item.get("dependsOn") or []]
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
            status[item["id"].lower()] = resp.status
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
