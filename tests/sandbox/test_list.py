"""GET /users: paging over thousands of pre-seeded users, $filter forms, $select, $top, $count."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sbtools import Graph, assert_error

N = 2500


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sandbox import Sandbox
    with Sandbox.start(tmp_path_factory.mktemp("big"), users=N) as sb:
        yield sb


@pytest.fixture
def g(big: Any) -> Iterator[Graph]:
    client = Graph(big)
    yield client
    client.close()


def test_paging_default_and_max(g: Graph) -> None:
    ids: list[str] = []
    url: str | None = "/users"
    pages = 0
    while url:
        body = g.get(url).json()
        assert len(body["value"]) <= 100
        ids += [u["id"] for u in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 25 and len(ids) == N == len(set(ids))
    first = g.get("/users", params={"$top": "999", "$select": "id,userPrincipalName"}).json()
    assert first["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName)"
    assert set(first["value"][0]) == {"id", "userPrincipalName"}
    link = first["@odata.nextLink"]
    assert link.startswith(f"{g.sb.graph_endpoint}/v1.0/users?") and "$skiptoken=" in link and "$top=999" in link
    total = len(first["value"])
    while link:
        body = g.get(link).json()
        assert set(body["value"][0]) == {"id", "userPrincipalName"}
        total += len(body["value"])
        link = body.get("@odata.nextLink")
    assert total == N


@pytest.mark.parametrize("top", ["0", "1000", "-1", "abc"])
def test_top_out_of_range(g: Graph, top: str) -> None:
    assert_error(g.get("/users", params={"$top": top}), 400, "Request_UnsupportedQuery",
                 f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.")


@pytest.mark.parametrize("flt,expected", [
    ("userPrincipalName eq 'seed.user00042@contoso.com'", ["seed.user00042@contoso.com"]),
    ("userPrincipalName eq 'SEED.USER00042@CONTOSO.COM'", ["seed.user00042@contoso.com"]),
    ("mail eq 'seed.user00007@contoso.com'", ["seed.user00007@contoso.com"]),
    ("employeeId eq 'S000100'", ["seed.user00100@contoso.com"]),
    ("displayName eq 'Seed User 00003'", ["seed.user00003@contoso.com"]),
    ("startsWith(userPrincipalName,'seed.user0001')",
     [f"seed.user{n:05d}@contoso.com" for n in range(10, 20)]),
    ("startswith(displayName, 'Seed User 0250')", [f"seed.user{n:05d}@contoso.com" for n in range(2500, 2501)]),
    ("userPrincipalName in ('seed.user00001@contoso.com','seed.user00002@contoso.com','x@contoso.com')",
     ["seed.user00001@contoso.com", "seed.user00002@contoso.com"]),
    ("employeeId eq 'S000001' or employeeId eq 'S000002'", ["seed.user00001@contoso.com",
                                                          "seed.user00002@contoso.com"]),
    ("(accountEnabled eq true) and (userPrincipalName eq 'seed.user00005@contoso.com')",
     ["seed.user00005@contoso.com"]),
    ("userPrincipalName eq 'nobody@contoso.com'", []),
    ("jobTitle eq null and employeeId eq 'S000009'", ["seed.user00009@contoso.com"]),
    ("displayName eq 'O''Brien'", []),
])
def test_filters(g: Graph, flt: str, expected: list[str]) -> None:
    r = g.get("/users", params={"$filter": flt, "$select": "userPrincipalName"})
    assert r.status_code == 200, r.text
    assert [u["userPrincipalName"] for u in r.json()["value"]] == expected


def test_filter_paging(g: Graph) -> None:
    r = g.get("/users", params={"$filter": "startsWith(userPrincipalName,'seed.user01')", "$top": "40"})
    body = r.json()
    assert len(body["value"]) == 40
    seen = len(body["value"])
    while "@odata.nextLink" in body:
        body = g.get(body["@odata.nextLink"]).json()
        seen += len(body["value"])
    assert seen == 1000


def test_filter_errors(g: Graph) -> None:
    assert_error(g.get("/users", params={"$filter": "favouriteColour eq 'blue'"}), 400, "Request_UnsupportedQuery",
                 "Unsupported or invalid query filter clause specified for property 'favouriteColour' of resource "
                 "'User'.")
    assert_error(g.get("/users", params={"$filter": "userPrincipalName ne 'x'"}), 400, "Request_UnsupportedQuery",
                 "Unsupported or invalid query filter clause specified for property 'userPrincipalName' of resource "
                 "'User'.")
    err = assert_error(g.get("/users", params={"$filter": "userPrincipalName eq"}), 400, "BadRequest")
    assert err["message"].startswith("Invalid filter clause")
    assert_error(g.get("/users", params={"$skiptoken": "garbage!"}), 400, "Directory_ExpiredPageToken",
                 "The specified page token value has expired and can no longer be included in your request.")


def test_advanced_query_with_count(g: Graph) -> None:
    r = g.get("/users", params={"$filter": "endsWith(userPrincipalName,'00007@contoso.com')", "$count": "true"},
              headers={"ConsistencyLevel": "eventual"})
    assert r.status_code == 200, r.text
    assert r.json()["@odata.count"] == 1


def test_costs_in_resource_unit_header(g: Graph) -> None:
    assert g.get("/users").headers["x-ms-resource-unit"] == "2"
    assert g.get("/users", params={"$select": "id"}).headers["x-ms-resource-unit"] == "1"
    assert g.get("/users", params={"$top": "5"}).headers["x-ms-resource-unit"] == "1"
    assert g.get("/domains").headers["x-ms-resource-unit"] == "1"
