"""The library run API: :func:`start_run` runs a roster in a new run folder, :func:`resume_run` continues one from
its journal, :func:`start_retry` re-runs an earlier run's failed and invalid rows as a new run. Each takes typed
options (:class:`RunOptions`, :class:`ResumeOptions`, :class:`RetryOptions`), one stop event (:class:`Stop` makes
Ctrl-C, SIGTERM and SIGHUP set it) and a console for the user-facing lines, and returns a :class:`RunResult`; the
``run``, ``resume``, ``retry`` and ``watch`` commands only parse their arguments, call these and print.

The file reads top-down: the options and the result, a run's phases, then resume, then retry. What every run
shares lives below it: the stop (:mod:`provisioning.run.stop`), the client, the run log and sending
(:mod:`provisioning.run.phases`), a retry's roster (:mod:`provisioning.run.retry`) and the reports
(:mod:`provisioning.report.finish`).

A run's phases: pre-flight (validate, look the tenant up, plan: nothing journaled, so a stop leaves nothing to
resume), journal, creates, updates, follow-ups, reports (:func:`finish`). Once the journal exists, a stop lets the
answers in flight be recorded, leaves the phases still to come to ``resume_run``, writes the reports, and the run
ends with 130.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from graph.client import GraphClient
from provisioning.bulk import gc_paused
from provisioning.context import CommandContext
from provisioning.errors import RunFolderError, UsageError
from provisioning.exitcodes import ExitStatus
from provisioning.models import ExistingUser, Issue, Roster, TenantView, UserRow, Validation
from provisioning.report.deliver import deliver_run
from provisioning.report.early import EarlyWorkbook
from provisioning.report.finish import SessionResult, finish, report_stop
from provisioning.report.notify import NotifyOptions
from provisioning.report.rollback_report import plan_lines
from provisioning.report.rollback_report import summary_lines as rollback_summary
from provisioning.report.rollback_report import write_reports as write_rollback_reports
from provisioning.roster.mapping import canonical_field, load_mapping
from provisioning.roster.reader import load_roster
from provisioning.run.audit import (
    TenantIdentity,
    audit_fields,
    confirm,
    log_audit,
    recorded_tenant,
    tenant_identity,
)
from provisioning.run.chain import (
    Chain,
    bind_plan,
    bind_validation,
    bound_accounts,
    drop_done,
    read_chain,
    renames,
    tenant_employee_ids,
)
from provisioning.run.client import make_client
from provisioning.run.creates import EXISTS_CODE, ApplyResult, CreateItem
from provisioning.run.followups import held_for, plan_followups
from provisioning.run.matching import employee_id, match_people
from provisioning.run.phases import (
    execute,
    run_followups,
    run_log,
    settings_public,
    settings_secrets,
)
from provisioning.run.plan import ActionKind, Plan, make_plan, upn_of, upn_renames
from provisioning.run.restores import apply_restores, pending_restores, plan_restores
from provisioning.run.retry import (
    done_rows,
    formula_issues,
    retry_passwords,
    roster_rows,
    still_empty,
)
from provisioning.run.retrysource import (
    RetrySource,
    exclude_created,
    read_retry_source,
    require_rows,
    write_retry_link,
    write_retry_roster,
)
from provisioning.run.rollback import KIND as ROLLBACK_KIND
from provisioning.run.rollback import OPEN as OPEN_STEPS
from provisioning.run.rollback import TROUBLE as TROUBLE_STEPS
from provisioning.run.rollback import Step as RollbackStep
from provisioning.run.rollback import (
    add_steps,
    dry_run_steps,
    is_rollback_folder,
    meta_of,
    new_rollback_folder,
    plan_rollback,
    read_steps,
    send_steps,
    unfinished_rollbacks,
)
from provisioning.run.stop import Stop
from provisioning.run.tap import (
    UNKEPT,
    Onboarding,
    TapFile,
    UnkeptPasswords,
    check_tap_policy,
    deliver_only_new,
    read_tap_policy,
)
from provisioning.run.updates import (
    UserUpdate,
    apply_updates,
    fetch_current,
    pending_updates,
    plan_updates,
    select_for,
)
from provisioning.settings import Settings
from provisioning.store.binding import binding_of, check_binding, token_tid
from provisioning.store.folder import RunFolder, existing_run_folder, file_sha256, new_run_folder
from provisioning.store.journal import OPEN_STATES, Journal, Outcome, RowRecord, RowSeed, RowState
from provisioning.store.lock import lock_run_folder
from provisioning.store.records import FollowUpState
from provisioning.store.secrets import PasswordFile, SecretFilter, without_password, without_password_warning
from provisioning.validation.engine import validate_roster
from provisioning.validation.references import References, check_references, resolve
from provisioning.validation.tenant import GraphTenantView

log = logging.getLogger(__name__)

__all__ = ["Existing", "ResumeOptions", "RetryOptions", "RollbackOptions", "RollbackResult", "RunOptions",
           "RunResult", "Stop", "is_rollback", "make_client", "resume_rollback", "resume_run", "start_retry",
           "start_rollback", "start_run"]


# -- the options, the result, and a run's phases -------------------------------------------------------------------


class Existing(Enum):
    """What a run does with a row whose userPrincipalName already exists in the tenant (``--existing``)."""

    SKIP = "skip"  # leave the user alone (the row is *skipped*)
    UPDATE = "update"  # PATCH only the roster's properties that differ from the tenant's
    FAIL = "fail"  # report the row as failed


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How :func:`start_run` reads the roster and what it sends (the ``run`` command's options).

    ``run_dir``: the run folder (default ``runs/<stamp>-<roster name>/``); ``force``: replace results files left
    there by something else than a run. ``chain``: a ``retry`` roster's link to the runs before it."""

    run_dir: Path | None = None
    force: bool = False
    sheet: str | None = None
    header_row: int | None = None
    mapping: Path | None = None
    encoding: str | None = None
    dry_run: bool = False
    existing: Existing = Existing.SKIP
    reset_passwords: bool = False
    batch_size: int | None = None
    max_writes_per_s: float | None = None
    write_burst: float | None = None
    progress: bool = True  # a progress bar on the console's error stream when it is a terminal
    notify: NotifyOptions | None = None  # mail the summary and results.xlsx when the run ends
    chain: Chain | None = None
    onboarding: Onboarding = Onboarding()  # --credential, --tap-lifetime, --deliver managers ...
    restore_deleted: bool = False  # a row whose person is in Deleted users: restore that account, then update it
    yes: bool = False  # --yes: a run that resets passwords goes on without asking (else: asked on a terminal)


