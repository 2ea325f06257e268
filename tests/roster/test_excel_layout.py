"""Only the people in the workbook, as typed: hidden sheets, tables' totals rows, hidden and filtered rows, number
formats, dates and title rows above the header.

Files: tests/data/excel/ (made by its generate.py, committed), read through the real CLI (``validate``'s exit status,
its issues CSV and summary) and ``run`` against a sandbox over real HTTPS.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

import provision
from provisioning.codes import RULES
from provisioning.exitcodes import ExitStatus
from provisioning.roster.reader import load_roster

DATA = Path(__file__).resolve().parents[1] / "data" / "excel"
PROVISIONED = "it is provisioned like any other row: delete it if that person should not get an account"


def validate(tmp_path: Path, roster: Path, *options: Any) -> tuple[int, list[tuple[str, ...]], str, str]:
    """``validate`` through the CLI: (exit status, issues CSV rows without the file column, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    issues = tmp_path / "issues.csv"
    code = provision.main(["validate", str(roster), "--out", str(issues), *map(str, options)], stdout=out,
                          stderr=err)
    rows: list[tuple[str, ...]] = []
    if issues.exists():
        with issues.open(encoding="utf-8-sig", newline="") as fh:
            rows = [tuple(r[1:]) for r in list(csv.reader(fh))[1:]]
    return code, rows, out.getvalue(), err.getvalue()


def test_hidden_sheets_are_skipped_and_named_the_visible_sheet_is_read(tmp_path: Path) -> None:
    code, issues, _, err = validate(tmp_path, DATA / "hidden-first-sheet.xlsx")
    assert code == ExitStatus.OK, err
    assert issues == [("", "", "warning", "hidden-sheet-skipped",
                       "read the sheet 'People'; the hidden sheets 'Leavers', 'Lookup' before it were not read (a "
                       "hidden sheet is read only when named with --sheet)")]
    assert "[sheet People]: 2 rows" in err
    roster = load_roster(DATA / "hidden-first-sheet.xlsx")
    assert [r.cells[2] for r in roster.rows] == ["ann.lee@contoso.com", "bo.chen@contoso.com"]
    # named, a hidden sheet is read, with no note
    leavers = load_roster(DATA / "hidden-first-sheet.xlsx", sheet="Leavers")
    assert [r.cells[2] for r in leavers.rows] == ["old.timer@contoso.com", "gone.away@contoso.com"]
    assert leavers.warnings == ()


def test_a_workbook_whose_only_header_sheet_is_hidden_is_refused_with_the_way_to_read_it(tmp_path: Path) -> None:
    code, _, out, err = validate(tmp_path, DATA / "only-hidden-sheet.xlsx")
    assert code == ExitStatus.USAGE
    assert err == (f"error: {DATA / 'only-hidden-sheet.xlsx'}: no visible sheet has a header row with known column "
                   f"names; the hidden sheet 'Data' has one: if it holds the people to provision, give --sheet "
                   f"'Data' (or unhide it in Excel)\n")
    code, _, _, err = validate(tmp_path, DATA / "only-hidden-sheet.xlsx", "--sheet", "Data")
    assert code == ExitStatus.OK, err


def test_totals_row_is_refused_and_hidden_rows_are_reported_one_by_one(tmp_path: Path) -> None:
    code, issues, out, err = validate(tmp_path, DATA / "table-totals.xlsx")
    assert code == ExitStatus.ROWS_FAILED
    assert issues == [
        ("3", "", "warning", "hidden-row", f"row 3 is hidden in Excel (filtered out); {PROVISIONED}"),
        ("5", "", "error", "totals-row", "row 5 is the totals row of table 'NewStarters', not a person; it is not "
                                         "sent"),
        ("7", "", "warning", "hidden-row", f"row 7 is hidden in Excel; {PROVISIONED}"),
    ]
    assert err.splitlines()[0] == (
        f"{DATA / 'table-totals.xlsx'} [sheet Staff]: 5 rows (xlsx, header on row 1); 4 valid, 1 with errors; "
        f"1 error, 2 warnings; 2 rows hidden in Excel (filtered out or hidden), provisioned like the others "
        f"(hidden-row warnings)")
    assert RULES["totals-row"].severity.value == "error" and RULES["hidden-row"].severity.value == "warning"


def test_zero_padded_number_formats_and_dates_read_as_excel_shows_them() -> None:
    roster = load_roster(DATA / "number-formats.xlsx")
    assert [r.cells[3:] for r in roster.rows] == [
        ("000777", "02134", "2024-03-01T09:30:00Z"),  # 000000, Zip Code; a date-time hire date
        ("0001234567", "02134-0000", "2024-04-02"),  # 0000000000, Zip Code + 4; a date
        ("42", "98052", "2024-05-03"),  # format 0 pads nothing; a date-time at midnight is a date
    ]


def test_sheet_without_cell_references_reads_the_same_and_reports_its_hidden_row(tmp_path: Path) -> None:
    code, issues, _, err = validate(tmp_path, DATA / "number-formats-no-refs.xlsx")
    assert code == ExitStatus.OK, err
    assert issues == [("3", "", "warning", "hidden-row", f"row 3 is hidden in Excel; {PROVISIONED}")]
    roster = load_roster(DATA / "number-formats-no-refs.xlsx")
    assert [r.cells[3:5] for r in roster.rows] == [("000777", "02134"), ("0001234567", "02134-0000"),
                                                    ("42", "98052")]


@pytest.mark.parametrize(("code", "value", "shown"), [
    ("000000", "777", "000777"), ("00000", "2134", "02134"), ("00000-0000", "21340000", "02134-0000"),
    ("00000-0000", "2134", "00000-2134"), ("000-00-0000", "12345678", "012-34-5678"),
    ("00000", "123456", "123456"),  # more digits than places: all shown, as Excel does
    ("00000", "-12", "-00012"), ("00000", "12.5", "00013"), ('"ID"0000', "42", "ID0042"), ("0\\-00", "5", "0-05"),
    ("00000;-00000", "-7", None),  # a section of its own for negative numbers: calamine's text stays
    ("0", "7", None), ("0.00", "7", None), ("#,##0", "7", None), ("[<=99999]00000;00000-0000", "7", None),
    ("yyyy-mm-dd", "7", None), ("000000", "x", None),
])
def test_padded_number_formats(code: str, value: str, shown: str | None) -> None:
    from provisioning.roster.excelscan import padded_format, padded_text

    fmt = padded_format(code)
    assert (padded_text(value, fmt) if fmt is not None else None) == shown


@pytest.mark.slow
def test_padding_is_found_across_the_scan_pieces_of_a_long_sheet(tmp_path: Path) -> None:
    """20,000 rows (several ~1 MB pieces of XML): every padded cell and hidden row is found wherever it falls."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Users")
    ws.append(["givenName", "surname", "userPrincipalName", "employeeId"])
    n = 20_000
    for i in range(n):
        ws.append(["Ann", f"Lee{i}", f"ann{i}@contoso.com", i])
    wb.save(tmp_path / "big.xlsx")
    from openpyxl import load_workbook

    book = load_workbook(tmp_path / "big.xlsx")
    sheet = book["Users"]
    for row in sheet.iter_rows(min_row=2, min_col=4, max_col=4):
        row[0].number_format = "000000"
    for r in range(500, n, 4_999):
        sheet.row_dimensions[r].hidden = True
    book.save(tmp_path / "big.xlsx")
    roster = load_roster(tmp_path / "big.xlsx")
    assert list(roster.columns[3]) == [f"{i:06d}" for i in range(n)]
    assert [(w.row, w.code) for w in roster.warnings] == [(r, "hidden-row") for r in range(500, n, 4_999)]


def test_title_rows_above_the_header_are_skipped_with_a_note(tmp_path: Path) -> None:
    code, issues, _, err = validate(tmp_path, DATA / "title-rows.xlsx")
    assert code == ExitStatus.OK, err
    assert issues == [("", "", "warning", "header-row-found",
                       "the column names are on row 4; rows 1-2 above them are taken as titles and not read (if the "
                       "column names are on another row, give --header-row N)")]
    assert "2 rows (xlsx, header on row 4); 2 valid" in err
    code, issues, _, err = validate(tmp_path, DATA / "title-rows.csv")  # a CSV's delimiter is found on the header
    assert code == ExitStatus.OK, err
    assert [i[3] for i in issues] == ["header-row-found"] and "2 rows (csv, header on row 3); 2 valid" in err
    roster = load_roster(DATA / "title-rows.csv")
    assert roster.headers == ("givenName", "surname", "userPrincipalName") and roster.delimiter == ";"


def test_header_row_option_picks_the_row_and_a_title_over_unknown_headings_names_it(tmp_path: Path) -> None:
    code, issues, _, err = validate(tmp_path, DATA / "title-rows.xlsx", "--header-row", "4")
    assert (code, issues) == (ExitStatus.OK, []) and "header on row 4" in err
    roster = DATA / "title-unknown-headers.csv"
    code, _, _, err = validate(tmp_path, roster)
    assert code == ExitStatus.USAGE
    assert err == (f"error: {roster}: row 1 looks like a title, not column names (only 1 cell filled); the column "
                   f"names seem to be on row 3: delete the rows above them, or give --header-row 3\n")
    code, issues, _, err = validate(tmp_path, roster, "--header-row", "3", "--mapping", DATA / "hr-mapping.json")
    assert (code, issues) == (ExitStatus.OK, []) and "1 row (csv, header on row 3); 1 valid" in err
    code, _, _, err = validate(tmp_path, DATA / "title-rows.xlsx", "--header-row", "40")
    assert code == ExitStatus.USAGE
    assert err == (f"error: {DATA / 'title-rows.xlsx'}: --header-row 40: that row is past the last row (6); give "
                   f"the row number of the column names as Excel or the editor shows it\n")
    # an Excel HR export under a title: the mapping's headings find both the sheet and the header row
    got = load_roster(DATA / "title-unknown-headers.xlsx", mapping=DATA / "hr-mapping.json")
    assert (got.header_row, [r.cells for r in got.rows]) == (3, [("Ann", "Lee", "ann.lee@contoso.com")])


def _tenant(sb: Any) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """The sandbox's UPNs, and employeeId/postalCode/employeeHireDate of each user (GETs over HTTPS)."""
    from provisioning.api import make_client
    from provisioning.settings import load_settings

    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sb.env())
    with make_client(settings) as client:
        upns = {u["userPrincipalName"] for u in client.iter_users(select=("id", "userPrincipalName"))}
        held = {upn: client.request("GET", f"/users/{upn}?$select=employeeId,postalCode,employeeHireDate").json()
                for upn in sorted(upns)}
    return upns, held


