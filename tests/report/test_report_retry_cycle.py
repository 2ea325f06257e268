"""The full cycle against the sandbox over real HTTPS: run a roster with errors -> the user corrects the Failed and
Invalid sheets of results.xlsx -> `retry` -> every row created, none twice; and no password or secret in any file
of either run folder but passwords.csv."""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Any

import openpyxl

from provisioning.exitcodes import ExitStatus
from provisioning.report.run_workbook import write_run_workbook
from report_helpers import calamine_values, openpyxl_values

ROSTER = (
    "givenName,surname,displayName,userPrincipalName,password,employeeId,department\n"
    'Ada,Lovelace,Ada Lovelace,ada.lovelace@contoso.com,,E1,"=HYPERLINK(""http://x"")"\n'  # 2 invalid: formula
    "Alan,Turing,,alan.turing@contoso.com,Tur1ng!Machine-x,E2,Research\n"                  # 3 created
    "Bad,Domain,Bad Domain,bad.domain@unverified.contoso.net,,E3,Sales\n"                  # 4 invalid: domain
    "Weak,Pw,Weak Pw,weak.pw@contoso.com,abc,E4,Sales\n"                                   # 5 invalid: weak pw
    "Dup,Licate,Dup Licate,ada.lovelace@contoso.com,,E5,Sales\n"                           # 6 invalid: dup UPN
    "Name,Inpw,Name Inpw,name.inpw@contoso.com,Xname.inpw9!,E6,Ops\n"                      # 7 invalid: pw has name
    "Old,Timer,Old Timer,old.timer@contoso.com,,E7,Ops\n"                                  # 8 failed: exists
)
ROSTER_SECRETS = ("Tur1ng!Machine-x", "Xname.inpw9!")
TYPED_SECRETS = ("Str0ng!Typed-4x", "Other!Typed-7y")  # typed into the Invalid sheet for the retry


def _client(sb: Any) -> Any:
    from provisioning.api import make_client
    from provisioning.settings import load_settings

    return make_client(load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sb.env()))


def _tenant_upns(sb: Any) -> list[str]:
    with _client(sb) as client:
        return [u["userPrincipalName"].lower() for u in client.iter_users(select=("id", "userPrincipalName"))]


def _ensure_workbook(run_dir: Path) -> Path:
    """The run engine writes results.xlsx itself once integrated; until then, write it here."""
    path = run_dir / "results.xlsx"
    if not path.is_file():
        write_run_workbook(run_dir)
    return path


def _items(path: Path) -> dict[str, Any]:
    return {r[0]: r[1] for r in openpyxl_values(path, "Summary") if r[0]}


def _passwords(run_dir: Path) -> list[str]:
    path = run_dir / "passwords.csv"
    if not path.exists():
        return []
    assert (path.stat().st_mode & 0o777) == 0o600
    with open(path, newline="", encoding="utf-8") as fh:
        return [r["password"] for r in csv.DictReader(fh)]