@dataclass(frozen=True, slots=True)
class ResumeOptions:
    """What :func:`resume_run` may do besides continuing the run (the ``resume`` command's options)."""

    progress: bool = True
    notify: NotifyOptions | None = None


#: The row states a result counts, in this order; those always counted (0 included): summary.json's "counts".
COUNTED_STATES = (RowState.CREATED, RowState.UPDATED, RowState.RESTORED, RowState.SKIPPED, RowState.FAILED,
                  RowState.INVALID, RowState.PENDING, RowState.UNKNOWN, RowState.SENDING, RowState.PLANNED)
ALWAYS_COUNTED = frozenset({RowState.CREATED, RowState.SKIPPED, RowState.FAILED, RowState.INVALID})
#: Row states and follow-up states that leave work for ``resume`` or ``retry``: the run is not complete.
_LEFT_OVER = frozenset({RowState.FAILED, RowState.PENDING, RowState.SENDING, RowState.UNKNOWN, RowState.PLANNED})
_FOLLOWUPS_LEFT_OVER = frozenset({FollowUpState.FAILED, FollowUpState.PENDING})


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of :func:`start_run` or :func:`resume_run`.

    ``counts``: the rows of the whole run by state, in :data:`COUNTED_STATES` order (empty when the run stopped
    before its journal was written); ``followups``: the rows with follow-ups by the state of those follow-ups;
    ``created``: users created by this call; ``fatal``: why sending stopped (exit 3, 4 or 5), else "";
    ``messages``: the error and warning lines written to the console, for a caller that does not show it."""

    status: ExitStatus
    run_dir: Path
    counts: Mapping[RowState, int] = field(default_factory=dict)
    followups: Mapping[FollowUpState, int] = field(default_factory=dict)
    created: int = 0
    fatal: str = ""
    messages: tuple[str, ...] = ()

    @property
    def interrupted(self) -> bool:
        """Stopped by the stop event (a signal): ``resume_run`` continues it."""
        return self.status is ExitStatus.INTERRUPTED

    @property
    def complete(self) -> bool:
        """Every valid row ended created, updated or skipped with its follow-ups done (invalid rows may be left)."""
        return (self.status in (ExitStatus.OK, ExitStatus.ROWS_FAILED) and not self.fatal and bool(self.counts)
                and not any(self.counts.get(s) for s in _LEFT_OVER)
                and not any(self.followups.get(s) for s in _FOLLOWUPS_LEFT_OVER))


def _console(console: CommandContext | None, settings: Settings) -> CommandContext:
    """The console a run writes to (none given: a silent one), carrying the run's settings."""
    if console is None:
        console = CommandContext(out=io.StringIO(), err=io.StringIO(), verbosity=-1)
    return replace(console, settings=settings)


class _Phases:
    """A run's view of its stop event: whether its journal exists yet (``armed``), told to a :class:`Stop`."""

    def __init__(self, stop: threading.Event, console: CommandContext) -> None:
        self.stop = stop
        self.console = console
        self.armed = False

    def __enter__(self) -> _Phases:
        if isinstance(self.stop, Stop):
            self.stop.begin_run(self.console)
        return self

    def arm(self, folder: RunFolder) -> None:
        self.armed = True
        if isinstance(self.stop, Stop):
            self.stop.arm(folder)

    def __exit__(self, *exc: object) -> None:
        if isinstance(self.stop, Stop):
            self.stop.end_run()


def _notify_args(notify: NotifyOptions | None) -> argparse.Namespace | None:
    """``--notify``/``--notify-from`` as :func:`finish` takes them."""
    if notify is None:
        return None
    return argparse.Namespace(notify=",".join(notify.recipients), notify_from=notify.sender)


def _result(folder: RunFolder, done: SessionResult, apply: ApplyResult | None, messages: Sequence[str]) -> RunResult:
    counts = {RowState(k): n for k, n in done.counts.items()}
    return RunResult(
        status=done.status, run_dir=folder.path,
        counts={s: counts.get(s, 0) for s in COUNTED_STATES if counts.get(s, 0) or s in ALWAYS_COUNTED},
        followups={FollowUpState(k): n for k, n in done.followups.items()},
        created=apply.created if apply is not None else 0,
        fatal=apply.fatal_message if apply is not None and apply.fatal is not None else "",
        messages=tuple(messages))


