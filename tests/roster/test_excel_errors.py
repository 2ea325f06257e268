"""Excel error values and formulas without a saved value (which calamine reads as empty cells) exclude their row.

Files: tests/data/bad/ (made by its generate.py; formulas-errors.xlsx row by row in its ``_formulas_errors``); the
large one is written in tmp_path. ``run`` goes to a sandbox over real HTTPS.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

import provision
from provisioning.codes import RULES
from provisioning.errors import RosterError
from provisioning.exitcodes import ExitStatus
from provisioning.models import Severity
from provisioning.roster.reader import load_roster
from provisioning.validation.engine import check_roster, validate_roster

BAD = Path(__file__).resolve().parents[2] / "tests" / "data" / "bad"
NO_VALUE = ("but no calculated value was saved (the file was written by a program that does not calculate); open "
            "the workbook in Excel, let it calculate and save, or type the value")

#: formulas-errors.xlsx: (Excel row, column as written, code, exact message) of every Excel cell issue
EXPECTED = [
    (2, "jobTitle", "formula-no-value", f"jobTitle: the cell holds the formula =1/0 {NO_VALUE}"),
    (3, "jobTitle", "formula-no-value", f"jobTitle: the cell holds the formula =NA() {NO_VALUE}"),
    (4, "jobTitle", "excel-error", "jobTitle: the cell shows the Excel error #N/A instead of a value; type the value"),
    (5, "jobTitle", "excel-error",
     "jobTitle: the cell shows the Excel error #DIV/0! instead of a value; type the value"),
    (6, "jobTitle", "excel-error",
     "jobTitle: the cell shows the Excel error #DIV/0! (its formula failed); fix the formula or type the value"),
    (9, "Notes", "excel-error-ignored",
     "Notes: the cell shows the Excel error #REF!; the column is not sent to Entra ID, so the row goes ahead (the "
     "report shows #REF!)"),
    (10, "jobTitle", "excel-error",
     "jobTitle: the cell shows the Excel error #N/A instead of a value; type the value"),
    (11, "jobTitle", "formula-no-value", f"jobTitle: the cell holds the formula =A1&\"x\" {NO_VALUE}"),
]
EXCEL_CODES = {"excel-error", "formula-no-value", "excel-error-ignored"}


def run_cli(*argv: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return provision.main([str(a) for a in argv], stdout=out, stderr=err), out.getvalue(), err.getvalue()


def excel_issues(issues) -> list[tuple[int, str, str, str]]:
    return [(i.row, i.column, i.code, i.message) for i in issues if i.code in EXCEL_CODES]


def test_each_problem_cell_gives_its_exact_issue_row_and_column():
    roster = load_roster(BAD / "formulas-errors.xlsx")
    assert excel_issues(roster.warnings) == EXPECTED
    assert all(i.severity is RULES[i.code].severity for i in roster.warnings)
    assert RULES["excel-error"].severity is RULES["formula-no-value"].severity is Severity.ERROR
    assert RULES["excel-error-ignored"].severity is Severity.WARNING
    # rows 10 and 11 hold nothing but an error / an uncalculated formula: kept, not dropped as blank
    assert roster.row_numbers == tuple(range(2, 12))
    job = dict(zip(roster.row_numbers, roster.columns[roster.headers.index("jobTitle")], strict=True))
    # an error cell reads as what Excel shows; a formula with a saved value reads as that value
    assert (job[4], job[5], job[6], job[7], job[8], job[10]) == ("#N/A", "#DIV/0!", "#DIV/0!", "Engineer", "", "#N/A")
    assert job[2] == job[3] == job[11] == ""


def test_validation_excludes_exactly_the_error_rows():
    roster = load_roster(BAD / "formulas-errors.xlsx")
    checked = check_roster(roster)
    assert excel_issues(checked.issues) == EXPECTED
    assert {roster.row_numbers[i] for i in checked.error_rows} == {2, 3, 4, 5, 6, 10, 11}
    v = validate_roster(roster)
    assert [r.row for r in v.rows if not r.has_errors] == [7, 8, 9]
    fay = next(r for r in v.rows if r.row == 7)
    assert fay.fields["jobTitle"] == "Engineer"


def test_validate_exits_1_and_prints_each_issue(tmp_path):
    code, out, err = run_cli("validate", BAD / "formulas-errors.xlsx", "--out", tmp_path / "i.csv")
    assert code == ExitStatus.ROWS_FAILED
    assert "10 rows (xlsx, header on row 1); 3 valid, 7 with errors" in err
    lines = out.splitlines()
    for row, _column, code_, message in EXPECTED:
        assert any(ln.startswith(f"{row} ") and code_ in ln and ln.endswith(message) for ln in lines), message
    assert "formula-no-value" in (tmp_path / "i.csv").read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("name,message", [
    ("header-error.xlsx", "the header cell D1 shows the Excel error #REF!; type the column name there and save the "
                          "workbook"),
    ("header-formula.xlsx", "the header cell D1 holds the formula =\"job\"&\"Title\" but no calculated value was "
                            "saved; open the workbook in Excel, let it calculate and save, or type the column name"),
])
def test_a_problem_in_the_header_row_is_a_roster_error(name, message):
    with pytest.raises(RosterError) as info:
        load_roster(BAD / name)
    assert info.value.detail == message
    code, out, err = run_cli("validate", BAD / name)
    assert (code, out, err) == (2, "", f"error: {BAD / name}: {message}\n")


def test_row_and_column_numbers_count_from_a1_when_the_table_starts_lower():
    roster = load_roster(BAD / "offset-table.xlsx")
    assert (roster.header_row, roster.row_numbers) == (3, (4, 5))
    assert excel_issues(roster.warnings) == [
        (5, "jobTitle", "excel-error", "jobTitle: the cell shows the Excel error #NAME? instead of a value; type "
                                       "the value")]


def test_cells_without_references_are_placed_by_counting():
    roster = load_roster(BAD / "no-cell-refs.xlsx")
    assert excel_issues(roster.warnings) == [
        (2, "jobTitle", "formula-no-value", f"jobTitle: the cell holds the formula =1/0 {NO_VALUE}"),
        (3, "jobTitle", "excel-error", "jobTitle: the cell shows the Excel error #VALUE! instead of a value; type "
                                       "the value")]


def test_a_password_formula_is_never_quoted_and_an_unsent_column_only_warns(tmp_path):
    wb = Workbook()
    wb.active.append(["givenName", "surname", "userPrincipalName", "Initial password", "Notes"])
    wb.active.append(["Ann", "Lee", "ann@contoso.com", "=Secr3t!pass"])  # typed into a non-calculating program
    wb.active.append(["Bo", "Ek", "bo@contoso.com", None, "=1/0"])
    wb.save(tmp_path / "pw.xlsx")
    roster = load_roster(tmp_path / "pw.xlsx")
    assert excel_issues(roster.warnings) == [
        (2, "Initial password", "formula-no-value", f"Initial password: the cell holds a formula {NO_VALUE}"),
        (3, "Notes", "excel-error-ignored", "Notes: the cell holds the formula =1/0 but no calculated value was "
                                            "saved; the column is not sent to Entra ID, so the row goes ahead (the "
                                            "report shows the cell empty)")]
    checked = check_roster(roster)
    assert "Secr3t" not in " ".join(i.message for i in checked.issues)
    assert {roster.row_numbers[i] for i in checked.error_rows} == {2}


def test_problems_far_down_a_large_sheet_are_found(tmp_path):
    """Thousands of rows: the XML is scanned in ~1 MB pieces; a cell near any piece boundary is still found."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Users")
    ws.append(["employeeId", "givenName", "surname", "userPrincipalName", "jobTitle"])
    n = 30_000
    for i in range(n):
        job = "#N/A" if i % 7_919 == 7_918 else "=1/0" if i == n - 1 else f"Engineer {i}"
        ws.append([f"{i:06d}", "Ann", f"Lee{i}", f"ann{i}@contoso.com", job])
    wb.save(tmp_path / "big.xlsx")
    roster = load_roster(tmp_path / "big.xlsx")
    found = [(i.row, i.code) for i in roster.warnings]
    assert found == [(i + 2, "excel-error") for i in range(7_918, n, 7_919)] + [(n + 1, "formula-no-value")]


