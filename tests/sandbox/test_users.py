"""POST/GET/PATCH /users: the 201 body, every validation error of the catalogue, lookups, replication lag."""
from __future__ import annotations

import time
from typing import Any

import pytest
from sbtools import Graph, assert_error, new_user

BAD = "Request_BadRequest"
DOMAIN_MSG = ("The domain portion of the userPrincipalName property is invalid. You must use one of the verified "
              "domain names in your organization.")
WEAK = ("The specified password does not comply with password complexity requirements. Please provide a different "
        "password.")


def invalid(prop: str) -> str:
    return f"Invalid value specified for property '{prop}' of resource 'User'."


def test_create_201_body_and_headers(graph: Graph, sandbox: Any) -> None:
    r = graph.post("/users", new_user(givenName="Adele", surname="Vance", jobTitle="Engineer", department="R&D",
                                      usageLocation="gb", employeeId="E0001"),
                   headers={"client-request-id": "11111111-1111-4111-8111-111111111111"})
    assert r.status_code == 201, r.text
    assert r.headers["client-request-id"] == "11111111-1111-4111-8111-111111111111"
    assert r.headers["request-id"] and r.headers["x-ms-resource-unit"] == "1"
    body = r.json()
    assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
    assert body["@odata.id"] == (f"https://graph.microsoft.com/v2/{sandbox.tenant_id}/directoryObjects/{body['id']}"
                                 "/Microsoft.DirectoryServices.User")
    assert {k for k in body if not k.startswith("@")} == {
        "businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone", "officeLocation",
        "preferredLanguage", "surname", "userPrincipalName"}
    assert body["businessPhones"] == [] and body["mail"] is None and body["givenName"] == "Adele"
    got = graph.get(f"/users/{body['id']}", params={"$select": "usageLocation,employeeId,department,passwordProfile"})
    assert got.json()["usageLocation"] == "GB" and got.json()["employeeId"] == "E0001"
    assert got.json()["passwordProfile"]["password"] is None