def start_run(settings: Settings, roster_path: Path, options: RunOptions = RunOptions(), *,
              stop: threading.Event | None = None, console: CommandContext | None = None,
              client: GraphClient | None = None) -> RunResult:
    """Run a roster in a new run folder: pre-flight (validate, look the tenant up, plan), journal, creates, updates,
    follow-ups, reports. ``stop`` set (from any thread, or by a signal through a :class:`Stop`) ends the run
    cleanly: before the journal exists nothing is left to resume; after, the run ends with 130 and
    :func:`resume_run` continues it. ``console`` receives the user-facing lines (default: none are shown).
    ``client``: the run's client, made by :func:`make_client` with these options' rate limits (its token may be on
    its way already); closed when the run ends. Default: one made here.
    Raises :class:`provisioning.errors.ProvisionError` (and Graph or OS errors) for a run that cannot go on."""
    if client is None:
        client = make_client(settings, batch_size=options.batch_size, max_writes_per_s=options.max_writes_per_s,
                             write_burst=options.write_burst)
    with client:
        return _start_run(settings, roster_path, options, stop, console, client)


def _start_run(settings: Settings, roster_path: Path, options: RunOptions, stop: threading.Event | None,
               console: CommandContext | None, client: GraphClient) -> RunResult:
    console = _console(console, settings)
    stop = stop if stop is not None else threading.Event()
    started = time.monotonic()
    if options.reset_passwords and options.existing is not Existing.UPDATE:
        raise UsageError("--reset-passwords only applies with --existing update")
    options.onboarding.check(reset_passwords=options.reset_passwords)
    with gc_paused():  # bulk (provisioning.bulk), as are the pre-flight and the journal's plan below
        roster = load_roster(roster_path, sheet=options.sheet, mapping=options.mapping,
                             header_row=options.header_row, encoding=options.encoding)
    if not roster.rows:
        raise UsageError(f"{roster_path}: the roster has no data rows")
    folder = new_run_folder(roster_path, options.run_dir, force=options.force)
    secrets = SecretFilter(settings_secrets(settings))
    # held until the report is written: a second process on this folder would send the same rows again
    with lock_run_folder(folder.path, "run"), _Phases(stop, console) as phases, run_log(folder, secrets):
        if console.verbosity >= 0:
            console.err.write(f"run folder: {folder.path}\n")
            console.err.flush()
        log.info("run %s: roster %s (sha256 %s, %d rows)%s", folder.path, roster_path, roster.sha256,
                 len(roster.rows), " [dry run]" if options.dry_run else "")
        name = ""
        try:
            if not stop.is_set():
                with gc_paused():
                    plan = _preflight(client, roster, options, secrets)
                _confirm(console, options, plan)
                if not stop.is_set():
                    return _send(console, settings, client, roster_path, roster, options, folder, plan, started,
                                 phases, secrets)
        except KeyboardInterrupt:
            if phases.armed:
                raise
            name = "SIGINT"  # a Ctrl-C, unless a Stop knows which signal it was
        finally:
            client.close()
        name = stop.signal_name if isinstance(stop, Stop) and stop.signal_name else name
        line = (f"interrupted{f' ({name})' if name else ''} before anything was sent: nothing to resume in "
                f"{folder.path}; start the run again")
        console.err.write(line + "\n")
        return RunResult(ExitStatus.INTERRUPTED, folder.path, messages=(line,))


@dataclass(frozen=True, slots=True)
class _Planned:
    """What the pre-flight of a run found: the validation, the plan, the updates and the follow-up references."""

    validation: Validation
    plan: Plan
    updates: dict[int, UserUpdate]
    refs: References
    tenant: TenantIdentity
    restores: dict[int, UserUpdate] = field(default_factory=dict)  # the PATCH after each restore


def _confirm(console: CommandContext, options: RunOptions, planned: _Planned) -> None:
    """Before the first write of a run that resets passwords: the tenant by name and how many, asked (or --yes)."""
    resets = sum(1 for u in planned.updates.values() if "passwordProfile" in u.body)
    if resets and not options.dry_run:
        confirm(console, yes=options.yes, tenant=planned.tenant,
                what=f"reset the password of {resets} existing user{'s' * (resets != 1)}")


def _preflight(client: GraphClient, roster: Roster, options: RunOptions, secrets: SecretFilter) -> _Planned:
    """Validate the roster, look its users and references up in the tenant, plan (nothing is written to Graph)."""
    if options.onboarding.uses_tap:  # a pass the policy refuses would fail every row: refuse first
        policy = read_tap_policy(client)
        check_tap_policy(policy, options.onboarding.tap)
        log.info("pre-flight: Temporary Access Pass policy %s", policy.describe())
    # the roster's typed UPNs and employeeIds are looked up while the domains are read and the rows validated
    tenant = GraphTenantView(client, upns=roster.typed("userPrincipalName"), employee_ids=roster.typed("employeeId"))
    validation = validate_roster(roster, tenant=tenant)
    chain = options.chain  # a retry: rows bound to the accounts earlier runs created for them
    existing_mode = options.existing.value
    edits: dict[int, list[Any]] = {}
    if chain is not None:
        header_of = {f: h for h, f in roster.column_map.items() if f}
        held = tenant_employee_ids(client, (str(u.fields.get("employeeId") or "") for u in validation.rows
                                            if not u.has_errors and u.row not in chain.bindings))
        validation, edits = bind_validation(validation, chain, update=options.existing is Existing.UPDATE,
                                            header_of=header_of, held=held)
    secrets.add_secrets(r.password for r in validation.rows if getattr(r, "password", ""))
    bound = chain.bindings if chain is not None else {}
    valid = [r for r in validation.rows if not r.has_errors]
    # the UPNs and the employeeIds in one wave of lookups: the matching below finds its employeeIds asked for
    existing, _ = tenant.look_up((upn_of(r) for r in valid if upn_of(r)),
                                 (employee_id(r) for r in valid if r.row not in bound))
    rows, issues, refs = check_tenant_references(client, tenant, roster, validation, existing, existing_mode,
                                                 bound=bound)
    columns = {f: h for h, f in roster.column_map.items() if f}
    people = match_people(tenant, rows, issues, existing, bound=bound, columns=columns)
    plan = make_plan(people.rows, existing, issues=people.issues, existing_mode=existing_mode,
                     matches=people.matches, deleted=people.deleted, restore=options.restore_deleted,
                     columns=columns)
    if chain is not None:
        present = bound_accounts(client, chain, (a.row for a in plan.actions if a.kind is not ActionKind.INVALID))
        plan = bind_plan(plan, chain, present, edits)
    updates: dict[int, UserUpdate] = {}
    if options.existing is Existing.UPDATE:
        plan, updates = _plan_updates(client, plan, options.reset_passwords, {**upn_renames(plan), **renames(edits)})
    log.info("plan: %s", plan.counts())
    identity = tenant_identity(client, token_tid(client), tenant.default_domain, organization=tenant.organization)
    return _Planned(validation, plan, updates, refs, identity, plan_restores(client, plan.actions))


