"""``retry RUN_DIR|RESULTS.xlsx|SHEET.csv``: re-run the rows of the Failed and Invalid sheets, as the user edited
them.

The rows become the roster of a new run folder (``retry-roster.xlsx``, linked to the earlier run by
``retry-source.json`` and by the ``retry`` entry of its journal) and go through the ordinary run
(:func:`provisioning.api.start_run`): validation, the tenant pre-flight, the journal, the creates, the report. Each
row keeps the row number it had in the original roster. A row whose user a run of the chain created is bound to
that account (:mod:`provisioning.run.chain`): never created again; only its unfinished follow-ups are sent, and an
edit of its cells is a PATCH of that account (``--existing update``) or an issue. A password the roster gave a row
(never shown in the sheets) is read again from the earlier run's roster when its bytes are unchanged.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from provisioning.api import Existing, RunOptions, Stop, make_client, start_run
from provisioning.context import CommandContext
from provisioning.errors import ProvisionError
from provisioning.exitcodes import ExitStatus
from provisioning.fields import canonical_field, load_mapping
from provisioning.models import Issue
from provisioning.report.run_workbook import write_run_workbook
from provisioning.roster.excel import problem_message
from provisioning.roster.reader import load_roster
from provisioning.run.binding import check_binding
from provisioning.run.chain import Chain, Parent, read_chain
from provisioning.run.folder import file_sha256, new_run_folder
from provisioning.run.journal import JOURNAL_NAME, RowState
from provisioning.run.lock import lock_run_folder
from provisioning.run.retrysource import (
    RESULTS_XLSX,
    RETRY_ROSTER_NAME,
    RetryRow,
    RetrySource,
    exclude_created,
    read_retry_source,
    require_rows,
    write_retry_link,
    write_retry_roster,
)
from provisioning.validation import rules

HELP = "re-run the rows of the Failed and Invalid sheets of a run's results.xlsx, as edited there, as a new run"
NEEDS_TENANT = True

log = logging.getLogger(__name__)


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
    parser.add_argument("--force", action="store_true",
                        help="with --out: replace results files left in that folder by something else than a run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _run_options(meta: Mapping[str, Any], run_dir: Path, chain: Chain, args: argparse.Namespace) -> RunOptions:
    """The options of the retry run, with the earlier run's choices (mapping, --existing, batch size, write rate)
    carried over."""
    mapping = meta.get("mapping")
    return RunOptions(
        run_dir=run_dir, force=args.force, mapping=Path(mapping) if mapping and Path(mapping).is_file() else None,
        dry_run=args.dry_run, existing=Existing(args.existing or meta.get("existing") or "skip"),
        batch_size=int(meta["batch_size"]) if meta.get("batch_size") else None,
        max_writes_per_s=float(meta["max_writes_per_s"]) if meta.get("max_writes_per_s") else None,
        progress=not args.no_progress, chain=chain)


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Build the retry roster, then run it as a new run folder linked to the earlier one (in the earlier run's
    tenant, while no other process works on the earlier run)."""
    source = read_retry_source(args.target)
    with contextlib.ExitStack() as held:
        if (source.earlier_run / JOURNAL_NAME).is_file():
            # a run (or resume) still working there may yet create or follow up the rows retried here
            held.enter_context(lock_run_folder(source.earlier_run, "retry"))
        return _retry(ctx, args, source)


