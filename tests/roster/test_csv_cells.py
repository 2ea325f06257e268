"""Cells as the user typed them, through the real CLI: footer lines are no people, blanks cannot hide a formula,
phone columns hold phone numbers, invisible characters are refused, Excel's text prefix is no data.

Fixtures: tests/data/cells/ (made by its generate.py). Each test gives the exact lines ``validate`` prints.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

import provision
from provisioning.roster.reader import load_roster
from provisioning.validation.engine import validate_roster

CELLS = Path(__file__).resolve().parents[2] / "tests" / "data" / "cells"
PHONE_SHAPE = ("write digits with an optional leading + and spaces, '-', '.', '/' or parentheses, e.g. +1 555 0100 "
               "(an extension as x123 or ext. 123)")


def validate(path: Path, tmp_path: Path) -> tuple[int, list[tuple[str, ...]], str]:
    """Exit code, the table's rows as (row, column, severity, code, message), stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["validate", str(path), "--out", str(tmp_path / "issues.csv")], stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    lines = lines[lines.index(next(ln for ln in lines if ln.startswith("Row  "))) + 2:-1]  # the issue table
    return code, [tuple(line.split(None, 4)) for line in lines], err.getvalue()


def test_footer_lines_of_an_export_are_not_people(tmp_path):
    code, rows, err = validate(CELLS / "footer.csv", tmp_path)
    assert code == 1 and "8 rows (csv, header on row 1); 2 valid, 6 with errors" in err
    footer = "looks like a footer/total line ({}), not a person; it is not sent — delete it"
    assert rows == [
        ("5", "givenName", "error", "not-a-person", "row 5 " + footer.format("'Total: 2 employees'")),
        ("6", "givenName", "error", "not-a-person", "row 6 " + footer.format("'Page 1 of 1'")),
        ("7", "givenName", "error", "not-a-person", "row 7 " + footer.format("'Generated on 2024-05-02 by Workday'")),
        ("8", "givenName", "error", "not-a-person", "row 8 " + footer.format("'End of report'")),
        ("9", "givenName", "error", "not-a-person", "row 9 " + footer.format("'3 records'")),
        # a row with only a given name is a person with errors, not a footer
        ("10", "userPrincipalName", "error", "upn-no-domain",
         "userPrincipalName is empty and no domain is known to derive it; fill in userPrincipalName, or give a "
         "domain with --domain or a mapping file's \"domain\" setting"),
    ]


@pytest.mark.parametrize("text", ["Total: 2 employees", "Grand total 15", "Count: 3", "Records: 12", "2 employees",
                                  "1,204 users selected", "Page 1 of 1", "Page 3/7", "Report generated on 2024-01-02",
                                  "Exported by HR", "End of report", "Confidential", "© 2024 Contoso"])
def test_footer_texts(text):
    from provisioning.validation.rules import footer_problem

    assert footer_problem(text, 9) is not None


@pytest.mark.parametrize("text", ["Paige", "Page", "Total", "Tot", "Grant", "Count Basie", "Endo", "Ann Lee",
                                  "Run", "Sumner", "ann.lee@contoso.com", "00123", "Endicott"])
def test_footer_rule_leaves_names_alone(text):
    from provisioning.validation.rules import footer_problem

    assert footer_problem(text, 9) is None


def test_a_formula_behind_blanks_is_caught_and_phone_columns_hold_phone_numbers(tmp_path):
    code, rows, err = validate(CELLS / "formulas.csv", tmp_path)
    assert code == 1 and "7 rows (csv, header on row 1); 2 valid, 5 with errors; 5 errors, 4 warnings" in err
    formula = "a spreadsheet would run this as a formula; remove the leading {!r} (or type the value as plain text)"
    assert [r for r in rows if r[2] == "error"] == [
        ("2", "givenName", "error", "formula-cell", "givenName '=1+1': " + formula.format("=")),
        ("3", "surname", "error", "formula-cell", "surname '=HYPERLINK(\"http://x.example\")': " + formula.format("=")),
        ("4", "givenName", "error", "formula-cell", "givenName '@SUM(A1)': " + formula.format("@")),
        ("5", "mobilePhone", "error", "phone-invalid",
         "mobilePhone '+1+1': not a phone number (a spreadsheet would run it as a formula); " + PHONE_SHAPE),
        ("6", "businessPhones", "error", "phone-invalid",
         "businessPhones '-2+3': not a phone number (a spreadsheet would run it as a formula); " + PHONE_SHAPE),
    ]
    assert ("3", "surname", "warning", "whitespace-trimmed", "surname '\\xa0=HYPERLINK(\"http://x.example\")': "
            "leading/trailing blanks removed (now '=HYPERLINK(\"http://x.example\")'); check the cell") in rows
    valid = {r.upn: r for r in validate_roster(load_roster(CELLS / "formulas.csv")).rows if not r.has_errors}
    assert valid["flo.ha@contoso.com"].fields["mobilePhone"] == "+1 (555) 010-0100 ext. 12"
    assert valid["gil.in@contoso.com"].fields["mobilePhone"] == "+1 555 0100"  # the U+2003 ahead is trimmed
    assert valid["gil.in@contoso.com"].fields["businessPhones"] == ["555.0100 x7"]