def _send(console: CommandContext, settings: Settings, client: GraphClient, roster_path: Path, roster: Roster,
          options: RunOptions, folder: RunFolder, planned: _Planned, started: float, phases: _Phases,
          secrets: SecretFilter) -> RunResult:
    """Journal the plan, then send it (creates, updates, follow-ups) and write the reports."""
    plan, updates, chain, stop = planned.plan, planned.updates, options.chain, phases.stop
    meta = {
        "roster_path": str(Path(roster_path).resolve()), "roster_sha256": roster.sha256,
        "sheet": getattr(roster, "sheet", None) or options.sheet, "header_row": options.header_row,
        "mapping": str(Path(options.mapping).resolve()) if options.mapping else None,
        "encoding": getattr(roster, "encoding", None),  # as read (given or detected): resume reads it the same
        "dry_run": options.dry_run, "existing": options.existing.value, "batch_size": options.batch_size,
        "max_writes_per_s": options.max_writes_per_s, "write_burst": options.write_burst,
        "restore_deleted": options.restore_deleted, "settings": settings_public(settings),
        "tenant": binding_of(settings, client), "command_line": console.command_line,
        **options.onboarding.meta(),
        "tenant_name": planned.tenant.name, "default_domain": planned.tenant.default_domain,
    }
    if chain is not None:
        meta["retry"] = dict(chain.meta)
    log_audit(audit_fields(console, settings, settings_secrets(settings),
                           {"tenant_id": planned.tenant.tenant_id, "tenant_name": planned.tenant.name,
                            "default_domain": planned.tenant.default_domain}))
    journal = Journal.create(folder.path, meta)
    phases.arm(folder)
    try:
        if chain is not None:
            journal.add_bindings(chain.bindings.values())
        with gc_paused():
            bodies = {a.row: a.user.graph_body() for a in plan.creates}
            # with the roster's cells: the reports are built from the journal alone
            journal.add_rows(seeds(plan, dry_run=options.dry_run, bodies=bodies,
                                   updates={**updates, **planned.restores}, tap=options.onboarding.uses_tap),
                             roster=roster)
        if not options.dry_run:  # --existing fail: the code the apply stage gives a user that appears later, too
            journal.record_many([(a.row, Outcome(RowState.FAILED, a.object_id, None, EXISTS_CODE, a.message))
                                 for a in plan.actions if a.kind is ActionKind.EXISTS])
        journal.add_changes(c for u in (*updates.values(), *planned.restores.values()) for c in u.changes)
        journal.add_issues(i for i in planned.validation.issues if i.row == 0)
        tap = options.onboarding.uses_tap
        tap_rows, deliver_rows = options.onboarding.rows(plan.creates, chain.bindings if chain is not None else ())
        todo = plan_followups(plan.actions, planned.refs, dry_run=options.dry_run,
                              held=held_for(client, plan.actions), tap_rows=tap_rows, deliver_rows=deliver_rows)
        if chain is not None:
            todo = drop_done(todo, chain)
            todo = deliver_only_new(todo) if tap else todo
        journal.add_followups(todo)
        notify = _notify_args(options.notify)
        if options.dry_run:
            _print_diff(console, plan, updates)
            done = finish(console, journal, folder, passwords=None, apply=None, started=started, client=client,
                          dry_run=True, notify=notify, stop=stop)
            return _result(folder, done, None, ())
        items = [CreateItem(a.row, a.upn, bodies[a.row], bool(a.user.password_generated))
                 for a in plan.creates]
        passwords = UnkeptPasswords(folder.passwords_csv) if tap else PasswordFile(folder.passwords_csv)
        update_bodies = {u.row: (u.object_id, u.body) for u in updates.values()}
        reset = [(a.row, a.upn, a.user.password) for a in plan.actions
                 if a.row in updates and "passwordProfile" in updates[a.row].body and a.user.password_generated]
        early = EarlyWorkbook(journal, folder.path).start()  # written while the sends wait on the quota
        try:
            result = execute(console, client, journal, folder, items, passwords=passwords, stop=stop,
                             no_progress=not options.progress, fail_on_existing=options.existing is Existing.FAIL,
                             updates=update_bodies, update_passwords=reset, tap=options.onboarding.tap,
                             credentials=TapFile(folder.credentials_csv, secrets) if tap else None)
            deliver_run(console, client, journal, folder, secrets, stop, result)
            done = finish(console, journal, folder, passwords=passwords, apply=result, started=started,
                          client=client, notify=notify, stop=stop, early=early)
        finally:
            early.abandon()  # stopped already when the reports were written
        return _result(folder, done, result, report_stop(console, folder, result, done.status))
    finally:
        journal.close()