def _retry(ctx: CommandContext, args: argparse.Namespace, source: RetrySource) -> ExitStatus:
    parent = read_chain(source.earlier_run)
    if parent is None:
        log.warning("%s holds no journal: rows are checked against the tenant only", source.earlier_run)
    meta = dict(parent.meta) if parent else {}
    if meta:
        with make_client(ctx.tenant_settings) as client:
            check_binding(meta, ctx.tenant_settings, source.earlier_run, client)
    bindings = dict(parent.bindings) if parent else {}
    done = _done_rows(parent)
    retried, excluded = exclude_created(source, created_rows=done,
                                        created_upns={bindings[r].upn for r in done if r in bindings})
    for e in excluded:
        ctx.out.write(f"not retried: {e.row.sheet} sheet row {e.row.sheet_row}: {e.reason}\n")
    require_rows(source, retried)
    numbers, high = _roster_rows(ctx, retried, parent, bindings)
    renames = load_mapping(meta["mapping"]).renames if meta.get("mapping") else None
    fields = [canonical_field(h, renames) for h in source.headers]
    rows, issues, unchanged = _passwords(retried, numbers, fields, source.headers, parent, bindings)
    issues += _formula_issues(rows, numbers, fields, source.headers)
    issues += _still_empty(rows, numbers, source.headers, parent)

    stem = Path(str(meta.get("roster_path") or source.earlier_run.name)).stem
    if stem == Path(RETRY_ROSTER_NAME).stem:  # a retry of a retry: named after the original roster
        stem = str((meta.get("retry") or {}).get("stem") or stem)
    folder = new_run_folder(Path(f"{stem}-retry.xlsx"), args.out, force=getattr(args, "force", False))
    roster_path = folder.path / RETRY_ROSTER_NAME
    order = sorted(range(len(rows)), key=numbers.__getitem__)
    mapping = write_retry_roster(roster_path, source.headers, [rows[i] for i in order],
                                 [numbers[i] for i in order])
    write_retry_link(folder.path, source, mapping, excluded)
    ctx.out.write(f"retrying {len(mapping)} row(s) of {source.results_path} as a new run\n")
    log.info("retry of %s: %d rows, %d excluded, %d bound to accounts created earlier, new run %s",
             source.earlier_run, len(mapping), len(excluded), sum(1 for n in mapping if n in bindings), folder.path)

    chain = Chain(
        bindings=bindings, issues=tuple(issues),
        done_followups=frozenset(k for k in (parent.done_followups if parent else ()) if k[0] in bindings),
        meta={"parent_run": str(source.earlier_run.resolve()), "parent_results": str(source.results_path.resolve()),
              "parent_roster": meta.get("roster_path"), "parent_roster_sha256": meta.get("roster_sha256"),
              "parent_roster_unchanged": unchanged, "high_row": high, "stem": stem,
              "bound_rows": sorted(n for n in mapping if n in bindings)})
    with Stop().signals() as stop:
        status = start_run(ctx.tenant_settings, roster_path, _run_options(meta, folder.path, chain, args),
                           stop=stop, console=ctx).status
    if not (folder.path / RESULTS_XLSX).is_file() and (folder.path / JOURNAL_NAME).is_file():
        write_run_workbook(folder.path, command_line=ctx.command_line)
    return status


def _done_rows(parent: Parent | None) -> set[int]:
    """Rows bound to an account whose work is finished (not re-sent, even when pasted back into a sheet): all but
    those the earlier run refused or left open, and those with a failed or unfinished follow-up."""
    if parent is None:
        return set()
    again = {RowState.INVALID, RowState.FAILED, RowState.PENDING, RowState.SENDING, RowState.UNKNOWN}
    return {row for row in parent.bindings if row not in parent.unfinished
            and (row not in parent.records or parent.records[row].state not in again)}


def _roster_rows(ctx: CommandContext, rows: Sequence[RetryRow], parent: Parent | None,
                 bindings: Mapping[int, Any]) -> tuple[list[int], int]:
    """Each row's roster row number: the one it had in the original roster ("Roster row"), kept through retries
    of retries; a row added by hand (or a second copy of a row) gets the next number after every row the chain
    has used. Returns the numbers and that highest number."""
    used_before = [int(((parent.meta.get("retry") or {}) if parent else {}).get("high_row") or 0),
                   *(parent.records if parent else ()), *bindings, *(r.earlier_row or 0 for r in rows), 1]
    high = max(used_before)
    numbers: list[int] = []
    taken: set[int] = set()
    for r in rows:
        number = r.earlier_row
        if number is None or number < 2 or number in taken:
            high += 1
            why = "added by hand" if number is None or number < 2 else f"repeats roster row {number}"
            ctx.out.write(f"note: {r.sheet} sheet row {r.sheet_row} ({why}) is retried as roster row {high}\n")
            number = high
        taken.add(number)
        numbers.append(number)
    return numbers, high


