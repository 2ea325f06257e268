"""Graph's Temporary Access Pass: the tenant policy and each user's pass (TAP pages of Graph v1.0; sources below).

- ``GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass`` (the id
  in any case, as the docs spell it both ways) -> 200
  ``#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration`` with ``id`` "TemporaryAccessPass",
  ``state``, ``defaultLifetimeInMinutes``, ``defaultLength``, ``minimumLifetimeInMinutes``,
  ``maximumLifetimeInMinutes``, ``isUsableOnce``, ``includeTargets`` (all users) and ``excludeTargets`` []
  (temporaryaccesspassauthenticationmethodconfiguration-get example). Application permission
  Policy.Read.AuthenticationMethod (least privileged on the current page) or Policy.ReadWrite.AuthenticationMethod;
  Policy.Read.All too (the page's older revision lists it). The policy is the ``tap_policy`` knob
  (``sandbox serve --tap-policy state=disabled,min=60,max=480,default=60,length=8,once=false``); the defaults are
  the example's values. PATCH/DELETE of the policy are not modelled (405).
- ``POST /users/{id | userPrincipalName}/authentication/temporaryAccessPassMethods``
  (UserAuthenticationMethod.ReadWrite.All, the only application permission the create page lists) with optional
  ``startDateTime``, ``lifetimeInMinutes``, ``isUsableOnce`` -> **201** with the method: ``id``,
  ``temporaryAccessPass`` (this answer only), ``createdDateTime``, ``startDateTime`` (the creation time when not
  given), ``lifetimeInMinutes`` (the policy's default when not given), ``isUsableOnce`` (forced true by a one-time
  policy), ``isUsable``, ``methodUsabilityReason`` (``EnabledByPolicy``, ``DisabledByPolicy``, ``NotYetValid``,
  ``Expired``). The pass is ``defaultLength`` characters drawn with :mod:`secrets`. "A user can only have one
  Temporary Access Pass that's usable within its specified lifetime. If the user requires a new Temporary Access Pass
  while the current Temporary Access Pass is valid, the admin can create a new Temporary Access Pass for the user, the
  previous Temporary Access Pass will be deleted, and a new Temporary Access Pass will be created." (create page): a
  second create replaces the first (new id; counted in ``taps_replaced``). Errors, in order:
  - user missing or within replication lag -> 404 Request_ResourceNotFound, the directory text (UNCONFIRMED for
    this endpoint);
  - a body that is not a JSON object -> 400 BadRequest ``MSG_BAD_JSON``; a property the type does not declare ->
    400 BadRequest ``MSG_UNKNOWN_PROPERTY`` (the OData reader's text Graph gives on other endpoints; UNCONFIRMED
    here); the read-only properties of the type (``id``, ``temporaryAccessPass``, ...) are ignored (UNCONFIRMED);
    a value of the wrong type -> 400 BadRequest ``MSG_LITERAL`` (UNCONFIRMED text);
  - policy disabled -> 400 badRequest ``MSG_POLICY`` [OBS: the text the admin center shows and a public client
    matches in Graph's answer, MicrosoftDocs/azure-docs#111778; status and code UNCONFIRMED];
  - ``lifetimeInMinutes`` outside the policy's minimum..maximum -> 400 badRequest "Invalid LifetimeInMinutes
    specified. The valid range between {min} and {max}." with the same text as ``innerError.message`` [OBS:
    microsoftgraph/microsoft-graph-docs#12187, a captured answer];
  - ``isUsableOnce: false`` while the policy forces one-time use -> 400 badRequest ``MSG_ONCE`` (the create page:
    a multi-use pass "can only be created ... if it is allowed by the ... policy"; text UNCONFIRMED);
  - a guest (``userType`` Guest) -> 400 badRequest ``MSG_GUEST`` [OBS text quoted by a public client; status and
    code UNCONFIRMED].
- ``GET .../temporaryAccessPassMethods`` -> 200 ``value`` with the user's one method or none, and
  ``GET .../temporaryAccessPassMethods/{id}``; ``temporaryAccessPass`` is ``null`` on every read (resource page:
  "Hidden in subsequent read operations and returned as null with GET"). UserAuthMethod-TAP.Read.All,
  UserAuthenticationMethod.Read.All or either ReadWrite.All permission (list and get pages).
- ``DELETE .../temporaryAccessPassMethods/{id}`` -> 204 (UserAuthenticationMethod.ReadWrite.All); an id the user
  does not hold -> 404 Request_ResourceNotFound (text UNCONFIRMED).
All of them work inside ``$batch``. Counters: ``taps_issued``, ``taps_replaced``, ``taps_deleted``. The pass is never
stored, logged or counted: the store keeps a salted SHA-256 of it, which :func:`matches` checks (for tests that a
pass a client wrote down is the one issued). A soft-deleted user keeps its method for a restore and a purge drops it
(UNCONFIRMED). Not modelled: include/exclude target groups (everyone is in scope), sign-in with the pass
(``OneTimeUsed``), a ``startDateTime`` in the past being refused.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import string
import uuid
from typing import Any

from .refs import USER, find_user_or_404
from .wire import (
    GRAPH_CONTEXT,
    MSG_BAD_JSON,
    Request,
    Response,
    Router,
    error,
    not_found,
)

POLICY_READ = ("Policy.Read.AuthenticationMethod", "Policy.ReadWrite.AuthenticationMethod", "Policy.Read.All")
METHOD_READ = ("UserAuthMethod-TAP.Read.All", "UserAuthenticationMethod.Read.All", "UserAuthMethod-TAP.ReadWrite.All",
               "UserAuthenticationMethod.ReadWrite.All")
METHOD_WRITE = ("UserAuthenticationMethod.ReadWrite.All",)
METHOD_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
POLICY_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration"
METHODS = USER + r"/authentication/temporaryAccessPassMethods"
#: The pass's characters: letters, digits and symbols, as in Graph's examples ("+drkzqAD").
ALPHABET = string.ascii_letters + string.digits + "!#$%&*+-=?@"
WRITABLE = {"startDateTime": "Edm.DateTimeOffset", "lifetimeInMinutes": "Edm.Int32", "isUsableOnce": "Edm.Boolean"}
READ_ONLY = ("id", "temporaryAccessPass", "createdDateTime", "isUsable", "methodUsabilityReason")
MSG_UNKNOWN_PROPERTY = ("The property '{0}' does not exist on type 'microsoft.graph.temporaryAccessPassAuthentication"
                        "Method'. Make sure to only use property names that are defined by the type or mark the type "
                        "as open type.")
MSG_LITERAL = "Cannot convert the literal '{0}' to the expected type '{1}'."
MSG_POLICY = ("Converged UserCredentialPolicy does not allow creating or updating this authentication method. "
              "AuthMethodType [TemporaryAccessPass].")
MSG_LIFETIME = "Invalid LifetimeInMinutes specified. The valid range between {0} and {1}."
MSG_ONCE = "Invalid IsUsableOnce specified. The Temporary Access Pass policy only allows one-time use passes."
MSG_GUEST = "Temporary Access Pass cannot be added to an external guest user."


def register(router: Router) -> None:
    """Add the Temporary Access Pass routes."""
    router.add("GET", r"/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/"
                      r"(?i:temporaryAccessPass)", POLICY_READ, get_policy)
    router.add("POST", METHODS, METHOD_WRITE, create_method)
    router.add("GET", METHODS, METHOD_READ, list_methods)
    router.add("GET", METHODS + r"/([^/]+)", METHOD_READ, get_method)
    router.add("DELETE", METHODS + r"/([^/]+)", METHOD_WRITE, delete_method)


def get_policy(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET the tenant's Temporary Access Pass policy."""
    policy = svc.knobs.tap_policy
    return Response(200, {
        "@odata.context": f"{GRAPH_CONTEXT}#authenticationMethodConfigurations/$entity",
        "@odata.type": POLICY_TYPE, "id": "TemporaryAccessPass", "state": policy["state"],
        "defaultLifetimeInMinutes": policy["defaultLifetimeInMinutes"], "defaultLength": policy["defaultLength"],
        "minimumLifetimeInMinutes": policy["minimumLifetimeInMinutes"],
        "maximumLifetimeInMinutes": policy["maximumLifetimeInMinutes"], "isUsableOnce": policy["isUsableOnce"],
        "includeTargets@odata.context": f"{GRAPH_CONTEXT}#policies/authenticationMethodsPolicy/authenticationMethod"
                                        "Configurations('TemporaryAccessPass')/microsoft.graph.temporaryAccessPass"
                                        "AuthenticationMethodConfiguration/includeTargets",
        "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False}],
        "excludeTargets": [],
    })