#: The journal's first state of a row of each action, in a real run.
_SEED_STATE = {ActionKind.CREATE: RowState.PENDING, ActionKind.UPDATE: RowState.PENDING,
               ActionKind.RESTORE: RowState.PENDING, ActionKind.SKIP: RowState.SKIPPED,
               ActionKind.EXISTS: RowState.FAILED, ActionKind.INVALID: RowState.INVALID}


def seeds(plan: Plan, *, dry_run: bool, bodies: dict[int, dict[str, Any]] | None = None,
          updates: dict[int, UserUpdate] | None = None,
          tap: bool = False) -> list[RowSeed]:
    """The journal's initial record of every row (``bodies``: the create bodies already built, by row;
    ``updates``: the PATCH of every UPDATE row; ``tap``: a create's generated password is "unkept")."""
    out = []
    for a in plan.actions:
        user = a.user
        body = None
        if a.kind is ActionKind.CREATE and user is not None:
            body = bodies[a.row] if bodies and a.row in bodies else user.graph_body()
        elif a.kind in (ActionKind.UPDATE, ActionKind.RESTORE) and updates and a.row in updates:
            body = dict(updates[a.row].body)
        display = str(user.fields.get("displayName", "") or "") if user is not None else ""
        if dry_run:
            state = RowState.INVALID if a.kind is ActionKind.INVALID else RowState.PLANNED
        else:
            state = _SEED_STATE[a.kind]
        out.append(RowSeed(
            row=a.row, upn=a.upn, action=a.kind.value, state=state,
            password_source=_password_source(a, body, tap),
            body=body, display_name=display, object_id=a.object_id, message=a.message, issues=a.issues))
    return out


def _password_source(a: Any, body: dict[str, Any] | None, tap: bool = False) -> str:
    """Where the password of a create (or reset) came from; for an invalid row, where it would have come from, so
    that a ``retry`` knows whether the roster gave one (the reports never copy it). A password generated for a
    ``--credential tap`` create is "unkept": nobody is to have it, so none is missing from passwords.csv."""
    user = a.user
    if user is None:
        return ""
    if body is not None and (a.kind is ActionKind.CREATE or "passwordProfile" in body) or \
            a.kind is ActionKind.INVALID:
        if not user.password_generated:
            return "roster"
        return UNKEPT if tap and a.kind is ActionKind.CREATE else "generated"
    return ""


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




# -- resume: continue a run from its journal ---------------------------------------------------------------------


def resume_run(settings: Settings, run_dir: Path, options: ResumeOptions = ResumeOptions(), *,
               stop: threading.Event | None = None, console: CommandContext | None = None) -> RunResult:
    """Continue an interrupted run from its journal: check the roster and the tenant, reconcile the rows in doubt,
    send the rest (creates, updates, follow-ups), report over the whole run. ``stop`` and ``console`` as for
    :func:`start_run`; a stop ends it with 130, to be resumed again."""
    console = _console(console, settings)
    stop = stop if stop is not None else threading.Event()
    started = time.monotonic()
    folder = existing_run_folder(run_dir)
    # held until the report is written: a second process on this folder would send the same rows again
    with lock_run_folder(folder.path, "resume"), _Phases(stop, console) as phases, \
            Journal.open(folder.path) as journal:
        result = _resume(console, settings, options, folder, journal, phases, started)
        lost = without_password(journal, folder.passwords_csv)
        if not lost:
            return result
        # users that exist with a generated password nobody has: say so on every resume
        line = without_password_warning(lost, console.command_line)
        console.err.write(line + "\n")
        status = ExitStatus.ROWS_FAILED if result.status is ExitStatus.OK else result.status
        return replace(result, status=status, messages=(*result.messages, line))


def _resume(console: CommandContext, settings: Settings, options: ResumeOptions, folder: RunFolder,
            journal: Journal, phases: _Phases, started: float) -> RunResult:
    meta = journal.meta()
    if meta.get("dry_run"):
        raise RunFolderError(f"{folder.path} is a dry run: nothing was planned to be sent; start a real run "
                             "with `run`")
    roster_path = unchanged_roster(meta)
    phases.arm(folder)
    stop = phases.stop
    notify = _notify_args(options.notify)
    with make_client(settings, batch_size=meta.get("batch_size"), max_writes_per_s=meta.get("max_writes_per_s"),
                     write_burst=meta.get("write_burst")) as client:
        check_binding(meta, settings, folder.path, client)
        log_audit(audit_fields(console, settings, settings_secrets(settings), recorded_tenant(meta)))
        # updates and restores: their phases re-send them
        open_rows = [r for r in journal.rows(OPEN_STATES) if r.action not in ("update", "restore")]
        secrets = SecretFilter(settings_secrets(settings))
        onboarding = Onboarding.from_meta(meta)
        credentials = TapFile(folder.credentials_csv, secrets) if onboarding.uses_tap else None
        if credentials is not None:
            credentials.load()  # its passes are secrets of this session's log too
        with run_log(folder, secrets):
            log.info("resume %s: %d rows still open", folder.path, len(open_rows))
            if not open_rows:
                if journal.followups([FollowUpState.PENDING]) or pending_updates(journal) or \
                        pending_restores(journal):
                    log.info("resume: no create open; sending the pending updates, restores and follow-ups")
                    todo = pending_updates(journal)
                    if todo and not stop.is_set():
                        apply_updates(client, journal, todo, stop=stop)
                    if pending_restores(journal) and not stop.is_set():
                        apply_restores(client, journal, stop=stop)
                    run_followups(console, client, journal, stop=stop, no_progress=not options.progress,
                                  tap=onboarding.tap, credentials=credentials)
                deliver_run(console, client, journal, folder, secrets, stop, None)
                done = finish(console, journal, folder, passwords=None, apply=None, started=started, client=client,
                              notify=notify, stop=stop)
                return _result(folder, done, None, report_stop(console, folder, None, done.status))
            items = _items(open_rows, roster_path, meta, folder, secrets)
            passwords = (UnkeptPasswords(folder.passwords_csv) if credentials is not None
                         else PasswordFile(folder.passwords_csv))
            known = passwords.load()
            in_doubt = [r.row for r in open_rows if r.state in (RowState.SENDING, RowState.UNKNOWN)]
            early = EarlyWorkbook(journal, folder.path).start()  # written while the sends wait on the quota
            try:
                result = execute(console, client, journal, folder, items, passwords=passwords, stop=stop,
                                 no_progress=not options.progress, fail_on_existing=meta.get("existing") == "fail",
                                 in_doubt=in_doubt, previous_sends={r.row: r.attempts for r in open_rows},
                                 written_passwords={row: pw for row, (_, pw) in known.items()},
                                 tap=onboarding.tap, credentials=credentials)
                deliver_run(console, client, journal, folder, secrets, stop, result)
                done = finish(console, journal, folder, passwords=passwords, apply=result, started=started,
                              client=client, notify=notify, stop=stop, early=early)
            finally:
                early.abandon()  # stopped already when the reports were written
            return _result(folder, done, result, report_stop(console, folder, result, done.status))


