"""``run ROSTER``: validate the roster against the tenant, plan, and create the users (journaled, resumable)."""
from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioning.api import (
    Session,
    execute,
    finish,
    make_client,
    resume_hint,
    run_log,
    settings_public,
    settings_secrets,
)
from provisioning.commands import add_header_row_argument
from provisioning.context import CommandContext
from provisioning.errors import UsageError
from provisioning.exitcodes import ExitStatus
from provisioning.models import ExistingUser, Issue, Roster, TenantView, UserRow, Validation
from provisioning.report.notify import add_notify_arguments, require_notify_arguments
from provisioning.roster.encodings import encoding_option
from provisioning.run.binding import binding_of
from provisioning.run.chain import bind_plan, bind_validation, bound_accounts, drop_done, renames, tenant_employee_ids
from provisioning.run.creates import EXISTS_CODE, ApplyResult, CreateItem
from provisioning.run.folder import RunFolder, new_run_folder
from provisioning.run.followups import plan_followups
from provisioning.run.journal import Journal, Outcome, RowSeed, RowState
from provisioning.run.lock import lock_run_folder
from provisioning.run.plan import ActionKind, Plan, make_plan, upn_of
from provisioning.run.secrets import PasswordFile, SecretFilter
from provisioning.run.updates import UserUpdate, fetch_current, plan_updates, select_for
from provisioning.validation.references import References, check_references, resolve
from provisioning.validation.tenant import GraphTenantView

if TYPE_CHECKING:
    from graph.client import GraphClient

HELP = "validate a roster against the tenant, then create its users through Graph $batch (journaled, resumable)"
NEEDS_TENANT = True

log = logging.getLogger(__name__)


def _batch_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 20:
        raise argparse.ArgumentTypeError("must be between 1 and 20 (the Graph $batch limit)")
    return value