def test_cells_read_as_typed_with_no_na_guessing(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["givenName", "surname", "userPrincipalName", "employeeId", "jobTitle", "employeeHireDate", "city"])
    ws.append(["NA", "None", "null@contoso.com", 123.0, 1.5, dt.date(2024, 1, 2), True])
    ws.append(["N/A", "nan", "x@contoso.com", 42, "00123", dt.datetime(2024, 3, 4, 5, 6), False])
    wb.save(tmp_path / "t.xlsx")
    roster = load_roster(tmp_path / "t.xlsx")
    assert [r.cells for r in roster.rows] == [
        ("NA", "None", "null@contoso.com", "123", "1.5", "2024-01-02", "TRUE"),
        # an Excel date-time in employeeHireDate (a DateTimeOffset) reads as ISO 8601 UTC, as Graph takes it
        ("N/A", "nan", "x@contoso.com", "42", "00123", "2024-03-04T05:06:00Z", "FALSE")]


def test_run_creates_only_the_rows_without_excel_errors(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    from provisioning.api import make_client
    from provisioning.settings import load_settings

    code, out, err = cli(sandbox, "run", BAD / "formulas-errors.xlsx", "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, err
    with open(tmp_path / "run" / "results.csv", encoding="utf-8-sig", newline="") as fh:
        res = {int(r["row"]): r for r in csv.DictReader(fh)}
    assert {r: v["status"] for r, v in res.items()} == {
        2: "invalid", 3: "invalid", 4: "invalid", 5: "invalid", 6: "invalid", 7: "created", 8: "created",
        9: "created", 10: "invalid", 11: "invalid"}
    assert res[6]["errorCode"] == "excel-error" and res[2]["errorCode"] == "formula-no-value"
    assert res[10]["errorCode"].split(";")[0] == "excel-error"
    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sandbox.env())
    with make_client(settings) as client:
        upns = {u["userPrincipalName"] for u in client.iter_users(select=("id", "userPrincipalName"))}
        fay = client.request("GET", "/users/fay@contoso.com?$select=jobTitle").json()
        gil = client.request("GET", "/users/gil@contoso.com?$select=jobTitle").json()
    assert upns == {"fay@contoso.com", "gil@contoso.com", "hal@contoso.com"} and sandbox.stats()["users_created"] == 3
    assert fay["jobTitle"] == "Engineer" and not gil.get("jobTitle")