def unchanged_roster(meta: Mapping[str, Any]) -> Path:
    """The run's roster, refused (exit 2) if it is gone or its bytes changed since the run started."""
    path = Path(str(meta.get("roster_path", "")))
    if not path.is_file():
        raise RunFolderError(f"the roster of this run, {path}, is not there any more; put it back unchanged to "
                             "resume, or start a new run")
    digest = file_sha256(path)
    if digest != meta.get("roster_sha256"):
        raise RunFolderError(f"{path} changed since the run started (sha256 {digest[:12]}... is not "
                             f"{str(meta.get('roster_sha256'))[:12]}...); resume only continues the roster as it "
                             "was: restore it, or start a new run with `run`")
    return path


def _items(open_rows: list[RowRecord], roster_path: Path, meta: Mapping[str, Any], folder: RunFolder,
           secrets: SecretFilter) -> list[CreateItem]:
    """Re-derive the bodies of the open rows: the journal's body (the UPN as first planned) plus the password.

    The journal stores no password: a roster password is read again from the (unchanged) roster; a generated one
    is the one already in passwords.csv if the row was sent before (it may exist with it), else a new one.
    """
    roster = load_roster(roster_path, sheet=meta.get("sheet"), mapping=meta.get("mapping"),
                         header_row=meta.get("header_row"), encoding=meta.get("encoding"))
    validation = validate_roster(roster, tenant=None)
    by_row = {r.row: r for r in validation.rows}
    known = PasswordFile(folder.passwords_csv).load()
    items = []
    for rec in open_rows:
        user = by_row.get(rec.row)
        if rec.password_source == "generated" and rec.attempts > 0 and rec.row in known:
            password = known[rec.row][1]
        elif user is not None and user.password:
            password = user.password
            if rec.password_source == "generated" and not user.password_generated:
                raise RunFolderError(f"row {rec.row}: the journal says its password was generated but the roster "
                                     "has one; the roster is not the one this run started with")
        else:
            raise RunFolderError(f"row {rec.row}: cannot find this row in the roster any more")
        body = dict(rec.body)
        body["passwordProfile"] = {**dict(body.get("passwordProfile") or {}), "password": password}
        secrets.add_secrets([password])
        items.append(CreateItem(rec.row, rec.upn, body, rec.password_source == "generated"))
    return items


# -- retry: the rows of a run's Failed and Invalid sheets, as edited there, as a new run -------------------------


@dataclass(frozen=True, slots=True)
class RetryOptions:
    """What :func:`start_retry` may choose anew (the ``retry`` command's options); the earlier run's mapping, batch
    size and write rate are carried over. ``existing`` None: the earlier run's choice."""

    run_dir: Path | None = None
    force: bool = False
    dry_run: bool = False
    existing: Existing | None = None
    progress: bool = True
    restore_deleted: bool = False  # or the earlier run's choice


def start_retry(settings: Settings, target: Path, options: RetryOptions = RetryOptions(), *,
                stop: threading.Event | None = None, console: CommandContext | None = None) -> RunResult:
    """Re-run the rows of the Failed and Invalid sheets of an earlier run (``target``: its run folder, its
    results.xlsx after the user corrected it, or one of those sheets saved as CSV) as a new run folder linked to
    the earlier one, in the earlier run's tenant, while no other process works on the earlier run.

    The rows become the roster of the new run (``retry-roster.xlsx``, linked by ``retry-source.json`` and the
    ``retry`` entry of its journal) and go through :func:`start_run`. Each row keeps the row number it had in the
    original roster. A row whose user a run of the chain created is bound to that account
    (:mod:`provisioning.run.chain`): never created again; only its unfinished follow-ups are sent, and an edit of
    its cells is a PATCH of that account (``Existing.UPDATE``) or an issue. A password the roster gave a row
    (never shown in the sheets) is read again from the earlier run's roster when its bytes are unchanged."""
    console = _console(console, settings)
    source = read_retry_source(target)
    with contextlib.ExitStack() as held:
        if RunFolder(source.earlier_run).journal.is_file():
            # a run (or resume) still working there may yet create or follow up the rows retried here
            held.enter_context(lock_run_folder(source.earlier_run, "retry"))
        return _retry(settings, source, options, stop, console)


