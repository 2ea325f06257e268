"""Graph ``/domains`` and ``/organization`` (graph-facts 6.2) for the fixed sandbox tenant.

Permissions: domains need Domain.Read.All (UNCONFIRMED item 9: assumed least privileged) or Directory.*;
organization needs Organization.Read.All / Organization.ReadWrite.All or Directory.*.
"""
from __future__ import annotations

from typing import Any

from .config import DOMAINS, TENANT_ID, TENANT_NAME
from .wire import GRAPH_CONTEXT, Request, Response, Router, not_found

DOMAIN_READ = ("Domain.Read.All", "Domain.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
ORG_READ = ("Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All",
            "Directory.ReadWrite.All", "User.Read.All", "User.ReadWrite.All")


def domain_documents() -> list[dict[str, Any]]:
    """The tenant's domains as ``GET /domains`` lists them."""
    out = []
    for name, auth, default, initial, verified in DOMAINS:
        out.append({
            "id": name, "authenticationType": auth, "availabilityStatus": None, "isAdminManaged": True,
            "isDefault": default, "isInitial": initial, "isRoot": True, "isVerified": verified,
            "passwordNotificationWindowInDays": 14, "passwordValidityPeriodInDays": 2147483647,
            "supportedServices": ["Email", "OfficeCommunicationsOnline"] if verified else [], "state": None})
    return out


def domain_index() -> dict[str, dict[str, Any]]:
    """Domains by lower-case name."""
    return {d["id"].lower(): d for d in domain_documents()}


def register(router: Router) -> None:
    """Add the domains and organization routes."""
    router.add("GET", r"/domains", DOMAIN_READ, list_domains)
    router.add("GET", r"/domains/([^/]+)", DOMAIN_READ, get_domain)
    router.add("GET", r"/organization", ORG_READ, list_organization)
    router.add("GET", r"/organization/([^/]+)", ORG_READ, get_organization)


def list_domains(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /domains."""
    return Response(200, {"@odata.context": f"{GRAPH_CONTEXT}#domains", "value": domain_documents()})


def get_domain(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /domains/{id}."""
    doc = svc.domains.get(groups[0].lower())
    if doc is None:
        return not_found(req, groups[0])
    return Response(200, {"@odata.context": f"{GRAPH_CONTEXT}#domains/$entity", **doc})


def organization_document() -> dict[str, Any]:
    """The tenant's organization object."""
    return {
        "id": TENANT_ID, "displayName": TENANT_NAME, "tenantType": "AAD", "countryLetterCode": "US",
        "preferredLanguage": "en", "createdDateTime": "2024-01-01T00:00:00Z", "deletedDateTime": None,
        "businessPhones": [], "city": None, "country": None, "postalCode": None, "state": None, "street": None,
        "technicalNotificationMails": ["admin@contoso.com"], "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [], "marketingNotificationEmails": [],
        "onPremisesSyncEnabled": None, "onPremisesLastSyncDateTime": None,
        "assignedPlans": [], "provisionedPlans": [], "privacyProfile": None,
        "verifiedDomains": [{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": default,
                             "isInitial": initial, "name": name, "type": auth}
                            for name, auth, default, initial, verified in DOMAINS if verified],
    }


def list_organization(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /organization."""
    return Response(200, {"@odata.context": f"{GRAPH_CONTEXT}#organization", "value": [organization_document()]})


def get_organization(req: Request, svc: Any, groups: tuple[str, ...]) -> Response:
    """GET /organization/{id}."""
    if groups[0].lower() != TENANT_ID:
        return not_found(req, groups[0])
    return Response(200, {"@odata.context": f"{GRAPH_CONTEXT}#organization/$entity", **organization_document()})
