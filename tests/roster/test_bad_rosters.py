"""Malformed and hostile rosters (tests/data/bad/, made by its generate.py; the huge ones here in tmp_path).

Each gives exactly the expected outcome: exit 2 with one line on stderr naming the file and what to do, or exit 1
with per-row issues, or exit 0 where the file, however odd, is a valid roster. Never a traceback, never a hang.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

import provision

BAD = Path(__file__).resolve().parents[2] / "tests" / "data" / "bad"
EMPTY = "the roster is empty"
MISSING = "required column(s) missing"
NO_SHEET = "no sheet has a header row with known column names"
OLE = "this is a password-protected (encrypted) workbook or an old .xls file; remove the password"
UNREADABLE = "; save it as CSV UTF-8 (comma delimited) or .xlsx and run again"
REOPEN = "open it in Excel and save it again as .xlsx, or save it as .csv"

#: file -> (exit code, fragment of the one stderr line (exit 2) or of stdout (exit 1), or None for exit 0)
EXPECTED: dict[str, tuple[int, str | None]] = {
    "empty.csv": (2, EMPTY),
    "blank-lines.csv": (2, EMPTY),
    "only-delimiters.csv": (2, EMPTY),
    "header-only.csv": (0, None),  # a valid roster with no users: nothing to do
    "header-blanks.csv": (2, MISSING),
    "binary.csv": (2, UNREADABLE),
    "xlsx-named.csv": (0, None),  # the bytes are an xlsx: read as one
    "csv-named.xlsx": (2, "this is not an Excel .xlsx workbook (a CSV file renamed?); if it is a CSV, rename it"),
    "encrypted.xlsx": (2, OLE),
    "legacy.xls": (2, OLE),
    "utf16-no-bom.csv": (0, None),  # detected from the NUL pattern
    "mixed-line-endings.csv": (0, None),
    "duplicate-headers.csv": (2, "the header 'surname' appears twice (columns B and C); rename or remove one"),
    # error values and formulas without a saved value exclude their row (exact issues: test_excel_errors.py)
    "formulas-errors.xlsx": (1, "jobTitle: the cell shows the Excel error #DIV/0! (its formula failed); fix the "
                                "formula or type the value"),
    "header-error.xlsx": (2, "the header cell D1 shows the Excel error #REF!; type the column name there and save "
                             "the workbook"),
    "header-formula.xlsx": (2, "the header cell D1 holds the formula =\"job\"&\"Title\" but no calculated value was "
                               "saved; open the workbook in Excel, let it calculate and save, or type the column name"),
    "no-cell-refs.xlsx": (1, "jobTitle: the cell shows the Excel error #VALUE! instead of a value; type the value"),
    "offset-table.xlsx": (1, "jobTitle: the cell shows the Excel error #NAME? instead of a value; type the value"),
    "dates-numbers.xlsx": (0, None),  # shown as Excel shows them: 2024-01-02, 42, 123, 1.5
    # a merged title row above the column names: skipped, with a note (it used to be "column B has values but no
    # header", which told the user nothing about the title)
    "merged-header.xlsx": (0, "the column names are on row 2; row 1 above them is taken as a title and not read"),
    "pivot-like.xlsx": (2, NO_SHEET),
    "empty.xlsx": (2, NO_SHEET),
    "..%2f..%2fetc%2fpasswd.csv": (1, "userPrincipalName '../../x': needs exactly one '@'"),
    "path-cells.csv": (0, None),  # '../../etc' is just text in a name
    "all-invalid.csv": (1, "formula-cell"),
    "nul-bytes.csv": (1, "givenName 'An\\x00n': contains a NUL or control character"),
    "long-header.csv": (0, None),  # the 100,000-character header is an unknown column (a warning)
    "control-chars.csv": (1, "surname 'L\\x1bee': contains a NUL or control character"),
    "zip-bomb.xlsx": (2, REOPEN),
    "not-a-zip.xlsx": (2, REOPEN),
    "roster.ods": (2, "OpenDocument spreadsheets (.ods) are not supported; save it as .xlsx or .csv"),
    "json.csv": (2, MISSING),
    "html.csv": (2, MISSING),
    "ragged-rows.csv": (2, "column D has values but no header; give it a name"),
    "unclosed-quote.csv": (2, "EOF inside string"),
    "no-known-header.csv": (2, MISSING),
    "cp1252-tail.csv": (0, None),  # ASCII head, one cp1252 line at the end: certain (only cp1252 reads it as names)
}


def run(path: Path, tmp_path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["validate", str(path), "--out", str(tmp_path / "issues.csv")], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def check(path: Path, tmp_path: Path, code: int, fragment: str | None) -> None:
    got, out, err = run(path, tmp_path)
    assert "Traceback" not in out + err and "internal error" not in err
    assert got == code, (path.name, got, err)
    if code == 2:
        assert out == "" and err.count("\n") == 1 and err.startswith(f"error: {path}: "), err
        assert fragment in err
    elif code == 1:
        assert fragment in out and "with errors" in err
    else:
        assert "0 with errors" in err


def test_the_folder_has_every_expected_file_and_stays_small():
    files = {p.name for p in BAD.iterdir() if p.suffix != ".py" and p.is_file()}
    assert files == set(EXPECTED) and len(files) >= 30
    assert sum(p.stat().st_size for p in BAD.iterdir() if p.is_file()) < 2_000_000


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_roster(name, tmp_path):
    check(BAD / name, tmp_path, *EXPECTED[name])


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_hundred_thousand_columns(tmp_path):
    p = tmp_path / "wide.csv"
    p.write_text("givenName,surname,userPrincipalName," + ",".join(f"c{i}" for i in range(100_000)) + "\n"
                 "Ann,Lee,ann@contoso.com" + "," * 100_000 + "\n", encoding="utf-8")
    check(p, tmp_path, 0, None)


@pytest.mark.timeout(30)
def test_ten_megabyte_cell(tmp_path):
    p = tmp_path / "big-cell.csv"
    p.write_text("givenName,surname,userPrincipalName\n" + "A" * 10_000_000 + ",Lee,ann@contoso.com\n",
                 encoding="utf-8")
    check(p, tmp_path, 1, "10000000 characters, givenName allows at most 64")
