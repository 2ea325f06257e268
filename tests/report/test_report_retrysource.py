"""Reading the Failed and Invalid sheets back for `retry`, after a user edited them with a spreadsheet program."""
from __future__ import annotations

from dataclasses import replace

import openpyxl
import pytest

from provisioning.errors import RunFolderError, UsageError
from provisioning.models import Issue, Severity
from provisioning.report.model import ReportRow
from provisioning.report.workbook import write_results_workbook
from provisioning.roster.reader import load_roster
from provisioning.run.retrysource import (
    RETRY_SOURCE_NAME,
    RetryRow,
    exclude_created,
    read_retry_link,
    read_retry_source,
    require_rows,
    write_retry_link,
    write_retry_roster,
)
from provisioning.validation.engine import validate_roster
from report_helpers import calamine_values, sample_summary

HEADERS = ("givenName", "surname", "userPrincipalName", "password", "usageLocation", "Status")


def _results(tmp_path):
    rows = [
        ReportRow(row=2, status="created", upn="ann@contoso.example", object_id="oid-a",
                  cells=("Ann", "Lee", "ann@contoso.example", "", "GB", "new")),
        ReportRow(row=3, status="failed", upn="bo@contoso.example", error_code="Request_BadRequest",
                  message="bad", attempts=2, cells=("Bo", "Ek", "bo@contoso.example", "Pw!12345678xyz", "SE", "new")),
        ReportRow(row=4, status="invalid", cells=("Cy", "Do", "cy@@contoso.example", "", "XX", "=1+1"),
                  issues=(Issue(4, "usageLocation", "usage-location", Severity.ERROR, "not ISO"),)),
        ReportRow(row=5, status="invalid", cells=("Di", "Ox", "di@contoso.example", "", "ZZ", "new"),
                  issues=(Issue(5, "usageLocation", "usage-location", Severity.ERROR, "not ISO"),)),
    ]
    run = tmp_path / "run1"
    run.mkdir()
    path = run / "results.xlsx"
    write_results_workbook(path, headers=HEADERS, rows=rows, summary=sample_summary())
    return run, path


def test_reads_roster_columns_and_links_rows(tmp_path):
    run, path = _results(tmp_path)
    source = read_retry_source(run)  # a run folder or the workbook itself
    assert source.results_path == path and source.earlier_run == run
    assert source.headers == HEADERS  # the roster's own "Status" column survives; the result one is dropped
    assert [(r.sheet, r.sheet_row, r.earlier_row) for r in source.rows] == [
        ("Failed", 2, 3), ("Invalid", 2, 4), ("Invalid", 3, 5)]
    # the password was never written, so it comes back empty; formula-looking text comes back as it was
    assert source.rows[0].cells == ("Bo", "Ek", "bo@contoso.example", "", "SE", "new")
    assert source.rows[1].cells == ("Cy", "Do", "cy@@contoso.example", "", "XX", "=1+1")
    assert read_retry_source(path).rows == source.rows


def test_user_edits_are_read_and_written_as_a_loadable_roster(tmp_path):
    run, path = _results(tmp_path)
    wb = openpyxl.load_workbook(path)
    invalid = wb["Invalid"]
    invalid["G2"] = "cy@contoso.example"  # fix the UPN
    invalid["I2"] = "FR"
    invalid["J2"] = 7  # typed as a number in Excel
    invalid["C2"] = "user scribbled here"  # an ignored result column (Error code)
    invalid.delete_rows(3)  # the user decides not to retry row 5
    failed = wb["Failed"]
    failed["S1"] = "Note"  # a column added far to the right, after the result columns
    failed["S2"] = "call HR"
    failed["E4"] = "Eve"  # a row the user added by hand, with no Roster row
    failed["F4"] = "Ng"
    failed["G4"] = "eve@contoso.example"
    failed["I4"] = "GB"
    wb.save(path)

    source = read_retry_source(path)
    assert source.headers == HEADERS + ("Note",)
    assert [(r.earlier_row, r.cells) for r in source.rows] == [
        (3, ("Bo", "Ek", "bo@contoso.example", "", "SE", "new", "call HR")),
        (None, ("Eve", "Ng", "eve@contoso.example", "", "GB", "", "")),
        (4, ("Cy", "Do", "cy@contoso.example", "", "FR", "7", "")),
    ]

    out = tmp_path / "run2"
    out.mkdir()
    mapping = write_retry_roster(out / "retry-roster.xlsx", source.headers, source.rows)
    assert {n: r.earlier_row for n, r in mapping.items()} == {2: 3, 3: None, 4: 4}
    # a password the user typed into the sheet lands in this file: only its owner may read it
    assert ((out / "retry-roster.xlsx").stat().st_mode & 0o777) == 0o600
    roster = load_roster(out / "retry-roster.xlsx")
    assert roster.headers == HEADERS + ("Note",)
    assert [(r.row, r.cells) for r in roster.rows] == [(n, r.cells) for n, r in mapping.items()]
    assert calamine_values(out / "retry-roster.xlsx", "Roster")[0] == list(HEADERS + ("Note",))
    validation = validate_roster(roster, default_domain="contoso.example")
    assert [r.row for r in validation.rows] == [2, 3, 4]

    link = write_retry_link(out, source, mapping)
    assert link.name == RETRY_SOURCE_NAME
    data = read_retry_link(out)
    assert data["retried_from"] == str(run.resolve())
    assert data["rows"]["4"] == {"earlier_row": 4, "sheet": "Invalid", "sheet_row": 2}
    assert read_retry_link(run) is None