def test_a_phone_number_that_is_no_phone_number(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("givenName,surname,userPrincipalName,faxNumber\nAnn,Lee,ann@contoso.com,call me\n",
                 encoding="utf-8")
    code, rows, _ = validate(p, tmp_path)
    assert (code, rows) == (1, [("2", "faxNumber", "error", "phone-invalid",
                                 "faxNumber 'call me': not a phone number; " + PHONE_SHAPE)])


def test_invisible_and_direction_characters_are_refused_by_code_point(tmp_path):
    code, rows, err = validate(CELLS / "invisible.csv", tmp_path)
    assert code == 1 and "7 rows (csv, header on row 1); 2 valid, 5 with errors; 5 errors, 1 warning" in err
    retype = "an invisible character; retype the value"
    assert rows == [
        ("2", "displayName", "error", "invisible-char",
         f"displayName 'Ann\\u202eeeL' contains U+202E RIGHT-TO-LEFT OVERRIDE, {retype}"),
        ("3", "surname", "error", "invisible-char", f"surname 'E\\u200bk' contains U+200B ZERO WIDTH SPACE, {retype}"),
        ("4", "surname", "error", "invisible-char", f"surname 'Do\\u200d' contains U+200D ZERO WIDTH JOINER, {retype}"),
        ("5", "displayName", "error", "invisible-char",
         f"displayName 'Di\\xadFo' contains U+00AD SOFT HYPHEN, {retype}"),
        ("6", "displayName", "error", "invisible-char",
         f"displayName 'Ed Gu\\u2066' contains U+2066 LEFT-TO-RIGHT ISOLATE, {retype}"),
        # a zero width space at the end is a blank: trimmed
        ("8", "surname", "warning", "whitespace-trimmed",
         "surname 'Ha\\u200b': leading/trailing blanks removed (now 'Ha'); check the cell"),
    ]
    # row 7: the Persian given name keeps its zero width non-joiner, part of its spelling
    persian = [r for r in validate_roster(load_roster(CELLS / "invisible.csv")).rows if r.row == 7][0]
    assert not persian.has_errors and persian.fields["givenName"] == "\u0645\u062d\u0645\u062f\u200c\u0631\u0636\u0627"


def test_excel_text_prefix_is_read_as_the_text_after_it(tmp_path):
    code, rows, _ = validate(CELLS / "apostrophes.csv", tmp_path)
    assert (code, rows) == (1, [("4", "jobTitle", "error", "formula-cell",
                                 "jobTitle '=1+1': a spreadsheet would run this as a formula; remove the leading '=' "
                                 "(or type the value as plain text)")])
    rows = {r.row: r.fields for r in validate_roster(load_roster(CELLS / "apostrophes.csv")).rows}
    assert (rows[2]["surname"], rows[2]["mobilePhone"], rows[2]["businessPhones"]) == (
        "O'Brien", "+1 555 0100", ["+1 555 0101"])
    assert (rows[3]["surname"], rows[3]["mobilePhone"], rows[3]["jobTitle"]) == ("'t Hooft", "+44 20 7946 0958",
                                                                                 "'Lead")


def test_a_row_with_only_a_password_is_no_footer_and_the_password_is_not_quoted(tmp_path):
    p = tmp_path / "pw.csv"
    p.write_text("givenName,surname,userPrincipalName,password\nAnn,Lee,ann@contoso.com,\n,,,Total: 2 secret!\n",
                 encoding="utf-8")
    code, rows, _ = validate(p, tmp_path)
    assert code == 1 and [r[3] for r in rows] == ["display-name-missing", "upn-no-domain"]
    assert "secret" not in (tmp_path / "issues.csv").read_text(encoding="utf-8-sig")


def test_a_footer_label_with_its_count_in_other_cells(tmp_path):
    p = tmp_path / "report.csv"
    p.write_text("givenName,surname,userPrincipalName,employeeId\nAnn,Lee,ann@contoso.com,1\n"
                 "Page,Smith,page.smith@contoso.com,2\nTotal,,,2\nPage,1,of,1\nTotal,Lee,,\n", encoding="utf-8")
    code, rows, _ = validate(p, tmp_path)
    footer = "looks like a footer/total line ({}), not a person; it is not sent — delete it"
    assert code == 1 and rows[:2] == [
        ("4", "givenName", "error", "not-a-person", "row 4 " + footer.format("'Total 2'")),
        ("5", "givenName", "error", "not-a-person", "row 5 " + footer.format("'Page 1 of 1'"))]
    assert [r[:4] for r in rows[2:]] == [("6", "userPrincipalName", "error", "upn-no-domain")]  # Total Lee: a person


def test_footer_lines_below_many_people_are_found_by_their_cells_alone(tmp_path):
    """Below a long list of people (few short rows) only the short rows' cells are looked at, not whole columns:
    the same footer lines are found, a label with its count in the next cell included."""
    people = "".join(f"Person{i},Lee,p{i}@contoso.com,+1 555 01{i:02d},\n" for i in range(60))
    roster = tmp_path / "long.csv"
    roster.write_text("givenName,surname,userPrincipalName,mobilePhone,businessPhones\n" + people
                      + "Total,,,,60\nPage 1 of 1,,,,\nPaige,,,,\n", encoding="utf-8")
    code, rows, _ = validate(roster, tmp_path)
    footer = "looks like a footer/total line ({}), not a person; it is not sent — delete it"
    assert code == 1
    assert [r for r in rows if r[3] == "not-a-person"] == [
        ("62", "givenName", "error", "not-a-person", "row 62 " + footer.format("'Total 60'")),
        ("63", "givenName", "error", "not-a-person", "row 63 " + footer.format("'Page 1 of 1'")),
    ]
