"""Each row of issue 17's table: what Graph / Entra answer (source in the sandbox's docstrings), over real HTTPS."""
from __future__ import annotations

from typing import Any

import requests
from sbtools import Graph, assert_error, msal_app, new_user

BAD = "Request_BadRequest"
CTX = "https://graph.microsoft.com/v1.0/$metadata"
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def _token(sb: Any, **form: str) -> requests.Response:
    data = {"client_id": sb.client_id, "client_secret": sb.client_secret, "grant_type": "client_credentials",
            "scope": f"{sb.graph_endpoint}/.default", **form}
    return requests.post(f"{sb.authority_host}/{sb.tenant_id}/oauth2/v2.0/token", data=data, verify=str(sb.ca_bundle))


def _first_line(r: requests.Response) -> str:
    return str(r.json()["error_description"]).splitlines()[0]


def test_expired_client_secret(sandbox_factory: Any) -> None:  # row 1
    sb = sandbox_factory(secret_expired=True)
    r = _token(sb)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client" and r.json()["error_codes"] == [7000222]
    assert _first_line(r) == (
        f"AADSTS7000222: The provided client secret keys for app '{sb.client_id}' are expired. Visit the Azure portal "
        "to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials "
        "for added security: https://aka.ms/certCreds.")
    assert _token(sb, client_secret="wrong").json()["error_codes"] == [7000215]  # a wrong secret is still wrong
    cert = sb.certificate_path.read_text()
    key_pem = cert[cert.index("-----BEGIN ENCRYPTED PRIVATE KEY"):]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    thumb = x509.load_pem_x509_certificate(cert.encode()).fingerprint(hashes.SHA1()).hex()
    app = msal_app(sb, {"private_key": key_pem, "thumbprint": thumb, "passphrase": sb.certificate_password})
    assert "access_token" in app.acquire_token_for_client(scopes=[f"{sb.graph_endpoint}/.default"])


def test_unknown_default_scope_text(sandbox: Any) -> None:  # row 13
    r = _token(sandbox, scope="https://foo.microsoft.com/.default")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    assert _first_line(r) == ("AADSTS70011: The provided value for the input parameter 'scope' is not valid. The "
                              "scope https://foo.microsoft.com/.default is not valid.")


def test_scope_of_the_sandbox_host_without_port(sandbox: Any) -> None:
    # kiota derives the scope from the request's host name only: https://127.0.0.1/.default
    result = msal_app(sandbox).acquire_token_for_client(scopes=["https://127.0.0.1/.default"])
    assert "access_token" in result, result
    assert Graph(sandbox, result["access_token"]).get("/domains").status_code == 200


def test_more_than_15_or_clauses(graph: Graph) -> None:  # row 2
    eighteen = " or ".join(f"mail eq 'u{i}@contoso.com'" for i in range(18))
    assert_error(graph.get("/users", params={"$filter": eighteen}), 400, "Request_UnsupportedQuery",
                 "Too many child clauses specified in search filter expression containing 'OR' operators: 18. "
                 "Max allowed: 15.")
    sixteen = "id in (" + ",".join(f"'{i}'" for i in range(16)) + ")"
    assert_error(graph.get("/users", params={"$filter": sixteen}), 400, "Request_UnsupportedQuery",
                 "Too many child clauses specified in search filter expression containing 'OR' operators: 16. "
                 "Max allowed: 15.")
    assert_error(graph.get("/groups", params={"$filter": eighteen}), 400, "Request_UnsupportedQuery")
    fifteen = " or ".join(f"mail eq 'u{i}@contoso.com'" for i in range(15))
    assert graph.get("/users", params={"$filter": fifteen}).status_code == 200
    assert graph.get("/users", params={"$filter": "id in (" + ",".join(f"'{i}'" for i in range(15)) + ")"}) \
        .status_code == 200