def test_rows_already_created_are_excluded(tmp_path):
    run, _ = _results(tmp_path)
    source = read_retry_source(run)
    pasted = RetryRow("Failed", 9, None, ("Di", "Ox", "di@contoso.example", "", "SE", ""))
    source = replace(source, rows=(*source.rows, pasted))
    keep, dropped = exclude_created(source, created_rows={3}, created_upns={"DI@contoso.example"})
    # roster row 5 holds the UPN of a created user but is another person: validation refuses it as a duplicate
    assert [r.earlier_row for r in keep] == [4, 5]
    assert [(e.row.earlier_row, e.reason) for e in dropped] == [
        (3, "roster row 3 was already created by the earlier run"),
        (None, "di@contoso.example was already created by the earlier run")]
    with pytest.raises(UsageError, match="nothing to retry"):
        require_rows(source, ())


def test_not_a_results_workbook(tmp_path):
    with pytest.raises(RunFolderError, match="no results.xlsx"):
        read_retry_source(tmp_path)
    other = tmp_path / "other.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "People"
    wb.save(other)
    with pytest.raises(RunFolderError) as info:
        read_retry_source(other)
    assert str(info.value) == (f"{other} has no sheet Failed or Invalid (found: People); retry reads the rows "
                               "from those two sheets")


def test_texts_that_look_like_excel_errors_or_missing_values_survive_the_round_trip(tmp_path):
    """A surname "Null", a jobTitle "N/A" and a typed "#N/A" are text: written as text, read back as typed."""
    rows = [ReportRow(row=2, status="invalid", cells=("Nan", "Null", "#N/A", "", "NA", "N/A"),
                      issues=(Issue(2, "usageLocation", "usage-location", Severity.ERROR, "not ISO"),))]
    run = tmp_path / "run1"
    run.mkdir()
    path = run / "results.xlsx"
    write_results_workbook(path, headers=HEADERS, rows=rows, summary=sample_summary())
    cell = openpyxl.load_workbook(path)["Invalid"]["G2"]
    assert (cell.value, cell.data_type) == ("#N/A", "s")  # not an error cell
    assert read_retry_source(run).rows[0].cells == ("Nan", "Null", "#N/A", "", "NA", "N/A")


def test_retry_roster_keeps_roster_row_numbers_and_error_values(tmp_path):
    """Each row is written on its roster row, so the roster reader numbers it as the original file did; a cell
    that held an Excel error value in the sheet is written as that error and refused again by the reader."""
    run, path = _results(tmp_path)
    wb = openpyxl.load_workbook(path)
    wb["Invalid"]["I2"] = "#N/A"  # typed into the sheet: openpyxl (like Excel) stores an error value
    wb.save(path)
    source = read_retry_source(path)
    assert [(r.earlier_row, [(i, pr.error) for i, pr in r.problems]) for r in source.rows] == [
        (3, []), (4, [(4, "#N/A")]), (5, [])]
    out = tmp_path / "retry-roster.xlsx"
    mapping = write_retry_roster(out, source.headers, source.rows, [3, 4, 5])
    assert sorted(mapping) == [3, 4, 5]
    roster = load_roster(out)
    assert roster.row_numbers == (3, 4, 5)
    assert [(i.row, i.column, i.code) for i in roster.warnings if i.row] == [(4, "usageLocation", "excel-error")]
    write_retry_roster(out, source.headers, source.rows[::2], [3, 40])
    assert load_roster(out).row_numbers == (3, 40)
    with pytest.raises(ValueError):
        write_retry_roster(out, source.headers, source.rows[:2], [5, 4])
