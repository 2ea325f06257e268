"""Token acquisition against the sandbox over HTTPS: secret, certificate, failures, reuse and renewal."""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from graph.auth import TokenProvider, auth_error_from_msal
from graph.config import CertificateCredential, Secret
from graph.errors import AuthError, TLSVerificationError
from sbclient import client_for, sandbox_config


def test_secret_auth_and_granted_roles(sandbox):
    with client_for(sandbox) as client:
        assert "User.ReadWrite.All" in client.granted_roles()
        claims = client.token().claims()
        assert claims["tid"] == sandbox.tenant_id
        assert client.get("/organization")["value"]
    assert sandbox.stats()["token_requests"] == 1


def test_certificate_auth_with_computed_thumbprint(sandbox):
    with client_for(sandbox, certificate=True) as client:
        assert client.organization()["id"] == sandbox.tenant_id
        info = client.tokens.certificate
        assert len(info.sha1_thumbprint) == 40 and len(info.sha256_thumbprint) == 64
    assert sandbox.stats()["token_requests"] == 1


def test_token_is_reused_across_many_calls(sandbox):
    with client_for(sandbox) as client:
        for _ in range(5):
            client.domains()
        assert client.tokens.acquisitions == 1
    assert sandbox.stats()["token_requests"] == 1


def test_short_lived_token_is_renewed_near_expiry(sandbox_factory):
    sb = sandbox_factory(token_lifetime=20)
    now = [time.time()]
    with client_for(sb, token_clock=lambda: now[0]) as client:
        first = client.token()
        assert first.lifetime == 20
        now[0] += 10  # 10 s left > margin of 5 s: reused
        assert client.token() is first
        client.domains()
        assert sb.stats()["token_requests"] == 1
        now[0] += 6  # 4 s left: renewed before it runs out
        second = client.token()
        assert second.value != first.value
        client.domains()
    assert sb.stats()["token_requests"] == 2


def test_expired_token_answered_401_is_renewed_once_and_the_read_resent(sandbox_factory):
    sb = sandbox_factory(token_lifetime=60)
    frozen = time.time()
    with client_for(sb, token_clock=lambda: frozen) as client:  # our clock says the token is still fresh
        client.domains()
        sb.set_knobs(clock_offset_s=61)  # the sandbox's clock says it expired (and stamps the new one by it)
        assert client.domains()
        assert client.tokens.acquisitions == 2
    stats = sb.stats()
    assert stats["token_requests"] == 2 and stats["by_status"].get("401") == 1


def test_failing_token_endpoint_is_retried_with_backoff_then_unavailable(sandbox_factory):
    """What ``check`` shows in real time (tests/test_check_export.py, slow), on an injected sleep: the default
    policy's 8 attempts, each after the endpoint's Retry-After (1 s), then one ServiceUnavailableError."""
    from graph.errors import ServiceUnavailableError
    from graph.retry import RetryPolicy

    sb = sandbox_factory(faults={"token500": 1.0})
    slept = []
    provider = TokenProvider(sandbox_config(sb, retry=RetryPolicy()), sleep=slept.append)
    with pytest.raises(ServiceUnavailableError) as exc:
        provider.token()
    assert str(exc.value).startswith(f"the token endpoint of {sb.authority_host} kept failing (HTTP 500, 8 attempts")
    assert slept == [1.0] * 7
    assert sb.stats()["token_requests"] == 8  # each retry reached the endpoint, not MSAL's replay cache


@pytest.fixture
def no_leak(caplog):
    caplog.set_level(logging.DEBUG)
    yield caplog


def _failure(sb, **kw) -> AuthError:
    with client_for(sb, **kw) as client, pytest.raises(AuthError) as exc:
        client.domains()
    return exc.value


def test_wrong_secret_message(sandbox, no_leak):
    err = _failure(sandbox, secret="wrong-secret-value-123")
    assert str(err).startswith(
        "authentication failed (AADSTS7000215, invalid_client): the client secret is wrong: set AZURE_CLIENT_SECRET "
        "to the secret's Value (shown once when it was created), not its Secret ID [server said: Invalid client "
        "secret provided.")
    assert err.code == "AADSTS7000215" and "\n" not in str(err)
    assert "wrong-secret-value-123" not in str(err) + no_leak.text


def test_prefetched_token_is_the_one_the_reads_use(sandbox):
    with client_for(sandbox) as client:
        client.tokens.prefetch()
        client.tokens.prefetch()  # asked for already: no second thread, no second request
        with ThreadPoolExecutor(3) as pool:  # pre-flight's reads, all waiting for the one sign-in
            reads = [pool.submit(client.domains), pool.submit(client.organization), pool.submit(client.token)]
            domains, organization, token = (r.result() for r in reads)
        assert domains and organization["id"] == sandbox.tenant_id
        assert token.claims()["tid"] == sandbox.tenant_id and client.token() is token
        assert client.tokens.acquisitions == 1
    assert sandbox.stats()["token_requests"] == 1


def test_prefetched_sign_in_that_fails_fails_the_reads_once_with_its_message(sandbox, no_leak):
    direct = _failure(sandbox, secret="wrong-secret-value-123")
    requests_before = sandbox.stats()["token_requests"]
    with client_for(sandbox, secret="wrong-secret-value-123") as client:
        client.tokens.prefetch()
        with ThreadPoolExecutor(3) as pool:
            reads = [pool.submit(client.domains), pool.submit(client.organization), pool.submit(client.token)]
            errors = []
            for r in reads:
                with pytest.raises(AuthError) as exc:
                    r.result()
                errors.append(str(exc.value))
    assert errors == [str(direct)] * 3  # the message a sign-in without a prefetch gives
    assert sandbox.stats()["token_requests"] == requests_before + 1  # one attempt, not one per waiting read
    assert "wrong-secret-value-123" not in " ".join(errors) + no_leak.text