CASES = [
    ("duplicate UPN (case-insensitive)", {"userPrincipalName": "SEED.USER00001@contoso.com"}, 400, BAD,
     "Another object with the same value for property userPrincipalName already exists."),
    ("unverified domain", {"userPrincipalName": "a@unverified.contoso.net"}, 400, BAD, DOMAIN_MSG),
    ("unknown domain", {"userPrincipalName": "a@example.org"}, 400, BAD, DOMAIN_MSG),
    ("federated without immutable id", {"userPrincipalName": "a@federated.contoso.com"}, 400, BAD,
     "One or more properties contains invalid values."),  # microsoftgraph/dotnetcore-console-sample#46
    ("UPN without @", {"userPrincipalName": "a#contoso.com"}, 400, BAD,
     "One or more properties contains invalid values."),
    ("UPN with two @", {"userPrincipalName": "a@b@contoso.com"}, 400, BAD,
     "One or more properties contains invalid values."),
    ("dot before @", {"userPrincipalName": "a.@contoso.com"}, 400, BAD, "Property userPrincipalName is invalid."),
    ("accent in UPN", {"userPrincipalName": "zoë@contoso.com"}, 400, BAD, "Property userPrincipalName is invalid."),
    ("space in UPN", {"userPrincipalName": "a b@contoso.com"}, 400, BAD, "Property userPrincipalName is invalid."),
    ("local part > 64", {"userPrincipalName": "a" * 65 + "@contoso.com"}, 400, BAD,
     "Property userPrincipalName is invalid."),
    ("weak password: 2 classes", {"passwordProfile": {"password": "alllowercase1"}}, 400, BAD, WEAK),
    ("weak password: too short", {"passwordProfile": {"password": "Ab1!"}}, 400, BAD, WEAK),
    ("weak password: too long", {"passwordProfile": {"password": "Ab1!" * 65}}, 400, BAD, WEAK),
    ("weak password: unicode", {"passwordProfile": {"password": "Pässword123!"}}, 400, BAD, WEAK),
    ("password contains user name", {"passwordProfile": {"password": "Test.User1-Xy9!"}}, 400, BAD,
     "Password cannot contain username."),
    ("no password", {"passwordProfile": {"forceChangePasswordNextSignIn": True}}, 400, BAD,
     "A password must be specified to create a new user."),
    ("no passwordProfile", {"passwordProfile": None}, 400, BAD, "A password must be specified to create a new user."),
    ("missing mailNickname", {"mailNickname": None}, 400, BAD,
     "Property mailNickname value is required but is empty or missing."),
    ("empty mailNickname", {"mailNickname": ""}, 400, BAD,
     "Property mailNickname value is required but is empty or missing."),
    ("space in mailNickname", {"mailNickname": "a b"}, 400, BAD, invalid("mailNickname")),
    ("@ in mailNickname", {"mailNickname": "a@b"}, 400, BAD, invalid("mailNickname")),
    ("missing displayName", {"displayName": None}, 400, BAD,
     "Property displayName value is required but is empty or missing."),
    ("blank displayName", {"displayName": "  "}, 400, BAD, invalid("displayName")),
    ("missing accountEnabled", {"accountEnabled": None}, 400, BAD,
     "Property accountEnabled value is required but is empty or missing."),
    ("accountEnabled not boolean", {"accountEnabled": "yes"}, 400, BAD, invalid("accountEnabled")),
    ("missing UPN", {"userPrincipalName": None}, 400, BAD,
     "Property userPrincipalName value is required but is empty or missing."),
    ("displayName > 256", {"displayName": "x" * 257}, 400, BAD, invalid("displayName")),
    ("givenName > 64", {"givenName": "x" * 65}, 400, BAD, invalid("givenName")),
    ("surname > 64", {"surname": "x" * 65}, 400, BAD, invalid("surname")),
    ("jobTitle > 128", {"jobTitle": "x" * 129}, 400, BAD, invalid("jobTitle")),
    ("department > 64", {"department": "x" * 65}, 400, BAD, invalid("department")),
    ("companyName > 64", {"companyName": "x" * 65}, 400, BAD, invalid("companyName")),
    ("employeeId > 16", {"employeeId": "x" * 17}, 400, BAD, invalid("employeeId")),
    ("officeLocation > 128", {"officeLocation": "x" * 129}, 400, BAD, invalid("officeLocation")),
    ("mobilePhone > 64", {"mobilePhone": "1" * 65}, 400, BAD, invalid("mobilePhone")),
    ("streetAddress > 1024", {"streetAddress": "x" * 1025}, 400, BAD, invalid("streetAddress")),
    ("city > 128", {"city": "x" * 129}, 400, BAD, invalid("city")),
    ("state > 128", {"state": "x" * 129}, 400, BAD, invalid("state")),
    ("postalCode > 40", {"postalCode": "1" * 41}, 400, BAD, invalid("postalCode")),
    ("country > 128", {"country": "x" * 129}, 400, BAD, invalid("country")),
    ("mailNickname > 64", {"mailNickname": "x" * 65}, 400, BAD, invalid("mailNickname")),
    ("usageLocation not ISO", {"usageLocation": "XX"}, 400, BAD, invalid("usageLocation")),
    ("usageLocation 3 letters", {"usageLocation": "USA"}, 400, BAD, invalid("usageLocation")),
    ("two businessPhones", {"businessPhones": ["1", "2"]}, 400, BAD, invalid("businessPhones")),
    ("accent in mail", {"mail": "zoë@contoso.com"}, 400, BAD, invalid("mail")),
    ("accent in otherMails", {"otherMails": ["zoë@contoso.com"]}, 400, BAD, invalid("otherMails")),
    ("$ in onPremisesImmutableId", {"onPremisesImmutableId": "a$b"}, 400, BAD, invalid("onPremisesImmutableId")),
    ("bad passwordPolicies", {"passwordPolicies": "Whatever"}, 400, BAD, invalid("passwordPolicies")),
    ("unknown property", {"favouriteColour": "blue"}, 400, BAD,
     "Property 'favouriteColour' does not exist as a declared property or extension property."),
]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from sandbox import Sandbox
    with Sandbox.start(tmp_path_factory.mktemp("users"), users=3) as sb:
        yield sb


