"""CSV encodings that are not certain: Mac Roman detected (with a note), cp1250 refused unless --encoding says so,
a UTF-8 file with a stray Latin-1 line refused with its line; --encoding through validate, run and the journal.

Fixtures: tests/data/encodings/ (made by tests/data/cells/generate.py).
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

import provision
from provisioning.roster.reader import load_roster
from provisioning.validation.engine import validate_roster

ROOT = Path(__file__).resolve().parents[2]
ENC = ROOT / "tests" / "data" / "encodings"


def run_cli(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return provision.main([str(a) for a in argv], stdout=out, stderr=err), out.getvalue(), err.getvalue()


def names(path: Path, **options: str) -> list[str]:
    return [r.fields["displayName"] for r in validate_roster(load_roster(path, **options)).rows]


def test_mac_roman_is_detected_and_said(tmp_path):
    code, out, err = run_cli("validate", ENC / "mac-roman.csv", "--out", tmp_path / "i.csv")
    assert code == 0, err
    lines = out.splitlines()
    first_issue = lines[lines.index(next(ln for ln in lines if ln.startswith("Row  "))) + 2]  # after the summary
    assert first_issue.split(None, 4) == [
        "-", "encoding", "warning", "encoding-guessed",
        "the file is not UTF-8; read as mac_roman (Mac OS Roman), the only encoding of cp1252, cp1250, mac_roman, "
        "cp1251 in which its names read as letters (line 2: 'Søren', 'Kierkegård'); if "
        "a name looks wrong, save the file as CSV UTF-8 or give --encoding NAME"]
    assert names(ENC / "mac-roman.csv") == ["Søren Kierkegård", "Karen Blixen"]


def test_cp1250_is_not_read_as_cp1252(tmp_path):
    path = ENC / "cp1250.csv"
    code, out, err = run_cli("validate", path, "--out", tmp_path / "i.csv")
    assert (code, out) == (2, "")
    assert err == (f"error: {path}: the file is not UTF-8 and its encoding is uncertain: line 2 reads "
                   "'Dvoøák' in cp1252 but 'Dvořák' in cp1250; save it as CSV UTF-8, or give --encoding cp1252 or "
                   "--encoding cp1250\n")
    code, out, err = run_cli("validate", path, "--encoding", "cp1250", "--out", tmp_path / "i.csv")
    assert code == 0 and out == "", err
    assert names(path, encoding="cp1250") == ["Antonín Dvořák", "Leoš Janáček"]


def test_utf8_with_a_stray_latin1_line_is_refused_naming_the_line(tmp_path):
    path = ENC / "utf8-stray-latin1.csv"
    code, out, err = run_cli("validate", path, "--out", tmp_path / "i.csv")
    assert (code, out) == (2, "")
    assert err == (f"error: {path}: line 4 has bytes that are not UTF-8 (0xE9, 0xEB), though the rest of the file "
                   "is UTF-8 (line 4: 'Ren\\xe9e', 'No\\xebl'); a program wrote them in "
                   "another encoding, so no one encoding reads every line right: retype those characters and save "
                   "the file as UTF-8 (or, if the whole file is in one encoding, give --encoding, e.g. --encoding "
                   "cp1252)\n")


def test_stray_bytes_on_several_lines_far_down_are_all_named(tmp_path):
    path = tmp_path / "big.csv"
    body = "".join(f"Zoë,Lee{i},zoe{i}@contoso.com\n" for i in range(3000)).encode()
    path.write_bytes(b"givenName,surname,userPrincipalName\n" + body + b"Ren\xe9e,A,a@contoso.com\n"
                     + "Åsa,B,b@contoso.com\n".encode() + b"Fran\xe7ois,C,c@contoso.com\n")
    code, _, err = run_cli("validate", path, "--out", tmp_path / "i.csv")
    assert code == 2 and "lines 3002 and 3004 have bytes that are not UTF-8 (0xE9, 0xE7)" in err


def test_a_one_byte_file_in_no_known_encoding_is_refused(tmp_path):
    path = tmp_path / "greek.csv"
    path.write_bytes("givenName,surname,userPrincipalName\nΕλένη,Παπαδοπούλου,eleni@contoso.com\n".encode("cp1253"))
    code, _, err = run_cli("validate", path, "--out", tmp_path / "i.csv")
    assert code == 2
    assert err.startswith(f"error: {path}: the file is not UTF-8 and reads as no text in cp1252, cp1250, mac_roman, "
                          "cp1251: line 2 has '\\xc5\\xeb\\xdd\\xed\\xe7', '\\xd0\\xe1\\xf0")
    assert "give --encoding NAME" in err
    assert names(path, encoding="cp1253") == ["Ελένη Παπαδοπούλου"]


def test_encoding_option_errors(tmp_path):
    code, _, err = run_cli("validate", ENC / "cp1250.csv", "--encoding", "klingon")
    assert code == 2 and "'klingon' is not an encoding name; use e.g. utf-8, cp1252" in err
    code, _, err = run_cli("validate", ROOT / "samples" / "roster.xlsx", "--encoding", "cp1252",
                           "--out", tmp_path / "i.csv")
    assert code == 2 and err.endswith("--encoding applies to CSV files only (a workbook says its own)\n")
    code, _, err = run_cli("validate", ROOT / "tests" / "data" / "enc-cp1252.csv", "--encoding", "utf-8",
                           "--out", tmp_path / "i.csv")
    assert code == 2 and err.endswith("line 2 has bytes that are not utf-8 (0xE9): 'Jos\\xe9', 'N\\xfa\\xf1ez'; "
                                      "check --encoding\n"), err


@pytest.mark.parametrize("name", ["enc-utf8.csv", "enc-utf8-bom.csv", "enc-utf16.csv", "enc-cp1252.csv"])
def test_the_certain_encodings_are_read_without_a_note(name):
    roster = load_roster(ROOT / "tests" / "data" / name)
    assert roster.warnings == () and roster.rows[0].cells[:2] == ("José", "Núñez")


def test_a_message_about_the_encoding_never_shows_a_password(tmp_path):
    path = tmp_path / "pw.csv"
    path.write_bytes(b"givenName,Initial password,userPrincipalName\nAnn,P\xe4ss1!xyZ,ann@contoso.com\n"
                     + "José,Abc123!x,jose@contoso.com\n".encode())
    code, out, err = run_cli("validate", path, "--out", tmp_path / "i.csv")
    assert code == 2 and "P\\xe4ss" not in err and "xyZ" not in err
    assert "line 2 has bytes that are not UTF-8 (0xE4), though the rest of the file is UTF-8 (line 2: the password " \
           "cell (not shown))" in err
    code, out, err = run_cli("validate", path, "--encoding", "ascii", "--out", tmp_path / "i.csv")
    assert code == 2 and err.endswith("line 2 has bytes that are not ascii (0xE4): the password cell (not shown); "
                                      "check --encoding\n")
