"""results.xlsx: sheets, headers, exact cells, styles, the chart, formula neutralisation and password hygiene.

Every test writes a real workbook and reads it back with openpyxl and with pandas through calamine.
"""
from __future__ import annotations

import zipfile
from datetime import datetime, timezone
from xml.etree import ElementTree

import openpyxl
import pytest
from openpyxl.chart import BarChart

import provisioning.report.workbook as workbook
from provisioning.models import Issue, Severity
from provisioning.report.model import (
    CREATED_COLUMNS,
    LEAD_COLUMNS,
    PASSWORD_GENERATED_NOTE,
    SHEETS,
    SKIPPED_COLUMNS,
    TRAIL_COLUMNS,
    UPDATED_COLUMNS,
    ReportRow,
)
from provisioning.report.workbook import HIGHLIGHT, write_results_workbook
from report_helpers import HEADERS, calamine_values, openpyxl_values, sample_rows, sample_summary

ROSTER_COLUMNS = LEAD_COLUMNS + HEADERS + TRAIL_COLUMNS


@pytest.fixture
def written(tmp_path):
    path = tmp_path / "results.xlsx"
    write_results_workbook(path, headers=HEADERS, rows=iter(sample_rows()), summary=sample_summary())
    return path


def test_sheets_headers_and_styles(written):
    wb = openpyxl.load_workbook(written)
    assert wb.sheetnames == list(SHEETS)
    expected = {"Created": CREATED_COLUMNS, "Updated": UPDATED_COLUMNS, "Skipped": SKIPPED_COLUMNS,
                "Failed": ROSTER_COLUMNS, "Invalid": ROSTER_COLUMNS}
    for name, columns in expected.items():
        ws = wb[name]
        header = [c for c in ws[1]]
        assert tuple(c.value for c in header) == columns
        assert all(c.font.b for c in header)
        assert ws.freeze_panes == ("C2" if name in ("Failed", "Invalid") else "D2")  # Row and UPN stay in view
        last = openpyxl.utils.get_column_letter(len(columns))
        assert ws.auto_filter.ref == f"A1:{last}{ws.max_row}"
        widths = [ws.column_dimensions[openpyxl.utils.get_column_letter(i)].width for i in range(1, len(columns) + 1)]
        assert all(8 <= w <= 60 for w in widths)
    # width follows the longest text of the sample: the UPN column of Created
    assert wb["Created"].column_dimensions["C"].width == len("ann.lee@contoso.example") + 2
    summary = wb["Summary"]
    assert summary["A1"].font.b and summary["B1"].font.b


def test_created_updated_skipped_cells(written):
    created = openpyxl_values(written, "Created")
    assert created[1] == (2, "created", "ann.lee@contoso.example", "Ann Lee", "11111111-1111-4111-8111-111111111111",
                          "groups: added to Staff", PASSWORD_GENERATED_NOTE, "Badge: badge looks short")
    assert openpyxl_values(written, "Updated")[1] == (
        6, "updated", "ed.fu@contoso.example", "Ed Fu", "44444444-4444-4444-8444-444444444444", "jobTitle", None,
        None, None, None)
    assert openpyxl_values(written, "Skipped")[1] == (
        3, "skipped", "bo.ek@contoso.example", "Bo Ek", "22222222-2222-4222-8222-222222222222",
        "already exists in the tenant", None)
    # a second, independent reader sees the same cells
    assert calamine_values(written, "Created")[1] == [
        "2", "created", "ann.lee@contoso.example", "Ann Lee", "11111111-1111-4111-8111-111111111111",
        "groups: added to Staff", PASSWORD_GENERATED_NOTE, "Badge: badge looks short"]
    assert calamine_values(written, "Skipped")[1][4:] == ["22222222-2222-4222-8222-222222222222",
                                                          "already exists in the tenant", ""]


