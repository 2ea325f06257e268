"""``run ROSTER``: validate the roster against the tenant, plan, and create the users (journaled, resumable).

The options become a :class:`provisioning.api.RunOptions`; :func:`provisioning.api.start_run` does the run."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from provisioning.api import Existing, RunOptions, Stop, start_run
from provisioning.commands import add_header_row_argument, add_output_arguments, notify_options, output_context
from provisioning.context import CommandContext
from provisioning.exitcodes import ExitStatus
from provisioning.report.notify import add_notify_arguments
from provisioning.roster.encodings import encoding_option

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


def options(args: argparse.Namespace) -> RunOptions:
    """The run's options from its arguments."""
    return RunOptions(
        run_dir=args.out, force=args.force, sheet=args.sheet, header_row=args.header_row, mapping=args.mapping,
        encoding=args.encoding, dry_run=args.dry_run, existing=Existing(args.existing),
        reset_passwords=args.reset_passwords, batch_size=args.batch_size, max_writes_per_s=args.max_writes_per_s,
        write_burst=args.write_burst, progress=not args.no_progress, notify=notify_options(args),
        yes=args.yes)


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Run the roster: pre-flight, plan, journal, apply, report (Ctrl-C, SIGTERM, SIGHUP stop it cleanly)."""
    run_options = options(args)
    with Stop().signals() as stop:
        console = output_context(ctx, args)
        return start_run(ctx.tenant_settings, args.roster, run_options, stop=stop, console=console).status
