"""Helpers of the sandbox's tests: real HTTPS clients (MSAL, requests) pointed at a sandbox."""
from __future__ import annotations

from typing import Any

import msal
import requests


def msal_app(sb: Any, credential: Any = None, client_id: str | None = None,
             tenant: str | None = None) -> msal.ConfidentialClientApplication:
    """MSAL as a real client would build it against the sandbox."""
    return msal.ConfidentialClientApplication(
        client_id or sb.client_id, client_credential=credential if credential is not None else sb.client_secret,
        authority=f"{sb.authority_host}/{tenant or sb.tenant_id}", instance_discovery=False,
        verify=str(sb.ca_bundle))


def token_for(sb: Any) -> str:
    """A fresh access token from the sandbox (plain requests, no cache)."""
    r = requests.post(f"{sb.authority_host}/{sb.tenant_id}/oauth2/v2.0/token", verify=str(sb.ca_bundle),
                      data={"client_id": sb.client_id, "client_secret": sb.client_secret,
                            "grant_type": "client_credentials", "scope": f"{sb.graph_endpoint}/.default"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


class Graph:
    """A tiny requests wrapper: ``g.get("/users")`` -> Response, authenticated, verified against the sandbox CA."""

    def __init__(self, sb: Any, token: str | None = None):
        self.sb = sb
        self.root = f"{sb.graph_endpoint}/v1.0"
        self.s = requests.Session()
        self.s.verify = str(sb.ca_bundle)
        self.s.headers["Authorization"] = f"Bearer {token or token_for(sb)}"

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else self.root + path

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.s.get(self.url(path), **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.s.post(self.url(path), json=body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.s.patch(self.url(path), json=body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.s.put(self.url(path), json=body, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.s.delete(self.url(path), **kw)

    def close(self) -> None:
        self.s.close()


def new_user(n: int | str = 1, **extra: Any) -> dict[str, Any]:
    """A valid POST /users body."""
    body: dict[str, Any] = {"accountEnabled": True, "displayName": f"Test User {n}", "mailNickname": f"test.user{n}",
                            "userPrincipalName": f"test.user{n}@contoso.com",
                            "passwordProfile": {"password": "Xk9#mq2Lp!", "forceChangePasswordNextSignIn": True}}
    body.update(extra)
    return body


def assert_error(r: requests.Response, status: int, code: str, message: str | None = None) -> dict[str, Any]:
    """Exact status, code and (when given) message of a Graph error; checks the envelope's innerError."""
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code, err
    if message is not None:
        assert err["message"] == message, err
    inner = err["innerError"]
    assert inner["request-id"] == r.headers["request-id"]
    assert inner["client-request-id"] == r.headers["client-request-id"]
    assert len(inner["date"]) == 19
    return dict(err)