def test_failed_and_invalid_keep_roster_columns_then_results(written):
    failed = openpyxl_values(written, "Failed")
    assert failed[1] == (4, "cy.do@contoso.example", "Request_BadRequest", "=HYPERLINK(\"http://evil\",\"x\")",
                         "Cy", "-Do", "cy.do@contoso.example", None, "US", "003",
                         "failed", "33333333-3333-4333-8333-333333333333", 3)
    invalid = openpyxl_values(written, "Invalid")
    assert invalid[1] == (5, None, "usage-location, formula-cell",
                          "usageLocation: XX is not an ISO 3166 code; badge: looks like a formula",
                          "Di", "Ox", None, None, "XX", "@004", "invalid", None, None)
    assert calamine_values(written, "Failed") == [
        list(ROSTER_COLUMNS),
        ["4", "cy.do@contoso.example", "Request_BadRequest", "=HYPERLINK(\"http://evil\",\"x\")",
         "Cy", "-Do", "cy.do@contoso.example", "", "US", "003", "failed", "33333333-3333-4333-8333-333333333333", "3"]]
    assert calamine_values(written, "Invalid")[1] == [
        "5", "", "usage-location, formula-cell",
        "usageLocation: XX is not an ISO 3166 code; badge: looks like a formula",
        "Di", "Ox", "", "", "XX", "@004", "invalid", "", ""]


def test_offending_cells_are_highlighted(written):
    ws = openpyxl.load_workbook(written)["Invalid"]
    filled = {c.column_letter for c in ws[2] if c.fill.fill_type == "solid"}
    # usageLocation (I) by exact header; "badge" matches "Badge" (J) case-insensitively
    assert filled == {"I", "J"}
    assert ws["I2"].fill.fgColor.rgb == HIGHLIGHT.fgColor.rgb
    assert ws["J2"].quotePrefix and ws["J2"].data_type == "s"  # still neutralised while highlighted
    assert not any(c.fill.fill_type for c in openpyxl.load_workbook(written)["Failed"][2])


def test_summary_sheet_and_chart(written):
    wb = openpyxl.load_workbook(written)
    ws = wb["Summary"]
    items = {r[0]: r[1] for r in ws.iter_rows(values_only=True) if r[0]}
    assert items["Roster"] == "roster.xlsx"
    assert items["Tenant"] == "contoso.example"
    assert items["Mode"] == "live"
    assert items["Started (UTC)"] == datetime(2024, 5, 1, 9, 0, 0)
    assert items["Ended (UTC)"] == datetime(2024, 5, 1, 9, 0, 10)
    assert items["Duration (s)"] == 10 and items["Users per second"] == 0.5
    assert items["Retry failed and invalid rows"] == "python provision.py --sandbox retry runs/r1"
    assert items["Resume if interrupted"] == "python provision.py resume runs/r1"
    assert items["Retried from"] == "(not a retry)"
    assert "passwords.csv" in items["Passwords"] and "never contains them" in items["Passwords"]
    rows = [r for r in ws.iter_rows(values_only=True)]
    outcome_at = rows.index(("Outcome", "Rows"))
    assert rows[outcome_at + 1: outcome_at + 7] == [("created", 1), ("updated", 1), ("skipped", 1), ("failed", 1),
                                                   ("invalid", 1), ("total", 5)]
    codes_at = rows.index(("Error code", "Rows"))
    assert rows[codes_at + 1:] == [("Request_BadRequest", 1), ("formula-cell", 1), ("usage-location", 1)]
    assert ws.cell(outcome_at + 1, 1).font.b

    charts = ws._charts
    assert len(charts) == 1 and isinstance(charts[0], BarChart)
    series = charts[0].series
    assert len(series) == 1
    first, last = outcome_at + 2, outcome_at + 6
    assert series[0].val.numRef.f == f"'Summary'!$B${first}:$B${last}"
    assert series[0].cat.strRef.f == f"'Summary'!$A${first}:$A${last}"
    assert series[0].tx.strRef.f.replace("$", "") == f"'Summary'!B{first - 1}"  # the series is named "Rows"

    frame = calamine_values(written, "Summary")
    assert ["Tenant", "contoso.example"] in frame
    assert ["created", "1"] in frame and ["total", "5"] in frame