def _retry_run_options(meta: Mapping[str, Any], run_dir: Path, chain: Chain, options: RetryOptions) -> RunOptions:
    """The options of the retry run, with the earlier run's choices (mapping, --existing, batch size, write rate)
    carried over."""
    mapping = meta.get("mapping")
    return RunOptions(
        onboarding=Onboarding.from_meta(meta),
        run_dir=run_dir, force=options.force, mapping=Path(mapping) if mapping and Path(mapping).is_file() else None,
        dry_run=options.dry_run, existing=options.existing or Existing(meta.get("existing") or "skip"),
        batch_size=int(meta["batch_size"]) if meta.get("batch_size") else None,
        max_writes_per_s=float(meta["max_writes_per_s"]) if meta.get("max_writes_per_s") else None,
        progress=options.progress, chain=chain,
        restore_deleted=options.restore_deleted or bool(meta.get("restore_deleted")))


def _retry(settings: Settings, source: RetrySource, options: RetryOptions, stop: threading.Event | None,
           console: CommandContext) -> RunResult:
    parent = read_chain(source.earlier_run)
    if parent is None:
        log.warning("%s holds no journal: rows are checked against the tenant only", source.earlier_run)
    meta = dict(parent.meta) if parent else {}
    if meta:
        with make_client(settings) as client:
            check_binding(meta, settings, source.earlier_run, client)
    bindings = dict(parent.bindings) if parent else {}
    done = done_rows(parent)
    retried, excluded = exclude_created(source, created_rows=done,
                                        created_upns={bindings[r].upn for r in done if r in bindings})
    for e in excluded:
        console.out.write(f"not retried: {e.row.sheet} sheet row {e.row.sheet_row}: {e.reason}\n")
    require_rows(source, retried)
    numbers, high = roster_rows(console, retried, parent, bindings)
    renames = load_mapping(meta["mapping"]).renames if meta.get("mapping") else None
    fields = [canonical_field(h, renames) for h in source.headers]
    rows, issues, unchanged = retry_passwords(retried, numbers, fields, source.headers, parent, bindings)
    issues += formula_issues(rows, numbers, fields, source.headers)
    issues += still_empty(rows, numbers, source.headers, parent)

    stem = Path(str(meta.get("roster_path") or source.earlier_run.name)).stem
    if stem == Path(RunFolder.RETRY_ROSTER).stem:  # a retry of a retry: named after the original roster
        stem = str((meta.get("retry") or {}).get("stem") or stem)
    folder = new_run_folder(Path(f"{stem}-retry.xlsx"), options.run_dir, force=options.force)
    roster_path = folder.retry_roster
    order = sorted(range(len(rows)), key=numbers.__getitem__)
    mapping = write_retry_roster(roster_path, source.headers, [rows[i] for i in order],
                                 [numbers[i] for i in order])
    write_retry_link(folder.path, source, mapping, excluded)
    console.out.write(f"retrying {len(mapping)} row(s) of {source.results_path} as a new run\n")
    log.info("retry of %s: %d rows, %d excluded, %d bound to accounts created earlier, new run %s",
             source.earlier_run, len(mapping), len(excluded), sum(1 for n in mapping if n in bindings), folder.path)

    chain = Chain(
        bindings=bindings, issues=tuple(issues),
        done_followups=frozenset(k for k in (parent.done_followups if parent else ()) if k[0] in bindings),
        meta={"parent_run": str(source.earlier_run.resolve()), "parent_results": str(source.results_path.resolve()),
              "parent_roster": meta.get("roster_path"), "parent_roster_sha256": meta.get("roster_sha256"),
              "parent_roster_unchanged": unchanged, "high_row": high, "stem": stem,
              "bound_rows": sorted(n for n in mapping if n in bindings)})
    result = start_run(settings, roster_path, _retry_run_options(meta, folder.path, chain, options), stop=stop,
                       console=console)
    if not folder.results_xlsx.is_file() and folder.journal.is_file():
        from provisioning.report.run_workbook import write_run_workbook  # deferred: openpyxl, only when needed

        write_run_workbook(folder.path, command_line=console.command_line)
    return result
















# -- rollback: undo a run (provisioning.run.rollback) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RollbackOptions:
    """``rollback``'s options: ``yes`` writes without asking; ``dry_run`` reads the tenant and writes the plan only."""

    yes: bool = False
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class RollbackResult:
    """The outcome of :func:`start_rollback` or :func:`resume_rollback`: ``rollback_dir`` is the rollback's own
    folder (None when nothing was written: cancelled, or nothing to undo); ``steps`` counts its steps by state."""

    status: ExitStatus
    run_dir: Path
    rollback_dir: Path | None = None
    steps: Mapping[str, int] = field(default_factory=dict)
    messages: tuple[str, ...] = ()


def is_rollback(folder: Path) -> bool:
    """Whether ``folder`` is a rollback folder (``resume`` continues it with :func:`resume_rollback`)."""
    return is_rollback_folder(Path(folder))