def _file_texts(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run folder as bytes; xlsx parts decompressed."""
    found: dict[str, bytes] = {}
    for path in run_dir.rglob("*"):
        if not path.is_file() or path.name == "passwords.csv":
            continue
        data = path.read_bytes()
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                data += b"".join(z.read(n) for n in z.namelist())
        found[str(path)] = data
    return found


def test_run_edit_retry_creates_everyone_once_and_leaks_nothing(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    with _client(sandbox) as client:
        client.request("POST", "/users", json={
            "accountEnabled": True, "displayName": "Old Timer", "mailNickname": "old.timer",
            "userPrincipalName": "old.timer@contoso.com", "passwordProfile": {"password": "Pre-Existing-9x"}})
    roster = tmp_path / "staff.csv"
    roster.write_text(ROSTER, encoding="utf-8")

    code, out, err = cli(sandbox, "run", roster, "--out", "run1", "--existing", "fail", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, err
    run1 = tmp_path / "run1"
    book1 = _ensure_workbook(run1)
    headers = ["givenName", "surname", "displayName", "userPrincipalName", "password", "employeeId", "department"]
    lead_cols = ["Row", "User principal name", "Error code", "Why / what to do"]
    trail_cols = ["Status", "Request id", "Attempts"]

    # -- the first workbook, read by two independent readers
    assert [r[:3] for r in openpyxl_values(book1, "Created")[1:]] == [(3, "created", "alan.turing@contoso.com")]
    invalid = calamine_values(book1, "Invalid")
    assert invalid[0] == lead_cols + headers + trail_cols
    assert [(r[7], r[0]) for r in invalid[1:]] == [
        ("ada.lovelace@contoso.com", "2"), ("bad.domain@unverified.contoso.net", "4"), ("weak.pw@contoso.com", "5"),
        ("ada.lovelace@contoso.com", "6"), ("name.inpw@contoso.com", "7")]
    assert invalid[1][10] == '=HYPERLINK("http://x")' and (invalid[1][11], invalid[1][2]) == ("invalid",
                                                                                              "formula-cell")
    assert all(r[8] == "" for r in invalid[1:])  # roster passwords are never copied
    failed = calamine_values(book1, "Failed")
    assert [(r[7], r[11], r[0]) for r in failed[1:]] == [("old.timer@contoso.com", "failed", "8")]
    ws = openpyxl.load_workbook(book1)["Invalid"]
    assert ws["K2"].quotePrefix and ws["K2"].data_type == "s" and ws["K2"].fill.fill_type == "solid"
    assert ws["H3"].fill.fill_type == "solid"  # the unverified domain's UPN cell
    items = _items(book1)
    assert items["Retry failed and invalid rows"] == f"python provision.py retry {run1}"
    assert items["Retried from"] == "(not a retry)"
    assert openpyxl.load_workbook(book1)["Summary"]._charts

    # -- the user corrects the sheets, as they would in Excel
    wb = openpyxl.load_workbook(book1)
    inv = wb["Invalid"]
    inv["K2"] = "Research"                       # row 2: no formula
    inv["H3"] = "bad.domain@contoso.com"         # row 4: a verified domain
    inv["H5"] = "dup.licate@contoso.com"         # row 6: its own UPN
    inv["I4"] = TYPED_SECRETS[0]                 # row 5: a new password (the roster's "abc" is read again)
    inv["I6"] = TYPED_SECRETS[1]                 # row 7: a new password
    inv["D2"] = "fixed!"                         # scribbles in a result column are ignored
    inv["B3"] = "scribble@contoso.com"           # and in the run's UPN column (the roster's column counts)
    fail = wb["Failed"]
    fail["H2"] = "old.timer2@contoso.com"        # row 8: a free UPN
    fail.append([3, None, None, None, "Alan", "Turing", None, "alan.turing@contoso.com", None, "E2", "Research",
                 "created", None, None])  # a created row pasted back: must not be re-sent
    wb.save(book1)

    code, out, err = cli(sandbox, "retry", book1, "--out", "run2", "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert "not retried: Failed sheet row 3: roster row 3 was already created by the earlier run" in out
    run2 = tmp_path / "run2"
    book2 = _ensure_workbook(run2)
    created = openpyxl_values(book2, "Created")[1:]
    assert sorted(r[2] for r in created) == sorted([
        "old.timer2@contoso.com", "ada.lovelace@contoso.com", "bad.domain@contoso.com", "weak.pw@contoso.com",
        "dup.licate@contoso.com", "name.inpw@contoso.com"])
    assert all(r[1] == "created" for r in created)
    assert sorted((r[0], r[6]) for r in created) == [  # the original roster's row numbers
        (2, "generated: see passwords.csv"), (4, "generated: see passwords.csv"), (5, None),
        (6, "generated: see passwords.csv"), (7, None), (8, "generated: see passwords.csv")]
    for sheet in ("Skipped", "Failed", "Invalid"):
        assert len(openpyxl_values(book2, sheet)) == 1, sheet
    items2 = _items(book2)
    assert items2["Retried from"] == str(run1.resolve())
    assert "passwords.csv" in items2["Passwords"]

    # -- the tenant: everyone once, nobody twice
    upns = _tenant_upns(sandbox)
    assert len(upns) == len(set(upns))
    assert set(upns) >= {"old.timer@contoso.com", "alan.turing@contoso.com", "old.timer2@contoso.com",
                         "ada.lovelace@contoso.com", "bad.domain@contoso.com", "weak.pw@contoso.com",
                         "dup.licate@contoso.com", "name.inpw@contoso.com"}
    assert sandbox.stats()["users_created"] == 1 + 1 + 6

    # -- no password or secret anywhere but passwords.csv
    secrets = [*ROSTER_SECRETS, sandbox.client_secret, *_passwords(run1), *_passwords(run2)]
    assert len(_passwords(run2)) == 4
    # the passwords typed into the sheet are in that sheet (the user's own edit) and in the retry's roster (0600)
    assert (run2 / "retry-roster.xlsx").stat().st_mode & 0o777 == 0o600
    typed_in = {str(book1), str(run2 / "retry-roster.xlsx")}
    for name, data in {**_file_texts(run1), **_file_texts(run2)}.items():
        for secret in [*secrets, *(TYPED_SECRETS if name not in typed_in else ())]:
            assert secret.encode() not in data, (name, "holds a secret")

    # -- formula neutralisation in every CSV output
    for run_dir in (run1, run2):
        for path in run_dir.glob("*.csv"):
            with open(path, newline="", encoding="utf-8-sig") as fh:
                for line in csv.reader(fh):
                    assert not any(c[:1] in ("=", "+", "-", "@", "\t", "\r") for c in line), (path, line)


def test_dry_run_workbook(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    roster = tmp_path / "staff.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    code, out, err = cli(sandbox, "run", roster, "--out", "dry", "--dry-run", "--no-progress")
    assert code in (ExitStatus.OK, ExitStatus.ROWS_FAILED), err
    book = _ensure_workbook(tmp_path / "dry")
    assert {r[1] for r in openpyxl_values(book, "Created")[1:]} == {"would create"}
    assert _items(book)["Mode"] == "dry run: nothing was changed in the tenant"
    assert len(openpyxl_values(book, "Invalid")) == 6
    assert _tenant_upns(sandbox) == []
