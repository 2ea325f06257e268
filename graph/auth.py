"""App-only tokens through one long-lived MSAL ``ConfidentialClientApplication`` per run.

MSAL's own cache serves an app token while more than 5 minutes remain (graph-facts 7.4.7). This module keeps the
last token in front of it as well, reused until a margin before its expiry (the smaller of 5 minutes and a quarter
of its lifetime), so that short-lived tokens are also reused and renewed just in time. MSAL's error dict becomes an
:class:`AuthError` that names the AADSTS code and says what to fix. The MSAL app is built on first use: building it
contacts the authority (OIDC discovery), which must not happen for a configuration that is only inspected.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msal
import requests
from msal.exceptions import MsalServiceError

from .config import GraphConfig
from .errors import AuthError, GraphError, ServiceUnavailableError, ThrottledError, TLSVerificationError, TransportError
from .retry import parse_retry_after
from .session import PinnedCASession

log = logging.getLogger(__name__)

_PEM_KEY = re.compile(r"-----BEGIN ((?:ENCRYPTED |RSA |EC )?PRIVATE KEY)-----.+?-----END \1-----", re.S)
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and when it expires (``time.time()`` seconds). ``repr`` never shows the token."""

    value: str
    expires_at: float
    lifetime: float

    def __repr__(self) -> str:
        return f"Token(expires_at={self.expires_at:.0f}, lifetime={self.lifetime:.0f})"

    def claims(self) -> dict[str, Any]:
        """The token's JWT payload, decoded without verification (for display: roles, tid, appid)."""
        try:
            payload = self.value.split(".")[1]
            claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            return claims
        except (IndexError, ValueError):
            return {}


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What was loaded from the certificate PEM: the pieces MSAL needs and the thumbprints for display."""

    private_key_pem: str
    certificate_pem: str
    sha1_thumbprint: str
    sha256_thumbprint: str


def load_certificate(config: GraphConfig) -> CertificateInfo:
    """Read the PEM file of ``config.certificate``; check that the key opens with the password; compute thumbprints."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    cert_cfg = config.certificate
    assert cert_cfg is not None
    try:
        text = cert_cfg.path.read_text("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthError(f"cannot read the certificate file {cert_cfg.path}: {getattr(exc, 'strerror', None) or exc}; "
                        "set AZURE_CLIENT_CERTIFICATE_PATH to a PEM file with the certificate and its private key"
                        ) from None
    key_match, cert_match = _PEM_KEY.search(text), _PEM_CERT.search(text)
    if not key_match or not cert_match:
        missing = "private key" if not key_match else "certificate"
        raise AuthError(f"{cert_cfg.path} has no PEM {missing}; AZURE_CLIENT_CERTIFICATE_PATH must name one PEM file "
                        "holding both the certificate and its private key")
    password = cert_cfg.password.reveal().encode() if cert_cfg.password else None
    try:
        serialization.load_pem_private_key(key_match.group(0).encode(), password)
    except TypeError:
        hint = "it is encrypted: set AZURE_CLIENT_CERTIFICATE_PASSWORD" if password is None else \
            "it is not encrypted: unset AZURE_CLIENT_CERTIFICATE_PASSWORD"
        raise AuthError(f"cannot open the private key in {cert_cfg.path}: {hint}") from None
    except ValueError:
        raise AuthError(f"cannot open the private key in {cert_cfg.path}: wrong AZURE_CLIENT_CERTIFICATE_PASSWORD "
                        "or not a supported key") from None
    cert = x509.load_pem_x509_certificate(cert_match.group(0).encode())
    return CertificateInfo(key_match.group(0), cert_match.group(0),
                           cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - a thumbprint, not security
                           cert.fingerprint(hashes.SHA256()).hex().upper())


class _HeldRecords:
    """The records :meth:`TokenProvider.prefetch`'s thread logs, kept until :meth:`release`: made whatever the
    level is now (the run's log, which opens later, takes INFO; the console before it only warnings), judged
    by the levels in force when they are let out."""

    def __init__(self) -> None:
        self.thread: int | None = None
        self._records: list[logging.LogRecord] | None = []
        self._lock = threading.Lock()

    def keep(self, level: int, msg: str, args: tuple[Any, ...]) -> bool:
        """Keep a record of the prefetch's thread (True), or let the caller log it now (False)."""
        if self.thread != threading.get_ident():
            return False
        record = log.makeRecord(log.name, level, __file__, 0, msg, args, None)
        with self._lock:
            if self._records is None:
                return False
            self._records.append(record)
        return True

    def release(self) -> None:
        with self._lock:
            records, self._records = self._records or [], None
        for record in records:
            if log.isEnabledFor(record.levelno):
                log.handle(record)


