"""Write the Excel rosters of tests/data/excel/ (what Excel users hand in: hidden sheets, tables with a totals row,
filtered and hidden rows, zero-padded number formats, dates, title rows above the header). Run:
``python tests/data/excel/generate.py``; the files are committed, so the tests do not depend on this script.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path

from openpyxl import Workbook
from openpyxl.worksheet.table import Table

HERE = Path(__file__).resolve().parent
HEAD = ["givenName", "surname", "userPrincipalName", "employeeId"]


def hidden_first_sheet() -> Workbook:
    """An old "Leavers" sheet kept hidden in front of the people to provision, a very hidden one too."""
    wb = Workbook()
    leavers = wb.active
    leavers.title = "Leavers"
    leavers.sheet_state = "hidden"
    for row in (HEAD, ["Old", "Timer", "old.timer@contoso.com", "L1"], ["Gone", "Away", "gone.away@contoso.com", "L2"]):
        leavers.append(row)
    secret = wb.create_sheet("Lookup")
    secret.sheet_state = "veryHidden"
    secret.append(HEAD)
    secret.append(["Look", "Up", "look.up@contoso.com", "X1"])
    people = wb.create_sheet("People")
    for row in (HEAD, ["Ann", "Lee", "ann.lee@contoso.com", "E1"], ["Bo", "Chen", "bo.chen@contoso.com", "E2"]):
        people.append(row)
    wb.active = 2
    return wb


def only_hidden_sheet() -> Workbook:
    """The only sheet with headers is hidden; the visible one is a cover page."""
    wb = Workbook()
    cover = wb.active
    cover.title = "Cover"
    cover.append(["New starters, see the other sheet"])
    data = wb.create_sheet("Data")
    data.sheet_state = "hidden"
    data.append(HEAD)
    data.append(["Ann", "Lee", "ann.lee@contoso.com", "E1"])
    return wb


def table_totals() -> Workbook:
    """An Excel table with its totals row switched on (Total, a count of employeeId) and an autoFilter that hides
    row 3; row 7, below the table, is hidden by hand."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Staff"
    ws.append(HEAD)
    ws.append(["Ann", "Lee", "ann.lee@contoso.com", "E1"])
    ws.append(["Bo", "Chen", "bo.chen@contoso.com", "E2"])
    ws.append(["Cy", "Dunn", "cy.dunn@contoso.com", "E3"])
    ws.append(["Total", "", "", "=SUBTOTAL(103,[employeeId])"])
    table = Table(displayName="NewStarters", ref="A1:D5")
    table.totalsRowCount = 1
    ws.add_table(table)
    ws.row_dimensions[3].hidden = True
    ws.append([])
    ws.append(["Di", "Eng", "di.eng@contoso.com", "E4"])
    ws.row_dimensions[7].hidden = True
    return wb


def number_formats() -> Workbook:
    """Numbers shown with leading zeros by their format (employee numbers, Zip code, Zip + 4), a date and a
    date-time hire date."""
    wb = Workbook()
    ws = wb.active
    ws.title = "People"
    ws.append(HEAD + ["postalCode", "employeeHireDate"])
    rows = [
        ["Ann", "Lee", "ann.lee@contoso.com", 777, 2134, dt.datetime(2024, 3, 1, 9, 30)],
        ["Bo", "Chen", "bo.chen@contoso.com", 1234567, 21340000, dt.date(2024, 4, 2)],
        ["Cy", "Dunn", "cy.dunn@contoso.com", 42, 98052, dt.datetime(2024, 5, 3)],
    ]
    for row in rows:
        ws.append(row)
    formats = [("000000", "00000"), ("0000000000", "00000-0000"), ("0", "00000")]
    for r, (emp, postal) in zip(range(2, 5), formats, strict=True):
        ws.cell(r, 4).number_format = emp
        ws.cell(r, 5).number_format = postal
    return wb


def number_formats_hidden() -> Workbook:
    """:func:`number_formats` with row 3 hidden by hand (written without cell references by :func:`main`)."""
    wb = number_formats()
    wb.active.row_dimensions[3].hidden = True
    return wb


def title_rows() -> Workbook:
    """A title and a date line above the column names (row 4)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Starters"
    ws.append(["Contoso new starters, March 2024"])
    ws.append(["Prepared by HR on 2024-02-20"])
    ws.append([])
    ws.append(HEAD)
    ws.append(["Ann", "Lee", "ann.lee@contoso.com", "E1"])
    ws.append(["Bo", "Chen", "bo.chen@contoso.com", "E2"])
    return wb


def title_unknown_headers() -> Workbook:
    """A title above an HR export's own column names (none known without a mapping)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Export"
    ws.append(["HR export 2024-03"])
    ws.append([])
    ws.append(["Forename", "Family", "Login"])
    ws.append(["Ann", "Lee", "ann.lee@contoso.com"])
    return wb


FILES = {
    "hidden-first-sheet.xlsx": hidden_first_sheet, "only-hidden-sheet.xlsx": only_hidden_sheet,
    "table-totals.xlsx": table_totals, "number-formats.xlsx": number_formats, "title-rows.xlsx": title_rows,
    "title-unknown-headers.xlsx": title_unknown_headers,
}
TEXT_FILES = {
    "title-rows.csv": "Contoso new starters March 2024\r\n\r\ngivenName;surname;userPrincipalName\r\n"
                      "Ann;Lee;ann.lee@contoso.com\r\nBo;Chen;bo.chen@contoso.com\r\n",
    "title-unknown-headers.csv": "HR export 2024-03\r\n\r\nForename,Family,Login\r\nAnn,Lee,ann.lee@contoso.com\r\n",
    "hr-mapping.json": json.dumps({"columns": {"Forename": "givenName", "Family": "surname",
                                               "Login": "userPrincipalName"}}, indent=2) + "\n",
}


def without_refs(book: Workbook) -> bytes:
    """``book`` saved with no ``r="A1"`` reference on its first sheet's rows and cells (as some exporters write
    it), so the scan must place cells by counting."""
    buf, out = io.BytesIO(), io.BytesIO()
    book.save(buf)
    src = zipfile.ZipFile(buf)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                body = re.sub(rb'(<(?:c|row)\b[^>]*?) r="[A-Z]*\d+"', rb"\1", body)
            dst.writestr(item, body)
    return out.getvalue()


def main() -> None:
    for name, make in FILES.items():
        make().save(HERE / name)
    (HERE / "number-formats-no-refs.xlsx").write_bytes(without_refs(number_formats_hidden()))
    for name, text in TEXT_FILES.items():
        (HERE / name).write_bytes(text.encode("utf-8"))


if __name__ == "__main__":
    main()
