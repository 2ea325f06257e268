"""Cells as typed, end to end against the sandbox: a formula behind blanks and arithmetic in a phone column never
reach the tenant; ``export-users`` to CSV then ``run --existing update`` with that file PATCHes nothing (Excel's
text prefix ``'+1 555 0100`` is read as the text after it); ``--encoding`` is used and kept in the journal."""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import openpyxl

from provisioning.exitcodes import ExitStatus
from provisioning.store.journal import Journal

from .conftest import graph, precreate, read_results, write

HEADER = "givenName,surname,userPrincipalName,mobilePhone,businessPhones,jobTitle\n"


def _users(sb: Any) -> dict[str, dict[str, Any]]:
    with graph(sb) as client:
        return {u["userPrincipalName"]: u for u in client.iter_users(
            select=("userPrincipalName", "displayName", "givenName", "mobilePhone", "businessPhones", "jobTitle"))}


def test_formulas_behind_blanks_and_arithmetic_phones_are_not_sent(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    before = set(_users(sandbox))
    roster = write(tmp_path / "r.csv", [
        " =1+1,Lee,ann.lee@contoso.com,,,",                   # 2 formula behind a blank
        "Bo,Ek,bo.ek@contoso.com,,,\u00a0=HYPERLINK(\"x\")",  # 3 behind a no-break space
        "Cy,Do,cy.do@contoso.com,+1+1,,",                     # 4 arithmetic, not a phone number
        "Di,Fo,di.fo@contoso.com,,-2+3,",                     # 5
        "Ed,Gu,ed.gu@contoso.com,\u3000+1 555 0100,555.0100 x7,\u200bDev",  # 6 fine once trimmed
        "Total: 5 employees,,,,,",                            # 7 a footer line
    ], header=HEADER)
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    results = read_results(tmp_path / "run")
    assert {r: results[r]["status"] for r in range(2, 8)} == {2: "invalid", 3: "invalid", 4: "invalid",
                                                              5: "invalid", 6: "created", 7: "invalid"}
    users = _users(sandbox)
    assert set(users) - before == {"ed.gu@contoso.com"}
    ed = users["ed.gu@contoso.com"]
    assert (ed["mobilePhone"], ed["businessPhones"], ed["jobTitle"]) == ("+1 555 0100", ["555.0100 x7"], "Dev")


def test_export_then_update_patches_no_phone_number(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(replication_lag_ms=0)
    precreate(sb, "ann.obrien@contoso.com", "Ann O'Brien", givenName="Ann", surname="O'Brien",
              mobilePhone="+1 555 0100", businessPhones=["+1 555 0101"], jobTitle="Lead")
    precreate(sb, "bo.ek@contoso.com", "Bo Ek", givenName="Bo", surname="Ek", mobilePhone="+44 20 7946 0958",
              businessPhones=["+49 30 1234-5"], jobTitle="Dev")
    time.sleep(0.1)
    export = tmp_path / "users.csv"
    code, out, err = cli(sb, "export-users", export)
    assert code == ExitStatus.OK, out + err
    rows = {r["userPrincipalName"]: r for r in csv.DictReader(export.open(encoding="utf-8-sig"))}
    assert rows["ann.obrien@contoso.com"]["mobilePhone"] == "'+1 555 0100"  # neutralised for Excel on the way out
    writes = int(sb.stats().get("writes", 0))
    code, out, err = cli(sb, "run", export, "--existing", "update", "--out", tmp_path / "upd", "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert int(sb.stats().get("writes", 0)) == writes  # not one PATCH
    book = openpyxl.load_workbook(tmp_path / "upd" / "results.xlsx", read_only=True)
    assert list(book["Updated"].iter_rows(min_row=2, values_only=True)) == []
    results = {r["userPrincipalName"]: r for r in read_results(tmp_path / "upd").values()}
    assert results["ann.obrien@contoso.com"]["status"] == "skipped"
    assert results["bo.ek@contoso.com"]["status"] == "skipped"
    users = _users(sb)
    assert (users["ann.obrien@contoso.com"]["mobilePhone"], users["ann.obrien@contoso.com"]["businessPhones"]) == (
        "+1 555 0100", ["+1 555 0101"])


def test_run_with_encoding_creates_the_names_as_written_and_keeps_it(sandbox: Any, cli: Any,
                                                                     tmp_path: Path) -> None:
    roster = tmp_path / "cz.csv"
    roster.write_bytes("givenName,surname,userPrincipalName,usageLocation\n"
                       "Antonín,Dvořák,antonin.dvorak@contoso.com,CZ\n"
                       "Leoš,Janáček,leos.janacek@contoso.com,XX\n".encode("cp1250"))
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "refused", "--no-progress")
    assert code == ExitStatus.USAGE and "--encoding cp1252 or --encoding cp1250" in err
    code, out, err = cli(sandbox, "run", roster, "--encoding", "cp1250", "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err  # row 3: usageLocation XX
    assert _users(sandbox)["antonin.dvorak@contoso.com"]["displayName"] == "Antonín Dvořák"
    with Journal.open(tmp_path / "run") as journal:
        assert journal.meta()["encoding"] == "cp1250"
    # the report re-reads the roster the same way: the Invalid sheet shows the row as written
    book = openpyxl.load_workbook(tmp_path / "run" / "results.xlsx", read_only=True)
    invalid = list(book["Invalid"].iter_rows(values_only=True))
    assert invalid[1][4:6] == ("Leoš", "Janáček"), invalid


def test_resume_rereads_the_roster_in_the_runs_encoding(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    roster = tmp_path / "cz.csv"
    roster.write_bytes("givenName,surname,userPrincipalName\nAntonín,Dvořák,antonin.dvorak@contoso.com\n"
                       "Leoš,Janáček,leos.janacek@contoso.com\n".encode("cp1250"))
    code, out, err = cli(sandbox, "run", roster, "--encoding", "cp1250", "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    # as if the run had been killed with row 3 sent but unanswered: resume re-reads the roster (for its rows'
    # passwords) and looks the row up; it can only read the roster as the run did
    with Journal.open(tmp_path / "run") as journal, journal.transaction() as cur:
        cur.execute("UPDATE rows SET state='unknown', object_id='' WHERE row=3")
    code, out, err = cli(sandbox, "resume", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert read_results(tmp_path / "run")[3]["status"] == "created"
    assert _users(sandbox)["leos.janacek@contoso.com"]["displayName"] == "Leoš Janáček"
