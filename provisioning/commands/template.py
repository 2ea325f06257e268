"""``template OUT.xlsx|OUT.csv [--entra]``: a blank roster with every supported column and notes."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..context import CommandContext
from ..errors import UsageError
from ..exitcodes import ExitStatus
from ..roster_template import write_template

HELP = "write a blank roster (xlsx with notes and data validation, or csv); --entra: the admin center's format"
NEEDS_TENANT = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``template``."""
    parser.add_argument("out", type=Path, metavar="OUT", help="the file to write: .xlsx or .csv")
    parser.add_argument("--entra", action="store_true",
                        help="write the Entra admin center bulk-create CSV (version:v1.0 + its 17 columns)")


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Write the template; report the files written on stderr."""
    try:
        written = write_template(args.out, entra=args.entra)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if ctx.verbosity >= 0:
        for path in written:
            ctx.err.write(f"wrote {path}\n")
    return ExitStatus.OK
