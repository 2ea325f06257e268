"""Follow-ups after create (graph-facts 9): groups and members/$ref, manager/$ref, replication lag, $batch."""
from __future__ import annotations

import time
from typing import Any

from sbtools import Graph, assert_error, new_user

from sandbox.config import DEFAULT_ROLES

ALL_STAFF = "3eb50601-ad06-45a4-ab30-12e4a5c86829"
ENGINEERING = "94015d12-d593-44b5-ad4b-ab79c5173796"
SALES = "ceb5a0f4-3a30-4b35-a9cf-65f4106a82be"
FINANCE = "3f7d7fab-7bf2-4111-9b22-e8f6b3a646d2"
HELPDESK = "88ebd16a-7867-4de8-b268-88513a626b70"
E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
EXISTS = "One or more added object references already exist for the following modified properties: 'members'."
DENIED = "Insufficient privileges to complete the operation."
NO_MANAGER = "Resource 'manager' does not exist or one of its queried reference-property objects are not present."


def missing(key: str) -> str:
    return f"Resource '{key}' does not exist or one of its queried reference-property objects are not present."


def ref(uid: str, kind: str = "directoryObjects") -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/{kind}/{uid}"}


def create(g: Graph, n: int | str, **extra: Any) -> str:
    r = g.post("/users", new_user(n, **extra))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_groups_list_filter_select_get(graph: Graph, sandbox: Any) -> None:
    r = graph.get("/groups")
    assert r.status_code == 200 and r.headers["x-ms-resource-unit"] == "1"
    body = r.json()
    assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#groups"
    names = {g["displayName"]: g for g in body["value"]}
    assert names.keys() == {"All Staff", "Engineering", "Sales", "Finance", "Helpdesk Admins"}
    assert sandbox.groups == {n: g["id"] for n, g in names.items()}
    assert names["All Staff"]["id"] == ALL_STAFF and names["All Staff"]["groupTypes"] == ["Unified"]
    assert names["All Staff"]["mail"] == "allstaff@contoso.com" and names["All Staff"]["mailEnabled"] is True
    assert names["Engineering"]["groupTypes"] == [] and names["Engineering"]["securityEnabled"] is True
    assert names["Helpdesk Admins"]["isAssignableToRole"] is True and names["Finance"]["isAssignableToRole"] is None

    def ids(query: str) -> list[str]:
        got = graph.get(f"/groups?{query}")
        assert got.status_code == 200, got.text
        return [g["id"] for g in got.json()["value"]]

    assert ids("$filter=displayName eq 'engineering'") == [ENGINEERING]
    assert ids("$filter=startsWith(displayName,'Fin')") == [FINANCE]
    assert ids("$filter=displayName in ('Sales','Finance')") == [SALES, FINANCE]
    assert ids("$filter=displayName eq 'Nope'") == []
    sel = graph.get("/groups", params={"$select": "id,displayName", "$filter": "mailNickname eq 'sales'"}).json()
    assert sel["value"] == [{"id": SALES, "displayName": "Sales"}]
    assert sel["@odata.context"].endswith("#groups(id,displayName)")
    seen, url, pages = [], "/groups?$top=2&$select=id", 0
    while url:
        page = graph.get(url).json()
        seen += [g["id"] for g in page["value"]]
        url, pages = page.get("@odata.nextLink"), pages + 1
    assert pages == 3 and len(set(seen)) == 5
    assert_error(graph.get("/groups?$select=nope"), 400, "BadRequest",
                 "Could not find a property named 'nope' on type 'microsoft.graph.group'.")
    assert_error(graph.get("/groups?$filter=visibility eq 'Private'"), 400, "Request_UnsupportedQuery",
                 "Unsupported or invalid query filter clause specified for property 'visibility' of resource 'Group'.")
    assert_error(graph.get("/groups?$top=1000"), 400, "Request_UnsupportedQuery",
                 "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive.")
    one = graph.get(f"/groups/{FINANCE}")
    assert one.status_code == 200 and one.json()["displayName"] == "Finance"
    assert one.json()["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#groups/$entity"
    bad = "00000000-0000-4000-8000-000000000000"
    assert_error(graph.get(f"/groups/{bad}"), 404, "Request_ResourceNotFound", missing(bad))


def test_members_ref_add_list_remove(graph: Graph, sandbox: Any) -> None:
    a, b = create(graph, 1), create(graph, 2)
    r = graph.post(f"/groups/{ALL_STAFF}/members/$ref", ref(a))
    assert r.status_code == 204 and r.content == b"" and r.headers["x-ms-resource-unit"] == "1"
    assert graph.post(f"/groups/{ALL_STAFF}/members/$ref", ref(b, "users")).status_code == 204
    assert_error(graph.post(f"/groups/{ALL_STAFF}/members/$ref", ref(a)), 400, "Request_BadRequest", EXISTS)
    assert_error(graph.post(f"/groups/{ALL_STAFF}/members/$ref", ref(a, "users")), 400, "Request_BadRequest", EXISTS)
    ghost = "11111111-2222-4333-8444-555555555555"
    assert_error(graph.post(f"/groups/{ALL_STAFF}/members/$ref", ref(ghost)), 404, "Request_ResourceNotFound",
                 missing(ghost))
    assert_error(graph.post(f"/groups/{ghost}/members/$ref", ref(a)), 404, "Request_ResourceNotFound", missing(ghost))
    assert_error(graph.post(f"/groups/{ALL_STAFF}/members/$ref", {"id": a}), 400, "BadRequest",
                 "Missing '@odata.id' in the request body.")
    assert_error(graph.post(f"/groups/{ALL_STAFF}/members/$ref", {"@odata.id": "https://x/v1.0/groups"}), 400,
                 "BadRequest", "Invalid URL format specified in @odata.bind for members")
    listed = graph.get(f"/groups/{ALL_STAFF}/members")
    assert listed.status_code == 200 and listed.headers["x-ms-resource-unit"] == "3"
    body = listed.json()
    assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#directoryObjects"
    assert [m["id"] for m in body["value"]] == [a, b]
    assert body["value"][0]["@odata.type"] == "#microsoft.graph.user"
    assert body["value"][0]["userPrincipalName"] == "test.user1@contoso.com"
    sel = graph.get(f"/groups/{ALL_STAFF}/members?$select=userPrincipalName&$top=1")
    assert sel.headers["x-ms-resource-unit"] == "1"  # 3, $select -1, $top<20 -1
    assert sel.json()["value"] == [{"@odata.type": "#microsoft.graph.user", "userPrincipalName":
                                    "test.user1@contoso.com", "id": a}]
    nxt = graph.get(sel.json()["@odata.nextLink"]).json()
    assert [m["id"] for m in nxt["value"]] == [b] and "@odata.nextLink" not in nxt
    assert graph.get(f"/groups/{SALES}/members").json()["value"] == []
    assert graph.delete(f"/groups/{ALL_STAFF}/members/{a}/$ref").status_code == 204
    assert_error(graph.delete(f"/groups/{ALL_STAFF}/members/{a}/$ref"), 404, "Request_ResourceNotFound", missing(a))
    assert [m["id"] for m in graph.get(f"/groups/{ALL_STAFF}/members").json()["value"]] == [b]
    stats = sandbox.stats()
    assert stats["members_added"] == 2 and stats["writes"] >= 2 + 2 + 1


def test_membership_permissions(sandbox_factory: Any) -> None:
    sb = sandbox_factory()
    g = Graph(sb)
    uid = create(g, 1)
    assert_error(g.post(f"/groups/{HELPDESK}/members/$ref", ref(uid)), 403, "Authorization_RequestDenied", DENIED)
    assert_error(g.patch(f"/groups/{HELPDESK}", {"members@odata.bind": [ref(uid)["@odata.id"]]}), 403,
                 "Authorization_RequestDenied", DENIED)
    sb.set_knobs(roles=DEFAULT_ROLES + ("RoleManagement.ReadWrite.Directory",))
    assert Graph(sb).post(f"/groups/{HELPDESK}/members/$ref", ref(uid)).status_code == 204
    sb.set_knobs(roles=("GroupMember.ReadWrite.All",))  # a user member also needs User.ReadWrite.All (9.2)
    assert_error(Graph(sb).post(f"/groups/{ALL_STAFF}/members/$ref", ref(uid)), 403, "Authorization_RequestDenied",
                 DENIED)
    sb.set_knobs(roles=("Group.Read.All", "User.ReadWrite.All"))
    reader = Graph(sb)
    assert_error(reader.post(f"/groups/{ALL_STAFF}/members/$ref", ref(uid)), 403, "Authorization_RequestDenied",
                 DENIED)
    assert reader.get(f"/groups/{HELPDESK}/members").json()["value"][0]["id"] == uid
    sb.set_knobs(roles=("Directory.ReadWrite.All",))
    assert Graph(sb).post(f"/groups/{ALL_STAFF}/members/$ref", ref(uid)).status_code == 204
    sb.set_knobs(roles=("User.Read.All",))
    assert_error(Graph(sb).get("/groups"), 403, "Authorization_RequestDenied", DENIED)


def test_patch_members_bind_all_or_nothing(graph: Graph) -> None:
    uids = [create(graph, i) for i in range(1, 4)]
    urls = [f"https://graph.microsoft.com/v1.0/directoryObjects/{u}" for u in uids]
    r = graph.patch(f"/groups/{ENGINEERING}", {"members@odata.bind": urls[:2]})
    assert r.status_code == 204 and r.headers["x-ms-resource-unit"] == "1"
    members = lambda: [m["id"] for m in graph.get(f"/groups/{ENGINEERING}/members").json()["value"]]  # noqa: E731
    assert members() == uids[:2]
    ghost = "99999999-2222-4333-8444-555555555555"
    assert_error(graph.patch(f"/groups/{ENGINEERING}", {"members@odata.bind": [urls[2], urls[0].replace(
        uids[0], ghost)]}), 404, "Request_ResourceNotFound", missing(ghost))
    assert_error(graph.patch(f"/groups/{ENGINEERING}", {"members@odata.bind": [urls[2], urls[0]]}), 400,
                 "Request_BadRequest", EXISTS)
    assert members() == uids[:2]  # nothing of the failed requests was applied
    assert_error(graph.patch(f"/groups/{ENGINEERING}", {"members@odata.bind": [urls[2]] * 21}), 400,
                 "Request_BadRequest", "The number of references in 'members@odata.bind' exceeds the maximum of 20.")
    assert_error(graph.patch(f"/groups/{ENGINEERING}", {"members@odata.bind": ["not a url"]}), 400, "BadRequest",
                 "Invalid URL format specified in @odata.bind for members")
    assert_error(graph.patch(f"/groups/{ENGINEERING}", {"displayName": "x"}), 400, "Request_BadRequest",
                 "Property 'displayName' of the sandbox's predefined groups cannot be changed.")
    assert graph.patch(f"/groups/{ENGINEERING}", {"members@odata.bind": [urls[2]]}).status_code == 204
    assert members() == uids


def test_manager_put_get_delete(graph: Graph, sandbox: Any) -> None:
    boss, emp = create(graph, 1), create(graph, 2)
    assert_error(graph.get(f"/users/{emp}/manager"), 404, "Request_ResourceNotFound", NO_MANAGER)
    r = graph.put(f"/users/{emp}/manager/$ref", ref(boss, "users"))
    assert r.status_code == 204 and r.headers["x-ms-resource-unit"] == "1"
    got = graph.get("/users/test.user2@contoso.com/manager")
    assert got.status_code == 200
    body = got.json()
    assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#directoryObjects/$entity"
    assert body["@odata.type"] == "#microsoft.graph.user" and body["id"] == boss
    assert body["userPrincipalName"] == "test.user1@contoso.com" and "businessPhones" in body
    assert graph.get("/users('test.user2@contoso.com')/manager?$select=displayName").json() == {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects/$entity",
        "@odata.type": "#microsoft.graph.user", "displayName": "Test User 1", "id": boss}
    assert graph.get(f"/users/{emp}/manager/$ref").json()["@odata.id"] == (
        f"https://graph.microsoft.com/v2/{sandbox.tenant_id}/directoryObjects/{boss}/Microsoft.DirectoryServices.User")
    ghost = "77777777-2222-4333-8444-555555555555"
    assert_error(graph.put(f"/users/{emp}/manager/$ref", ref(ghost, "users")), 404, "Request_ResourceNotFound",
                 missing(ghost))
    assert_error(graph.put(f"/users/{ghost}/manager/$ref", ref(boss, "users")), 404, "Request_ResourceNotFound",
                 missing(ghost))
    assert_error(graph.put(f"/users/{emp}/manager/$ref", ref(emp)), 400, "Request_BadRequest",
                 "A user cannot be their own manager.")
    assert_error(graph.put(f"/users/{emp}/manager/$ref", {}), 400, "BadRequest",
                 "Missing '@odata.id' in the request body.")
    assert graph.put(f"/users/{emp}/manager/$ref", ref(create(graph, 3))).status_code == 204  # replaces
    assert graph.get(f"/users/{emp}/manager").json()["userPrincipalName"] == "test.user3@contoso.com"
    assert graph.delete(f"/users/{emp}/manager/$ref").status_code == 204
    assert_error(graph.get(f"/users/{emp}/manager"), 404, "Request_ResourceNotFound", NO_MANAGER)
    assert sandbox.stats()["managers_set"] == 2


def test_replication_lag_on_followups(sandbox_factory: Any) -> None:
    sb = sandbox_factory(replication_lag_ms=400, users=1)
    g = Graph(sb)
    t0 = time.monotonic()
    uid = create(g, 1, usageLocation="US")
    seed = "seed.user00001@contoso.com"
    lic = {"addLicenses": [{"skuId": E3, "disabledPlans": []}], "removeLicenses": []}
    mail = {"message": {"subject": "s", "toRecipients": [{"emailAddress": {"address": "a@example.org"}}]}}
    assert_error(g.post("/users", new_user(1)), 400, "Request_BadRequest",
                 "Another object with the same value for property userPrincipalName already exists.")
    assert_error(g.post(f"/groups/{SALES}/members/$ref", ref(uid)), 404, "Request_ResourceNotFound", missing(uid))
    assert_error(g.put(f"/users/{uid}/manager/$ref", ref(seed, "users")), 404, "Request_ResourceNotFound",
                 missing(uid))
    assert_error(g.put(f"/users/{seed}/manager/$ref", ref(uid, "users")), 404, "Request_ResourceNotFound",
                 missing(uid))
    assert_error(g.post(f"/users/{uid}/assignLicense", lic), 404, "Request_ResourceNotFound", missing(uid))
    assert_error(g.post("/users/test.user1@contoso.com/sendMail", mail), 404, "ErrorInvalidUser",
                 "The requested user 'test.user1@contoso.com' is invalid.")
    assert_error(g.patch(f"/groups/{SALES}", {"members@odata.bind": [ref(uid)["@odata.id"]]}), 404,
                 "Request_ResourceNotFound", missing(uid))
    assert time.monotonic() - t0 < 0.4, "the checks above must run inside the lag"
    time.sleep(max(0.0, 0.45 - (time.monotonic() - t0)))
    assert g.post(f"/groups/{SALES}/members/$ref", ref(uid)).status_code == 204
    assert g.put(f"/users/{uid}/manager/$ref", ref(seed, "users")).status_code == 204
    assert g.post(f"/users/{uid}/assignLicense", lic).status_code == 200
    assert g.post("/users/test.user1@contoso.com/sendMail", mail).status_code == 202
    # a usageLocation set just before assignLicense is not replicated yet (graph-facts 5)
    other = create(g, 2)
    time.sleep(0.45)
    assert g.patch(f"/users/{other}", {"usageLocation": "GB"}).status_code == 204
    assert_error(g.post(f"/users/{other}/assignLicense", lic), 400, "Request_BadRequest",
                 "License assignment cannot be done for user with invalid usage location.")
    time.sleep(0.45)
    assert g.post(f"/users/{other}/assignLicense", lic).status_code == 200


def test_followups_in_batch(sandbox_factory: Any) -> None:
    sb = sandbox_factory()
    g = Graph(sb)
    boss, emp = create(g, 1, usageLocation="US"), create(g, 2, usageLocation="US")
    json_h = {"Content-Type": "application/json"}
    reqs = [
        {"id": "m", "method": "POST", "url": f"/groups/{ALL_STAFF}/members/$ref", "headers": json_h,
         "body": ref(emp)},
        {"id": "m2", "method": "POST", "url": f"/groups/{ALL_STAFF}/members/$ref", "headers": json_h,
         "body": ref(emp), "dependsOn": ["m"]},
        {"id": "l", "method": "POST", "url": f"/users/{emp}/assignLicense", "headers": json_h,
         "body": {"addLicenses": [{"skuId": E3, "disabledPlans": []}], "removeLicenses": []}},
        {"id": "mgr", "method": "PUT", "url": f"/users/{emp}/manager/$ref", "headers": json_h,
         "body": ref(boss, "users")},
        {"id": "bind", "method": "PATCH", "url": f"groups/{FINANCE}", "headers": json_h,
         "body": {"members@odata.bind": [ref(boss)["@odata.id"], ref(emp)["@odata.id"]]}},
        {"id": "mail", "method": "POST", "url": "/users/test.user1@contoso.com/sendMail", "headers": json_h,
         "body": {"message": {"subject": "hi", "toRecipients": [{"emailAddress": {"address": "x@y.org"}}]}}},
        {"id": "get", "method": "GET", "url": f"/users/{emp}/manager?$select=id", "dependsOn": ["mgr"]},
        {"id": "members", "method": "GET", "url": f"/groups/{ALL_STAFF}/members", "dependsOn": ["m2"]},
    ]
    r = g.post("/$batch", {"requests": reqs})
    assert r.status_code == 200
    res = {x["id"]: x for x in r.json()["responses"]}
    assert {k: v["status"] for k, v in res.items()} == {
        "m": 204, "m2": 400, "l": 200, "mgr": 204, "bind": 204, "mail": 202, "get": 200, "members": 424}
    assert res["m2"]["body"]["error"]["message"] == EXISTS
    assert res["l"]["body"]["id"] == emp and res["get"]["body"]["id"] == boss
    assert "body" not in res["m"] and res["m"]["headers"]["x-ms-resource-unit"] == "1"
    stats = sb.stats()
    assert stats["members_added"] == 3 and stats["licenses_assigned"] == 1 and stats["mail_sent"] == 1
    assert len(sb.mail()) == 1 and sb.mail()[0]["subject"] == "hi"



def test_member_of_lists_direct_groups_with_select_and_paging(graph: Graph) -> None:
    uid = create(graph, 1)
    assert graph.get(f"/users/{uid}/memberOf").json()["value"] == []
    assert graph.post(f"/groups/{SALES}/members/$ref", ref(uid)).status_code == 204
    assert graph.patch(f"/groups/{ENGINEERING}", {"members@odata.bind": [ref(uid)["@odata.id"]]}).status_code == 204
    r = graph.get(f"/users/{uid}/memberOf", params={"$select": "id,displayName"})
    assert r.status_code == 200 and r.headers["x-ms-resource-unit"] == "1"
    body = r.json()
    assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#directoryObjects"
    assert body["value"] == [
        {"@odata.type": "#microsoft.graph.group", "id": ENGINEERING, "displayName": "Engineering"},
        {"@odata.type": "#microsoft.graph.group", "id": SALES, "displayName": "Sales"}]
    first = graph.get(f"/users/{uid}/memberOf", params={"$select": "id", "$top": "1"}).json()
    assert [g["id"] for g in first["value"]] == [ENGINEERING]
    rest = graph.get(first["@odata.nextLink"]).json()
    assert [g["id"] for g in rest["value"]] == [SALES] and "@odata.nextLink" not in rest
    ghost = "99999999-2222-4333-8444-555555555555"
    assert_error(graph.get(f"/users/{ghost}/memberOf"), 404, "Request_ResourceNotFound", missing(ghost))