class TokenProvider:
    """Thread-safe source of Graph access tokens for one app in one tenant.

    ``clock`` (epoch seconds) is injectable so tests can age tokens without waiting; ``http_session`` is the
    session MSAL uses (its own, trusting the CA bundle), separate from the Graph session.
    """

    def __init__(self, config: GraphConfig, *, clock: Callable[[], float] = time.time,
                 http_session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._clock = clock
        self._sleep = sleep
        #: MSAL's HTTP cache, ours so that a retry after our own backoff reaches the token endpoint again (MSAL
        #: replays a 429/5xx answer for its Retry-After, 5 s without one, which would only burn attempts)
        self._http_cache: dict[Any, Any] = {}
        self._answer: tuple[int, Any] | None = None  # status and headers of the token endpoint's last answer
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._token: Token | None = None
        self._session = http_session
        self.certificate: CertificateInfo | None = None
        self.acquisitions = 0  # tokens that came from the identity provider (not from a cache)
        # :meth:`prefetch`'s thread, and what it failed with: the callers that waited for it get that failure
        self._prefetch: threading.Thread | None = None
        self._prefetch_error: Exception | None = None
        self._held: _HeldRecords | None = None  # the prefetch's log lines, until a caller waits for it
        self._held_lock = threading.Lock()

    def _credential(self) -> str | dict[str, str]:
        if self.config.client_secret is not None:
            return self.config.client_secret.reveal()
        self.certificate = load_certificate(self.config)
        cred = {"private_key": self.certificate.private_key_pem,
                "public_certificate": self.certificate.certificate_pem}  # MSAL derives the SHA-256 thumbprint (PS256)
        if self.config.certificate and self.config.certificate.password:
            cred["passphrase"] = self.config.certificate.password.reveal()
        return cred

    def _build_app(self) -> msal.ConfidentialClientApplication:
        cfg = self.config
        if self._session is None:
            self._session = PinnedCASession(str(cfg.ca_bundle) if cfg.ca_bundle else None)
        self._session.hooks["response"].append(self._record)
        try:
            return msal.ConfidentialClientApplication(
                cfg.client_id, client_credential=self._credential(), authority=cfg.authority,
                http_client=self._session, instance_discovery=False, http_cache=self._http_cache,
                timeout=(cfg.timeouts.connect, cfg.timeouts.read), token_cache=msal.TokenCache())
        except requests.exceptions.SSLError as exc:
            raise _tls_error(cfg.authority_host, exc) from None
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"cannot reach the authority {cfg.authority_host}: {type(exc).__name__}; "
                                 "check AZURE_AUTHORITY_HOST and the network") from None
        except MsalServiceError as exc:  # discovery answered 5xx
            raise ServiceUnavailableError(f"the authority {cfg.authority_host} did not answer OIDC discovery "
                                          f"({exc}): Microsoft Entra ID is unavailable; try again later") from None
        except ValueError as exc:
            raise self._discovery_error(exc) from None

    def _discovery_error(self, exc: ValueError) -> AuthError:
        """MSAL refused the authority (OIDC discovery failed): find out why from the discovery document itself."""
        cfg = self.config
        url = f"{cfg.authority}/v2.0/.well-known/openid-configuration"
        detail: dict[str, Any] = {}
        try:
            assert self._session is not None
            resp = self._session.get(url, timeout=(cfg.timeouts.connect, cfg.timeouts.read))
            detail = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
        except (requests.RequestException, ValueError):
            pass
        if detail.get("error"):
            return auth_error_from_msal(detail, cfg)
        return AuthError(f"the authority {cfg.authority} did not answer OIDC discovery ({str(exc)[:120]}); "
                         "check AZURE_TENANT_ID and AZURE_AUTHORITY_HOST / PROVISION_CLOUD")

    def prefetch(self) -> None:
        """Ask for a token now, in a background thread, so that it is there when the first request needs it (the
        ``run`` command asks while the rest of the tool loads). The first :meth:`token` calls wait for that thread
        and get its token, or raise what it raised: one sign-in attempt either way, never a second one behind it."""
        if self._prefetch is not None or self._token is not None:
            return

        held = self._held = _HeldRecords()

        def fetch() -> None:
            held.thread = threading.get_ident()
            try:
                self.token()
            except Exception as exc:  # noqa: BLE001 - handed to the callers that wait for this thread
                self._prefetch_error = exc

        self._prefetch = threading.Thread(target=fetch, name="token-prefetch", daemon=True)
        self._prefetch.start()

    def _joined_prefetch(self) -> None:
        """Wait for :meth:`prefetch`'s thread, if one runs or ran unseen; raise its failure."""
        pending = self._prefetch
        if pending is None or pending is threading.current_thread():
            return
        pending.join()
        self.release_log()
        error = self._prefetch_error
        with self._lock:
            if self._prefetch is pending:
                self._prefetch = None  # later calls ask again, as without a prefetch
        if error is not None:
            raise error

    def release_log(self) -> None:
        """Hand the prefetch's log lines (its retries) to the handlers now: they were held since the prefetch began
        so that they reach the run's log, which opens after it (they keep their own times). Called when the first
        caller has waited for the prefetch, and when the client closes without one."""
        # not under self._lock: a sign-in in progress holds it, and a client closing must not wait for that
        with self._held_lock:
            held, self._held = self._held, None
        if held is not None:
            held.release()

    def _log(self, level: int, msg: str, *args: Any) -> None:
        """``log.log``, or kept for :meth:`release_log` when the prefetch's thread logs it."""
        held = self._held
        if held is None or not held.keep(level, msg, args):
            log.log(level, msg, *args)

    def token(self) -> Token:
        """A valid access token: the held one while comfortably before expiry, else a fresh one from MSAL."""
        self._joined_prefetch()
        with self._lock:
            now = self._clock()
            tok = self._token
            if tok is not None and now < tok.expires_at - min(300.0, tok.lifetime / 4):
                return tok
            return self._acquire(now, drop_cached=tok is not None)

    def invalidate(self, rejected: str | None = None) -> None:
        """Forget the held token (Graph answered 401 for it) so the next :meth:`token` gets a new one."""
        with self._lock:
            if rejected is None or (self._token is not None and self._token.value == rejected):
                self._token = None
                if self._app is not None:
                    self._app.remove_tokens_for_client()

    def _acquire(self, now: float, *, drop_cached: bool) -> Token:
        if self._app is None:
            self._app = self._build_app()
        elif drop_cached:
            # Ours is near expiry: MSAL would still serve it while > 5 min remain; ask the IdP instead.
            self._app.remove_tokens_for_client()
        result = self._request_token()
        if "access_token" not in result:
            raise auth_error_from_msal(result, self.config)
        if result.get("token_source") != "cache":
            self.acquisitions += 1
        lifetime = float(result.get("expires_in") or 600)
        self._token = Token(result["access_token"], now + lifetime, lifetime)
        self._log(logging.DEBUG, "access token acquired (source %s, lifetime %.0f s)", result.get("token_source"),
                  lifetime)
        return self._token


    def _record(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        if resp.request.method == "POST":
            self._answer = (resp.status_code, resp.headers)

    def _recorded(self) -> tuple[int, Any] | None:
        """The answer :meth:`_record` saw during the last MSAL call (a call, so the type checker does not assume
        the ``None`` set before that call is still there)."""
        return self._answer

    def _request_token(self) -> dict[str, Any]:
        """MSAL's answer from the token endpoint; its 429, 5xx and transport failures are retried like Graph's
        (capped, jittered backoff honouring Retry-After, within the retry policy) and end in
        :class:`ServiceUnavailableError` (exit 4)."""
        assert self._app is not None
        policy, host = self.config.retry, self.config.authority_host
        started, attempt = time.monotonic(), 0
        while True:
            attempt += 1
            self._answer = None
            failure: str
            try:
                result: dict[str, Any] = self._app.acquire_token_for_client(scopes=[self.config.scope])
            except requests.exceptions.SSLError as exc:
                raise _tls_error(host, exc) from None
            except requests.exceptions.RequestException as exc:
                failure = type(exc).__name__
            except (MsalServiceError, ValueError):
                # MSAL raises for a 5xx and for an answer that is not JSON (a 429 from a gateway)
                answer = self._recorded()
                if answer is None:
                    raise
                failure = f"HTTP {answer[0]}"
            else:
                answer = self._recorded()
                status = answer[0] if answer else 200
                if status != 429 and status < 500:
                    return result
                failure = f"HTTP {status}"
            status, headers = self._recorded() or (0, {})
            delay = policy.next_delay(attempt, headers)
            elapsed = time.monotonic() - started
            if not policy.allows(attempt, elapsed, delay):
                message = (f"the token endpoint of {host} kept failing ({failure}, {attempt} attempt"
                           f"{'s' * (attempt != 1)} over {elapsed:.0f} s): Microsoft Entra ID is unavailable; "
                           "try again later")
                # (no status in the error: the message names it, and the exit code is the same)
                if status == 429:
                    raise ThrottledError(message, retry_after=parse_retry_after(headers.get("Retry-After")))
                raise ServiceUnavailableError(message) if status else TransportError(message)
            self._log(logging.INFO, "token endpoint of %s: %s; retry %d in %.1f s", host, failure, attempt, delay)
            self._http_cache.clear()
            self._sleep(delay)


def _tls_error(host: str, exc: Exception) -> TLSVerificationError:
    return TLSVerificationError(f"TLS verification of {host} failed ({type(exc).__name__}); set PROVISION_CA_BUNDLE "
                                "to the CA certificate that signed it (the sandbox prints its own)")


#: AADSTS code -> what to fix. {client_id}, {tenant}, {cred} are filled in.
_FIXES: dict[int, str] = {
    7000215: "the client secret is wrong: set AZURE_CLIENT_SECRET to the secret's Value (shown once when it was "
             "created), not its Secret ID",
    7000222: "the client secret has expired: create a new one under App registrations > Certificates & secrets "
             "and set AZURE_CLIENT_SECRET to its Value, or use a certificate (AZURE_CLIENT_CERTIFICATE_PATH)",
    700016: "application {client_id} is not registered in (or consented to by) tenant {tenant}: check "
            "AZURE_CLIENT_ID and AZURE_TENANT_ID, and that they belong to the same tenant and cloud",
    90002: "tenant {tenant} does not exist in this cloud: check AZURE_TENANT_ID and PROVISION_CLOUD",
    900023: "{tenant} is not a valid tenant identifier: set AZURE_TENANT_ID to the tenant's GUID or domain name",
    7000216: "no credential was sent: set AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH",
    7000218: "no credential was sent: set AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH",
    700027: "the certificate's signature was not accepted: upload the certificate {cred} to the app registration "
            "(Certificates & secrets) or point AZURE_CLIENT_CERTIFICATE_PATH at the registered one",
    700024: "the token endpoint says the client assertion is not yet valid or expired: this machine's clock is "
            "probably wrong{skew} — check the time and time zone",
    1002012: "the scope must be the Graph root followed by /.default: check GRAPH_ENDPOINT",
    70011: "the scope is not valid: check GRAPH_ENDPOINT and PROVISION_CLOUD",
    7000112: "application {client_id} is disabled in tenant {tenant}: enable it (Enterprise applications)",
    50034: "the user or app does not exist in tenant {tenant}: check AZURE_CLIENT_ID and AZURE_TENANT_ID",
}


def _clock_skew(result: dict[str, Any]) -> str:
    """`` (it is 2 h 0 min ahead of the token endpoint's)`` when the answer's timestamp is more than 5 minutes
    away from this machine's clock, else ``""``."""
    import datetime as dt

    try:
        server = dt.datetime.strptime(str(result.get("timestamp")), "%Y-%m-%d %H:%M:%SZ").replace(
            tzinfo=dt.UTC).timestamp()
    except ValueError:
        return ""
    delta = time.time() - server
    if abs(delta) <= 300:
        return ""
    minutes = round(abs(delta) / 60)
    amount = f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
    return f" (it is {amount} {'ahead of' if delta > 0 else 'behind'} the token endpoint's)"


def auth_error_from_msal(result: dict[str, Any], config: GraphConfig) -> AuthError:
    """Turn MSAL's (or the token endpoint's) error dict into one actionable :class:`AuthError` line."""
    error = str(result.get("error") or "error")
    description = str(result.get("error_description") or "")
    codes = result.get("error_codes") or []
    match = re.search(r"AADSTS(\d+)", description)
    code = int(codes[0]) if codes else int(match.group(1)) if match else 0
    first_line = description.splitlines()[0].strip() if description else ""
    first_line = re.sub(r"^AADSTS\d+:\s*", "", first_line)
    cred = config.certificate.path.name if config.certificate else "secret"
    skew = _clock_skew(result)
    # an assertion refused while this machine's clock is far from the token endpoint's: the clock is the cause,
    # whatever the code says (a certificate upload would not help)
    fix = _FIXES.get(700024 if code == 700027 and skew else code, "")
    fix = fix.format(client_id=config.client_id, tenant=config.tenant_id, cred=cred, skew=skew) if fix else ""
    label = f"AADSTS{code}" if code else error
    message = f"authentication failed ({label}, {error})"
    message += f": {fix}" if fix else f": {first_line or 'no detail given'}"
    if fix and first_line:
        message += f" [server said: {first_line[:200]}]"
    request_id = str(result.get("correlation_id") or result.get("trace_id") or "")
    return AuthError(message, code=label, request_id=request_id, date=str(result.get("timestamp") or ""),
                     status=int(result.get("status", 0) or 0) if str(result.get("status", "")).isdigit() else 0)


__all__ = ["AuthError", "CertificateInfo", "GraphError", "Token", "TokenProvider", "auth_error_from_msal",
           "load_certificate"]
