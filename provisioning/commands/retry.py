"""``retry RUN_DIR|RESULTS.xlsx|SHEET.csv``: re-run the rows of the Failed and Invalid sheets, as the user edited
them, as a new run linked to the earlier one (:func:`provisioning.api.start_retry` says how).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from provisioning.bulk import loading_libraries
from provisioning.commands import add_output_arguments, output_context
from provisioning.context import CommandContext
from provisioning.exitcodes import ExitStatus

HELP = "re-run the rows of the Failed and Invalid sheets of a run's results.xlsx, as edited there, as a new run"
NEEDS_TENANT = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``retry`` options."""
    parser.add_argument("target", type=Path, metavar="RUN_DIR|RESULTS.xlsx|SHEET.csv",
                        help="the earlier run folder, or its results.xlsx after you corrected it, or its Failed or "
                             "Invalid sheet saved as CSV (with the Roster row column)")
    parser.add_argument("--dry-run", action="store_true", help="validate and plan the retry, send no write")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="the new run folder (default: runs/<YYYYmmdd-HHMMSS>-<roster name>-retry/)")
    parser.add_argument("--existing", choices=("skip", "update", "fail"), default=None,
                        help="as for run (default: the earlier run's choice); with update, a row whose user an "
                             "earlier run created and whose cells you edited is PATCHed on that same account")
    parser.add_argument("--restore-deleted", action="store_true",
                        help="as for run (also when the earlier run had it): restore a row's user from Deleted users "
                             "instead of reporting the row")
    parser.add_argument("--force", action="store_true",
                        help="with --out: replace results files left in that folder by something else than a run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_output_arguments(parser)


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Build the retry roster, then run it as a new run folder linked to the earlier one."""
    with loading_libraries():  # a bulk step, the libraries then frozen (provisioning.bulk)
        # provisioning.api loads numpy and requests: imported when the command runs, not for --help
        from provisioning.api import Existing, RetryOptions, Stop, start_retry

    options = RetryOptions(run_dir=args.out, force=args.force, dry_run=args.dry_run,
                           existing=Existing(args.existing) if args.existing else None, progress=not args.no_progress,
                           restore_deleted=args.restore_deleted)
    with Stop().signals() as stop:
        console = output_context(ctx, args)
        return start_retry(ctx.tenant_settings, args.target, options, stop=stop, console=console).status
