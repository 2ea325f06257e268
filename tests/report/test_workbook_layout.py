"""results.xlsx as an administrator reads it: Failed and Invalid lead with Row, User principal name, Error code and
"Why / what to do", Row and UPN frozen, a note on each highlighted cell, wrapped messages, print setup, status
colours, the tenant by name on the Summary; and retry from such a workbook after editing a cell."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import openpyxl

from provisioning.exitcodes import ExitStatus

ROSTER = ("givenName,surname,userPrincipalName,usageLocation\n"
          "Ann,Lee,ann.lee@contoso.com,US\n"
          "Bo,Ek,bo.ek@contoso.com,XX\n")


def _results(run: Path) -> dict[str, dict[str, str]]:
    with open(run / "results.csv", newline="", encoding="utf-8-sig") as fh:
        return {r["row"]: r for r in csv.DictReader(fh)}


def test_invalid_sheet_layout_notes_print_setup_and_summary(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    (tmp_path / "staff.csv").write_text(ROSTER, encoding="utf-8")
    code, out, err = cli(sandbox, "run", "staff.csv", "--out", "r1", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    wb = openpyxl.load_workbook(tmp_path / "r1" / "results.xlsx")
    ws = wb["Invalid"]
    assert [c.value for c in ws[1]] == ["Row", "User principal name", "Error code", "Why / what to do", "givenName",
                                        "surname", "userPrincipalName", "usageLocation", "Status", "Request id",
                                        "Attempts"]
    why = "usageLocation 'XX': not a two-letter ISO 3166 country code; use e.g. US, GB, DE"
    assert [c.value for c in ws[2]][:9] == [3, "bo.ek@contoso.com", "usage-location-invalid", why, "Bo", "Ek",
                                            "bo.ek@contoso.com", "XX", "invalid"]
    assert ws["D2"].value == why
    assert ws.freeze_panes == "C2"  # Row and User principal name stay in view
    assert ws["H2"].fill.fill_type == "solid" and ws["H2"].comment is not None
    assert ws["H2"].comment.text == why
    assert ws["D2"].alignment.wrap_text and ws.column_dimensions["D"].width == 60
    assert ws["A1"].comment is not None and "retry ignores this column" in ws["A1"].comment.text
    for sheet in wb.worksheets:
        assert sheet.page_setup.orientation == "landscape", sheet.title
        assert (sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight) == (1, 0), sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        assert sheet.print_title_rows == "$1:$1", sheet.title
    rules = {str(r.sqref): [rule.formula[0] for rule in r.rules] for r in ws.conditional_formatting}
    assert rules["I2"][:2] == ['ISNUMBER(SEARCH("follow-up",I2))', 'ISNUMBER(SEARCH("fail",I2))']
    created = wb["Created"]
    assert created.freeze_panes == "D2"
    assert 'ISNUMBER(SEARCH("create",B2))' in next(iter(
        [rule.formula[0] for rule in r.rules] for r in created.conditional_formatting))

    summary = wb["Summary"]
    items = {r[0].value: r[1] for r in summary.iter_rows() if r[0].value}
    assert items["Tenant name"].value == "Contoso (sandbox)"
    assert items["Default domain"].value == "contoso.com"
    assert items["Passwords"].alignment.wrap_text  # long texts wrap inside column B: none runs under the chart
    chart = summary._charts[0]
    assert chart.anchor._from.col == 3  # column D, right of the wrapped texts
    assert chart.dataLabels.showVal


def test_retry_from_a_workbook_in_the_new_layout_after_editing_a_cell(sandbox: Any, cli: Any,
                                                                      tmp_path: Path) -> None:
    (tmp_path / "staff.csv").write_text(ROSTER, encoding="utf-8")
    code, out, err = cli(sandbox, "run", "staff.csv", "--out", "r1", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    book = tmp_path / "r1" / "results.xlsx"
    wb = openpyxl.load_workbook(book)
    ws = wb["Invalid"]
    assert ws["H1"].value == "usageLocation"
    ws["H2"] = "SE"  # the highlighted cell, corrected
    ws["B2"] = "scribbled@contoso.com"  # the run's own columns are never read back
    wb.save(book)
    code, out, err = cli(sandbox, "retry", book, "--out", "r2", "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert {n: (r["status"], r["userPrincipalName"]) for n, r in _results(tmp_path / "r2").items()} == {
        "3": ("created", "bo.ek@contoso.com")}
