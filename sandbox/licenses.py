"""Graph ``/subscribedSkus`` and ``POST /users/{id | upn}/assignLicense`` (graph-facts 9.1).

SKUs: ENTERPRISEPACK (Office 365 E3), SPE_E5 (Microsoft 365 E5), EXCHANGESTANDARD (Exchange Online Plan 1) and
FLOW_FREE (Power Automate Free) with their public skuIds and a few of their service plans; seats per SKU come from
the ``skus`` knob (``--sku PART=SEATS``), which may also add SKUs (skuId derived from the part number).
``consumedUnits`` counts the users holding the SKU; ``capabilityStatus`` is "Enabled".

``assignLicense`` (1 RU + 1 write), checked in this order:
1. the user is missing or within replication lag -> 404 Request_ResourceNotFound;
2. body: ``addLicenses`` / ``removeLicenses`` arrays (both required unless ``assign_license_requires_both`` is
   off: UNCONFIRMED item 10) -> 400 BadRequest ``MSG_MISSING_PARAMS`` (the OData reader's wording);
3. a skuId the tenant does not own -> 400 Request_BadRequest ``MSG_UNKNOWN_SKU`` (text UNCONFIRMED);
   removing a licence the user does not have -> 400 Request_BadRequest ``MSG_NOT_ASSIGNED`` (text UNCONFIRMED);
4. adding with no usageLocation, or one set less than ``replication_lag_ms`` ago on a user that had none
   (not yet replicated) -> 400 Request_BadRequest ``MSG_USAGE_LOCATION`` [OBS];
5. a new assignment with no free seat -> 400 Request_BadRequest ``MSG_NO_SEATS`` [OBS, "Subscription … does not
   have any available licenses."; the skuId in the middle is the sandbox's choice].
Success: 200 with the user (default properties), ``assignedLicenses`` updated (re-adding a held SKU only updates
its ``disabledPlans``), seats counted. ``disabledPlans`` are stored as given (not validated).
"""
from __future__ import annotations

import time
import uuid
from typing import Any

from . import users
from .refs import USER, entity_context, find_user_or_404
from .users import USAGE_SET_AT
from .wire import GRAPH_CONTEXT, Request, Response, Router, error, not_found

SKU_READ = ("Organization.Read.All", "Organization.ReadWrite.All", "LicenseAssignment.Read.All",
            "LicenseAssignment.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
LICENSE_WRITE = ("User.ReadWrite.All", "LicenseAssignment.ReadWrite.All", "Directory.ReadWrite.All")

MSG_USAGE_LOCATION = "License assignment cannot be done for user with invalid usage location."
MSG_NO_SEATS = "Subscription {0} does not have any available licenses."
MSG_UNKNOWN_SKU = "License {0} does not correspond to a valid company License."
MSG_NOT_ASSIGNED = "User does not have a corresponding license {0}."
MSG_MISSING_PARAMS = ("One or more parameters of the operation 'assignLicense' are missing from the request "
                      "payload. The missing parameters are: {0}.")
MSG_BAD_PARAM = "Invalid value specified for property '{0}' of resource 'User'."

#: part number -> (skuId, [(servicePlanName, servicePlanId)])
CATALOGUE: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "ENTERPRISEPACK": ("6fd2c87f-b296-42f0-b197-1e91e994b900", [
        ("EXCHANGE_S_ENTERPRISE", "efb87545-963c-4e0d-99df-69c6916d9eb0"),
        ("SHAREPOINTENTERPRISE", "5dbe027f-2339-4123-9542-606e4d348a72"),
        ("TEAMS1", "57ff2da0-773e-42df-b2af-ffb7a2317929"),
        ("OFFICESUBSCRIPTION", "43de0ff5-c92c-492b-9116-175376d08c38")]),
    "SPE_E5": ("06ebc4ee-1bb5-47dd-8120-11324bc54e06", [
        ("EXCHANGE_S_ENTERPRISE", "efb87545-963c-4e0d-99df-69c6916d9eb0"),
        ("SHAREPOINTENTERPRISE", "5dbe027f-2339-4123-9542-606e4d348a72"),
        ("TEAMS1", "57ff2da0-773e-42df-b2af-ffb7a2317929"),
        ("AAD_PREMIUM_P2", "eec0eb4f-6444-4f95-aba0-50c24d67f998")]),
    "EXCHANGESTANDARD": ("4b9405b0-7788-4568-add1-99614e613b69", [
        ("EXCHANGE_S_STANDARD", "9aaf7827-d63c-4b61-89c3-182f06f82e5c")]),
    "FLOW_FREE": ("f30db892-07e9-47e9-837c-80727f46fd3d", [
        ("FLOW_P2_VIRAL", "50e68c76-46c6-4674-81f9-75456511b170")]),
}


def register(router: Router) -> None:
    """Add the subscribedSkus and assignLicense routes."""
    router.add("GET", r"/subscribedSkus", SKU_READ, list_skus)
    router.add("GET", r"/subscribedSkus/([^/]+)", SKU_READ, get_sku)
    router.add("POST", USER + r"/assignLicense", LICENSE_WRITE, assign_license)