def test_delete_user_then_deleted_items_and_restore(graph: Graph, sandbox: Any) -> None:  # row 3
    uid = graph.post("/users", new_user(1)).json()["id"]
    boss = graph.post("/users", new_user(2)).json()["id"]
    sales = sandbox.groups["Sales"]
    assert graph.post(f"/groups/{sales}/members/$ref", {"@odata.id": f"{CTX[:-10]}/directoryObjects/{uid}"}) \
        .status_code == 204
    assert graph.put(f"/users/{uid}/manager/$ref", {"@odata.id": f"{CTX[:-10]}/users/{boss}"}).status_code == 204
    r = graph.delete(f"/users/{uid}")
    assert r.status_code == 204 and r.content == b""
    assert_error(graph.get(f"/users/{uid}"), 404, "Request_ResourceNotFound")
    assert_error(graph.delete(f"/users/{uid}"), 404, "Request_ResourceNotFound")
    assert [u["id"] for u in graph.get("/users").json()["value"]] == [boss]
    assert graph.get(f"/groups/{sales}/members").json()["value"] == []
    listed = graph.get("/directory/deletedItems/microsoft.graph.user").json()
    assert listed["@odata.context"] == f"{CTX}#users"
    [item] = listed["value"]
    assert item["id"] == uid and item["userPrincipalName"] == "test.user1@contoso.com" and item["deletedDateTime"]
    sel = graph.get("/directory/deletedItems/microsoft.graph.user", params={"$select": "id,deletedDateTime"}).json()
    assert sel["@odata.context"] == f"{CTX}#users(id,deletedDateTime)" and set(sel["value"][0]) == {"id",
                                                                                                    "deletedDateTime"}
    got = graph.get(f"/directory/deletedItems/{uid}").json()
    assert got["@odata.context"] == f"{CTX}#directoryObjects/$entity"
    assert got["@odata.type"] == "#microsoft.graph.user" and got["id"] == uid
    assert_error(graph.get("/directory/deletedItems"), 400, "BadRequest")  # the OData cast is required
    # the UPN of a deleted user is free again; restoring it then conflicts unless renamed
    other = graph.post("/users", new_user(1)).json()["id"]
    assert_error(graph.post(f"/directory/deletedItems/{uid}/restore"), 400, BAD,
                 "Another object with the same value for property userPrincipalName already exists.")
    r = graph.post(f"/directory/deletedItems/{uid}/restore", {"newUserPrincipalName": "back@contoso.com"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["@odata.context"] == f"{CTX}#directoryObjects/$entity" and body["@odata.type"] == \
        "#microsoft.graph.user"
    assert body["id"] == uid and body["userPrincipalName"] == "back@contoso.com"
    assert graph.get("/users/back@contoso.com").json()["id"] == uid
    assert graph.get("/directory/deletedItems/microsoft.graph.user").json()["value"] == []
    assert_error(graph.post(f"/directory/deletedItems/{uid}/restore"), 404, "Request_ResourceNotFound")
    assert graph.delete(f"/users/{other}").status_code == 204
    assert graph.delete(f"/directory/deletedItems/{other}").status_code == 204  # permanently
    assert_error(graph.get(f"/directory/deletedItems/{other}"), 404, "Request_ResourceNotFound")


def test_deleted_items_survive_restart(tmp_path: Any) -> None:
    from sandbox import Sandbox
    with Sandbox.start(tmp_path) as sb:
        g = Graph(sb)
        uid = g.post("/users", new_user(1)).json()["id"]
        assert g.delete(f"/users/{uid}").status_code == 204
    with Sandbox.start(tmp_path) as sb:
        g = Graph(sb)
        assert [u["id"] for u in g.get("/directory/deletedItems/microsoft.graph.user").json()["value"]] == [uid]
        assert g.post(f"/directory/deletedItems/{uid}/restore").status_code == 200
        assert g.post("/users", new_user(2)).status_code == 201
        assert [u["userPrincipalName"] for u in g.get("/users").json()["value"]] == \
            ["test.user1@contoso.com", "test.user2@contoso.com"]


def test_expand_manager(graph: Graph) -> None:  # row 4
    uid = graph.post("/users", new_user(1)).json()["id"]
    boss = graph.post("/users", new_user(2)).json()["id"]
    assert graph.put(f"/users/{uid}/manager/$ref", {"@odata.id": f"{CTX[:-10]}/users/{boss}"}).status_code == 204
    one = graph.get(f"/users/{uid}", params={"$expand": "manager"}).json()
    assert one["manager"]["@odata.type"] == "#microsoft.graph.user" and one["manager"]["id"] == boss
    assert one["manager"]["displayName"] == "Test User 2"
    listed = graph.get("/users", params={"$expand": "manager($select=id,displayName)", "$select": "id"}).json()
    by_id = {u["id"]: u for u in listed["value"]}
    assert by_id[uid]["manager"] == {"@odata.type": "#microsoft.graph.user", "id": boss, "displayName": "Test User 2"}
    assert "manager" not in by_id[boss]
    assert_error(graph.get("/users", params={"$expand": "nope"}), 400, "BadRequest",
                 "Could not find a property named 'nope' on type 'microsoft.graph.user'.")


def test_send_mail_save_to_sent_items_either_spelling(graph: Graph, sandbox: Any) -> None:  # row 5
    graph.post("/users", new_user(1))
    msg = {"subject": "Hi", "body": {"contentType": "Text", "content": "x"},
           "toRecipients": [{"emailAddress": {"address": "a@example.org"}}]}
    assert graph.post("/users/test.user1@contoso.com/sendMail",
                      {"Message": msg, "SaveToSentItems": False}).status_code == 202
    assert graph.post("/users/test.user1@contoso.com/sendMail",
                      {"message": msg, "saveToSentItems": False}).status_code == 202
    assert graph.post("/users/test.user1@contoso.com/sendMail", {"message": msg}).status_code == 202
    assert [m["saveToSentItems"] for m in sandbox.mail()] == [False, False, True]


def _by_id(r: requests.Response) -> dict[str, dict[str, Any]]:
    assert r.status_code == 200, r.text
    return {x["id"]: x for x in r.json()["responses"]}


def test_batch_ids_are_case_insensitive(graph: Graph) -> None:  # row 6
    reqs = [{"id": "a", "method": "GET", "url": "/domains"}, {"id": "A", "method": "GET", "url": "/domains"}]
    assert_error(graph.post("/$batch", {"requests": reqs}), 400, "BadRequest",
                 "Batch request ids must be unique (compared case-insensitively) and non-empty.")
    dep = [{"id": "a", "method": "GET", "url": "/domains"},
           {"id": "b", "method": "GET", "url": "/domains", "dependsOn": ["A"]}]
    res = _by_id(graph.post("/$batch", {"requests": dep}))
    assert res["a"]["status"] == res["b"]["status"] == 200


def test_batch_item_urls(graph: Graph) -> None:  # rows 7, 8
    reqs = [{"id": "1", "method": "GET", "url": "/v1.0/users"}, {"id": "2", "method": "GET", "url": "users"}]
    res = _by_id(graph.post("/$batch", {"requests": reqs}))
    assert res["1"]["status"] == 400 and res["1"]["body"]["error"]["code"] == "BadRequest"
    assert res["1"]["body"]["error"]["message"] == "Resource not found for the segment 'v1.0'."
    assert res["2"]["status"] == 200
    absolute = [{"id": "1", "method": "GET", "url": f"{graph.root}/users"}]
    assert_error(graph.post("/$batch", {"requests": absolute}), 400, "BadRequest", "Invalid batch payload format.")


def test_batch_item_headers(graph: Graph) -> None:  # row 9
    reqs = [{"id": "ok", "method": "GET", "url": "/domains"}, {"id": "no", "method": "GET", "url": "/users/nobody"},
            {"id": "none", "method": "DELETE", "url": "/domains"}]
    res = _by_id(graph.post("/$batch", {"requests": reqs}))
    assert res["ok"]["headers"] == {"Cache-Control": "no-cache", "OData-Version": "4.0", "Content-Type": ODATA_JSON,
                                    "x-ms-resource-unit": "1"}
    assert res["no"]["headers"] == {"Cache-Control": "no-cache", "Content-Type": "application/json",
                                    "x-ms-resource-unit": "1"}
    assert res["none"]["status"] == 405  # row 14, inside a batch as in the json-batching example
    assert res["none"]["body"]["error"]["message"] == "Specified HTTP method is not allowed for the request target."


def test_invalid_mail_nickname_details(graph: Graph) -> None:  # row 10
    for nick in ("a b", "a@b", "x" * 65):
        err = assert_error(graph.post("/users", new_user(1, mailNickname=nick)), 400, BAD,
                           "Invalid value specified for property 'mailNickname' of resource 'User'.")
        assert err["details"] == [{"code": "InvalidValue", "target": "mailNickname"}]


def test_identities_with_select(graph: Graph) -> None:  # row 15
    uid = graph.post("/users", new_user(1)).json()["id"]
    upn_identity = {"signInType": "userPrincipalName", "issuer": "contoso.com",
                    "issuerAssignedId": "test.user1@contoso.com"}
    r = graph.get(f"/users/{uid}", params={"$select": "identities"}).json()
    assert r == {"@odata.context": f"{CTX}#users(identities)/$entity", "identities": [upn_identity], "id": uid}
    assert graph.patch(f"/users/{uid}", {"userPrincipalName": "moved@contoso.com"}).status_code == 204
    listed = graph.get("/users", params={"$select": "id,identities"}).json()["value"]
    assert listed[0]["identities"] == [{**upn_identity, "issuerAssignedId": "moved@contoso.com"}]
    assert_error(graph.post("/users", new_user(2, identities={"signInType": "emailAddress"})), 400, BAD,
                 "Invalid value specified for property 'identities' of resource 'User'.")  # a collection


def test_groups_have_no_creation_options(graph: Graph, sandbox: Any) -> None:  # row 17
    assert all("creationOptions" not in g for g in graph.get("/groups").json()["value"])
    assert "creationOptions" not in graph.get(f"/groups/{sandbox.groups['Sales']}").json()
    assert_error(graph.get("/groups", params={"$select": "creationOptions"}), 400, "BadRequest",
                 "Could not find a property named 'creationOptions' on type 'microsoft.graph.group'.")
    r = graph.get(f"/groups/{sandbox.groups['Sales']}", params={"$select": "id,displayName"}).json()
    assert r["@odata.context"] == f"{CTX}#groups(id,displayName)/$entity"


def test_double_slash_after_the_version(graph: Graph) -> None:
    graph.post("/users", new_user(1))
    r = graph.s.get(f"{graph.root}//users")
    assert r.status_code == 200 and [u["userPrincipalName"] for u in r.json()["value"]] == ["test.user1@contoso.com"]
    assert graph.s.get(f"{graph.root}//users//test.user1@contoso.com").status_code == 200



def test_deleted_users_filter(graph: Graph) -> None:
    """``$filter`` on the deleted users (the list page's query parameters), with the /users 15-clause limit."""
    a = graph.post("/users", {**new_user(1), "employeeId": "E1"}).json()["id"]
    b = graph.post("/users", {**new_user(2), "employeeId": "E2"}).json()["id"]
    for uid in (a, b):
        assert graph.delete(f"/users/{uid}").status_code == 204
    path = "/directory/deletedItems/microsoft.graph.user"
    got = graph.get(path, params={"$filter": "employeeId in ('E2','E9')"}).json()["value"]
    assert [u["id"] for u in got] == [b]
    got = graph.get(path, params={"$filter": "userPrincipalName in ('test.user1@contoso.com')"}).json()["value"]
    assert [u["id"] for u in got] == [a]
    got = graph.get(path, params={"$filter": "mailNickname eq 'test.user2'"}).json()["value"]
    assert [u["id"] for u in got] == [b]
    many = ",".join(f"'x{n}'" for n in range(16))
    assert_error(graph.get(path, params={"$filter": f"employeeId in ({many})"}), 400, "Request_UnsupportedQuery")
    # a deleted user's UPN and mailNickname do not refuse a create (docs/graph-facts-local.md, Step 13)
    again = graph.post("/users", new_user(1, mailNickname="test.user2", employeeId="E2"))
    assert again.status_code == 201, again.text
    assert again.json()["id"] not in (a, b)
