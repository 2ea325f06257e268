"""results.xlsx begun during the sends (provisioning/report/early.py): the rows settled while the run waits on the
quota are written then, the rest at the end, and the workbook is the one a full write from the journal gives,
cell by cell (values, fills, notes, alignment, widths, heights, panes). A writer that fails during the run leaves
the whole workbook to the end of the session."""
from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from provisioning.exitcodes import ExitStatus
from provisioning.report import early as early_module
from provisioning.report import workbook as workbook_module
from provisioning.report.files import write_results_csv
from provisioning.report.run_workbook import report_rows, write_run_workbook
from provisioning.store.journal import Journal
from tests.followups.conftest import precreate

#: "Badge colour" is no Graph property: an issue of the roster as a whole (row 0)
HEADER = "givenName,surname,displayName,userPrincipalName,usageLocation,groups,Badge colour\n"
ROWS = 30


def _roster(path: Path) -> Path:
    lines = []
    for i in range(ROWS):
        group = "Engineering" if i >= ROWS - 4 else ""  # follow-ups: settled only after the follow-up phase
        usage = "XX" if i == 7 else "GB"  # row 9: invalid
        lines.append(f"Early{i},Row{i},Early{i} Row{i},early{i:02d}@contoso.com,{usage},{group},blue\n")
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


def _cells(path: Path) -> dict[str, Any]:
    """Everything a person sees of each sheet, comparable."""
    wb = load_workbook(path)
    out: dict[str, Any] = {"sheets": wb.sheetnames}
    for ws in wb.worksheets:
        out[ws.title] = {
            "panes": ws.freeze_panes, "filter": ws.auto_filter.ref,
            "widths": {k: d.width for k, d in ws.column_dimensions.items()},
            "heights": {k: d.height for k, d in ws.row_dimensions.items() if d.height},
            "cells": [[(c.value, c.fill.fgColor.rgb if c.fill.fill_type else None,
                        c.comment.text if c.comment else None, c.alignment.horizontal, c.alignment.wrap_text,
                        c.number_format, c.data_type) for c in row] for row in ws.iter_rows()],
        }
    return out


def _run(sandbox_factory: Any, cli: Any, tmp_path: Path) -> tuple[Any, Path, str]:
    sb = sandbox_factory(write_quota=(8, 1.0), latency_ms=(20, 5))  # ~8 writes/s: the sends take seconds
    precreate(sb, "early04@contoso.com", "Early4 Row4")  # row 6: skipped
    run_dir = tmp_path / "run"
    code, out, err = cli(sb, "run", _roster(tmp_path / "early.csv"), "--out", run_dir, "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err  # the invalid row
    return sb, run_dir, (run_dir / "run.log").read_text(encoding="utf-8")


def test_rows_settled_during_the_sends_are_written_then_and_the_workbook_is_the_full_one(
        sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    _, run_dir, log = _run(sandbox_factory, cli, tmp_path)
    found = re.search(r"results\.xlsx: (\d+) rows written during the run, (\d+) at its end", log)
    assert found, log[-2000:]
    during, at_end = int(found[1]), int(found[2])
    assert during + at_end == ROWS
    assert during >= 10  # the rows without follow-ups settle as their creates are answered, seconds before the end
    early = tmp_path / "early.xlsx"
    shutil.copy(run_dir / "results.xlsx", early)
    write_run_workbook(run_dir)  # the whole workbook from the journal, as before the early writer
    assert _cells(early) == _cells(run_dir / "results.xlsx")
    with Journal.open(run_dir) as journal:  # and results.csv is the one a single read of the journal gives
        write_results_csv(tmp_path / "whole.csv", report_rows(journal.snapshot()))
    assert (tmp_path / "whole.csv").read_bytes() == (run_dir / "results.csv").read_bytes()
    sheets = load_workbook(early)
    assert sheets["Invalid"]["A2"].value == 9 and sheets["Skipped"]["A2"].value == 6
    assert sheets["Created"].max_row == 1 + ROWS - 2


def test_a_writer_that_fails_during_the_run_leaves_the_whole_workbook_to_the_end(
        sandbox_factory: Any, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add = workbook_module.ResultsWorkbook.add

    def broken_in_the_background(self: Any, row: Any) -> None:
        if threading.current_thread().name == "early-workbook":
            raise OSError(28, "No space left on device")
        add(self, row)

    monkeypatch.setattr(workbook_module.ResultsWorkbook, "add", broken_in_the_background)
    _, run_dir, log = _run(sandbox_factory, cli, tmp_path)
    assert "results.xlsx could not be written during the run ([Errno 28] No space left on device): it is written " \
           "at the end" in log
    assert "rows written during the run" not in log
    sheets = load_workbook(run_dir / "results.xlsx")
    assert sheets["Created"].max_row == 1 + ROWS - 2 and sheets["Invalid"]["A2"].value == 9


def test_the_snapshot_in_spans_is_the_snapshot_in_one_read(sandbox_factory: Any, cli: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, run_dir, _ = _run(sandbox_factory, cli, tmp_path)
    monkeypatch.setattr(early_module, "SPAN", 7)  # many spans, the last one short
    with Journal.open(run_dir) as journal:
        reader = early_module.EarlyWorkbook(journal, tmp_path).start()
        while reader.added < ROWS:  # every row of a finished run is settled: the thread reads them all
            threading.Event().wait(0.05)
        merged, rows, lines = reader.snapshot()
        whole = journal.snapshot()
    assert merged == whole
    assert list(merged.issues)[0] == 0 and list(merged.issues) == list(whole.issues)  # the roster's own first
    assert rows == report_rows(whole) and sorted(lines) == [r.row for r in rows]


def test_a_session_over_before_the_thread_starts_reads_and_writes_everything_at_its_end(
        sandbox_factory: Any, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, run_dir, _ = _run(sandbox_factory, cli, tmp_path)
    monkeypatch.setattr(early_module, "START_S", 600.0)  # the thread would start in ten minutes
    with Journal.open(run_dir) as journal:
        reader = early_module.EarlyWorkbook(journal, tmp_path).start()
        merged, rows, lines = reader.snapshot()  # stops the waiting thread at once
        assert reader.added == 0 and lines == {}
        assert merged == journal.snapshot() and rows == report_rows(merged)
