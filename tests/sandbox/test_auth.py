"""Entra side over real HTTPS: MSAL with the secret and the certificate, the AADSTS catalogue, Graph's 401/403."""
from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sbtools import Graph, assert_error, msal_app, token_for

AADSTS_TAIL = re.compile(r"\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [0-9a-f-]{36}\r\nTimestamp: "
                         r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")


def _scope(sb: Any) -> list[str]:
    return [f"{sb.graph_endpoint}/.default"]


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_discovery_document(sandbox: Any) -> None:
    r = requests.get(f"{sandbox.authority_host}/{sandbox.tenant_id}/v2.0/.well-known/openid-configuration",
                     verify=str(sandbox.ca_bundle))
    assert r.status_code == 200
    doc = r.json()
    assert doc["token_endpoint"] == f"{sandbox.base_url}/{sandbox.tenant_id}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"].endswith("/oauth2/v2.0/authorize")
    keys = requests.get(doc["jwks_uri"], verify=str(sandbox.ca_bundle)).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256"
    # a verified domain names the tenant too
    r = requests.get(f"{sandbox.authority_host}/contoso.com/v2.0/.well-known/openid-configuration",
                     verify=str(sandbox.ca_bundle))
    assert r.status_code == 200


def test_msal_secret_token_claims_and_cache(sandbox: Any) -> None:
    app = msal_app(sandbox)
    first = app.acquire_token_for_client(scopes=_scope(sandbox))
    assert first["token_source"] == "identity_provider" and first["expires_in"] == 3599
    second = app.acquire_token_for_client(scopes=_scope(sandbox))
    assert second["token_source"] == "cache"
    claims = _claims(first["access_token"])
    assert claims["tid"] == sandbox.tenant_id and claims["appid"] == sandbox.client_id
    assert set(claims["roles"]) >= {"User.ReadWrite.All", "Domain.Read.All"}
    assert claims["exp"] - claims["iat"] == 3599
    for scope in ("https://graph.microsoft.com/.default", "00000003-0000-0000-c000-000000000000/.default"):
        assert "access_token" in msal_app(sandbox).acquire_token_for_client(scopes=[scope])