def test_a_client_closing_does_not_wait_for_a_sign_in_that_keeps_failing(sandbox_factory):
    """A run that ends before it needs its token (a roster it cannot read, say) closes its client at once, while the
    prefetch is still retrying a token endpoint that answers 500."""
    sb = sandbox_factory(faults={"token500": 1.0})
    client = client_for(sb)
    client.tokens.prefetch()
    deadline = time.monotonic() + 10
    while sb.stats()["token_requests"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)  # the prefetch is in its sign-in (and holds the provider's lock) from here
    assert sb.stats()["token_requests"] >= 1
    closing = threading.Thread(target=client.close)
    closing.start()
    closing.join(timeout=5)  # the retries would take longer than this (8 attempts with backoff)
    assert not closing.is_alive()


def test_unknown_application_message(sandbox):
    err = _failure(sandbox, client_id="00000000-0000-0000-0000-000000000001")
    assert str(err).startswith(
        "authentication failed (AADSTS700016, unauthorized_client): application "
        "00000000-0000-0000-0000-000000000001 is not registered in (or consented to by) tenant "
        f"{sandbox.tenant_id}: check AZURE_CLIENT_ID and AZURE_TENANT_ID")


def test_unknown_tenant_message(sandbox):
    err = _failure(sandbox, tenant_id="nosuchtenant.onmicrosoft.com")
    assert str(err).startswith(
        "authentication failed (AADSTS90002, invalid_tenant): tenant nosuchtenant.onmicrosoft.com does not exist "
        "in this cloud: check AZURE_TENANT_ID and PROVISION_CLOUD")


def test_wrong_certificate_password(sandbox):
    cfg = sandbox_config(sandbox, certificate=True)
    cfg = replace(cfg, certificate=CertificateCredential(cfg.certificate.path, Secret("not-it")))
    with pytest.raises(AuthError) as exc:
        TokenProvider(cfg).token()
    assert str(exc.value) == (f"cannot open the private key in {cfg.certificate.path}: wrong "
                              "AZURE_CLIENT_CERTIFICATE_PASSWORD or not a supported key")


def test_unregistered_certificate_is_refused(sandbox, tmp_path):
    from sandbox_certs import self_signed_pem

    pem = tmp_path / "other.pem"
    pem.write_text(self_signed_pem())
    cfg = replace(sandbox_config(sandbox, certificate=True), certificate=CertificateCredential(pem))
    with pytest.raises(AuthError) as exc:
        TokenProvider(cfg).token()
    assert str(exc.value).startswith("authentication failed (AADSTS700027, invalid_client): the certificate's "
                                     "signature was not accepted: upload the certificate other.pem")


def test_untrusted_tls_is_a_configuration_error(sandbox):
    cfg = replace(sandbox_config(sandbox), ca_bundle=Path("/etc/ssl/certs/ca-certificates.crt"))
    with pytest.raises(TLSVerificationError) as exc:
        TokenProvider(cfg).token()
    assert str(exc.value) == (f"TLS verification of {sandbox.authority_host} failed (SSLError); set "
                              "PROVISION_CA_BUNDLE to the CA certificate that signed it (the sandbox prints its own)")


@pytest.mark.parametrize("code, fix", [
    (7000222, "the client secret has expired: create a new one under App registrations > Certificates & secrets "
              "and set AZURE_CLIENT_SECRET to its Value, or use a certificate (AZURE_CLIENT_CERTIFICATE_PATH)"),
    (7000216, "no credential was sent: set AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH"),
])
def test_other_aadsts_codes_are_explained(sandbox, code, fix):
    # The mapping on the documented error shape (graph-facts 7.3); tests/sandbox/test_secret_expired_cli.py gets 7000222
    # from the sandbox itself.
    result = {"error": "invalid_client", "error_codes": [code],
              "error_description": f"AADSTS{code}: Something.\r\nTrace ID: x\r\nCorrelation ID: y",
              "correlation_id": "corr-1", "timestamp": "2026-01-01 00:00:00Z"}
    err = auth_error_from_msal(result, sandbox_config(sandbox))
    assert str(err) == f"authentication failed (AADSTS{code}, invalid_client): {fix} [server said: Something.]"
    assert err.request_id == "corr-1"


def test_access_token_and_secret_never_logged(sandbox, no_leak):
    with client_for(sandbox) as client:
        token = client.token().value
        client.domains()
        assert token not in repr(client.token())
    assert token not in no_leak.text and sandbox.client_secret not in no_leak.text


def test_refused_assertion_while_the_clock_is_far_off_names_the_clock(sandbox):
    import datetime as dt

    server_time = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2, minutes=1)
    result = {"error": "invalid_client", "error_codes": [700027],
              "error_description": "AADSTS700027: Client assertion failed signature validation.\r\nTrace ID: x",
              "timestamp": server_time.strftime("%Y-%m-%d %H:%M:%SZ")}
    err = auth_error_from_msal(result, sandbox_config(sandbox))
    assert str(err) == ("authentication failed (AADSTS700027, invalid_client): the token endpoint says the client "
                        "assertion is not yet valid or expired: this machine's clock is probably wrong (it is 2 h "
                        "1 min ahead of the token endpoint's) — check the time and time zone [server said: Client "
                        "assertion failed signature validation.]")