def _iso(moment: dt.datetime, *, fraction: bool = False) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if fraction else "%Y-%m-%dT%H:%M:%SZ")


def _parse_start(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _hash(salt: str, value: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + value.encode()).hexdigest()


def _shown(svc: Any, doc: dict[str, Any], passcode: str | None) -> dict[str, Any]:
    """The method as Graph answers it; ``passcode`` only in the create answer."""
    start = dt.datetime.fromisoformat(doc["startDateTime"])
    now = dt.datetime.now(dt.UTC)
    if svc.knobs.tap_policy["state"] != "enabled":
        reason = "DisabledByPolicy"
    elif now < start:
        reason = "NotYetValid"
    elif now >= start + dt.timedelta(minutes=doc["lifetimeInMinutes"]):
        reason = "Expired"
    else:
        reason = "EnabledByPolicy"
    return {"@odata.type": METHOD_TYPE, "id": doc["id"], "temporaryAccessPass": passcode,
            "createdDateTime": doc["createdDateTime"], "startDateTime": doc["startDateTime"],
            "lifetimeInMinutes": doc["lifetimeInMinutes"], "isUsableOnce": doc["isUsableOnce"],
            "isUsable": reason == "EnabledByPolicy", "methodUsabilityReason": reason}


def _context(user_id: str, entity: bool) -> str:
    return (f"{GRAPH_CONTEXT}#users('{user_id}')/authentication/temporaryAccessPassMethods"
            + ("/$entity" if entity else ""))


def _bad(req: Request, message: str) -> Response:
    return error(req, 400, "badRequest", message, inner={"message": message})


def _read_body(req: Request) -> dict[str, Any] | Response:
    body = {} if req.body is None else req.body
    if not isinstance(body, dict):
        return error(req, 400, "BadRequest", MSG_BAD_JSON)
    for key, value in body.items():
        if key.startswith("@odata.") or key in READ_ONLY:
            continue
        if key not in WRITABLE:
            return error(req, 400, "BadRequest", MSG_UNKNOWN_PROPERTY.format(key))
        if value is None:
            continue
        ok = (_parse_start(value) is not None if key == "startDateTime"
              else isinstance(value, int) and not isinstance(value, bool) if key == "lifetimeInMinutes"
              else isinstance(value, bool))
        if not ok:
            return error(req, 400, "BadRequest", MSG_LITERAL.format(value, WRITABLE[key]))
    return body


def create_method(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """POST /users/{id}/authentication/temporaryAccessPassMethods -> 201 with the pass, shown this once."""
    row = find_user_or_404(req, svc, groups)
    if isinstance(row, Response):
        return row
    body = _read_body(req)
    if isinstance(body, Response):
        return body
    policy = svc.knobs.tap_policy
    if policy["state"] != "enabled":
        return _bad(req, MSG_POLICY)
    lo, hi = policy["minimumLifetimeInMinutes"], policy["maximumLifetimeInMinutes"]
    lifetime = body.get("lifetimeInMinutes")
    lifetime = policy["defaultLifetimeInMinutes"] if lifetime is None else lifetime
    if not lo <= lifetime <= hi:
        return _bad(req, MSG_LIFETIME.format(lo, hi))
    once = body.get("isUsableOnce")
    if policy["isUsableOnce"] and once is False:
        return _bad(req, MSG_ONCE)
    if str(row.data.get("userType") or "").lower() == "guest":
        return _bad(req, MSG_GUEST)
    now = dt.datetime.now(dt.UTC)
    start = _parse_start(body.get("startDateTime")) or now
    passcode = "".join(secrets.choice(ALPHABET) for _ in range(policy["defaultLength"]))
    salt = secrets.token_hex(16)
    doc = {"id": str(uuid.uuid4()), "createdDateTime": _iso(now, fraction=True), "startDateTime": _iso(start),
           "lifetimeInMinutes": lifetime, "isUsableOnce": bool(once) or bool(policy["isUsableOnce"]),
           "salt": salt, "sha256": _hash(salt, passcode)}
    user_id = row.data["id"]
    with svc.store.lock:
        replaced = user_id in svc.store.taps
        svc.store.set_tap(user_id, doc)
    svc.count("taps_issued")
    if replaced:
        svc.count("taps_replaced")
    return Response(201, {"@odata.context": _context(user_id, True), **_shown(svc, doc, passcode)})


def list_methods(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /users/{id}/authentication/temporaryAccessPassMethods: the one method or none, without the pass."""
    row = find_user_or_404(req, svc, groups)
    if isinstance(row, Response):
        return row
    user_id = row.data["id"]
    doc = svc.store.taps.get(user_id)
    value = [] if doc is None else [_shown(svc, doc, None)]
    return Response(200, {"@odata.context": _context(user_id, False), "value": value})


def _held(req: Request, svc: Any, groups: tuple[str, ...]) -> tuple[str, dict[str, Any]] | Response:
    row = find_user_or_404(req, svc, groups)
    if isinstance(row, Response):
        return row
    user_id, method_id = row.data["id"], groups[2]
    doc = svc.store.taps.get(user_id)
    if doc is None or doc["id"].lower() != method_id.lower():
        return not_found(req, method_id)
    return user_id, doc


def get_method(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /users/{id}/authentication/temporaryAccessPassMethods/{methodId}, without the pass."""
    held = _held(req, svc, groups)
    if isinstance(held, Response):
        return held
    user_id, doc = held
    return Response(200, {"@odata.context": _context(user_id, True), **_shown(svc, doc, None)})


def delete_method(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """DELETE /users/{id}/authentication/temporaryAccessPassMethods/{methodId} -> 204."""
    with svc.store.lock:
        held = _held(req, svc, groups)
        if isinstance(held, Response):
            return held
        svc.store.set_tap(held[0], None)
    svc.count("taps_deleted")
    return Response(204)


def matches(svc: Any, user: str, passcode: str) -> bool:
    """Whether ``passcode`` is the current pass of ``user`` (id or UPN)."""
    row = svc.store.find(user)
    doc = svc.store.taps.get(row.data["id"]) if row is not None else None
    return doc is not None and hmac.compare_digest(doc["sha256"], _hash(doc["salt"], passcode))

