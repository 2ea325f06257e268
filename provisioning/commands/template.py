"""``template OUT.xlsx|OUT.csv [--entra]``: a blank roster with every supported column and notes."""
from __future__ import annotations

import argparse
from pathlib import Path

from provisioning.context import CommandContext
from provisioning.errors import UsageError
from provisioning.exitcodes import ExitStatus
from provisioning.fields import FIELDS
from provisioning.roster.template import ENTRA_HEADERS, ENTRA_VERSION_LINE, NOTES_COLUMNS, write_template
from provisioning.targets import check_target, csv_header_is, csv_text_is, xlsx_first_row_is

HELP = "write a blank roster (xlsx with notes and data validation, or csv); --entra: the admin center's format"
NEEDS_TENANT = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``template``."""
    parser.add_argument("out", type=Path, metavar="OUT", help="the file to write: .xlsx or .csv")
    parser.add_argument("--entra", action="store_true",
                        help="write the Entra admin center bulk-create CSV (version:v1.0 + its 17 columns)")
    parser.add_argument("--force", action="store_true",
                        help="replace OUT even when it is not a blank template (a filled-in roster is lost)")


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Write the template; report the files written on stderr."""
    out: Path = args.out
    names = [f.name for f in FIELDS]
    if args.entra:
        ours = csv_text_is(ENTRA_VERSION_LINE + "\n" + ",".join(ENTRA_HEADERS))
    elif out.suffix.lower() == ".csv":
        ours = csv_text_is(",".join(names))
        notes = out.with_name(out.stem + ".notes.csv")
        check_target(notes, force=args.force, ours=csv_header_is([NOTES_COLUMNS]))
    elif out.suffix.lower() in (".xlsx", ".xlsm"):
        ours = xlsx_first_row_is("Users", [names], only_header=True)
    else:
        ours = None  # write_template refuses the name below
    if ours is not None:
        check_target(out, force=args.force, ours=ours)
    try:
        written = write_template(args.out, entra=args.entra)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if ctx.verbosity >= 0:
        for path in written:
            ctx.err.write(f"wrote {path}\n")
    return ExitStatus.OK