def test_aware_datetimes_are_shown_in_utc(tmp_path):
    from datetime import timedelta

    cet = timezone(timedelta(hours=2))
    path = tmp_path / "r.xlsx"
    write_results_workbook(path, headers=HEADERS, rows=[], summary=sample_summary(
        started=datetime(2024, 5, 1, 11, 0, tzinfo=cet), ended=None))
    items = {r[0]: r[1] for r in openpyxl_values(path, "Summary") if r[0]}
    assert items["Started (UTC)"] == datetime(2024, 5, 1, 9, 0)
    assert items["Ended (UTC)"] is None


def test_dry_run_statuses_and_mode(tmp_path):
    path = tmp_path / "dry.xlsx"
    rows = [ReportRow(row=2, status="would create", upn="a@contoso.example", display_name="A", cells=("A",)),
            ReportRow(row=3, status="would skip", upn="b@contoso.example", object_id="oid-b",
                      message="already exists in the tenant", cells=("B",))]
    write_results_workbook(path, headers=("Name",), rows=rows, summary=sample_summary(
        dry_run=True, counts={"would create": 1, "would skip": 1}, error_counts={}))
    assert openpyxl_values(path, "Created")[1][:3] == (2, "would create", "a@contoso.example")
    assert openpyxl_values(path, "Skipped")[1] == (3, "would skip", "b@contoso.example", None, "oid-b",
                                                   "already exists in the tenant", None)
    summary = openpyxl_values(path, "Summary")
    assert ("Mode", "dry run: nothing was changed in the tenant") in summary
    at = summary.index(("Outcome", "Rows"))
    assert summary[at + 1: at + 6] == [("would create", 1), ("would update", 0), ("would skip", 1), ("invalid", 0),
                                       ("total", 2)]
    assert openpyxl.load_workbook(path)["Summary"]._charts[0].title is not None


def test_empty_run_still_has_every_sheet(tmp_path):
    path = tmp_path / "empty.xlsx"
    write_results_workbook(path, headers=HEADERS, rows=[], summary=sample_summary(counts={}, error_counts={}))
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == list(SHEETS)
    assert wb["Failed"].auto_filter.ref == "A1:M1"
    assert calamine_values(path, "Invalid") == [list(ROSTER_COLUMNS)]
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_every_text_cell_that_looks_like_a_formula_is_neutralised(tmp_path):
    hostile = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]
    rows = []
    for i, text in enumerate(hostile):
        rows.append(ReportRow(row=10 + i, status="created", upn=text, display_name=text, object_id=text,
                              followups=text, cells=(text,) * 2))
        rows.append(ReportRow(row=20 + i, status="failed", upn=text, error_code=text, message=text,
                              request_id=text, cells=(text,) * 2))
        rows.append(ReportRow(row=30 + i, status="invalid", cells=(text,) * 2,
                              issues=(Issue(30 + i, "A", text, Severity.ERROR, text),)))
        rows.append(ReportRow(row=40 + i, status="skipped", upn=text, message=text))
    path = tmp_path / "hostile.xlsx"
    write_results_workbook(path, headers=("A", "=B"), rows=rows, summary=sample_summary(
        roster="=roster", tenant="+tenant", retry_command="-retry", error_counts={t: 1 for t in hostile}))
    wb = openpyxl.load_workbook(path)
    seen = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value[:1] in ("=", "+", "-", "@", "\t", "\r", "\n"):
                    assert cell.data_type == "s" and cell.quotePrefix, (ws.title, cell.coordinate, cell.value)
                    seen += 1
    assert seen > 60
    # no formula in any sheet's XML, whatever the reader
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                tree = ElementTree.fromstring(z.read(name))
                assert not [e for e in tree.iter() if e.tag.endswith("}f")], name
    # calamine reads the texts back unchanged (a bare CR becomes LF in any XML reader)
    failed = calamine_values(path, "Failed")
    assert [r[4] for r in failed[1:]] == [t.replace("\r", "\n") for t in hostile]
    assert failed[0][4:6] == ["A", "=B"]


