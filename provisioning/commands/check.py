"""``check [ROSTER]``: a self-test against the tenant: token, granted permissions and directory roles, verified
domains, licences with free seats, and whether the app may do what the planned work needs.

Readiness is decided from the work: without a roster, the basic create path (create users, look them up, read the
verified domains); with a roster, also what its columns ask for (groups, role-assignable groups, licences,
managers) and the options given (``--existing update``, ``--reset-passwords``, ``--notify-from``,
``--credential tap``, ``--deliver-from``). Exit 0 when every needed permission (and directory role) is held, 3
("not ready", naming each missing permission) otherwise. With ``--credential tap`` the tenant's Temporary Access
Pass policy is read too: disabled is exit 3, a ``--tap-lifetime`` outside its bounds exit 2, as ``run`` refuses.
Least-privileged permissions are accepted (LicenseAssignment.Read.All for licences, GroupMember.* for groups).
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.errors import AuthError, BadRequestError, GraphError, NotFoundError
from provisioning.context import CommandContext
from provisioning.errors import ProvisionError
from provisioning.exitcodes import ExitStatus
from provisioning.run.permissions import (
    ALL_NEEDS,
    MAIL_SCOPE_HOW,
    PASSWORD_RESET_ROLES,
    READ_GROUPS,
    READ_TAP_POLICY,
    Need,
    Work,
    needs_for,
)
from provisioning.run.tap import Credential, TapOptions, check_tap_policy, read_tap_policy
from provisioning.validation.references import fetch_groups

if TYPE_CHECKING:
    from graph.client import GraphClient

HELP = "token, permissions, verified domains, licences: is the app ready for this roster? (a self-test)"
NEEDS_TENANT = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The work to check for: a roster and the run options that need more permissions."""
    parser.add_argument("roster", nargs="?", type=Path, metavar="ROSTER",
                        help="check what this roster needs (its groups, licences, managers); without it, the "
                             "basic create path")
    parser.add_argument("--sheet", metavar="S", help="the Excel sheet to read")
    parser.add_argument("--mapping", type=Path, metavar="M", help="a column-mapping JSON file for HR exports")
    parser.add_argument("--existing", choices=("skip", "update", "fail"), default="skip",
                        help="as for run: update needs the right to change users")
    parser.add_argument("--reset-passwords", action="store_true",
                        help="as for run: needs a directory role such as User Administrator besides the permission")
    parser.add_argument("--notify-from", metavar="UPN", help="as for run --notify: needs Mail.Send")
    parser.add_argument("--credential", choices=[c.value for c in Credential], default=Credential.PASSWORD.value,
                        help="as for run: tap needs the Temporary Access Pass policy enabled and the permission to "
                             "issue passes")
    parser.add_argument("--tap-lifetime", type=int, metavar="MINUTES", default=None,
                        help="as for run: checked against the policy's lifetime bounds")
    parser.add_argument("--deliver-from", metavar="UPN", help="as for run --deliver managers: needs Mail.Send")


