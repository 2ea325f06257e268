"""A run folder belongs to one tenant: the tenant, authority and Graph endpoint it was started with.

``run`` records them in the journal's meta (``tenant``: the configured tenant, the token's ``tid`` claim, the
authority host and the Graph endpoint). ``resume`` and ``retry`` compare them with the settings in force before
anything is sent, and refuse (exit 3) when they name another tenant or endpoint: a resume with another tenant's
``--env-file`` would otherwise split one roster over two tenants.

Values are compared normalised: hosts case-insensitively (with their port); the authority by cloud when it is a
known Microsoft host (``login.microsoftonline.com`` and ``login.windows.net`` are the same authority); the tenant
as the GUID the token carries, so a tenant given by domain name matches the same tenant given by GUID. The
in-process ``--sandbox`` listens on a new port each time: its identity is its state folder.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.clouds import clouds_of_authority, host_of
from graph.errors import GraphError
from provisioning.errors import ConfigError
from provisioning.settings import Settings

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HINT = "use the --env-file/--config the run was started with"
SANDBOX_HINT = "use the --sandbox-dir the run was started with"


def _sandbox(settings: Settings) -> str:
    if settings.sandbox and settings.ca_bundle:
        # the sandbox's CA lives in its state folder, which is what identifies that tenant (its port changes)
        return f"sandbox:{Path(settings.ca_bundle).resolve().parent}"
    return ""


def _endpoint(settings: Settings) -> str:
    return _sandbox(settings) or str(settings.graph_endpoint)


def _authority(settings: Settings) -> str:
    return _sandbox(settings) or str(settings.authority_host)


def token_tid(client: GraphClient) -> str:
    """The tenant GUID of the client's access token ('' when it carries none)."""
    return str(client.token().claims().get("tid") or "").lower()


def binding_of(settings: Settings, client: GraphClient | None = None) -> dict[str, str]:
    """What the journal records of the tenant a run works in (``client``: to read the token's tenant id)."""
    return {"tenant": str(settings.tenant_id), "tid": token_tid(client) if client is not None else "",
            "authority_host": _authority(settings), "graph_endpoint": _endpoint(settings)}


def recorded_binding(meta: Mapping[str, Any]) -> dict[str, str]:
    """The binding of a journal; runs recorded before it existed give what their public settings hold."""
    bound = meta.get("tenant")
    if isinstance(bound, Mapping):
        return {k: str(bound.get(k) or "") for k in ("tenant", "tid", "authority_host", "graph_endpoint")}
    settings = meta.get("settings") or {}
    if settings.get("cloud") == "sandbox":  # an in-process sandbox's port was all it recorded: not comparable
        return {"tenant": str(settings.get("tenant_id") or ""), "tid": "", "authority_host": "", "graph_endpoint": ""}
    return {"tenant": str(settings.get("tenant_id") or ""), "tid": "",
            "authority_host": str(settings.get("authority_host") or ""),
            "graph_endpoint": str(settings.get("graph_endpoint") or "")}


def _same_host(a: str, b: str) -> bool:
    if a.startswith("sandbox:") or b.startswith("sandbox:"):
        return a == b
    return host_of(a) == host_of(b)


def _same_authority(a: str, b: str) -> bool:
    if a.startswith("sandbox:") or b.startswith("sandbox:"):
        return a == b
    ca, cb = clouds_of_authority(a), clouds_of_authority(b)
    return bool(ca & cb) if ca and cb else host_of(a) == host_of(b)


def _describe(tenant: str, tid: str, endpoint: str, authority: str, with_authority: bool) -> str:
    name = tenant if not tid or tid == tenant.lower() else f"{tenant} ({tid})"
    where = endpoint.replace("sandbox:", "the sandbox in ", 1)
    return f"tenant {name} at {where}" + (f" (authority {authority})" if with_authority else "")


def check_binding(meta: Mapping[str, Any], settings: Settings, run_dir: Path,
                  client: GraphClient | None = None) -> None:
    """Refuse (``ConfigError``, exit 3) when ``settings`` name another tenant, authority or Graph endpoint than
    the run in ``run_dir`` was started with. ``client`` (a Graph client for ``settings``) is asked for a token
    only when the tenant names differ in spelling (domain vs GUID): the token's tenant id then decides."""
    bound = recorded_binding(meta)
    if not (bound["tenant"] or bound["graph_endpoint"]):
        log.warning("%s: the journal does not say which tenant the run was in; not checked", run_dir)
        return
    tenant = str(settings.tenant_id).strip()
    endpoint = _endpoint(settings)
    authority = _authority(settings)
    known = {v.lower() for v in (bound["tenant"], bound["tid"]) if v}

    def refuse(with_authority: bool = False) -> ConfigError:
        was = _describe(bound["tenant"], bound["tid"], bound["graph_endpoint"], bound["authority_host"],
                        with_authority)
        now = _describe(tenant, "", endpoint, authority, with_authority)
        hint = SANDBOX_HINT if bound["graph_endpoint"].startswith("sandbox:") and _sandbox(settings) else HINT
        return ConfigError(f"this run folder belongs to {was} (journal); the settings name {now}; {hint}")

    if bound["graph_endpoint"] and not _same_host(bound["graph_endpoint"], endpoint):
        raise refuse()
    if bound["authority_host"] and not _same_authority(bound["authority_host"], authority):
        raise refuse(with_authority=True)
    if not bound["tenant"] or tenant.lower() in known:
        return
    if _GUID.match(tenant.lower()) and any(_GUID.match(k) for k in known):
        raise refuse()  # two different GUIDs: no need to ask the other tenant for a token
    try:
        tid = token_tid(client) if client is not None else ""
    except GraphError as exc:  # a tenant that gives no token is not the run's tenant, whatever else it is
        log.info("binding check: no token for %s (%s)", tenant, exc)
        tid = ""
    if not tid or tid not in known:
        raise refuse()
    log.info("binding: tenant %s is %s, the run's tenant", tenant, tid)
