"""Formula neutralisation, checked by writing and re-reading real files."""
from __future__ import annotations

import csv
import io

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.cells import csv_quote, csv_safe, looks_like_formula, make_xlsx_text_safe

# blanks ahead of a trigger hide nothing: a spreadsheet that trims on import runs " =x" too (and the reader trims)
HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1 555 0100", "-2+3", "@SUM(A1)", "\tx", "\rx", " =x", "\u00a0\u3000@x"]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_triggers(text):
    assert looks_like_formula(text)
    assert csv_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["", "Adele", "1+1", "a@b.com", " x=1"])
def test_plain_text_is_left_alone(text):
    assert not looks_like_formula(text)
    assert csv_safe(text) == text


def test_csv_cells_read_back_prefixed(tmp_path):
    path = tmp_path / "out.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow([csv_safe(v) for v in HOSTILE])
    with path.open(newline="", encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == ["'" + v for v in HOSTILE]


@pytest.mark.parametrize("write_only", [False, True])
def test_xlsx_cells_are_text_with_quote_prefix(tmp_path, write_only):
    from openpyxl.cell import WriteOnlyCell

    path = tmp_path / "out.xlsx"
    wb = openpyxl.Workbook(write_only=write_only)
    ws = wb.create_sheet("S") if write_only else wb.active
    if write_only:
        ws.append([make_xlsx_text_safe(WriteOnlyCell(ws, value=v)) for v in HOSTILE])
    else:
        ws.append(HOSTILE)
        for cell in ws[1]:
            make_xlsx_text_safe(cell)
    wb.save(path)
    back = openpyxl.load_workbook(path)
    cells = list(back.worksheets[0].iter_rows(values_only=False))[0]
    # XML parsers normalise a bare CR to LF (XML 1.0 section 2.11), so "\rx" reads back as "\nx".
    expected = [v.replace("\r", "\n") for v in HOSTILE]
    assert [c.value for c in cells] == expected
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)
    frame = pd.read_excel(path, engine="calamine", header=None, dtype=str)
    assert list(frame.iloc[0]) == expected


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from('ab ,"\r\n\t\'=;é\x00'), max_size=6), min_size=2, max_size=5))
def test_csv_quote_writes_what_csv_writer_writes(fields):
    buffer = io.StringIO()
    csv.writer(buffer).writerow(fields)
    assert ",".join(csv_quote(f) for f in fields) + "\r\n" == buffer.getvalue()
    assert next(csv.reader(io.StringIO(buffer.getvalue(), newline=""))) == fields


def test_issues_csv_is_what_csv_writer_writes(tmp_path):
    from provisioning.commands.validate import ISSUE_COLUMNS, write_issues_csv
    from provisioning.models import Issue, Severity

    issues = [Issue(3, "Name, given", "x-code", Severity.ERROR, 'cell "=A1", quoted\nnext line'),
              Issue(0, "=cmd", "unknown-column", Severity.WARNING, "plain"),
              Issue(12, "mail", "bad-mail", Severity.ERROR, "-1 is not a mail, fix it")]
    path = tmp_path / "issues.csv"
    write_issues_csv(path, "roster,2026.csv", issues)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(ISSUE_COLUMNS)
    writer.writerows([(csv_safe("roster,2026.csv"), i.row or "", csv_safe(i.column), i.severity.value, i.code,
                       csv_safe(i.message)) for i in issues])
    assert path.read_bytes() == b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[1] == ["roster,2026.csv", "3", "Name, given", "error", "x-code", 'cell "=A1", quoted\nnext line']
    assert rows[2][2] == "'=cmd" and rows[3][5] == "'-1 is not a mail, fix it"


def test_csv_written_with_the_text_prefix_reads_back_as_written(tmp_path):
    from provisioning.roster.reader import load_roster

    values = [*HOSTILE, "O'Brien", "'t Hooft", "'", "''=x"]
    path = tmp_path / "r.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["givenName", "surname", "userPrincipalName"])
        writer.writerows([csv_safe(v), "Lee", "ann@contoso.com"] for v in values)
    assert [r.cells[0] for r in load_roster(path).rows] == values