def test_run_sends_no_totals_row_and_warns_of_hidden_rows(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    code, out, err = cli(sandbox, "run", DATA / "table-totals.xlsx", "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, err
    counts, hidden = out.splitlines()[:2]
    assert counts.startswith("created 4, skipped 0, failed 0, invalid 1 (")  # (users/s)
    assert hidden == ("2 rows hidden in Excel (filtered out or hidden) were provisioned like the others (see the "
                      "Warnings column of results.xlsx)")
    assert json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))["hidden_rows"] == 2
    with open(tmp_path / "run" / "results.csv", encoding="utf-8-sig", newline="") as fh:
        res = {int(r["row"]): r for r in csv.DictReader(fh)}
    assert {r: v["status"] for r, v in res.items()} == {2: "created", 3: "created", 4: "created", 5: "invalid",
                                                        7: "created"}
    assert res[5]["errorCode"] == "totals-row"
    from openpyxl import load_workbook

    created = load_workbook(tmp_path / "run" / "results.xlsx")["Created"]
    warnings = {r[0]: r[-1] for r in created.iter_rows(min_row=2, values_only=True)}
    assert warnings == {2: None, 3: f"row 3 is hidden in Excel (filtered out); {PROVISIONED}", 4: None,
                        7: f"row 7 is hidden in Excel; {PROVISIONED}"}
    upns, _ = _tenant(sandbox)
    assert upns == {"ann.lee@contoso.com", "bo.chen@contoso.com", "cy.dunn@contoso.com", "di.eng@contoso.com"}
    assert sandbox.stats()["users_created"] == 4


