"""``run ROSTER``: validate the roster against the tenant, plan, and create the users (journaled, resumable).

The options become a :class:`provisioning.api.RunOptions`; :func:`provisioning.api.start_run` does the run."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from provisioning.bulk import loading_libraries
from provisioning.commands import add_header_row_argument, add_output_arguments, notify_options, output_context
from provisioning.context import CommandContext
from provisioning.errors import UsageError
from provisioning.exitcodes import ExitStatus
from provisioning.report.notify import add_notify_arguments
from provisioning.roster.encodings import encoding_option
from provisioning.run.tap import Credential, DeliverOptions, Onboarding, TapOptions

if TYPE_CHECKING:
    from provisioning.api import RunOptions

HELP = "validate a roster against the tenant, then create its users through Graph $batch (journaled, resumable)"
NEEDS_TENANT = True


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
    parser.add_argument("--restore-deleted", action="store_true",
                        help="a row whose person (employeeId, userPrincipalName or mailNickname) is in Deleted "
                             "users: restore that account (same object id) and update it to the row, instead of "
                             "reporting the row (needs User.ReadWrite.All)")
    parser.add_argument("--yes", action="store_true",
                        help="confirm a destructive run (--reset-passwords) without asking: for scripts; without "
                             "a terminal and without --yes such a run is refused")
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
    add_output_arguments(parser)
    add_notify_arguments(parser)
    add_credential_arguments(parser)


def _minutes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of minutes") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive number of minutes")
    return value


def add_credential_arguments(parser: argparse.ArgumentParser) -> None:
    """``--credential``, ``--tap-lifetime``, ``--tap-usable-once``, ``--deliver``, ``--deliver-from``,
    ``--deliver-passwords`` (README, Onboarding)."""
    parser.add_argument("--credential", choices=[c.value for c in Credential], default=Credential.PASSWORD.value,
                        help="what each created user first signs in with: a password (default; generated ones go "
                             "to passwords.csv) or a Temporary Access Pass (tap: credentials.csv; the random "
                             "password the create needs is never kept)")
    parser.add_argument("--tap-lifetime", type=_minutes, metavar="MINUTES", default=None,
                        help="with --credential tap: how long each pass is valid (default: the tenant policy's)")
    parser.add_argument("--tap-usable-once", action="store_true",
                        help="with --credential tap: each pass signs in once only")
    parser.add_argument("--deliver", choices=("managers",), default=None,
                        help="mail each manager one message with the user names and passes (or, with "
                             "--deliver-passwords, initial passwords) of their new reports; needs --deliver-from "
                             "and the Mail.Send permission")
    parser.add_argument("--deliver-from", metavar="UPN", default=None,
                        help="the user (UPN or id) whose mailbox sends the --deliver mails")
    parser.add_argument("--deliver-passwords", action="store_true",
                        help="with --credential password --deliver managers: mail generated passwords")


def deliver_options(args: argparse.Namespace) -> DeliverOptions | None:
    """``--deliver managers`` as options (checked by :func:`provisioning.api.start_run`)."""
    if not args.deliver:
        if args.deliver_from or args.deliver_passwords:
            raise UsageError("--deliver-from and --deliver-passwords go with --deliver managers")
        return None
    return DeliverOptions(sender=(args.deliver_from or "").strip(), passwords=bool(args.deliver_passwords))


def options(args: argparse.Namespace) -> RunOptions:
    """The run's options from its arguments."""
    # provisioning.api loads numpy and requests: imported when the command runs, not for --help
    from provisioning.api import Existing, RunOptions

    return RunOptions(
        run_dir=args.out, force=args.force, sheet=args.sheet, header_row=args.header_row, mapping=args.mapping,
        encoding=args.encoding, dry_run=args.dry_run, existing=Existing(args.existing),
        reset_passwords=args.reset_passwords, batch_size=args.batch_size, max_writes_per_s=args.max_writes_per_s,
        write_burst=args.write_burst, progress=not args.no_progress, notify=notify_options(args),
        onboarding=Onboarding(Credential(args.credential), TapOptions(args.tap_lifetime, bool(args.tap_usable_once)),
                              deliver_options(args)),
        restore_deleted=args.restore_deleted,
        yes=args.yes)


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Run the roster: pre-flight, plan, journal, apply, report (Ctrl-C, SIGTERM, SIGHUP stop it cleanly)."""
    settings = ctx.tenant_settings
    with loading_libraries():  # a million objects and no cycles to collect (provisioning.bulk)
        # loads requests and msal: the client comes first, so that its token is on its way while the rest loads
        from provisioning.run.client import make_client

        client = make_client(settings, batch_size=args.batch_size, max_writes_per_s=args.max_writes_per_s,
                             write_burst=args.write_burst)
        client.tokens.prefetch()
        from provisioning.api import Stop, start_run  # loads numpy (see options above)

    with client:  # start_run closes it too; this closes it if the options are refused first
        run_options = options(args)
        with Stop().signals() as stop:
            console = output_context(ctx, args)
            return start_run(settings, args.roster, run_options, stop=stop, console=console, client=client).status
