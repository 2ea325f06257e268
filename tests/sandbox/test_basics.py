"""First end-to-end checks: MSAL token with the secret, domains, organization, create and read users."""
from __future__ import annotations

from typing import Any

from sbtools import Graph, msal_app, new_user


def test_msal_secret_then_graph(sandbox: Any) -> None:
    result = msal_app(sandbox).acquire_token_for_client(scopes=[f"{sandbox.graph_endpoint}/.default"])
    assert result["token_type"] == "Bearer" and result["expires_in"] == 3599, result
    g = Graph(sandbox, result["access_token"])
    r = g.get("/domains")
    assert r.status_code == 200
    ids = {d["id"]: d for d in r.json()["value"]}
    assert ids["contoso.com"]["isDefault"] and ids["contoso.com"]["isVerified"]
    assert ids["unverified.contoso.net"]["isVerified"] is False
    assert ids["federated.contoso.com"]["authenticationType"] == "Federated"
    org = g.get("/organization").json()["value"][0]
    assert org["id"] == sandbox.tenant_id and org["displayName"] == "Contoso (sandbox)"
    created = g.post("/users", new_user())
    assert created.status_code == 201, created.text
    assert g.get(f"/users/{created.json()['id']}").json()["userPrincipalName"] == "test.user1@contoso.com"
    g.close()