def _number(text: str) -> float:
    """A finite number: ``nan`` and ``inf`` parse as floats but would switch the write governor off."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _rate(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of writes per second")
    return value


def _burst(text: str) -> float:
    value = _number(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a number of writes, at least 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``run`` options."""
    parser.add_argument("roster", type=Path, metavar="ROSTER", help="the roster file (.csv, .xlsx, .xlsm)")
    parser.add_argument("--sheet", metavar="S", help="the Excel sheet to read (default: the first visible one "
                                                     "with a header)")
    add_header_row_argument(parser)
    parser.add_argument("--mapping", type=Path, metavar="M", help="a column-mapping JSON file for HR exports")
    parser.add_argument("--encoding", type=encoding_option, metavar="NAME",
                        help="a CSV file's text encoding (cp1252, cp1250, mac_roman...) when it is not UTF-8 and "
                             "cannot be told for certain (default: detected; resume reads it the same way)")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate and plan against the tenant, write the run folder, send no write")
    parser.add_argument("--existing", choices=("skip", "update", "fail"), default="skip",
                        help="a user whose userPrincipalName already exists: skip it (default), update it (PATCH "
                             "only the roster's properties that differ from the tenant's) or report it as failed")
    parser.add_argument("--reset-passwords", action="store_true",
                        help="with --existing update: also reset the password of every updated user (the "
                             "roster's, or a generated one written to passwords.csv)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="the run folder (default: runs/<YYYYmmdd-HHMMSS>-<roster name>/)")
    parser.add_argument("--force", action="store_true",
                        help="with --out: replace results files left in that folder by something else than a run")
    parser.add_argument("--batch-size", type=_batch_size, metavar="N", default=None,
                        help="requests per $batch, 1..20 (default 20)")
    parser.add_argument("--max-writes-per-s", type=_rate, metavar="R", default=None,
                        help="a cap: at most R writes per second, and at most R at once unless --write-burst "
                             "says otherwise (default none: the governor spends Graph's bucket of 3,000 writes, "
                             "then follows the rate Graph's throttling answers show)")
    parser.add_argument("--write-burst", type=_burst, metavar="N", default=None,
                        help="a cap on the writes the governor sends at once (default none: Graph's bucket, "
                             "3,000 writes unless Graph's answers show another size)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_notify_arguments(parser)


def seeds(plan: Plan, *, dry_run: bool, bodies: dict[int, dict[str, Any]] | None = None,
          updates: dict[int, UserUpdate] | None = None) -> list[RowSeed]:
    """The journal's initial record of every row (``bodies``: the create bodies already built, by row;
    ``updates``: the PATCH of every UPDATE row)."""
    out = []
    for a in plan.actions:
        user = a.user
        body = None
        if a.kind is ActionKind.CREATE and user is not None:
            body = bodies[a.row] if bodies and a.row in bodies else user.graph_body()
        elif a.kind is ActionKind.UPDATE and updates and a.row in updates:
            body = dict(updates[a.row].body)
        display = str(user.fields.get("displayName", "") or "") if user is not None else ""
        if dry_run:
            state = RowState.INVALID if a.kind is ActionKind.INVALID else RowState.PLANNED
        else:
            state = {ActionKind.CREATE: RowState.PENDING, ActionKind.UPDATE: RowState.PENDING,
                     ActionKind.SKIP: RowState.SKIPPED,
                     ActionKind.EXISTS: RowState.FAILED, ActionKind.INVALID: RowState.INVALID}[a.kind]
        out.append(RowSeed(
            row=a.row, upn=a.upn, action=a.kind.value, state=state,
            password_source=_password_source(a, body),
            body=body, display_name=display, object_id=a.object_id, message=a.message, issues=a.issues))
    return out


def _password_source(a: Any, body: dict[str, Any] | None) -> str:
    """Where the password of a create (or reset) came from; for an invalid row, where it would have come from, so
    that a ``retry`` knows whether the roster gave one (the reports never copy it)."""
    user = a.user
    if user is None:
        return ""
    if body is not None and (a.kind is ActionKind.CREATE or "passwordProfile" in body) or \
            a.kind is ActionKind.INVALID:
        return "generated" if user.password_generated else "roster"
    return ""


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Run the roster: pre-flight, plan, journal, apply, report."""
    from provisioning.roster.reader import load_roster

    started = time.monotonic()
    require_notify_arguments(args)
    if getattr(args, "reset_passwords", False) and args.existing != "update":
        raise UsageError("--reset-passwords only applies with --existing update")
    roster = load_roster(args.roster, sheet=args.sheet, mapping=args.mapping, header_row=args.header_row,
                         encoding=args.encoding)
    if not roster.rows:
        raise UsageError(f"{args.roster}: the roster has no data rows")
    folder = new_run_folder(args.roster, args.out, force=getattr(args, "force", False))
    secrets = SecretFilter(settings_secrets(ctx.tenant_settings))
    # held until the report is written: a second process on this folder would send the same rows again
    with lock_run_folder(folder.path, "run"), Session(ctx) as session, run_log(folder, secrets):
        if ctx.verbosity >= 0:
            ctx.err.write(f"run folder: {folder.path}\n")
            ctx.err.flush()
        log.info("run %s: roster %s (sha256 %s, %d rows)%s", folder.path, args.roster, roster.sha256,
                 len(roster.rows), " [dry run]" if args.dry_run else "")
        client = make_client(ctx.tenant_settings, batch_size=args.batch_size, max_writes_per_s=args.max_writes_per_s,
                             write_burst=args.write_burst)
        try:
            return _run(ctx, args, client, roster, folder, secrets, started, session)
        except KeyboardInterrupt:
            if session.folder is not None:
                raise
            ctx.err.write(f"interrupted ({session.signal_name or 'SIGINT'}) before anything was sent: nothing to "
                          f"resume in {folder.path}; start the run again\n")
            return ExitStatus.INTERRUPTED
        finally:
            close = getattr(client, "close", None)
            if callable(close):
                close()


def _run(ctx: CommandContext, args: argparse.Namespace, client: GraphClient, roster: Roster, folder: RunFolder,
         secrets: SecretFilter, started: float, session: Session) -> ExitStatus:
    from provisioning.validation.engine import validate_roster

    tenant = GraphTenantView(client)
    validation = validate_roster(roster, tenant=tenant)
    chain = getattr(args, "chain", None)  # a retry: rows bound to the accounts earlier runs created for them
    edits: dict[int, list[Any]] = {}
    if chain is not None:
        header_of = {f: h for h, f in roster.column_map.items() if f}
        held = tenant_employee_ids(client, (str(u.fields.get("employeeId") or "") for u in validation.rows
                                            if not u.has_errors and u.row not in chain.bindings))
        validation, edits = bind_validation(validation, chain, update=args.existing == "update",
                                            header_of=header_of, held=held)
    secrets.add_secrets(r.password for r in validation.rows if getattr(r, "password", ""))
    valid_upns = [upn_of(r) for r in validation.rows if not r.has_errors and upn_of(r)]
    existing = tenant.lookup(valid_upns)
    rows, issues, refs = check_tenant_references(client, tenant, roster, validation, existing, args.existing,
                                                 bound=chain.bindings if chain is not None else ())
    plan = make_plan(rows, existing, issues=issues, existing_mode=args.existing)
    if chain is not None:
        present = bound_accounts(client, chain, (a.row for a in plan.actions if a.kind is not ActionKind.INVALID))
        plan = bind_plan(plan, chain, present, edits)
    updates: dict[int, UserUpdate] = {}
    if args.existing == "update":
        plan, updates = _plan_updates(client, plan, getattr(args, "reset_passwords", False), renames(edits))
    log.info("plan: %s", plan.counts())
    meta = {
        "roster_path": str(Path(args.roster).resolve()), "roster_sha256": roster.sha256,
        "sheet": getattr(roster, "sheet", None) or args.sheet, "header_row": args.header_row,
        "mapping": str(Path(args.mapping).resolve()) if args.mapping else None,
        "encoding": getattr(roster, "encoding", None),  # as read (given or detected): resume reads it the same
        "dry_run": bool(args.dry_run), "existing": args.existing, "batch_size": args.batch_size,
        "max_writes_per_s": args.max_writes_per_s, "write_burst": args.write_burst,
        "settings": settings_public(ctx.tenant_settings),
        "tenant": binding_of(ctx.tenant_settings, client), "command_line": ctx.command_line,
    }
    if chain is not None:
        meta["retry"] = dict(chain.meta)
    journal = Journal.create(folder.path, meta)
    session.arm(folder)
    try:
        if chain is not None:
            journal.add_bindings(chain.bindings.values())
        bodies = {a.row: a.user.graph_body() for a in plan.creates}
        # with the roster's cells: the reports are built from the journal alone
        journal.add_rows(seeds(plan, dry_run=args.dry_run, bodies=bodies, updates=updates), roster=roster)
        if not args.dry_run:  # --existing fail: the code the apply stage gives a user that appears later, too
            journal.record_many([(a.row, Outcome(RowState.FAILED, a.object_id, None, EXISTS_CODE, a.message))
                                 for a in plan.actions if a.kind is ActionKind.EXISTS])
        journal.add_changes(c for u in updates.values() for c in u.changes)
        journal.add_issues(i for i in validation.issues if i.row == 0)
        planned = plan_followups(plan.actions, refs, dry_run=args.dry_run)
        journal.add_followups(drop_done(planned, chain) if chain is not None else planned)
        if args.dry_run:
            _print_diff(ctx, plan, updates)
            return finish(ctx, journal, folder, passwords=None, apply=None, started=started, client=client,
                          dry_run=True, notify=args, stop=session.stop).status
        items = [CreateItem(a.row, a.upn, bodies[a.row], bool(a.user.password_generated))
                 for a in plan.creates]
        passwords = PasswordFile(folder.passwords_csv)
        stop = session.stop
        update_bodies = {u.row: (u.object_id, u.body) for u in updates.values()}
        reset = [(a.row, a.upn, a.user.password) for a in plan.actions
                 if a.row in updates and "passwordProfile" in updates[a.row].body and a.user.password_generated]
        result = execute(ctx, client, journal, folder, items, passwords=passwords, stop=stop,
                         no_progress=args.no_progress, fail_on_existing=args.existing == "fail",
                         updates=update_bodies, update_passwords=reset)
        done = finish(ctx, journal, folder, passwords=passwords, apply=result, started=started,
                      client=client, notify=args, stop=stop)
        report_stop(ctx, folder, result, done.status)
        return done.status
    finally:
        journal.close()


def _print_diff(ctx: CommandContext, plan: Plan, updates: dict[int, UserUpdate], limit: int = 100) -> None:
    """Dry run of ``--existing update``: the changes, old -> new (the Updated sheet has them all)."""
    if not updates or getattr(ctx, "verbosity", 0) < 0:
        return
    upn = {a.row: a.upn for a in plan.actions}
    lines = [f"row {c.row} {upn.get(c.row, '')}: {c.property}: {c.old!r} -> {c.new!r}"
             for u in updates.values() for c in u.changes]
    for line in lines[:limit]:
        ctx.out.write(f"would update {line}\n")
    if len(lines) > limit:
        ctx.out.write(f"... and {len(lines) - limit} more changes (results.xlsx, Updated sheet)\n")


def _plan_updates(client: GraphClient, plan: Plan, reset_passwords: bool,
                  extra: dict[int, dict[str, str]] | None = None) -> tuple[Plan, dict[int, UserUpdate]]:
    """``--existing update``: read the existing users' values (batched GETs) and keep only what differs."""
    targets = {a.row: a.object_id for a in plan.actions if a.kind is ActionKind.UPDATE and a.object_id}
    current = fetch_current(client, targets, select_for(a.user for a in plan.actions if a.row in targets))
    actions, updates = plan_updates(plan.actions, current, reset_passwords=reset_passwords, extra=extra)
    log.info("update: %d of %d existing users differ from the roster", len(updates), len(targets))
    return Plan(tuple(actions), plan.existing_mode), updates


def check_tenant_references(client: GraphClient, tenant: TenantView, roster: Roster, validation: Validation,
                            existing: Mapping[str, ExistingUser], existing_mode: str,
                            bound: Collection[int] = ()) -> tuple[list[UserRow], list[Issue], References]:
    """Pre-flight of the follow-up columns: resolve groups, SKUs (with seats) and managers once; a row with an
    unresolvable reference, or beyond a SKU's free seats, becomes invalid. Returns (rows, issues, references).
    ``bound``: rows of a retry bound to their account (checked even with ``--existing fail``: they are no
    conflict, their follow-ups are sent)."""
    rows = list(validation.rows)
    if not any(r.groups or r.licenses or r.manager for r in rows if not r.has_errors):
        return rows, list(validation.issues), References()
    refs = resolve(client, tenant, rows, existing)
    headers = {v: k for k, v in (getattr(roster, "column_map", None) or {}).items() if v}
    skip = [r.row for r in rows if existing_mode == "fail" and upn_of(r).lower() in existing and r.row not in bound]
    found = check_references(rows, refs, columns=headers, skip_rows=skip)
    if not found:
        return rows, list(validation.issues), refs
    bad = {i.row for i in found}
    log.info("pre-flight references: %d issues on %d rows", len(found), len(bad))
    rows = [replace(r, has_errors=True) if r.row in bad else r for r in rows]
    return rows, sorted([*validation.issues, *found], key=lambda i: i.row), refs


def report_stop(ctx: CommandContext, folder: RunFolder, result: ApplyResult | None, status: ExitStatus) -> None:
    """After a fatal stop or a signal (in any phase: ``status`` 130): say why and how to continue."""
    fatal = result is not None and result.fatal is not None
    if fatal and result is not None:
        ctx.err.write(f"error: {result.fatal_message}\n")
    if fatal or status is ExitStatus.INTERRUPTED:
        ctx.err.write(("interrupted; " if status is ExitStatus.INTERRUPTED and not fatal else "")
                      + f"the journal of {folder.path} is consistent.\n")
        ctx.err.write(resume_hint(ctx, folder) + "\n")