def test_control_characters_and_huge_cells_do_not_break_the_file(tmp_path):
    path = tmp_path / "odd.xlsx"
    huge = "x" * 40000
    write_results_workbook(path, headers=("A",), rows=[
        ReportRow(row=2, status="failed", message="bad\x00\x07byte", cells=(huge,))], summary=sample_summary())
    row = openpyxl_values(path, "Failed")[1]
    assert row[4] == "x" * 32766 + "\u2026"
    assert row[3] == "bad\ufffd\ufffdbyte"


def test_passwords_never_reach_the_workbook(tmp_path):
    secrets = ["S3cret!Pass", "hunter2hunter2", "Zz9!given-in-roster"]
    rows = sample_rows() + [ReportRow(row=9, status="failed", cells=("Q", "R", "q@x", "Zz9!given-in-roster",
                                                                     "GB", "9"), message="boom")]
    path = tmp_path / "results.xlsx"
    write_results_workbook(path, headers=HEADERS, rows=rows, summary=sample_summary())
    with zipfile.ZipFile(path) as z:
        blob = b"".join(z.read(n) for n in z.namelist())
    for secret in secrets:
        assert secret.encode() not in blob
    # the header stays, so a new password can be typed in for `retry`
    assert openpyxl_values(path, "Failed")[0][7] == "Password"


def test_explicit_redaction_by_header(tmp_path):
    path = tmp_path / "r.xlsx"
    write_results_workbook(path, headers=("Name", "Secret answer"), redact=("Secret answer",), rows=[
        ReportRow(row=2, status="failed", cells=("N", "blue"), message="m")], summary=sample_summary())
    assert openpyxl_values(path, "Failed")[1][4:6] == ("N", None)


def test_unknown_status_goes_to_failed_not_dropped(tmp_path):
    path = tmp_path / "r.xlsx"
    write_results_workbook(path, headers=("Name",), rows=[ReportRow(row=2, status="sending", cells=("N",))],
                           summary=sample_summary())
    assert openpyxl_values(path, "Failed")[1][4:6] == ("N", "sending")


def test_streams_in_write_only_mode_past_the_sample(tmp_path, monkeypatch):
    modes = []
    real = workbook.Workbook

    def spy(*args, **kwargs):
        modes.append(kwargs.get("write_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(workbook, "Workbook", spy)
    monkeypatch.setattr(workbook, "SAMPLE_ROWS", 3)
    consumed = []

    def generate():
        for i in range(50):
            consumed.append(i)
            yield ReportRow(row=i + 2, status=("created", "failed", "invalid")[i % 3], upn=f"u{i}@x",
                            cells=(f"c{i}",))

    path = tmp_path / "r.xlsx"
    write_results_workbook(path, headers=("C",), rows=generate(), summary=sample_summary())
    assert modes == [True]
    assert consumed == list(range(50))
    created = calamine_values(path, "Created")
    assert [r[0] for r in created[1:]] == [str(i + 2) for i in range(0, 50, 3)]
    assert [r[4] for r in calamine_values(path, "Invalid")[1:]] == [f"c{i}" for i in range(2, 50, 3)]


def test_package_parts_are_well_formed(written):
    with zipfile.ZipFile(written) as z:
        names = z.namelist()
        for name in names:
            if name.endswith((".xml", ".rels")):
                ElementTree.fromstring(z.read(name))
        types = z.read("[Content_Types].xml").decode()
    assert any(n.startswith("xl/charts/chart") for n in names)
    assert any(n.startswith("xl/drawings/drawing") for n in names)
    assert "drawingml.chart+xml" in types