def start_rollback(settings: Settings, run_dir: Path, options: RollbackOptions = RollbackOptions(), *,
                   confirm: Callable[[str], bool] | None = None, stop: threading.Event | None = None,
                   console: CommandContext | None = None) -> RollbackResult:
    """Undo the run in ``run_dir`` (:mod:`provisioning.run.rollback`): show the plan, ask (``confirm``, on a
    terminal; ``options.yes`` skips it; neither: refused with exit 2), then send it from a new rollback folder inside
    the run folder, journaled so that ``resume`` continues it. Refused for another tenant than the run's (exit 3),
    while another process holds the run folder, and while an earlier rollback of it is unfinished."""
    console = _console(console, settings)
    stop = stop if stop is not None else threading.Event()
    folder = existing_run_folder(run_dir)
    with lock_run_folder(folder.path, "rollback"), _Phases(stop, console) as phases:
        with Journal.open(folder.path) as journal:
            meta = journal.meta()
            steps = plan_rollback(journal)
            rollback_meta = meta_of(journal, folder.path, dry_run=options.dry_run,
                                    command_line=console.command_line)
        unfinished = unfinished_rollbacks(folder.path)
        if unfinished:
            raise RunFolderError(f"{unfinished[0]} is an unfinished rollback of this run; continue it: "
                                 f"{console.command_line} resume {unfinished[0]}")
        with _rollback_client(settings, meta) as client:
            check_binding(meta, settings, folder.path, client)
            # the tenant by name before what will be done in it (Graph's own answer, not the journal's memory)
            tenant = tenant_identity(client, token_tid(client), str(meta.get("default_domain") or ""))
            for line in [*plan_lines(steps), f"in the tenant {tenant.label()}"]:
                console.out.write(line + "\n")
            if not any(s.state in OPEN_STEPS for s in steps):
                line = f"nothing to roll back in {folder.path}"
                console.out.write(line + "\n")
                return RollbackResult(ExitStatus.OK, folder.path, messages=(line,))
            if options.dry_run:
                planned = dry_run_steps(client, steps)
                target = new_rollback_folder(folder.path)
                with Journal.create(target.path, rollback_meta) as rollback:
                    add_steps(rollback, planned)
                write_rollback_reports(target, planned, rollback_meta, dry_run=True)
                for line in [*rollback_summary(planned, dry_run=True), f"rollback folder: {target.path}"]:
                    console.out.write(line + "\n")
                return RollbackResult(ExitStatus.OK, folder.path, target.path, _step_counts(planned))
            if not options.yes:
                if confirm is None:
                    raise UsageError("rollback deletes users and reverts changes, and asks before it writes; there is "
                                     "no terminal to ask on: pass --yes to roll back without asking (or --dry-run "
                                     "to see the plan)")
                if not confirm("roll back as listed above? [y/N] "):
                    line = "rollback cancelled: nothing was sent"
                    console.out.write(line + "\n")
                    return RollbackResult(ExitStatus.OK, folder.path, messages=(line,))
            target = new_rollback_folder(folder.path)
            with lock_run_folder(target.path, "rollback"), Journal.create(target.path, rollback_meta) as rollback:
                add_steps(rollback, steps)
                phases.arm(target)
                return _roll(console, settings, client, folder.path, target, rollback, stop)


def resume_rollback(settings: Settings, rollback_dir: Path, *, stop: threading.Event | None = None,
                    console: CommandContext | None = None) -> RollbackResult:
    """Continue an interrupted rollback from its journal: each step in doubt is read in the tenant before anything
    is sent again, so no write is sent twice. Refused for another tenant (exit 3)."""
    console = _console(console, settings)
    stop = stop if stop is not None else threading.Event()
    target = existing_run_folder(rollback_dir)
    with Journal.open(target.path) as peek:
        meta = peek.meta()
    if meta.get("kind") != ROLLBACK_KIND:
        raise RunFolderError(f"{target.path} is no rollback folder")
    if meta.get("dry_run"):
        raise RunFolderError(f"{target.path} is the dry run of a rollback: nothing was planned to be sent; start "
                             "one with `rollback`")
    run_dir = Path(str(meta.get("run_dir") or target.path.parent))
    with contextlib.ExitStack() as held:
        if RunFolder(run_dir).journal.is_file():
            held.enter_context(lock_run_folder(run_dir, "rollback"))
        held.enter_context(lock_run_folder(target.path, "resume"))
        phases = held.enter_context(_Phases(stop, console))
        rollback = held.enter_context(Journal.open(target.path))
        client = held.enter_context(_rollback_client(settings, meta))
        check_binding(meta, settings, target.path, client)
        phases.arm(target)
        return _roll(console, settings, client, run_dir, target, rollback, stop)


def _rollback_client(settings: Settings, meta: Mapping[str, Any]) -> GraphClient:
    """The client of a rollback: the run's batch size and write rate (recorded in its journal's meta)."""
    return make_client(settings, batch_size=meta.get("batch_size"), max_writes_per_s=meta.get("max_writes_per_s"),
                       write_burst=meta.get("write_burst"))


def _step_counts(steps: Sequence[RollbackStep]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.state.value] = counts.get(s.state.value, 0) + 1
    return counts


def _roll(console: CommandContext, settings: Settings, client: GraphClient, run_dir: Path, target: RunFolder,
          rollback: Journal, stop: threading.Event) -> RollbackResult:
    """Send a rollback's open steps, write its reports, and say how it ended."""
    with run_log(target, SecretFilter(settings_secrets(settings))):
        log.info("rollback of %s in %s", run_dir, target.path)
        sent = send_steps(client, rollback, stop=stop)
        steps = read_steps(rollback)
        write_rollback_reports(target, steps, rollback.meta(), dry_run=False)
    lines = [*rollback_summary(steps, dry_run=False), f"rollback folder: {target.path}"]
    counts = _step_counts(steps)
    still_open = any(s.state in OPEN_STEPS for s in steps)
    if stop.is_set() and still_open:
        status = ExitStatus.INTERRUPTED
        lines.append(f"stopped: to continue: {console.command_line} resume {target.path}")
    elif sent.fatal:
        status = ExitStatus.UNAVAILABLE
        lines.append(f"sending stopped ({sent.fatal}); to continue: {console.command_line} resume {target.path}")
    elif still_open or any(s.state in TROUBLE_STEPS for s in steps):
        status = ExitStatus.ROWS_FAILED
    else:
        status = ExitStatus.OK
    for line in lines:
        (console.err if status is ExitStatus.INTERRUPTED else console.out).write(line + "\n")
    return RollbackResult(status, run_dir, target.path, counts, tuple(lines))
