"""``check``: a self-test against the tenant: token, granted app roles, verified domains, licences with free seats.

Exit 0 when everything the provisioning run needs is granted, 3 when authentication fails or a required
application permission is missing. Optional features (groups, licences, managers, mail) are reported, not required.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any, Callable

from graph.client import GraphClient
from graph.errors import AuthError, BadRequestError, NotFoundError

from ..context import CommandContext
from ..exitcodes import ExitStatus

HELP = "token, granted app roles, verified domains, licences: a self-test of the configuration"
NEEDS_TENANT = True


@dataclass(frozen=True, slots=True)
class Feature:
    """A provisioning feature and the application permissions (any one of them) it needs."""

    name: str
    any_of: tuple[str, ...]
    required: bool = False


FEATURES: tuple[Feature, ...] = (
    Feature("create users", ("User.ReadWrite.All", "Directory.ReadWrite.All"), required=True),
    Feature("look up existing users", ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
                                       "Directory.ReadWrite.All"), required=True),
    Feature("read verified domains", ("Domain.Read.All", "Domain.ReadWrite.All", "Directory.Read.All",
                                      "Directory.ReadWrite.All")),
    Feature("read licences (SKUs)", ("Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All",
                                     "Directory.ReadWrite.All")),
    Feature("assign licences", ("User.ReadWrite.All", "LicenseAssignment.ReadWrite.All", "Directory.ReadWrite.All")),
    Feature("add to groups", ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All")),
    Feature("set managers", ("User.ReadWrite.All", "Directory.ReadWrite.All")),
    Feature("send notification mail", ("Mail.Send",)),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``check`` takes no options of its own."""


def missing_features(roles: set[str]) -> list[Feature]:
    """The features none of whose permissions is among ``roles``."""
    return [f for f in FEATURES if not roles.intersection(f.any_of)]


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Print the report; 0 when ready to provision, 3 on auth failure or a missing required permission."""
    settings = ctx.settings
    out = ctx.out
    where = " (sandbox)" if settings.sandbox else f" ({settings.cloud} cloud)"
    out.write(f"Tenant:       {settings.tenant_id}{where}\n")
    cred = (f"client secret (from {settings.sources.get('client_secret', '?')})" if settings.client_secret
            else f"certificate {settings.certificate_path}")
    out.write(f"Application:  {settings.client_id}, {cred}\n")
    out.write(f"Authority:    {settings.authority_host}/{settings.tenant_id}\n")
    out.write(f"Graph:        {settings.graph_endpoint}/v1.0\n")
    with GraphClient(settings.graph_config()) as client:
        try:
            token = client.token()
        except AuthError as exc:
            out.flush()
            ctx.err.write(f"error: {exc}\n")
            return ExitStatus.CONFIG
        if client.tokens.certificate is not None:
            out.write(f"Certificate:  SHA-1 thumbprint {client.tokens.certificate.sha1_thumbprint}\n")
        remaining = max(0, int(token.expires_at - time.time()))
        out.write(f"Token:        acquired, valid for {remaining} s\n")
        claims = token.claims()
        roles = set(str(r) for r in claims.get("roles", []))
        out.write("Granted application permissions: " + (", ".join(sorted(roles)) or "none") + "\n")
        missing = missing_features(roles)
        out.write("Features:\n")
        for feature in FEATURES:
            have = sorted(roles.intersection(feature.any_of))
            state = "ok" if have else ("MISSING" if feature.required else "missing")
            detail = ", ".join(have) if have else "needs one of " + ", ".join(feature.any_of)
            out.write(f"  {state:<8} {feature.name:<24} {detail}\n")
        _section(out, "Verified domains", client.domains, _domain_lines)
        _section(out, "Licences", client.subscribed_skus, _sku_lines)
    required_missing = [f for f in missing if f.required]
    if required_missing:
        perms = "; ".join(f"{f.name}: {f.any_of[0]}" for f in required_missing)
        ctx.err.write(f"error: the app lacks required application permissions ({perms}); grant them under "
                      "App registrations > API permissions > Microsoft Graph > Application permissions, then "
                      "grant admin consent\n")
        return ExitStatus.CONFIG
    out.write("Ready: the app can provision users in this tenant.\n")
    return ExitStatus.OK


def _section(out: Any, title: str, fetch: Callable[[], list[dict[str, Any]]],
             render: Callable[[list[dict[str, Any]]], list[str]]) -> None:
    try:
        items = fetch()
    except (AuthError, BadRequestError, NotFoundError) as exc:  # optional: report, keep going
        out.write(f"{title}: not readable ({exc})\n")
        return
    lines = render(items)
    out.write(f"{title}:" + ("\n" + "\n".join(f"  {line}" for line in lines) if lines else " none") + "\n")


def _domain_lines(domains: list[dict[str, Any]]) -> list[str]:
    lines = []
    for d in sorted(domains, key=lambda d: (not d.get("isDefault"), str(d.get("id")))):
        if not d.get("isVerified"):
            continue
        tags = [t for t, on in (("default", d.get("isDefault")), ("initial", d.get("isInitial"))) if on]
        if d.get("authenticationType") == "Federated":
            tags.append("federated: users need onPremisesImmutableId")
        lines.append(f"{d.get('id')}" + (f" ({', '.join(tags)})" if tags else ""))
    return lines


def _sku_lines(skus: list[dict[str, Any]]) -> list[str]:
    lines = []
    for s in sorted(skus, key=lambda s: str(s.get("skuPartNumber"))):
        enabled = int((s.get("prepaidUnits") or {}).get("enabled") or 0)
        consumed = int(s.get("consumedUnits") or 0)
        lines.append(f"{s.get('skuPartNumber')}: {max(0, enabled - consumed)} of {enabled} free "
                     f"(skuId {s.get('skuId')})")
    return lines