def _roster_work(args: argparse.Namespace) -> tuple[Work, list[str], list[str]]:
    """What the roster's columns ask for, its group names, and a description of the work."""
    if args.roster is None:
        return Work(), [], []
    from provisioning.roster.reader import load_roster  # deferred: pandas, only when a roster is checked

    roster = load_roster(args.roster, sheet=args.sheet, mapping=args.mapping)
    by_field: dict[str, list[str]] = {}
    for header, column in zip(roster.headers, roster.columns, strict=False):
        field = roster.column_map.get(header)
        if field in ("groups", "licenses", "manager"):
            by_field.setdefault(field, []).extend(v for v in column if v.strip())
    filled = {field for field, values in by_field.items() if values}
    group_names = sorted({g.strip() for cell in by_field.get("groups", ()) for g in cell.split(";") if g.strip()},
                         key=str.lower)
    described = [label for name, label in (("groups", "groups"), ("licenses", "licences"),
                                            ("manager", "managers")) if name in filled]
    return Work(groups="groups" in filled, licenses="licenses" in filled, managers="manager" in filled), \
        group_names, described


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Print the report; 0 when the app may do all the planned work, 3 on auth failure or a missing permission."""
    from dataclasses import replace

    settings = ctx.tenant_settings
    out = ctx.out
    work, group_names, described = _roster_work(args)
    tap = args.credential == Credential.TAP.value
    work = replace(work, update=args.existing == "update", reset_passwords=bool(args.reset_passwords),
                   notify=bool(args.notify_from), tap=tap, deliver=bool(args.deliver_from))
    where = " (sandbox)" if settings.sandbox else f" ({settings.cloud} cloud)"
    out.write(f"Tenant:       {settings.tenant_id}{where}\n")
    cred = (f"client secret (from {settings.sources.get('client_secret', '?')})" if settings.client_secret
            else f"certificate {settings.certificate_path}")
    out.write(f"Application:  {settings.client_id}, {cred}\n")
    out.write(f"Authority:    {settings.authority_host}/{settings.tenant_id}\n")
    out.write(f"Graph:        {settings.graph_endpoint}/v1.0\n")
    from graph.client import GraphClient  # loads requests and msal: imported when the command runs, not for --help

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
        wids = [str(w).lower() for w in claims.get("wids", [])]
        out.write("Granted application permissions: " + (", ".join(sorted(roles)) or "none") + "\n")
        held = sorted({PASSWORD_RESET_ROLES[w] for w in wids if w in PASSWORD_RESET_ROLES})
        out.write("Directory roles of the app: " + (", ".join(held) or "none that may reset passwords") + "\n")
        if work.groups and group_names and READ_GROUPS.granted(roles):
            work = replace(work, role_assignable_groups=_any_role_assignable(client, group_names))
        needed = needs_for(work)
        scope = (f"{args.roster.name} ({', '.join(described) or 'users only'})" if args.roster is not None
                 else "the basic create path; give a ROSTER to check its groups, licences and managers")
        out.write(f"Needed for {scope}:\n")
        for need in needed:
            out.write(_feature_line(need, roles, wids, needed=True))
        others = [n for n in ALL_NEEDS if n not in needed]
        if others:
            out.write("Not needed for this work:\n")
            for need in others:
                out.write(_feature_line(need, roles, wids, needed=False))
        _section(out, "Verified domains", client.domains, _domain_lines)
        _section(out, "Licences", client.subscribed_skus, _sku_lines)
        if tap and READ_TAP_POLICY.granted(roles):  # not granted: listed as missing below
            refused = _tap_policy(ctx, client, TapOptions(args.tap_lifetime))
            if refused is not None:
                return refused
    if work.notify:
        out.write(f"Note: {MAIL_SCOPE_HOW}.\n")
    missing = [(need, gap) for need in needed if (gap := need.missing(roles, wids))]
    if missing:
        what = "; ".join(f"{need.feature} needs {gap}" for need, gap in missing)
        how = "; ".join(dict.fromkeys(need.how() for need, _ in missing))
        ctx.err.write(f"error: not ready: {what}; {how}; then run check again\n")
        return ExitStatus.CONFIG
    extra = f" with the {', '.join(described)} of {args.roster.name}" if described else ""
    out.write(f"Ready: the app can provision users{extra} in this tenant.\n")
    return ExitStatus.OK


def _tap_policy(ctx: CommandContext, client: GraphClient, options: TapOptions) -> ExitStatus | None:
    """Print the tenant's TAP policy; the exit status when ``run --credential tap`` would refuse it, else None."""
    try:
        policy = read_tap_policy(client)
        ctx.out.write(f"Temporary Access Pass policy: {policy.describe()}\n")
        check_tap_policy(policy, options)
    except ProvisionError as exc:
        ctx.out.flush()
        ctx.err.write(f"error: {exc}\n")
        return exc.exit_status
    except GraphError as exc:
        ctx.out.write(f"Temporary Access Pass policy: not readable ({exc})\n")
    return None


def _feature_line(need: Need, roles: set[str], wids: list[str], *, needed: bool) -> str:
    have = need.granted(roles)
    gap = need.missing(roles, wids)
    state = "ok" if not gap else ("MISSING" if needed else "missing")
    if have and not gap:
        detail = ", ".join(have) + (f" + directory role {need.role_held(wids)}" if need.roles else "")
    elif have:
        detail = f"{', '.join(have)} granted, but needs {gap}"
    else:
        detail = "needs one of " + ", ".join(need.any_of)
    return f"  {state:<8} {need.feature:<30} {detail}\n"


def _any_role_assignable(client: GraphClient, names: list[str]) -> bool:
    """Whether any of the roster's groups is role-assignable (its members need RoleManagement.ReadWrite.Directory)."""
    try:
        found = fetch_groups(client, names)
    except GraphError:  # unreadable groups show as a missing permission above; do not guess here
        return False
    return any(g.role_assignable for groups in found.values() for g in groups)


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
