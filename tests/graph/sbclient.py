"""Helpers: a GraphClient pointed at a running sandbox (real HTTPS, the sandbox's CA)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from graph.client import GraphClient
from graph.config import CertificateCredential, GraphConfig, Secret
from graph.governor import GovernorConfig
from graph.retry import RetryPolicy

FAST_RETRY = RetryPolicy(max_attempts=8, max_total_s=60, base_delay_s=0.05, cap_delay_s=0.5, max_retry_after_s=5)


def sandbox_config(sb: Any, *, secret: str | None = None, certificate: bool = False, **overrides: Any) -> GraphConfig:
    """GraphConfig for the sandbox: its secret (or ``secret``), or its certificate."""
    cred: dict[str, Any] = {}
    if certificate:
        pw = sb.certificate_password
        cred["certificate"] = CertificateCredential(Path(sb.certificate_path), Secret(pw) if pw else None)
    else:
        cred["client_secret"] = Secret(sb.client_secret if secret is None else secret)
    cfg = GraphConfig(authority_host=sb.authority_host, tenant_id=sb.tenant_id, client_id=sb.client_id,
                      graph_endpoint=sb.graph_endpoint, scope=f"{sb.graph_endpoint}/.default",
                      ca_bundle=Path(sb.ca_bundle), retry=FAST_RETRY,
                      governor=GovernorConfig(rate_per_s=1000, burst=100), **cred)
    return replace(cfg, **overrides) if overrides else cfg


def client_for(sb: Any, **kw: Any) -> GraphClient:
    """A client for the sandbox; ``kw`` goes to :func:`sandbox_config` or, for clocks/sleep, to GraphClient."""
    client_kw = {k: kw.pop(k) for k in list(kw) if k in ("sleep", "clock", "wall_clock", "rng", "token_clock",
                                                          "governor", "tokens", "session")}
    return GraphClient(sandbox_config(sb, **kw), **client_kw)


def new_user(upn: str, **extra: Any) -> dict[str, Any]:
    """A valid POST /users body."""
    local = upn.split("@")[0]
    return {"accountEnabled": True, "displayName": local, "mailNickname": local.replace("'", ""),
            "userPrincipalName": upn,
            "passwordProfile": {"password": "Xy9!kq2#Lm7z", "forceChangePasswordNextSignIn": True}, **extra}