def _cert_parts(sb: Any) -> tuple[str, str]:
    pem = sb.certificate_path.read_text()
    cert = pem[:pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n"
    key = pem[pem.index("-----BEGIN ENCRYPTED PRIVATE KEY-----"):]
    return cert, key


def test_msal_certificate_sha256_and_sha1(sandbox: Any) -> None:
    cert, key = _cert_parts(sandbox)
    cred = {"private_key": key, "public_certificate": cert, "passphrase": sandbox.certificate_password}
    result = msal_app(sandbox, cred).acquire_token_for_client(scopes=_scope(sandbox))
    assert "access_token" in result, result
    assert Graph(sandbox, result["access_token"]).get("/organization").status_code == 200
    sha1 = x509.load_pem_x509_certificate(cert.encode()).fingerprint(hashes.SHA1()).hex()  # noqa: S303
    cred = {"private_key": key, "thumbprint": sha1, "passphrase": sandbox.certificate_password}
    assert "access_token" in msal_app(sandbox, cred).acquire_token_for_client(scopes=_scope(sandbox))


def test_msal_foreign_certificate_is_refused(sandbox_factory: Any) -> None:
    a, b = sandbox_factory(), sandbox_factory()
    cert, key = _cert_parts(b)
    cred = {"private_key": key, "public_certificate": cert, "passphrase": b.certificate_password}
    result = msal_app(a, cred).acquire_token_for_client(scopes=_scope(a))
    assert result["error"] == "invalid_client" and result["error_codes"] == [700027]


def test_msal_bad_secret(sandbox: Any) -> None:
    result = msal_app(sandbox, "not-the-secret").acquire_token_for_client(scopes=_scope(sandbox))
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith(
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client "
        f"secret value, not the client secret ID, for a secret added to app '{sandbox.client_id}'.")
    assert AADSTS_TAIL.search(result["error_description"])


def test_msal_unknown_app(sandbox: Any) -> None:
    other = "11111111-2222-3333-4444-555555555555"
    result = msal_app(sandbox, client_id=other).acquire_token_for_client(scopes=_scope(sandbox))
    assert result["error"] == "unauthorized_client" and result["error_codes"] == [700016]
    assert result["error_description"].startswith(
        f"AADSTS700016: Application with identifier '{other}' was not found in the directory "
        f"'{sandbox.tenant_id}'. This can happen if the application has not been installed by the administrator "
        "of the tenant or consented to by any user in the tenant. You may have sent your authentication request "
        "to the wrong tenant.")


def test_msal_unknown_tenant(sandbox: Any) -> None:
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        msal_app(sandbox, tenant="00000000-1111-2222-3333-444444444444")
    r = requests.get(f"{sandbox.authority_host}/nowhere.example/v2.0/.well-known/openid-configuration",
                     verify=str(sandbox.ca_bundle))
    assert r.status_code == 400 and r.json()["error"] == "invalid_tenant"
    assert r.json()["error_description"].startswith(
        "AADSTS90002: Tenant 'nowhere.example' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud.")


def test_msal_bad_scope(sandbox: Any) -> None:
    result = msal_app(sandbox).acquire_token_for_client(scopes=["https://graph.microsoft.com/User.Read"])
    assert result["error"] == "invalid_scope" and result["error_codes"] == [1002012]
    assert result["error_description"].startswith(
        "AADSTS1002012: The provided value for scope https://graph.microsoft.com/User.Read is not valid. Client "
        "credential flows must have a scope value with /.default suffixed to the resource identifier "
        "(application ID URI).")


def _token(sb: Any, tenant: str | None = None, **form: str) -> requests.Response:
    data = {"client_id": sb.client_id, "client_secret": sb.client_secret, "grant_type": "client_credentials",
            "scope": f"{sb.graph_endpoint}/.default"}
    data.update(form)
    return requests.post(f"{sb.authority_host}/{tenant or sb.tenant_id}/oauth2/v2.0/token", data=data,
                         verify=str(sb.ca_bundle),
                         headers={"client-request-id": "c0ffee00-0000-4000-8000-000000000001"})


@pytest.mark.parametrize("form,tenant,status,error,code", [
    ({"client_secret": "wrong"}, None, 401, "invalid_client", 7000215),
    ({"client_id": "11111111-2222-3333-4444-555555555555"}, None, 400, "unauthorized_client", 700016),
    ({}, "00000000-1111-2222-3333-444444444444", 400, "invalid_request", 90002),
    ({"scope": "https://graph.microsoft.com/User.Read"}, None, 400, "invalid_scope", 1002012),
    ({"scope": "https://management.azure.com/.default"}, None, 400, "invalid_scope", 70011),
    ({"client_secret": ""}, None, 401, "invalid_client", 7000216),
    ({"grant_type": "password"}, None, 400, "unsupported_grant_type", 70003),
])
def test_token_endpoint_errors_on_the_wire(sandbox: Any, form: dict[str, str], tenant: str | None, status: int,
                                           error: str, code: int) -> None:
    r = _token(sandbox, tenant, **form)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error and body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert body["correlation_id"] == "c0ffee00-0000-4000-8000-000000000001"
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])


def test_token_success_shape(sandbox: Any) -> None:
    r = _token(sandbox)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store, no-cache" and r.headers["Pragma"] == "no-cache"
    body = r.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    basic = requests.post(f"{sandbox.authority_host}/{sandbox.tenant_id}/oauth2/v2.0/token",
                          auth=(sandbox.client_id, sandbox.client_secret), verify=str(sandbox.ca_bundle),
                          data={"grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default"})
    assert basic.status_code == 200


WWW = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
       'client_id="00000003-0000-0000-c000-000000000000"')