@pytest.mark.parametrize("label,change,status,code,message", CASES, ids=[c[0] for c in CASES])
def test_create_errors(seeded: Any, label: str, change: dict[str, Any], status: int, code: str,
                       message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    body = new_user("".join(c for c in label if c.isalnum())[:20])
    body["userPrincipalName"] = "test.user1@contoso.com"
    for key, value in change.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    err = assert_error(Graph(seeded).post("/users", body), status, code, message)
    if label.startswith("duplicate"):
        assert err["details"] == [{"target": "userPrincipalName", "code": "ObjectConflict"}]


def test_create_valid_edge_cases(graph: Graph) -> None:
    ok = [
        new_user(1, userPrincipalName="o'brien.j-x_y!z#q^r~s@contoso.com", mailNickname="obrien"),
        new_user(2, userPrincipalName="a" * 64 + "@contoso.com"),
        new_user(3, userPrincipalName="x@federated.contoso.com", onPremisesImmutableId="abc123=="),
        new_user(4, userPrincipalName="y@fabrikam.com", passwordProfile={"password": "weakpassword"},
                 passwordPolicies="DisableStrongPassword"),
        new_user(5, userPrincipalName="z@contoso.onmicrosoft.com", displayName="x" * 256, employeeId="x" * 16,
                 businessPhones=["+44 20 7946 0000"], usageLocation="JP", preferredLanguage="en-US"),
    ]
    for body in ok:
        r = graph.post("/users", body)
        assert r.status_code == 201, (body, r.text)


def test_invalid_json_body(graph: Graph) -> None:
    r = graph.s.post(graph.url("/users"), data=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is "
                                       "set and payload is of valid JSON format.")


def test_get_by_id_upn_and_quoted_form(graph: Graph) -> None:
    uid = graph.post("/users", new_user(7, userPrincipalName="o'neil#x@contoso.com")).json()["id"]
    assert graph.get(f"/users/{uid}").json()["id"] == uid
    assert graph.get("/users/O'NEIL%23x@CONTOSO.com").json()["id"] == uid
    assert graph.get("/users('o''neil%23x@contoso.com')").json()["id"] == uid
    r = graph.get(f"/users/{uid}", params={"$select": "id,accountEnabled"})
    # the context names the $select list (user-get example)
    assert r.json() == {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,accountEnabled)/$entity",
                        "id": uid, "accountEnabled": True}
    missing = "nobody@contoso.com"
    assert_error(graph.get(f"/users/{missing}"), 404, "Request_ResourceNotFound",
                 f"Resource '{missing}' does not exist or one of its queried reference-property objects are not "
                 "present.")
    assert_error(graph.get(f"/users/{uid}", params={"$select": "nope"}), 400, "BadRequest",
                 "Could not find a property named 'nope' on type 'microsoft.graph.user'.")


def test_patch(graph: Graph) -> None:
    uid = graph.post("/users", new_user(8)).json()["id"]
    r = graph.patch(f"/users/{uid}", {"jobTitle": "Boss", "department": "Ops"})
    assert r.status_code == 204 and r.content == b""
    assert graph.get(f"/users/{uid}").json()["jobTitle"] == "Boss"
    assert_error(graph.patch(f"/users/{uid}", {"department": "x" * 65}), 400, BAD, invalid("department"))
    assert_error(graph.patch(f"/users/{uid}", {"displayName": None}), 400, BAD, invalid("displayName"))
    assert_error(graph.patch(f"/users/{uid}", {"userPrincipalName": "q@unverified.contoso.net"}), 400, BAD,
                 DOMAIN_MSG)
    other = graph.post("/users", new_user(9)).json()["userPrincipalName"]
    assert_error(graph.patch(f"/users/{uid}", {"userPrincipalName": other.upper()}), 400, BAD,
                 "Another object with the same value for property userPrincipalName already exists.")
    assert_error(graph.patch(f"/users/{uid}", {"passwordProfile": {"password": "short"}}), 400, BAD, WEAK)
    assert graph.patch(f"/users/{uid}", {"userPrincipalName": "renamed@fabrikam.com"}).status_code == 204
    assert graph.get("/users/renamed@fabrikam.com").json()["id"] == uid
    assert_error(graph.patch("/users/00000000-0000-0000-0000-000000000000", {"jobTitle": "x"}), 404,
                 "Request_ResourceNotFound")


def test_unknown_segment_and_method(graph: Graph) -> None:
    assert_error(graph.get("/widgets"), 400, "BadRequest", "Resource not found for the segment 'widgets'.")
    r = graph.s.delete(graph.url("/domains"))
    assert_error(r, 405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")


def test_replication_lag(sandbox_factory: Any) -> None:
    sb = sandbox_factory(replication_lag_ms=600)
    g = Graph(sb)
    created = g.post("/users", new_user(1))
    assert created.status_code == 201
    uid = created.json()["id"]
    msg = f"Resource '{uid}' does not exist or one of its queried reference-property objects are not present."
    assert_error(g.get(f"/users/{uid}"), 404, "Request_ResourceNotFound", msg)
    assert_error(g.patch(f"/users/{uid}", {"jobTitle": "x"}), 404, "Request_ResourceNotFound", msg)
    flt = {"$filter": "userPrincipalName eq 'test.user1@contoso.com'"}
    assert g.get("/users", params=flt).json()["value"] == []
    # uniqueness is immediate
    assert_error(g.post("/users", new_user(1)), 400, BAD,
                 "Another object with the same value for property userPrincipalName already exists.")
    time.sleep(0.65)
    assert g.get(f"/users/{uid}").status_code == 200
    assert len(g.get("/users", params=flt).json()["value"]) == 1
    assert g.patch(f"/users/{uid}", {"jobTitle": "x"}).status_code == 204


def test_object_quota(sandbox_factory: Any) -> None:
    sb = sandbox_factory(users=2, object_quota=2)
    assert_error(Graph(sb).post("/users", new_user(1)), 403, "Directory_QuotaExceeded",
                 "The directory object quota limit for the Tenant has been exceeded. Please ask your administrator "
                 "to increase the directory object quota limit for the Tenant.")
