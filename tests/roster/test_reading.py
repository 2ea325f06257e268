"""Reading rosters: encodings, delimiters, text preserved as typed, row numbers, samples, roster-level errors."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

import provision
from provisioning.errors import RosterError
from provisioning.roster.reader import load_roster
from provisioning.validation.engine import validate_roster

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SAMPLES = ROOT / "samples"


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return provision.main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name,encoding,delimiter", [
    ("enc-utf8.csv", "utf-8", ","), ("enc-utf8-bom.csv", "utf-8-sig", ","), ("enc-utf16.csv", "utf-16", ","),
    ("enc-cp1252.csv", "cp1252", ","), ("delim-semicolon.csv", "utf-8", ";"), ("delim-tab.csv", "utf-8", "\t"),
])
def test_encodings_and_delimiters_read_every_cell_as_typed(name, encoding, delimiter):
    roster = load_roster(DATA / name)
    assert (roster.encoding, roster.delimiter) == (encoding, delimiter)
    assert roster.headers[0] == "givenName"
    assert [r.row for r in roster.rows] == [2, 4]  # the blank row 3 is skipped, numbers kept
    assert roster.rows[0].cells == ("José", "Núñez", "jose.nunez@contoso.com", "00123", "+1 555 0100", "TRUE", "1e5")
    assert roster.rows[1].cells[3:] == ("00124", "", "no", "02134")


def test_xlsx_and_csv_samples_read_the_same_cells():
    a, b = load_roster(SAMPLES / "roster.csv"), load_roster(SAMPLES / "roster.xlsx")
    assert a.headers == b.headers and a.rows == b.rows
    assert b.sheet == "Users" and len(b.rows) == 25


def test_admin_center_and_m365_files_map_to_the_same_users_as_the_plain_csv():
    plain = {r.upn: r for r in validate_roster(load_roster(SAMPLES / "roster.csv")).rows}
    entra_roster = load_roster(SAMPLES / "roster-entra.csv")
    assert entra_roster.kind == "entra-csv" and entra_roster.header_row == 2 and entra_roster.rows[0].row == 3
    for path in ("roster-entra.csv", "roster-m365.csv"):
        other = validate_roster(load_roster(SAMPLES / path))
        assert not other.issues
        assert {r.upn for r in other.rows} == set(plain)
        for row in other.rows:
            mine = plain[row.upn]
            for name in ("displayName", "givenName", "surname", "jobTitle", "department", "city", "country",
                         "mobilePhone", "businessPhones", "accountEnabled", "mailNickname"):
                if name in row.fields:
                    assert row.fields[name] == mine.fields[name], (path, name)


def test_block_sign_in_is_inverted(tmp_path):
    p = tmp_path / "entra.csv"
    p.write_text("version:v1.0\nName [displayName] Required,User name [userPrincipalName] Required,"
                 "Initial password [passwordProfile] Required,Block sign in (Yes/No) [accountEnabled] Required\n"
                 "Ann Lee,ann@contoso.com,,Yes\nBo Ek,bo@contoso.com,,No\n", encoding="utf-8")
    rows = validate_roster(load_roster(p)).rows
    assert [r.fields["accountEnabled"] for r in rows] == [False, True]


@pytest.mark.parametrize("name,message", [
    ("no-header.csv", "the roster is empty; it needs a header row and one row per user"),
    ("duplicate-header.csv", "the header 'surname' appears twice (columns B and D); rename or remove one"),
    ("same-field-twice.csv", "columns 'Last name' and 'surname' both mean surname; remove one"),
    ("missing-columns.csv", "required column(s) missing: displayName (or givenName and surname to derive it); "
                            "userPrincipalName (or givenName and surname to derive it). Add them, or map your "
                            "headers with --mapping"),
])
def test_roster_level_errors_exit_2_with_one_message(name, message):
    with pytest.raises(RosterError) as info:
        load_roster(DATA / name)
    assert info.value.detail == message
    code, out, err = run_cli("validate", str(DATA / name))
    assert (code, out, err) == (2, "", f"error: {DATA / name}: {message}\n")


def test_unknown_columns_are_kept_and_warned_once(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("givenName,surname,userPrincipalName,Badge,Desk\nA,B,a@contoso.com,7,D1\nC,D,c@contoso.com,8,\n")
    v = validate_roster(load_roster(p))
    assert [(i.row, i.code) for i in v.issues] == [(0, "unknown-column")]
    assert v.rows[0].extras == {"Badge": "7", "Desk": "D1"}


def test_exit_codes(tmp_path):
    code, _, err = run_cli("validate", str(SAMPLES / "roster.csv"), "--out", str(tmp_path / "i.csv"))
    assert code == 0 and "25 rows" in err
    code, out, _ = run_cli("validate", str(SAMPLES / "roster-with-errors.xlsx"), "--out", str(tmp_path / "e.csv"))
    assert code == 1 and "upn-dot-before-at" in out
    assert (tmp_path / "e.csv").read_text(encoding="utf-8-sig").startswith("file,row,column,severity,code,message")
    assert run_cli("validate", str(tmp_path / "missing.csv"))[0] == 2


@pytest.mark.parametrize("sample,mapping", [("hr-workday.csv", "mapping-workday.json"),
                                             ("hr-bamboohr.csv", "mapping-bamboohr.json")])
def test_hr_exports_with_mapping_examples(sample, mapping):
    roster = load_roster(SAMPLES / sample, mapping=ROOT / "templates" / mapping)
    v = validate_roster(roster)
    assert not v.issues
    first = v.rows[0]
    assert first.fields["employeeId"] == "00001"
    if "workday" in sample:
        assert first.upn == "ingrid.sondergaard@contoso.com" and first.fields["companyName"] == "Contoso"
        assert v.rows[1].manager == "ingrid.sondergaard@contoso.com"
    else:
        assert first.upn == "isondergaard@fabrikam.com" and first.fields["usageLocation"] == "US"


def test_templates_are_written_and_load(tmp_path):
    for name, extra in (("t.xlsx", ()), ("t.csv", ()), ("e.csv", ("--entra",))):
        assert run_cli("template", str(tmp_path / name), *extra)[0] == 0
        roster = load_roster(tmp_path / name)
        assert roster.rows == ()
    assert load_roster(tmp_path / "e.csv").kind == "entra-csv"
    for name in ("roster-template.xlsx", "roster-template.csv", "entra-bulk-create.csv"):
        assert load_roster(ROOT / "templates" / name).rows == ()
    assert run_cli("template", str(tmp_path / "x.xlsx"), "--entra")[0] == 2


def test_a_roster_replaced_while_it_is_read_is_refused(tmp_path):
    """The hash and the parse read the file separately: a file saved over meanwhile must not pass as either."""
    import os
    import threading

    path = tmp_path / "roster.csv"
    rows = "".join(f"{i:06d},Ann,Lee{i},ann.lee{i}@contoso.com\n" for i in range(60_000))
    versions = ["employeeId,givenName,surname,userPrincipalName\n" + rows,
                "employeeId,givenName,surname,userPrincipalName\n" + rows + "999999,Bo,Kim,bo.kim@contoso.com\n"]
    path.write_text(versions[0], encoding="utf-8")
    stop = threading.Event()

    def keep_saving() -> None:  # what an editor does: write a new file, then move it over the old one
        k = 0
        while not stop.is_set():
            k += 1
            temp = tmp_path / f"save{k % 2}.tmp"
            temp.write_text(versions[k % 2], encoding="utf-8")
            os.replace(temp, path)

    saver = threading.Thread(target=keep_saving)
    saver.start()
    try:
        with pytest.raises(RosterError, match="changed while it was being read; save and close it, then run again"):
            load_roster(path)
    finally:
        stop.set()
        saver.join()
    assert len(load_roster(path).row_numbers) in (60_000, 60_001)  # once saved, it reads
