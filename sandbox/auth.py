"""The Entra side: OIDC discovery, JWKS, the v2.0 token endpoint (client credentials) and access-token checks.

Token endpoint errors follow graph-facts 7.3 (status, ``error``, AADSTS text, ``error_codes``, ``timestamp``,
``trace_id``, ``correlation_id``, ``error_uri``; the description carries Trace ID / Correlation ID / Timestamp):
AADSTS7000215 (401 invalid_client, bad secret), AADSTS700016 (400 unauthorized_client, unknown app),
AADSTS90002 (400 invalid_request, unknown tenant; ``invalid_tenant`` on discovery), AADSTS1002012 (400
invalid_scope, scope without ``/.default``), AADSTS70011 (400 invalid_scope, a ``/.default`` scope of an unknown
resource; text of the client-credentials page's example), AADSTS7000222 (401 invalid_client, an expired secret;
``secret_expired`` knob; text of public captures liprec/vsts-release-aas#119, microsoft/botframework-sdk#6221: a
wrong secret is still AADSTS7000215 first), AADSTS7000216 (no credential; status UNCONFIRMED item 13, 401
chosen). Not in graph-facts and chosen here: AADSTS700027 (401, assertion signature/key), AADSTS700024 (401,
assertion expired or not yet valid, judged by the token endpoint's clock: knob ``clock_offset_s``), AADSTS70003
(400 unsupported_grant_type), AADSTS900144 (400, missing parameter).

Graph's token checks (graph-facts 1.8): 401 InvalidAuthenticationToken with ``WWW-Authenticate`` for an empty
("Access token is empty.", UNCONFIRMED text), malformed ("CompactToken parsing failed with error code:
80049217"), foreign/badly signed ("Access token validation failure.") or expired ("Access token has expired or
is not yet valid.") token.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hmac
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import jwt

from .config import APP_NAME, CLIENT_ID, DOMAINS, GRAPH_APP_ID, GRAPH_ROOT, SP_OBJECT_ID, TENANT_ID
from .keys import KeyMaterial
from .wire import Request, Response, error

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
WWW_AUTH = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
            f'client_id="{GRAPH_APP_ID}"')
TENANT_ALIASES = {TENANT_ID} | {name for name, _, _, _, verified in DOMAINS if verified}
TOKEN_HEADERS = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def aadsts(status: int, err: str, code: int, text: str, correlation_id: str | None = None,
           now: float | None = None) -> Response:
    """An AADSTS-shaped token-endpoint error (graph-facts 7.3), time-stamped by ``now`` (epoch seconds)."""
    trace, corr = str(uuid.uuid4()), correlation_id or str(uuid.uuid4())
    stamp = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    desc = (f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\n"
            f"Timestamp: {stamp.strftime('%Y-%m-%d %H:%M:%S')}Z")
    body = {"error": err, "error_description": desc, "error_codes": [code],
            "timestamp": stamp.strftime("%Y-%m-%d %H:%M:%SZ"), "trace_id": trace, "correlation_id": corr,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}"}
    return Response(status, body, dict(TOKEN_HEADERS))


#: Retry-After (seconds) of an injected token-endpoint fault.
TOKEN_FAULT_RETRY_AFTER_S = 1


def token_fault(status: int, correlation_id: str | None = None) -> Response:
    """An injected token-endpoint failure (knobs ``token500``/``token429``): Entra down or throttling the app."""
    resp = aadsts(status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.",
                  correlation_id)
    resp.headers["Retry-After"] = str(TOKEN_FAULT_RETRY_AFTER_S)
    return resp


def tenant_not_found(tenant: str, err: str = "invalid_request", correlation_id: str | None = None) -> Response:
    """AADSTS90002 for an unknown tenant."""
    return aadsts(400, err, 90002, f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                                   "and are signing into the correct cloud. Check with your subscription "
                                   "administrator, this may happen if there are no active subscriptions for the "
                                   "tenant.", correlation_id)


#: Clock skew the token endpoint forgives either side of an assertion's validity.
ASSERTION_SKEW_S = 300


def _iso(epoch: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    except (TypeError, ValueError, OverflowError, OSError):
        return "1970-01-01T00:00:00.0000000Z"


class Authority:
    """Issues and checks tokens for the one tenant and the one registered application."""

    def __init__(self, keys: KeyMaterial, base_url: str, clock: Callable[[], float] = time.time):
        self.keys = keys
        self.clock = clock
        self.base_url = base_url
        self._public = keys.signing_key.public_key()
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def known_tenant(self, tenant: str) -> bool:
        """Whether ``tenant`` (GUID or verified domain) names the sandbox tenant."""
        return tenant.lower() in TENANT_ALIASES

    def token_endpoint(self) -> str:
        """The advertised token endpoint."""
        return f"{self.base_url}/{TENANT_ID}/oauth2/v2.0/token"

    def openid_configuration(self, tenant: str, correlation_id: str | None) -> Response:
        """GET /{tenant}/v2.0/.well-known/openid-configuration."""
        if not self.known_tenant(tenant):
            return tenant_not_found(tenant, "invalid_tenant", correlation_id)
        b = f"{self.base_url}/{TENANT_ID}"
        return Response(200, {
            "token_endpoint": f"{b}/oauth2/v2.0/token", "jwks_uri": f"{b}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"], "issuer": f"{b}/v2.0",
            "request_uri_parameter_supported": False, "userinfo_endpoint": f"{self.base_url}/oidc/userinfo",
            "authorization_endpoint": f"{b}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{b}/oauth2/v2.0/devicecode", "http_logout_supported": True,
            "frontchannel_logout_supported": True, "end_session_endpoint": f"{b}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "roles"], "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com", "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": self.base_url.split("://", 1)[1], "rbac_url": "https://pas.windows.net"})

    def jwks(self, tenant: str) -> Response:
        """GET /{tenant}/discovery/v2.0/keys."""
        if not self.known_tenant(tenant):
            return tenant_not_found(tenant, "invalid_tenant")
        return Response(200, self.keys.jwks())

    def _scope_ok(self, scope: str) -> bool:
        # the sandbox is the resource at its own address, with or without the port: clients that derive the scope
        # from the request's host name (kiota's AzureIdentityAuthenticationProvider) ask for https://127.0.0.1/.default
        host = self.base_url.split("://", 1)[1].rsplit(":", 1)[0]
        return scope.lower() in {f"{self.base_url}/.default".lower(), f"https://{host}/.default".lower(),
                                 f"{GRAPH_ROOT}/.default", f"{GRAPH_APP_ID}/.default", f"{GRAPH_ROOT}//.default"}

    def _check_assertion(self, assertion: str, corr: str | None) -> Response | None:
        bad_key = aadsts(401, "invalid_client", 700027,
                         "Client assertion failed signature validation. [Reason - The key was not found.]", corr)
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return bad_key
        thumb_s256, thumb_s1 = header.get("x5t#S256"), header.get("x5t")

        def hexed(v: str) -> str:
            return base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)).hex().upper()
        try:
            if thumb_s256 and hexed(thumb_s256) != self.keys.app_thumbprint_sha256:
                return bad_key
            if thumb_s1 and not thumb_s256 and hexed(thumb_s1) != self.keys.app_thumbprint_sha1:
                return bad_key
            claims = jwt.decode(assertion, self.keys.app_public_key, algorithms=["RS256", "PS256"],
                                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                         "verify_iat": False, "require": ["exp", "aud"]})
        except (jwt.PyJWTError, ValueError):
            return bad_key
        now = self.clock()
        # MSAL sends no nbf: an assertion issued (iat) after the token endpoint's now is not valid yet either
        nbf, exp = claims.get("nbf", claims.get("iat", 0)), claims.get("exp", 0)
        if not (isinstance(nbf, (int, float)) and isinstance(exp, (int, float))
                and nbf - ASSERTION_SKEW_S <= now < exp + ASSERTION_SKEW_S):
            # Entra's words for an expired and for a not-yet-valid assertion alike (public captures of
            # AADSTS700024, e.g. AzureAD/microsoft-authentication-library-for-dotnet#4951)
            return aadsts(401, "invalid_client", 700024, "Client assertion is not within its valid time range. "
                          f"Current time: {_iso(now)}, assertion valid from {_iso(nbf)}, expiry time of assertion "
                          f"{_iso(exp)}. Review the documentation at "
                          "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .", corr, now)
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(isinstance(a, str) and a.rstrip("/").endswith("/oauth2/v2.0/token") for a in auds) \
                or claims.get("iss") != CLIENT_ID or claims.get("sub") != CLIENT_ID:
            return aadsts(401, "invalid_client", 700027, "Client assertion failed signature validation. "
                          "[Reason - The audience, issuer or subject of the assertion is not valid.]", corr)
        return None

    def token(self, tenant: str, req: Request, roles: tuple[str, ...], lifetime: int, *,
              wids: tuple[str, ...] = (), secret_expired: bool = False) -> Response:
        """POST /{tenant}/oauth2/v2.0/token (client credentials)."""
        corr = req.headers.get("client-request-id")
        if not self.known_tenant(tenant):
            return tenant_not_found(tenant, correlation_id=corr)
        form = {k: v[0] for k, v in parse_qs(req.raw_body.decode("utf-8", "replace"),
                                             keep_blank_values=True).items()}
        auth = req.headers.get("authorization", "")
        basic_id = basic_secret = None
        if auth.lower().startswith("basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                basic_id, _, basic_secret = base64.b64decode(auth[6:]).decode().partition(":")
        client_id = form.get("client_id") or basic_id
        grant = form.get("grant_type")
        if not grant:
            return aadsts(400, "invalid_request", 900144,
                          "The request body must contain the following parameter: 'grant_type'.", corr)
        if grant != "client_credentials":
            return aadsts(400, "unsupported_grant_type", 70003,
                          "The app requested an unsupported grant type 'grant_type'.".replace("grant_type", grant),
                          corr)
        if not client_id:
            return aadsts(400, "invalid_request", 900144,
                          "The request body must contain the following parameter: 'client_id'.", corr)
        if client_id.lower() != CLIENT_ID:
            return aadsts(400, "unauthorized_client", 700016,
                          f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
                          "This can happen if the application has not been installed by the administrator of the "
                          "tenant or consented to by any user in the tenant. You may have sent your authentication "
                          "request to the wrong tenant.", corr)
        scope = form.get("scope", "").strip()
        if not scope:
            return aadsts(400, "invalid_request", 900144,
                          "The request body must contain the following parameter: 'scope'.", corr)
        if len(scope.split()) != 1 or not scope.endswith("/.default"):
            return aadsts(400, "invalid_scope", 1002012,
                          f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                          "scope value with /.default suffixed to the resource identifier (application ID URI).",
                          corr)
        secret = form.get("client_secret") or basic_secret
        assertion = form.get("client_assertion")
        if assertion:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                return aadsts(400, "invalid_request", 90014, "The request body must contain the following "
                              "parameter: 'client_assertion_type'.", corr)
            problem = self._check_assertion(assertion, corr)
            if problem is not None:
                return problem
        elif secret:
            if not hmac.compare_digest(secret.encode(), self.keys.client_secret.encode()):
                return aadsts(401, "invalid_client", 7000215,
                              "Invalid client secret provided. Ensure the secret being sent in the request is the "
                              "client secret value, not the client secret ID, for a secret added to app "
                              f"'{CLIENT_ID}'.", corr)
            if secret_expired:
                return aadsts(401, "invalid_client", 7000222,
                              f"The provided client secret keys for app '{CLIENT_ID}' are expired. Visit the Azure "
                              "portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider "
                              "using certificate credentials for added security: https://aka.ms/certCreds.", corr)
        else:
            return aadsts(401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is "
                          "required for the 'client_credentials' grant type.", corr)
        if not self._scope_ok(scope):
            return aadsts(400, "invalid_scope", 70011,
                          f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is not "
                          "valid.", corr)
        now = int(self.clock())
        claims = {"aud": GRAPH_ROOT, "iss": f"https://sts.windows.net/{TENANT_ID}/", "iat": now, "nbf": now,
                  "exp": now + lifetime, "app_displayname": APP_NAME, "appid": CLIENT_ID, "appidacr": "1",
                  "idp": f"https://sts.windows.net/{TENANT_ID}/", "idtyp": "app", "oid": SP_OBJECT_ID,
                  "roles": list(roles), "sub": SP_OBJECT_ID, "tid": TENANT_ID, "uti": uuid.uuid4().hex[:22],
                  "ver": "1.0"}
        if wids:  # app-only tokens carry the directory roles the service principal holds
            claims["wids"] = list(wids)
        token = jwt.encode(claims, self.keys.signing_key, algorithm="RS256",
                           headers={"kid": self.keys.signing_kid, "x5t": self.keys.signing_kid})
        return Response(200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                              "access_token": token}, dict(TOKEN_HEADERS))

    def check_bearer(self, req: Request) -> dict[str, Any] | Response:
        """The verified claims of the request's bearer token, or the 401 to send."""
        def fail(message: str) -> Response:
            return error(req, 401, "InvalidAuthenticationToken", message, headers={"WWW-Authenticate": WWW_AUTH})
        auth = req.headers.get("authorization", "").strip()
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return fail("Access token is empty.")
        with self._lock:
            claims = self._cache.get(token)
        if claims is None:
            if token.count(".") != 2:
                return fail("CompactToken parsing failed with error code: 80049217")
            try:
                jwt.get_unverified_header(token)
            except jwt.PyJWTError:
                return fail("CompactToken parsing failed with error code: 80049217")
            try:
                claims = jwt.decode(token, self._public, algorithms=["RS256"],
                                    options={"verify_exp": False, "verify_aud": False, "verify_nbf": False,
                                             "verify_iat": False})  # times: by this tenant's clock, below
            except jwt.PyJWTError:
                return fail("Access token validation failure.")
            if claims.get("tid") != TENANT_ID or claims.get("aud") not in (GRAPH_ROOT, GRAPH_APP_ID):
                return fail("Access token validation failure. Invalid audience.")
            with self._lock:
                if len(self._cache) > 10000:
                    self._cache.clear()
                self._cache[token] = claims
        now = self.clock()
        if not (claims.get("nbf", 0) - 300 <= now < claims.get("exp", 0)):
            return fail("Access token has expired or is not yet valid.")
        return claims
