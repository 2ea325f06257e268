"""Who ran what against which tenant, and the confirmation asked before a destructive write.

A run records, in its journal's meta, ``summary.json`` and ``run.log``: the tool version, the operator (the OS
user), the host, the command line with secrets redacted, the tenant (id, name, default domain) and the app id
(:func:`audit_fields`). :data:`AUDIT` is a logger whose lines go to ``run.log`` only (never to the console): the
audit line at the start of a session and any fatal error.

:func:`confirm` is asked before the first write of a run that resets passwords: it names the tenant and what will
happen and waits for ``yes`` on a terminal; ``--yes`` answers for a script; without a terminal and without
``--yes`` it refuses (exit 2) before anything is sent.
"""
from __future__ import annotations

import getpass
import logging
import os
import shlex
import socket
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import provisioning
from graph.errors import GraphError
from provisioning.context import CommandContext
from provisioning.errors import UsageError
from provisioning.settings import Settings

if TYPE_CHECKING:
    from graph.client import GraphClient

log = logging.getLogger(__name__)

#: run.log only: the session's audit line and fatal errors (``propagate`` off: the console shows its own lines).
AUDIT = logging.getLogger("provisioning.audit")
AUDIT.propagate = False
AUDIT.setLevel(logging.INFO)

REDACTED = "***"
_SECRET_FLAGS = ("secret", "password", "token", "key")  # a flag naming one of these carries a secret value


@dataclass(frozen=True, slots=True)
class TenantIdentity:
    """The tenant as an administrator knows it: its id, display name and default domain ('' when unknown)."""

    tenant_id: str
    name: str
    default_domain: str

    def label(self) -> str:
        """``Contoso (contoso.com, 0000-...)``, or the id alone when the name could not be read."""
        extra = ", ".join(x for x in (self.default_domain, self.tenant_id) if x)
        return f"{self.name} ({extra})" if self.name else (extra or "(unknown tenant)")


def tenant_identity(client: GraphClient, tenant_id: str, default_domain: str = "", *,
                    organization: Callable[[], dict[str, Any]] | None = None) -> TenantIdentity:
    """``GET /organization`` (its display name, and its default verified domain when ``default_domain`` is not
    known), or ``organization()`` where it was read already; a tenant that does not answer (no
    Organization.Read.All) keeps its id alone, with a log line."""
    try:
        org = (organization or client.organization)()
    except GraphError as exc:
        log.info("the organization could not be read (%s): the tenant is shown by its id", exc)
        org = {}
    if not default_domain:
        default_domain = next((str(d.get("name") or "") for d in org.get("verifiedDomains") or ()
                               if d.get("isDefault")), "")
    return TenantIdentity(str(org.get("id") or tenant_id), str(org.get("displayName") or ""), default_domain)


def operator() -> str:
    """The OS user running the tool; 'unknown' where the platform cannot tell (no login name, no passwd entry)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return os.environ.get("USERNAME") or os.environ.get("USER") or "unknown"


def host() -> str:
    """This machine's name ('' if it cannot be read)."""
    try:
        return socket.gethostname()
    except OSError:
        return ""


def redact_argv(argv: Sequence[str], secrets: Iterable[str] = ()) -> str:
    """The command line as one string, every secret value and the value of a secret-named flag as ``***``."""
    values = sorted({s for s in secrets if s}, key=len, reverse=True)
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        flag, eq, _ = arg.partition("=")
        secret_flag = flag.startswith("--") and any(w in flag.lower() for w in _SECRET_FLAGS)
        if secret_flag and eq:
            arg = f"{flag}={REDACTED}"
        elif secret_flag and not flag.startswith("--reset-") and not flag.startswith("--no-"):
            hide_next = True
        for value in values:
            arg = arg.replace(value, REDACTED)
        out.append(arg)
    return shlex.join(out)


def audit_fields(console: CommandContext, settings: Settings, secrets: Iterable[str],
                 tenant: Mapping[str, Any]) -> dict[str, str]:
    """What ``summary.json`` and ``run.log`` record of a session: tool, operator, host, command, tenant, app."""
    argv = list(console.argv) if console.argv else list(sys.argv[1:])
    return {
        "tool_version": provisioning.running_version(), "operator": operator(), "host": host(),
        "command": redact_argv([*_program(console.command_line), *argv], secrets),
        "tenant_id": str(tenant.get("tenant_id") or settings.tenant_id or ""),
        "tenant_name": str(tenant.get("tenant_name") or ""),
        "default_domain": str(tenant.get("default_domain") or ""),
        "app_id": str(settings.client_id or ""),
    }


def recorded_tenant(meta: Mapping[str, Any]) -> dict[str, str]:
    """The tenant a journal's meta records: its id (the token's), name and default domain."""
    found = meta.get("tenant")
    bound: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    settings = meta.get("settings") or {}
    return {"tenant_id": str(bound.get("tid") or bound.get("tenant") or settings.get("tenant_id") or ""),
            "tenant_name": str(meta.get("tenant_name") or ""), "default_domain": str(meta.get("default_domain") or "")}


def _program(command_line: str) -> list[str]:
    """How the tool was invoked without its settings options: ``python provision.py --sandbox`` -> the first two."""
    words = shlex.split(command_line)
    return words[: next((k for k, w in enumerate(words) if w.startswith("-")), len(words))]


def log_audit(fields: Mapping[str, str]) -> None:
    """The session's audit line in run.log."""
    AUDIT.info("session: %s", ", ".join(f"{k}={v}" for k, v in fields.items()))


def confirm(console: CommandContext, *, yes: bool, tenant: TenantIdentity, what: str,
            stdin: TextIO | None = None) -> None:
    """Ask before a destructive write: ``what`` will be done in ``tenant``. ``yes``: already answered (``--yes``).

    On a terminal (stdin and the console's error stream), the answer must be ``yes`` (or ``y``); anything else
    stops the run with exit 2 before anything is sent. Without a terminal, it refuses unless ``yes``."""
    if yes:
        AUDIT.info("confirmed by --yes: %s in %s", what, tenant.label())
        return
    stdin = stdin if stdin is not None else sys.stdin
    isatty = getattr(stdin, "isatty", None)
    if not (console.interactive and callable(isatty) and isatty()):
        raise UsageError(f"this run would {what} in the tenant {tenant.label()}; no terminal to confirm it on: "
                         "give --yes to confirm it (nothing was sent)")
    console.err.write(f"Tenant: {tenant.label()}\nThis run will {what}.\nType yes to go on: ")
    console.err.flush()
    answer = stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("not confirmed: nothing was sent")
    AUDIT.info("confirmed on the terminal by %s: %s in %s", operator(), what, tenant.label())
