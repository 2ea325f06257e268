"""``export-users``: every user of the tenant (paged ``GET /users``) into a styled .xlsx or a .csv."""
from __future__ import annotations

import argparse
import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from graph.errors import GraphError
from graph.odata import DEFAULT_USER_SELECT
from provisioning.cells import csv_safe, make_xlsx_text_safe
from provisioning.context import CommandContext
from provisioning.errors import UsageError
from provisioning.exitcodes import ExitStatus
from provisioning.targets import check_target, csv_header_is, xlsx_first_row_is

HELP = "the tenant's users into a spreadsheet (OUT.xlsx or OUT.csv; paged GET /users)"
NEEDS_TENANT = True
COLUMNS: tuple[str, ...] = DEFAULT_USER_SELECT
OPTIONAL_COLUMNS = frozenset({"createdDateTime"})  # dropped when the service does not return it
MAX_WIDTH = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """OUT and --filter."""
    parser.add_argument("out", type=Path, metavar="OUT.xlsx|OUT.csv", help="the spreadsheet to write")
    parser.add_argument("--filter", dest="odata_filter", metavar="ODATA",
                        help="an OData $filter, e.g. \"department eq 'Sales'\" or \"startsWith(displayName,'A')\"")
    parser.add_argument("--force", action="store_true",
                        help="replace OUT even when it is not an earlier export-users file")


def cell_value(value: Any) -> Any:
    """A Graph property as a spreadsheet value: lists joined with ``; ``, None as empty, the rest unchanged."""
    if value is None:
        return None
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return str(value)
    return value


def main(ctx: CommandContext, args: argparse.Namespace) -> ExitStatus:
    """Export; print where and how many."""
    out_path: Path = args.out
    kind = out_path.suffix.lower()
    if kind not in (".xlsx", ".csv"):
        raise UsageError(f"{out_path}: the output must end in .xlsx or .csv")
    if not out_path.parent.exists():
        raise UsageError(f"{out_path}: the folder {out_path.parent} does not exist")
    headers = [list(COLUMNS), [c for c in COLUMNS if c not in OPTIONAL_COLUMNS]]
    check_target(out_path, force=args.force,
                 ours=csv_header_is(headers) if kind == ".csv" else xlsx_first_row_is("Users", headers))
    from graph.client import GraphClient  # loads requests and msal: imported when the command runs, not for --help

    with GraphClient(ctx.tenant_settings.graph_config()) as client:
        users = client.iter_users(filter=args.odata_filter, select=COLUMNS)
        try:
            first = _peek(users)
        except GraphError as exc:
            if exc.status != 400 or not args.odata_filter:
                raise
            rid = f" (request-id {exc.request_id})" if exc.request_id else ""
            raise UsageError(f"--filter {args.odata_filter!r}: Graph refused it: {exc.message}{rid}; fix the "
                             "filter, e.g. \"department eq 'Sales'\" or \"startsWith(displayName,'A')\"") from None
        columns = [c for c in COLUMNS if c not in OPTIONAL_COLUMNS or any(c in u for u in first.head)]
        tmp = out_path.with_name(out_path.name + ".part")
        count = (_write_xlsx if kind == ".xlsx" else _write_csv)(tmp, columns, first.all())
        tmp.replace(out_path)
    ctx.out.write(f"exported {count} user{'s' if count != 1 else ''} to {out_path}\n")
    return ExitStatus.OK


class _Peeked:
    """The first users (to choose columns and widths) and then all of them, without reading twice."""

    def __init__(self, head: list[dict[str, Any]], rest: Iterator[dict[str, Any]]) -> None:
        self.head = head
        self._rest = rest

    def all(self) -> Iterator[dict[str, Any]]:
        yield from self.head
        yield from self._rest


def _peek(users: Iterator[dict[str, Any]], n: int = 500) -> _Peeked:
    head = []
    for user in users:
        head.append(user)
        if len(head) >= n:
            break
    return _Peeked(head, users)


def _write_csv(path: Path, columns: list[str], users: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for user in users:
            writer.writerow([_csv_cell(cell_value(user.get(c))) for c in columns])
            count += 1
    return count


def _csv_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return csv_safe("" if value is None else value)


def _write_xlsx(path: Path, columns: list[str], users: Iterable[dict[str, Any]]) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    peeked = users if isinstance(users, Iterator) else iter(users)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Users")
    head: list[dict[str, Any]] = []
    for user in peeked:  # widths from up to 500 rows, read before any row is written
        head.append(user)
        if len(head) >= 500:
            break
    for i, col in enumerate(columns, start=1):
        longest = max([len(col)] + [len(str(cell_value(u.get(col)) or "")) for u in head])
        ws.column_dimensions[get_column_letter(i)].width = min(MAX_WIDTH, longest + 2)
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for col in columns:
        cell = WriteOnlyCell(ws, value=col)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    count = 0
    for user in _chain(head, peeked):
        row = []
        for col in columns:
            value = cell_value(user.get(col))
            cell = WriteOnlyCell(ws, value=value)
            row.append(make_xlsx_text_safe(cell) if isinstance(value, str) else cell)
        ws.append(row)
        count += 1
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{count + 1}"
    wb.save(path)
    return count


def _chain(head: list[dict[str, Any]], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from head
    yield from rest
