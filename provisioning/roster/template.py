"""Blank roster templates: xlsx (with notes and Excel data validation), CSV (+ a notes CSV), and the Entra admin
center bulk-create CSV (``version:v1.0`` + the 17 documented headings)."""
from __future__ import annotations

import csv
from pathlib import Path

from provisioning.fields import FIELDS, FieldSpec, country_codes

#: The Entra admin center bulk-create template, verbatim (graph-facts section 10).
ENTRA_VERSION_LINE = "version:v1.0"
ENTRA_HEADERS = (
    "Name [displayName] Required", "User name [userPrincipalName] Required",
    "Initial password [passwordProfile] Required", "Block sign in (Yes/No) [accountEnabled] Required",
    "First name [givenName]", "Last name [surname]", "Job title [jobTitle]", "Department [department]",
    "Usage location [usageLocation]", "Street address [streetAddress]", "State or province [state]",
    "Country or region [country]", "Office [physicalDeliveryOfficeName]", "City [city]",
    "ZIP or postal code [postalCode]", "Office phone [telephoneNumber]", "Mobile phone [mobile]",
)
NOTES_COLUMNS = ("field", "required", "max length", "description", "example")
_REQUIRED = {"displayName": "yes (derived)", "userPrincipalName": "yes (derived)",
             "mailNickname": "yes (derived)", "password": "yes (generated)", "accountEnabled": "yes (default Yes)"}
TEMPLATE_ROWS = 5000  # rows covered by the xlsx data validation


def _note_row(f: FieldSpec) -> tuple[str, str, str, str, str]:
    return (f.name, _REQUIRED.get(f.name, "no"), str(f.max_len or ""), f.note, f.example)


def write_template(out: Path, *, entra: bool = False) -> list[Path]:
    """Write a blank roster to ``out`` (``.xlsx`` or ``.csv``); return the files written.

    ``entra=True`` writes the Entra admin center's CSV format instead (CSV only). A plain CSV template gets its
    notes in a sibling ``<name>.notes.csv`` (a notes row inside would be read as a user).
    """
    suffix = out.suffix.lower()
    if entra:
        if suffix != ".csv":
            raise ValueError("the Entra admin center takes CSV only; use a .csv name with --entra")
        with out.open("w", newline="", encoding="utf-8") as f:
            f.write(ENTRA_VERSION_LINE + "\r\n")
            csv.writer(f).writerow(ENTRA_HEADERS)
        return [out]
    if suffix == ".csv":
        with out.open("w", newline="", encoding="utf-8-sig") as f:
            csv.writer(f).writerow([f.name for f in FIELDS])
        notes = out.with_name(out.stem + ".notes.csv")
        with notes.open("w", newline="", encoding="utf-8-sig") as f:
            w = csv.writer(f)
            w.writerow(NOTES_COLUMNS)
            w.writerows(_note_row(f) for f in FIELDS)
        return [out, notes]
    if suffix in (".xlsx", ".xlsm"):
        _write_xlsx(out)
        return [out]
    raise ValueError(f"cannot write a template as {suffix or 'a file without extension'}; use .xlsx or .csv")


def _write_xlsx(out: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation
    from openpyxl.worksheet.worksheet import Worksheet


    wb = Workbook()
    ws = wb.active
    assert isinstance(ws, Worksheet)  # a new workbook holds one worksheet
    ws.title = "Users"
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    lists = wb.create_sheet("Lists")
    for r, code in enumerate(sorted(country_codes()), start=1):
        lists.cell(row=r, column=1, value=code)
    lists.sheet_state = "hidden"
    last = TEMPLATE_ROWS + 1
    for c, f in enumerate(FIELDS, start=1):
        cell = ws.cell(row=1, column=c, value=f.name)
        cell.font, cell.fill = bold, fill
        cell.comment = Comment(f.note, "provision.py")
        letter = get_column_letter(c)
        ws.column_dimensions[letter].width = max(12, len(f.name) + 2)
        ws.column_dimensions[letter].number_format = "@"  # text: keeps 00123 and +1 555 0100 as typed
        area = f"{letter}2:{letter}{last}"
        dv = None
        if f.kind == "bool":
            dv = DataValidation(type="list", formula1='"Yes,No"', allow_blank=True)
            dv.error = f"{f.name}: choose Yes or No"
        elif f.name == "usageLocation":
            dv = DataValidation(type="list", formula1=f"Lists!$A$1:$A${len(country_codes())}", allow_blank=True)
            dv.error = "usageLocation: a two-letter ISO 3166 country code, e.g. US, GB, DE"
        elif f.max_len:
            dv = DataValidation(type="textLength", operator="lessThanOrEqual", formula1=str(f.max_len),
                                allow_blank=True)
            dv.error = f"{f.name}: at most {f.max_len} characters"
        if dv is not None:
            dv.errorTitle = "Invalid value"
            dv.showErrorMessage = True
            dv.prompt, dv.promptTitle, dv.showInputMessage = f.note[:255], f.name, True
            ws.add_data_validation(dv)
            dv.add(area)
    ws.freeze_panes = "A2"
    notes = wb.create_sheet("Notes", 1)
    notes.append(NOTES_COLUMNS)
    for cell in notes[1]:
        cell.font = bold
    for f in FIELDS:
        notes.append(_note_row(f))
    for letter, width in zip("ABCDE", (30, 16, 11, 100, 30), strict=True):
        notes.column_dimensions[letter].width = width
    wb.save(out)
