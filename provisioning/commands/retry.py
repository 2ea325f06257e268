"""``retry RUN_DIR|RESULTS.xlsx``: re-run the rows of the Failed and Invalid sheets, as the user edited them.

The rows become the roster of a new run folder (``retry-roster.xlsx``, linked to the earlier run by
``retry-source.json``) and go through the ordinary ``run`` path: validation, the tenant pre-flight (a user that
exists by now is skipped, never created twice), the journal, the creates, the report. Rows the earlier run
already created are never re-sent; a row created with a follow-up that failed is retried (its user is skipped as
existing and its follow-ups are sent again).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..context import CommandContext
from ..exitcodes import ExitStatus
from ..followup_journal import row_view
from ..journal import JOURNAL_NAME, Journal, RowState
from ..retrysource import (
    RETRY_ROSTER_NAME, RESULTS_XLSX, exclude_created, read_retry_source, require_rows, write_retry_link,
    write_retry_roster,
)
from ..run_report import write_run_workbook
from ..runfolder import new_run_folder

HELP = "re-run the rows of the Failed and Invalid sheets of a run's results.xlsx, as edited there, as a new run"
NEEDS_TENANT = True

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``retry`` options."""
    parser.add_argument("target", type=Path, metavar="RUN_DIR|RESULTS.xlsx",
                        help="the earlier run folder, or its results.xlsx after you corrected it")
    parser.add_argument("--dry-run", action="store_true", help="validate and plan the retry, send no write")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="the new run folder (default: runs/<YYYYmmdd-HHMMSS>-<roster name>-retry/)")
    parser.add_argument("--force", action="store_true",
                        help="with --out: replace results files left in that folder by something else than a run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _earlier(run_dir: Path) -> tuple[dict[str, Any], set[int], set[str]]:
    """The earlier run's metadata and what it created (rows and UPNs); empty when its journal is not there."""
    if not (run_dir / JOURNAL_NAME).is_file():
        log.warning("%s holds no journal: rows are checked against the tenant only", run_dir)
        return {}, set(), set()
    with Journal.open(run_dir) as journal:
        # a created row whose follow-up failed is retried: its user is skipped as existing, its follow-ups go again
        unfinished = {row for row, (state, _) in row_view(journal).items() if state in ("failed", "pending")}
        created = [r for r in journal.rows([RowState.CREATED]) if r.row not in unfinished]
        return journal.meta(), {r.row for r in created}, {r.upn for r in created if r.upn}


def _run_arguments(run: Any, meta: dict[str, Any], roster: Path, out: Path,
                   args: argparse.Namespace) -> argparse.Namespace:
    """The ``run`` command's arguments for the retry roster, parsed by ``run``'s own parser (so every option has
    its default), with the earlier run's choices (mapping, --existing, batch size, write rate) carried over."""
    argv = [str(roster), "--out", str(out), "--existing", str(meta.get("existing") or "skip")]
    mapping = meta.get("mapping")
    if mapping and Path(mapping).is_file():
        argv += ["--mapping", str(mapping)]
    if meta.get("batch_size"):
        argv += ["--batch-size", str(meta["batch_size"])]
    if meta.get("max_writes_per_s"):
        argv += ["--max-writes-per-s", str(meta["max_writes_per_s"])]
    if args.dry_run:
        argv.append("--dry-run")
    if args.no_progress:
        argv.append("--no-progress")
    if getattr(args, "force", False):
        argv.append("--force")
    parser = argparse.ArgumentParser(prog="retry", add_help=False)
    run.add_arguments(parser)
    return parser.parse_args(argv)


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Build the retry roster, then run it as a new run folder linked to the earlier one."""
    from . import run

    source = read_retry_source(args.target)
    meta, created_rows, created_upns = _earlier(source.earlier_run)
    rows, excluded = exclude_created(source, created_rows=created_rows, created_upns=created_upns)
    for e in excluded:
        ctx.out.write(f"not retried: {e.row.sheet} sheet row {e.row.sheet_row}: {e.reason}\n")
    require_rows(source, rows)

    stem = Path(str(meta.get("roster_path") or source.earlier_run.name)).stem
    folder = new_run_folder(Path(f"{stem}-retry.xlsx"), args.out, force=getattr(args, "force", False))
    roster_path = folder.path / RETRY_ROSTER_NAME
    mapping = write_retry_roster(roster_path, source.headers, rows)
    write_retry_link(folder.path, source, mapping, excluded)
    ctx.out.write(f"retrying {len(mapping)} row(s) of {source.results_path} as a new run\n")
    log.info("retry of %s: %d rows, %d excluded, new run %s", source.earlier_run, len(mapping), len(excluded),
             folder.path)

    run_args = _run_arguments(run, meta, roster_path, folder.path, args)
    status = run.main(ctx, run_args)
    if not (folder.path / RESULTS_XLSX).is_file() and (folder.path / JOURNAL_NAME).is_file():
        write_run_workbook(folder.path, command_line=ctx.command_line)
    return ExitStatus(status)