def test_run_sends_padded_numbers_and_iso_dates(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    code, out, err = cli(sandbox, "run", DATA / "number-formats.xlsx", "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, err
    upns, held = _tenant(sandbox)
    assert upns == {"ann.lee@contoso.com", "bo.chen@contoso.com", "cy.dunn@contoso.com"}
    assert [(h.get("employeeId"), h.get("postalCode"), h.get("employeeHireDate")) for h in held.values()] == [
        ("000777", "02134", "2024-03-01T09:30:00Z"), ("0001234567", "02134-0000", "2024-04-02T00:00:00Z"),
        ("42", "98052", "2024-05-03T00:00:00Z")]


def test_run_with_header_row_keeps_it_for_the_report(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    """The run's journal keeps --header-row: results.xlsx re-reads the roster with it for the Invalid sheet."""
    from openpyxl import load_workbook

    roster = tmp_path / "hr.csv"  # a title that starts with a known heading: only --header-row finds the header
    roster.write_text("Department,onboarding March 2024\n\ngivenName,surname,userPrincipalName\n"
                      "Ann,Lee,ann.lee@contoso.com\nBad,Row,not-an-upn\n", encoding="utf-8")
    code, out, err = cli(sandbox, "run", roster, "--header-row", "3", "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, err
    sheet = load_workbook(tmp_path / "run" / "results.xlsx")["Invalid"]
    invalid = [tuple(r) for r in sheet.iter_rows(values_only=True)]
    assert (invalid[0][4:8], invalid[0][0]) == (("givenName", "surname", "userPrincipalName", "Status"), "Row")
    assert (invalid[1][4:8], invalid[1][0]) == (("Bad", "Row", "not-an-upn", "invalid"), 5)
    upns, _ = _tenant(sandbox)
    assert upns == {"ann.lee@contoso.com"}


def test_typed_hire_dates_are_sent_as_utc_date_time_offsets(tmp_path: Path) -> None:
    """Whatever the date-invalid rule accepts goes to Graph as a DateTimeOffset (a bare time is taken as UTC)."""
    from provisioning.validation.engine import validate_roster

    roster = tmp_path / "dates.csv"
    roster.write_text("givenName,surname,userPrincipalName,employeeHireDate\n"
                      "Ann,Lee,ann@contoso.com,2024-03-01 09:30\nBo,Chen,bo@contoso.com,2024-03-01T09:30:00+02:00\n"
                      "Cy,Dunn,cy@contoso.com,2024-04-02\nDi,Eng,di@contoso.com,2024-05-03T08:00:00Z\n",
                      encoding="utf-8")
    rows = validate_roster(load_roster(roster)).rows
    assert not any(r.has_errors for r in rows)
    assert [r.graph_body()["employeeHireDate"] for r in rows] == [
        "2024-03-01T09:30:00Z", "2024-03-01T07:30:00Z", "2024-04-02T00:00:00Z", "2024-05-03T08:00:00Z"]