@pytest.mark.parametrize("header,message", [
    (None, "Access token is empty."),
    ("Bearer ", "Access token is empty."),
    ("Bearer not-a-jwt", "CompactToken parsing failed with error code: 80049217"),
    ("Bearer a.b.c", "CompactToken parsing failed with error code: 80049217"),
])
def test_graph_rejects_missing_or_malformed_tokens(sandbox: Any, header: str | None, message: str) -> None:
    headers = {"Authorization": header} if header is not None else {}
    r = requests.get(f"{sandbox.graph_endpoint}/v1.0/users", headers=headers, verify=str(sandbox.ca_bundle))
    assert_error(r, 401, "InvalidAuthenticationToken", message)
    assert r.headers["WWW-Authenticate"] == WWW


def test_graph_rejects_foreign_and_expired_tokens(sandbox_factory: Any) -> None:
    a, b = sandbox_factory(token_lifetime=60), sandbox_factory()
    foreign = Graph(a, token_for(b)).get("/users")
    assert_error(foreign, 401, "InvalidAuthenticationToken", "Access token validation failure.")
    g = Graph(a)
    assert g.get("/users").status_code == 200
    a.set_knobs(clock_offset_s=61)  # the tenant's clock, by which tokens are judged, is past the token's expiry
    assert_error(g.get("/users"), 401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")


def test_missing_roles_give_403(sandbox_factory: Any) -> None:
    sb = sandbox_factory(roles=("Domain.Read.All",))
    g = Graph(sb)
    msg = "Insufficient privileges to complete the operation."
    assert g.get("/domains").status_code == 200
    assert_error(g.get("/users"), 403, "Authorization_RequestDenied", msg)
    assert_error(g.post("/users", {}), 403, "Authorization_RequestDenied", msg)
    assert_error(g.get("/organization"), 403, "Authorization_RequestDenied", msg)
    sb.set_knobs(roles=("User.Read.All",))
    g2 = Graph(sb)
    assert g2.get("/users").status_code == 200
    assert_error(g2.post("/users", {}), 403, "Authorization_RequestDenied", msg)
    assert_error(g2.get("/domains"), 403, "Authorization_RequestDenied", msg)


def _assertion(sb: Any, *, nbf: float, exp: float) -> str:
    """A client assertion signed with the registered certificate, with the given validity."""
    import jwt
    from cryptography.hazmat.primitives import serialization

    cert, key = _cert_parts(sb)
    private = serialization.load_pem_private_key(key.encode(), sb.certificate_password.encode())
    thumb = x509.load_pem_x509_certificate(cert.encode()).fingerprint(hashes.SHA256())
    header = {"x5t#S256": base64.urlsafe_b64encode(thumb).decode().rstrip("=")}
    claims = {"aud": f"{sb.authority_host}/{sb.tenant_id}/oauth2/v2.0/token", "iss": sb.client_id,
              "sub": sb.client_id, "jti": "x", "nbf": int(nbf), "iat": int(nbf), "exp": int(exp)}
    return jwt.encode(claims, private, algorithm="PS256", headers=header)


@pytest.mark.parametrize("offset_s", [7200, -7200])
def test_assertion_outside_its_time_range_is_aadsts700024(sandbox: Any, offset_s: int) -> None:
    now = time.time() + offset_s  # a client clock two hours fast (or slow)
    assertion = _assertion(sandbox, nbf=now, exp=now + 600)
    cred = {"client_assertion": lambda: assertion}
    result = msal_app(sandbox, cred).acquire_token_for_client(scopes=_scope(sandbox))
    assert (result["error"], result["error_codes"]) == ("invalid_client", [700024])
    assert re.match(r"AADSTS700024: Client assertion is not within its valid time range\. Current time: "
                    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.0000000Z, assertion valid from \S+, expiry time of assertion "
                    r"\S+\. Review the documentation at https://learn\.microsoft\.com/entra/identity-platform/"
                    r"certificate-credentials \.\r\n", result["error_description"])
    fine = _assertion(sandbox, nbf=time.time() + 200, exp=time.time() + 800)  # within the forgiven skew
    ok = {"client_assertion": lambda: fine}
    assert "access_token" in msal_app(sandbox, ok).acquire_token_for_client(scopes=_scope(sandbox))