def _passwords(rows: Sequence[RetryRow], numbers: Sequence[int], fields: Sequence[str | None],
               headers: Sequence[str], parent: Parent | None, bindings: Mapping[int, Any]) \
        -> tuple[list[RetryRow], list[Issue], bool | None]:
    """The password the roster gave a row, which the sheets never show: read again from the earlier run's roster
    when that file is unchanged (its SHA-256 is in the journal), else the row gets an issue, unless the cell was
    filled in again. Returns the rows, the issues, and whether the earlier roster was unchanged (None: not read).
    """
    if "password" not in fields or parent is None:
        return list(rows), [], None
    col = fields.index("password")
    wanted = [i for i, r in enumerate(rows) if not r.cells[col] and numbers[i] not in bindings
              and r.earlier_row is not None and numbers[i] == r.earlier_row]
    if not wanted:
        return list(rows), [], None
    given = _roster_passwords(parent.meta)
    out = list(rows)
    issues: list[Issue] = []
    for i in wanted:
        number = numbers[i]
        if given is not None:
            if given.get(number):
                cells = list(out[i].cells)
                cells[col] = given[number]
                out[i] = replace(out[i], cells=tuple(cells))
            continue
        record = parent.records.get(number)
        if record is not None and record.password_source == "roster":
            roster = Path(str(parent.meta.get("roster_path") or "the roster"))
            state = "changed since" if roster.is_file() else "is not there any more since"
            issues.append(rules.issue(
                number, headers[col], "retry-password-lost",
                f"{headers[col]}: {roster.name} gave row {number} a password, which reports never copy, and "
                f"{roster.name} {state} the run {parent.run_dir}, so it cannot be read again; type the password "
                f"again in the sheet, or retry this run with the cell left empty to have one generated"))
    return out, issues, given is not None


def _roster_passwords(meta: Mapping[str, Any]) -> dict[int, str] | None:
    """The password cells of the earlier run's roster by row, or None when it is gone or its bytes changed."""
    path = Path(str(meta.get("roster_path") or ""))
    if not meta.get("roster_sha256") or not path.is_file() or file_sha256(path) != meta["roster_sha256"]:
        return None
    try:
        roster = load_roster(path, sheet=meta.get("sheet"), mapping=meta.get("mapping"),
                             header_row=meta.get("header_row"), encoding=meta.get("encoding"))
    except ProvisionError as exc:  # e.g. its mapping file is gone: the passwords cannot be read again
        log.warning("cannot read the earlier roster %s again: %s", path, exc)
        return None
    col = next((j for j, h in enumerate(roster.headers) if roster.column_map.get(h) == "password"), None)
    if col is None:
        return {}
    return {r.row: r.cells[col] for r in roster.rows if col < len(r.cells) and r.cells[col]}


#: Reader issues of a cell that the roster had but the report could not show (its value was never calculated).
_UNSHOWN = frozenset({"formula-no-value", "excel-error"})


def _still_empty(rows: Sequence[RetryRow], numbers: Sequence[int], headers: Sequence[str],
                 parent: Parent | None) -> list[Issue]:
    """A cell the earlier run refused as a formula without a value (or an error value) that is still empty in the
    sheet: the report had nothing to show there, so an unedited retry would send the row without the value the
    administrator meant to give. Refused once more (``retry-formula-empty``); a retry of that retry with the cell
    still empty takes it as empty on purpose."""
    if parent is None:
        return []
    earlier = parent.issues
    at = {h: i for i, h in enumerate(headers)}
    out: list[Issue] = []
    for r, number in zip(rows, numbers, strict=True):
        if r.earlier_row is None:
            continue
        for issue in earlier.get(r.earlier_row, ()):
            index = at.get(issue.column)
            if issue.code in _UNSHOWN and index is not None and not r.cells[index].strip():
                out.append(rules.issue(number, issue.column, "retry-formula-empty",
                                       f"{issue.column}: the roster's cell held a formula whose value was never "
                                       f"calculated (or an Excel error), so the report's cell is empty; type the "
                                       f"value in the sheet, or retry again with it left empty on purpose"))
    return out


def _formula_issues(rows: Sequence[RetryRow], numbers: Sequence[int], fields: Sequence[str | None],
                    headers: Sequence[str]) -> list[Issue]:
    """A formula without a saved value in a sheet (an error value is written as such and refused by the roster
    reader of the retry run): the same issue the roster reader gives."""
    out: list[Issue] = []
    for r, number in zip(rows, numbers, strict=False):
        for index, pr in r.problems:
            if pr.error is None:
                code, message = problem_message(pr, headers[index], used=fields[index] is not None,
                                                secret=fields[index] == "password")
                out.append(rules.issue(number, headers[index], code, message))
    return out
