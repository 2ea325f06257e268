"""``resume RUN_DIR``: continue an interrupted run from its journal, without creating anyone twice."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from provisioning.api import Session, execute, finish, make_client, run_followups, run_log, settings_secrets
from provisioning.commands.run import report_stop
from provisioning.context import CommandContext
from provisioning.errors import RunFolderError
from provisioning.exitcodes import ExitStatus
from provisioning.report.notify import add_notify_arguments, require_notify_arguments
from provisioning.run.binding import check_binding
from provisioning.run.creates import CreateItem
from provisioning.run.folder import RunFolder, existing_run_folder, file_sha256
from provisioning.run.followup_journal import FollowUpState
from provisioning.run.journal import OPEN_STATES, Journal, RowRecord, RowState
from provisioning.run.lock import lock_run_folder
from provisioning.run.secrets import PasswordFile, SecretFilter, without_password, without_password_warning
from provisioning.run.updates import apply_updates, pending_updates

HELP = "continue an interrupted run from its journal (rows in doubt are looked up before anything is re-sent)"
NEEDS_TENANT = True

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``resume`` options."""
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder printed by `run`")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_notify_arguments(parser)


def check_roster(meta: dict[str, Any]) -> Path:
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


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Resume: check the roster and the tenant, reconcile the rows in doubt, send the rest (creates, updates,
    follow-ups), report over the whole run."""
    started = time.monotonic()
    require_notify_arguments(args)
    folder = existing_run_folder(args.run_dir)
    # held until the report is written: a second process on this folder would send the same rows again
    with lock_run_folder(folder.path, "resume"), Session(ctx) as session, Journal.open(folder.path) as journal:
        status = _resume(ctx, args, folder, journal, session, started)
        lost = without_password(journal, folder.passwords_csv)
        if lost:  # users that exist with a generated password nobody has: say so on every resume
            ctx.err.write(without_password_warning(lost, ctx.command_line) + "\n")
            return ExitStatus.ROWS_FAILED if status is ExitStatus.OK else status
        return status


def _resume(ctx: CommandContext, args: argparse.Namespace, folder: RunFolder, journal: Journal, session: Session,
            started: float) -> ExitStatus:
    meta = journal.meta()
    if meta.get("dry_run"):
        raise RunFolderError(f"{folder.path} is a dry run: nothing was planned to be sent; start a real run "
                             "with `run`")
    roster_path = check_roster(meta)
    session.arm(folder)
    stop = session.stop
    with make_client(ctx.tenant_settings, batch_size=meta.get("batch_size"),
                     max_writes_per_s=meta.get("max_writes_per_s"), write_burst=meta.get("write_burst")) as client:
        check_binding(meta, ctx.tenant_settings, folder.path, client)
        open_rows = [r for r in journal.rows(OPEN_STATES) if r.action != "update"]  # updates: runner re-sends
        secrets = SecretFilter(settings_secrets(ctx.tenant_settings))
        with run_log(folder, secrets):
            log.info("resume %s: %d rows still open", folder.path, len(open_rows))
            if not open_rows:
                if journal.followups([FollowUpState.PENDING]) or pending_updates(journal):
                    log.info("resume: no create open; sending the pending updates and follow-ups")
                    todo = pending_updates(journal)
                    if todo and not stop.is_set():
                        apply_updates(client, journal, todo, stop=stop)
                    run_followups(ctx, client, journal, stop=stop)
                done = finish(ctx, journal, folder, passwords=None, apply=None, started=started, client=client,
                              notify=args, stop=stop)
                report_stop(ctx, folder, None, done.status)
                return done.status
            items = _items(open_rows, roster_path, meta, folder, secrets)
            passwords = PasswordFile(folder.passwords_csv)
            known = passwords.load()
            in_doubt = [r.row for r in open_rows if r.state in (RowState.SENDING, RowState.UNKNOWN)]
            result = execute(ctx, client, journal, folder, items, passwords=passwords, stop=stop,
                             no_progress=args.no_progress, fail_on_existing=meta.get("existing") == "fail",
                             in_doubt=in_doubt, previous_sends={r.row: r.attempts for r in open_rows},
                             written_passwords={row: pw for row, (_, pw) in known.items()})
            done = finish(ctx, journal, folder, passwords=passwords, apply=result, started=started,
                          client=client, notify=args, stop=stop)
            report_stop(ctx, folder, result, done.status)
            return done.status


def _items(open_rows: list[RowRecord], roster_path: Path, meta: dict[str, Any], folder: RunFolder,
           secrets: SecretFilter) -> list[CreateItem]:
    """Re-derive the bodies of the open rows: the journal's body (the UPN as first planned) plus the password.

    The journal stores no password: a roster password is read again from the (unchanged) roster; a generated one
    is the one already in passwords.csv if the row was sent before (it may exist with it), else a new one.
    """
    from provisioning.roster.reader import load_roster
    from provisioning.validation.engine import validate_roster

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
