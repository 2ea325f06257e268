"""``validate ROSTER``: offline checks of a roster, no credentials needed.

The counts go to stderr; stdout gets a summary by error code (count, first rows, an example message), then at
most :data:`provisioning.report.terminal.MAX_LINES` issues as a table (``--all``: every one), then where the full
list is: the issues as CSV next to the roster (``<roster>.issues.csv``) or in ``--out``. ``--json`` prints the
counts and every issue as one JSON document on stdout instead. Exit 0 when no row has an error (warnings
allowed), 1 when some row has one, 2 when the roster cannot be used at all
(:class:`~provisioning.errors.RosterError`).
"""
from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from provisioning.bulk import gc_paused, loading_libraries
from provisioning.cells import csv_quote, csv_safe
from provisioning.commands import add_header_row_argument
from provisioning.context import CommandContext
from provisioning.errors import UsageError
from provisioning.exitcodes import ExitStatus
from provisioning.models import Issue, Severity
from provisioning.report.terminal import code_summary, cut, more_line, shown, table, terminal_width
from provisioning.roster.encodings import encoding_option
from provisioning.targets import check_target, csv_header_is

HELP = "check a roster offline (no credentials): every issue of every row, as a table and a CSV"
NEEDS_TENANT = False
log = logging.getLogger(__name__)
ISSUE_COLUMNS = ("file", "row", "column", "severity", "code", "message")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``validate``."""
    parser.add_argument("roster", type=Path, metavar="ROSTER", help="the roster: .csv, .xlsx or .xlsm")
    parser.add_argument("--sheet", metavar="S", help="the Excel sheet to read (default: the first visible one "
                                                     "with headers)")
    add_header_row_argument(parser)
    parser.add_argument("--mapping", type=Path, metavar="M", help="column mapping JSON for HR exports "
                                                                  "(see templates/README.md)")
    parser.add_argument("--encoding", type=encoding_option, metavar="NAME",
                        help="a CSV file's text encoding (cp1252, cp1250, mac_roman...) when it is not UTF-8 and "
                             "cannot be told for certain (default: detected)")
    parser.add_argument("--out", type=Path, metavar="CSV", help="where to write the issues CSV "
                                                                "(default: ROSTER.issues.csv beside the roster)")
    parser.add_argument("--domain", metavar="D", help="domain for derived userPrincipalNames, e.g. contoso.com")
    parser.add_argument("--force", action="store_true",
                        help="replace the --out file even when it is not an issues CSV of an earlier validate")
    parser.add_argument("--all", action="store_true", dest="show_all",
                        help="print every issue (default: a summary by code and the first 40 issues)")
    parser.add_argument("--json", action="store_true",
                        help="print the counts and every issue as JSON on stdout (for scripts)")


def issues_csv_path(roster: Path) -> Path:
    """Default issues CSV for a roster: ``people.xlsx`` -> ``people.issues.csv``."""
    return roster.with_name(roster.stem + ".issues.csv")


def write_issues_csv(path: Path, roster_name: str, issues: Sequence[Issue]) -> None:
    """The issues as CSV (UTF-8 with BOM so Excel shows accents), every cell neutralised with ``csv_safe``.

    The same bytes as ``csv.writer`` would write (each field quoted by :func:`~provisioning.cells.csv_quote`),
    joined in one go: a validation of 100,000 rows can have tens of thousands of issues."""
    name = csv_quote(csv_safe(roster_name))
    columns: dict[str, str] = {}
    error, warning = Severity.ERROR, Severity.WARNING  # (``.value`` of an enum is a slow property)
    lines = [",".join(ISSUE_COLUMNS)]
    lines += [f"{name},{i.row or ''},"
              f"{columns.get(i.column) or columns.setdefault(i.column, csv_quote(csv_safe(i.column)))},"
              f"{'error' if i.severity is error else 'warning' if i.severity is warning else i.severity.value},"
              f"{i.code},{csv_quote(csv_safe(i.message))}" for i in issues]
    lines.append("")
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        f.write("\r\n".join(lines))


def write_table(stream: TextIO, issues: Sequence[Issue], width: int | None = None) -> None:
    """Issues as an aligned text table, one line each, cut to ``width`` (the message column first), in one piece."""
    head = ("Row", "Column", "Severity", "Code", "Message")
    cells = [(str(i.row) if i.row else "-", cut(i.column, 30), i.severity.value, i.code, i.message) for i in issues]
    stream.write("".join(line + "\n" for line in table(head, cells, width)))


def write_report(stream: TextIO, issues: Sequence[Issue], where: Path, *, show_all: bool) -> None:
    """The summary by code, the first issues (every one with ``show_all``) and where the full list is."""
    width = terminal_width(stream)
    lines = ["Issues by code:", *code_summary(issues, width), ""]
    stream.write("\n".join(lines) + "\n")
    first = shown(issues, show_all)
    write_table(stream, first, width)
    stream.write(more_line(len(first), len(issues), str(where), width) + "\n")


def issues_json(roster: str, sheet: str | None, rows: int, bad_rows: int, issues: Sequence[Issue],
                out_path: Path) -> str:
    """``--json``: the counts and every issue (the CSV's columns), for scripts."""
    by_code: dict[str, int] = {}
    for i in issues:
        by_code[i.code] = by_code.get(i.code, 0) + 1
    errors = sum(1 for i in issues if i.severity is Severity.ERROR)
    doc = {"roster": roster, "sheet": sheet, "rows": rows, "valid_rows": rows - bad_rows, "rows_with_errors": bad_rows,
           "errors": errors, "warnings": len(issues) - errors, "issues_csv": str(out_path), "by_code": by_code,
           "issues": [{"row": i.row or None, "column": i.column, "severity": i.severity.value, "code": i.code,
                       "message": i.message} for i in issues]}
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Validate ``args.roster``; see the module docstring for outputs and exit status."""
    with loading_libraries():  # imported when the command runs, not for --help:
        from provisioning.roster.reader import hidden_rows_note, load_roster  # loads pandas for a CSV with quotes
        from provisioning.validation.engine import check_roster  # loads numpy

    out_path = args.out or issues_csv_path(args.roster)
    check_target(out_path, force=args.force, ours=csv_header_is([ISSUE_COLUMNS]),
                 protected={"the roster": args.roster, "the mapping file": args.mapping})
    with gc_paused():
        roster = load_roster(args.roster, sheet=args.sheet, mapping=args.mapping, header_row=args.header_row,
                             encoding=args.encoding, digest=False)  # (no run is bound to the file)
        checked = check_roster(roster, default_domain=args.domain)
        issues = checked.issues
        try:
            write_issues_csv(out_path, args.roster.name, issues)
        except OSError as exc:
            raise UsageError(f"cannot write the issues CSV {out_path}: {exc.strerror or exc}; give --out "
                             "with a file in a folder you can write to") from None
        bad_rows = len(checked.error_rows)
        n = len(roster.row_numbers)
        sheet, kind, header_row, hidden = roster.sheet, roster.kind, roster.header_row, hidden_rows_note(roster, "; ")
        # the roster's columns are freed while the collector is still paused: alive when it resumes, its first
        # collection would walk each of their cells (30 ms for 100,000 rows)
        del roster, checked
    errors = sum(1 for i in issues if i.severity is Severity.ERROR)
    warnings = len(issues) - errors
    if getattr(args, "json", False):
        ctx.out.write(issues_json(str(args.roster), sheet, n, bad_rows, issues, out_path))
    elif issues:
        write_report(ctx.out, issues, out_path, show_all=getattr(args, "show_all", False))
    where = f"{args.roster}" + (f" [sheet {sheet}]" if sheet else "")
    if ctx.verbosity >= 0:
        ctx.err.write(f"{where}: {n} row{'s' * (n != 1)} ({kind}, header on row {header_row}); "
                      f"{n - bad_rows} valid, {bad_rows} with errors; {errors} error{'s' * (errors != 1)}, "
                      f"{warnings} warning{'s' * (warnings != 1)}{hidden}\n")
        ctx.err.write(f"issues written to {out_path}\n" if issues else f"no issues (empty list in {out_path})\n")
    return ExitStatus.ROWS_FAILED if errors else ExitStatus.OK