def sku_id(part: str) -> str:
    """The skuId of a part number (the public one for the catalogue, a stable derived one otherwise)."""
    known = CATALOGUE.get(part)
    if known is not None:
        return known[0]
    return str(uuid.UUID(bytes=uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-sku:{part}").bytes, version=4))


def sku_documents(svc: Any) -> list[dict[str, Any]]:
    """The tenant's subscribedSku objects, with seats from the knob and consumption from the store."""
    out = []
    for part, seats in svc.knobs.skus.items():
        sid = sku_id(part)
        plans = CATALOGUE.get(part, ("", [(f"{part}_PLAN", sku_id(part + "_PLAN"))]))[1]
        out.append({
            "accountId": svc.tenant_id, "accountName": "Contoso", "appliesTo": "User",
            "capabilityStatus": "Enabled", "consumedUnits": svc.store.consumed.get(sid, 0),
            "id": f"{svc.tenant_id}_{sid}",
            "prepaidUnits": {"enabled": seats, "lockedOut": 0, "suspended": 0, "warning": 0},
            "servicePlans": [{"servicePlanId": pid, "servicePlanName": name, "provisioningStatus": "Success",
                              "appliesTo": "User"} for name, pid in plans],
            "skuId": sid, "skuPartNumber": part, "subscriptionIds": [str(uuid.uuid5(uuid.NAMESPACE_URL, sid))],
        })
    return out


def exchange_skus(svc: Any) -> set[str]:
    """skuIds whose service plans include an Exchange Online mailbox."""
    return {d["skuId"] for d in sku_documents(svc)
            if any(p["servicePlanName"].startswith("EXCHANGE_S_") for p in d["servicePlans"])}


def list_skus(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /subscribedSkus (3 RU)."""
    return Response(200, {"@odata.context": f"{GRAPH_CONTEXT}#subscribedSkus", "value": sku_documents(svc)})


def get_sku(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /subscribedSkus/{tenantId_skuId}."""
    for doc in sku_documents(svc):
        if doc["id"].lower() == groups[0].lower():
            return Response(200, {"@odata.context": f"{GRAPH_CONTEXT}#subscribedSkus/$entity", **doc})
    return not_found(req, groups[0])


def _parse(req: Request, svc: Any) -> tuple[list[dict[str, Any]], list[str]] | Response:
    body = req.body
    if not isinstance(body, dict):
        return error(req, 400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                                             "header is set and payload is of valid JSON format.")
    missing = [p for p in ("addLicenses", "removeLicenses") if p not in body]
    if missing and svc.knobs.assign_license_requires_both:
        return error(req, 400, "BadRequest", MSG_MISSING_PARAMS.format(", ".join(missing)))
    add, remove = body.get("addLicenses") or [], body.get("removeLicenses") or []
    if not isinstance(add, list) or not all(isinstance(a, dict) and isinstance(a.get("skuId"), str)
                                            and isinstance(a.get("disabledPlans") or [], list) for a in add):
        return error(req, 400, "Request_BadRequest", MSG_BAD_PARAM.format("addLicenses"))
    if not isinstance(remove, list) or not all(isinstance(r, str) for r in remove):
        return error(req, 400, "Request_BadRequest", MSG_BAD_PARAM.format("removeLicenses"))
    return add, remove


def usage_location_ready(svc: Any, data: dict[str, Any]) -> bool:
    """Whether the user's usageLocation is set and replicated."""
    if not data.get("usageLocation"):
        return False
    set_at = data.get(USAGE_SET_AT)
    return set_at is None or time.time() - float(set_at) >= svc.knobs.replication_lag_ms / 1000.0


def assign_license(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """POST /users/{id | upn}/assignLicense -> 200 with the user."""
    row = find_user_or_404(req, svc, groups)
    if isinstance(row, Response):
        return row
    parsed = _parse(req, svc)
    if isinstance(parsed, Response):
        return parsed
    add, remove = parsed
    seats = {sku_id(part): n for part, n in svc.knobs.skus.items()}
    with svc.store.lock:
        held = {str(lic["skuId"]).lower(): lic for lic in row.data.get("assignedLicenses") or []}
        for sid in [a["skuId"] for a in add] + list(remove):
            if sid.lower() not in seats:
                return error(req, 400, "Request_BadRequest", MSG_UNKNOWN_SKU.format(sid))
        for sid in remove:
            if sid.lower() not in held:
                return error(req, 400, "Request_BadRequest", MSG_NOT_ASSIGNED.format(sid))
        if add and not usage_location_ready(svc, row.data):
            return error(req, 400, "Request_BadRequest", MSG_USAGE_LOCATION)
        new_ids = {a["skuId"].lower() for a in add} - set(held)
        for sid in sorted(new_ids):
            if svc.store.consumed.get(sid, 0) >= seats[sid]:
                return error(req, 400, "Request_BadRequest", MSG_NO_SEATS.format(sid))
        for sid in remove:
            held.pop(sid.lower(), None)
        for a in add:
            held[a["skuId"].lower()] = {"disabledPlans": [str(p) for p in a.get("disabledPlans") or []],
                                        "skuId": a["skuId"].lower()}
        svc.store.update_user(row, {"assignedLicenses": list(held.values())})
    svc.count("licenses_assigned", len(new_ids))
    svc.count("licenses_removed", len(remove))
    body = {"@odata.context": entity_context("users")}
    body.update(users.shape(row.data, None))
    return Response(200, body)
