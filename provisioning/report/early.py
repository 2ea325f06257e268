"""The reports begun while the sends wait on Graph's quota, so that the end of a session writes only their tail.

A run spends most of its time waiting for Graph's write quota, with the CPU idle; the workbook of a few thousand
rows takes about a second to write, reading the journal and making results.csv a quarter of that.
:class:`EarlyWorkbook` does that work in a background thread meanwhile: it reads the
journal a span of rows at a time (:meth:`provisioning.store.journal.Journal.snapshot` with ``after``/``limit``,
the same read the end of the session makes, so the report is still built from the journal alone) and adds, in
roster order, every row that is *settled*: its state final (:data:`~provisioning.store.journal.FINAL_STATES`)
and none of its follow-ups pending. Nothing in the rest of a session changes a settled row: a create, an update
or a restore is recorded final once, and a pending follow-up is the only thing that still moves. The first row
that is not settled stops it until it looks again. It keeps what it read of the settled rows, their report rows
and their results.csv lines. At the end, :meth:`EarlyWorkbook.snapshot` stops it and reads only the rest of the
journal: with what it kept, that is the snapshot the session would have read at once; :meth:`EarlyWorkbook.finish`
adds the rows after the last one added, then the Summary, and saves. A thread that failed leaves the whole
workbook to be written as before (:meth:`finish` returns False), and the snapshot to be read whole.

The thread loads openpyxl itself (deferred imports of the workbook writer): the sends do not wait for it. It starts
:data:`START_S` after them; a session over sooner writes the whole workbook at its end.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from provisioning.models import Issue
from provisioning.report.files import csv_lines
from provisioning.report.model import ReportRow, ReportSummary
from provisioning.store.folder import RunFolder
from provisioning.store.journal import FINAL_STATES, Journal, RowRecord, Snapshot
from provisioning.store.records import Change, FollowUpRecord, FollowUpState

if TYPE_CHECKING:
    from provisioning.report.workbook import ResultsWorkbook

log = logging.getLogger(__name__)

#: Rows read from the journal at a time, and the seconds between two looks when the next row is not settled.
SPAN, POLL_S = 500, 0.5
#: Seconds the thread waits before it starts (loading openpyxl takes a tenth of a second of CPU): the sends' first
#: second is the write governor's start, when each answer lets the next writes go at once and a busy thread
#: holding the interpreter delays them, and Graph's bucket is still full, so that every delay wastes its refill.
START_S = 1.0


class EarlyWorkbook:
    """The run folder's ``results.xlsx``, written from the journal while the session runs (see the module)."""

    def __init__(self, journal: Journal, run_dir: Path) -> None:
        self._journal = journal
        self._path = RunFolder(Path(run_dir)).results_xlsx
        self._book: ResultsWorkbook | None = None
        self._last = 0  # the roster row added last
        self.added = 0
        # what was read of the settled rows: nothing in the session changes it any more
        self._records: list[RowRecord] = []
        self._issues: dict[int, Sequence[Issue]] = {}
        self._followups: list[FollowUpRecord] = []
        self._changes: dict[int, Sequence[Change]] = {}
        self._cells: dict[int, tuple[str, ...]] = {}
        self._rows: list[ReportRow] = []
        self._lines: dict[int, str] = {}
        self._done = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="early-workbook", daemon=True)

    def start(self) -> EarlyWorkbook:
        self._thread.start()
        return self

    def _loop(self) -> None:
        if self._done.wait(START_S):
            return  # the session ended first: it writes the whole workbook
        try:
            # deferred: openpyxl is loaded here, in this thread, while the sends go (only third-party modules and
            # the report's own are imported; nothing the main thread imports meanwhile imports these)
            from provisioning.report.run_workbook import report_rows
            from provisioning.report.workbook import ResultsWorkbook  # deferred: openpyxl, in this thread

            headers = self._journal.meta().get("roster_headers")
            self._book = ResultsWorkbook(self._path, headers=tuple(headers or ()))
            while not self._done.is_set():
                snapshot = self._journal.snapshot(after=self._last, limit=SPAN)
                if not snapshot.rows:
                    break  # every row is in
                open_rows = {f.row for f in snapshot.followups if f.state is FollowUpState.PENDING}
                settled = []
                for record, row in zip(snapshot.rows, report_rows(snapshot), strict=True):
                    if record.state not in FINAL_STATES or record.row in open_rows or self._done.is_set():
                        break
                    self._book.add(row)
                    settled.append((record, row))
                    self._last, self.added = record.row, self.added + 1
                self._keep(snapshot, settled)
                if len(settled) < len(snapshot.rows) or self._done.is_set():
                    self._done.wait(POLL_S)  # else the whole span went in: read the next one at once
        except Exception as exc:  # noqa: BLE001 - the end of the session writes the whole workbook instead
            self._failed = exc
            log.warning("results.xlsx could not be written during the run (%s): it is written at the end", exc)

    def _keep(self, snapshot: Snapshot, settled: Sequence[tuple[RowRecord, ReportRow]]) -> None:
        numbers = {record.row for record, _ in settled}
        self._records.extend(record for record, _ in settled)
        self._rows.extend(row for _, row in settled)
        self._lines.update(csv_lines(row for _, row in settled))
        self._issues.update((n, v) for n, v in snapshot.issues.items() if n in numbers)
        self._followups.extend(f for f in snapshot.followups if f.row in numbers)
        self._changes.update((n, v) for n, v in snapshot.changes.items() if n in numbers)
        self._cells.update((n, v) for n, v in snapshot.cells.items() if n in numbers)

    def snapshot(self) -> tuple[Snapshot, list[ReportRow], dict[int, str]]:
        """Stop the thread; the session's snapshot (the settled rows as the thread read them, the rest read now),
        its report rows and the results.csv lines made already. Raises what :meth:`Journal.snapshot` raises."""
        from provisioning.report.run_workbook import report_rows  # deferred: openpyxl (loaded by now)

        self._stop()
        if self._failed is not None or not self._records:
            whole = self._journal.snapshot()
            return whole, report_rows(whole), {}
        rest = self._journal.snapshot(after=self._last)
        issues = dict(sorted({**self._issues, **rest.issues}.items()))  # in row order, as one read gives them
        merged = Snapshot(rest.meta, [*self._records, *rest.rows], issues,
                          [*self._followups, *rest.followups], {**self._changes, **rest.changes}, rest.headers,
                          {**self._cells, **rest.cells})
        return merged, [*self._rows, *report_rows(rest)], self._lines

    def finish(self, rows: Sequence[ReportRow], summary: ReportSummary) -> bool:
        """Stop the thread, add the rows after the last one it added (``rows``: the session's final report rows, in
        roster order), the Summary, and save; False (nothing written) when the thread failed."""
        self._stop()
        if self._failed is not None or self._book is None:
            return False
        for row in rows:
            if row.row > self._last:
                self._book.add(row)
        log.info("results.xlsx: %d rows written during the run, %d at its end", self.added,
                 self._book.total - self.added)
        self._book.save(summary)
        return True

    def abandon(self) -> None:
        """Stop the thread without writing anything (the session writes no report)."""
        self._stop()

    def _stop(self) -> None:
        self._done.set()
        self._thread.join()
