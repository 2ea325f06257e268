"""Rosters written by a real spreadsheet program (LibreOffice Calc; see tests/data/exports/README.md) read as the
person who saved them sees them: the visible sheet, the hidden row reported, zero-padded ids, ISO dates, and the
CSV's encoding, whichever LibreOffice was told to write."""
from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.roster.reader import load_roster
from provisioning.validation.engine import validate_roster

DATA = Path(__file__).resolve().parents[1] / "data" / "exports"
NAMES = [("Søren", "Kierkegård"), ("José", "Núñez"), ("Zoë", "Brontë")]


def test_libreoffice_workbook_hidden_sheet_hidden_row_number_formats_and_dates() -> None:
    roster = load_roster(DATA / "libreoffice-hidden-sheet-row.xlsx")
    assert roster.sheet == "Staff"
    assert [r.cells for r in roster.rows] == [
        ("Ann", "Lee", "000777", "02134", "2024-03-01T09:30:00Z", "Dev"),
        ("Bo", "Ek", "000778", "02135", "2024-03-02", "Ops"),
        ("Cy", "Do", "000779", "02136", "2024-03-03", "QA")]
    v = validate_roster(roster, default_domain="contoso.com")
    assert sorted((i.row, i.code) for i in v.issues) == [(0, "hidden-sheet-skipped"), (4, "hidden-row")]
    assert [u.graph_body()["employeeHireDate"] for u in v.rows] == [
        "2024-03-01T09:30:00Z", "2024-03-02T00:00:00Z", "2024-03-03T00:00:00Z"]


@pytest.mark.parametrize("name, encoding, note", [
    ("libreoffice-utf8.csv", "utf-8", False),
    ("libreoffice-cp1252.csv", "cp1252", False),
    ("libreoffice-macroman.csv", "mac_roman", True),
])
def test_libreoffice_csv_in_each_encoding_reads_the_names_as_typed(name: str, encoding: str, note: bool) -> None:
    roster = load_roster(DATA / name)
    assert roster.encoding == encoding
    assert [r.cells[:2] for r in roster.rows] == NAMES
    assert [i.code for i in roster.warnings] == (["encoding-guessed"] if note else [])
