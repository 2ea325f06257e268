"""`retry` end to end against the sandbox: a person stays bound to one account through retries of retries, a
roster password is never replaced silently, an Excel error typed into a sheet is refused, the roster row numbers
stay those of the original file in every sheet, duplicates are checked against what earlier runs created, and
the input is named clearly (a renamed sheet, a sheet saved as CSV)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd

from provisioning.exitcodes import ExitStatus
from provisioning.store.journal import Journal

from .conftest import graph, precreate, read_results, write

ROLES = ("User.ReadWrite.All", "GroupMember.ReadWrite.All", "Directory.Read.All", "Organization.Read.All",
         "Domain.Read.All")
# Failed/Invalid sheets: Row, User principal name, Error code, Why / what to do (A..D), then the roster's columns E..N
# (givenName, surname, displayName, userPrincipalName, password, usageLocation, jobTitle, groups, licenses,
# manager), then Status, Request id, Attempts (O..Q)


def _users(sb: Any) -> dict[str, dict[str, Any]]:
    with graph(sb) as client:
        return {u["userPrincipalName"].lower(): u for u in client.iter_users(
            select=("id", "userPrincipalName", "givenName", "surname", "employeeId"))}


def _edit(book: Path, sheet: str, cells: dict[str, Any]) -> None:
    wb = openpyxl.load_workbook(book)
    for ref, value in cells.items():
        wb[sheet][ref] = value
    wb.save(book)


def _sheet(book: Path, sheet: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in openpyxl.load_workbook(book)[sheet].iter_rows(min_row=2, values_only=True)]


def test_created_row_with_an_edited_surname_stays_bound_to_its_account(sandbox_factory: Any, cli: Any,
                                                                       tmp_path: Path) -> None:
    sb = sandbox_factory(roles=ROLES)  # no role to add members to a role-assignable group: the follow-up fails
    roster = write(tmp_path / "staff.csv", ["Bo,Ek,,,,US,,Helpdesk Admins,,"])
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "r1", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    first = read_results(tmp_path / "r1")[2]
    assert (first["status"], first["userPrincipalName"]) == ("created, follow-up failed", "bo.ek@contoso.com")
    book = tmp_path / "r1" / "results.xlsx"
    assert _sheet(book, "Failed")[0][4:6] == ("Bo", "Ek")
    _edit(book, "Failed", {"F2": "Eck"})  # the administrator corrects the surname too

    code, out, err = cli(sb, "retry", book, "--out", tmp_path / "r2", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    row = read_results(tmp_path / "r2")[2]
    assert (row["status"], row["errorCode"]) == ("invalid", "retry-bound-edited")
    assert row["message"] == (f"row 2 was created as bo.ek@contoso.com by the run {(tmp_path / 'r1').resolve()}; "
                              "its surname was edited; use --existing update to change the account, or undo the "
                              "edit")
    assert [(u["id"], u["surname"]) for u in _users(sb).values() if u["givenName"] == "Bo"] == [
        (first["objectId"], "Ek")]

    # a retry of that retry, with --existing update, from a copy of the workbook mailed elsewhere (its Summary
    # names the run folder): the surname is PATCHed on the account created in r1
    copy = tmp_path / "mail" / "results.xlsx"
    copy.parent.mkdir()
    copy.write_bytes((tmp_path / "r2" / "results.xlsx").read_bytes())
    code, out, err = cli(sb, "retry", copy, "--existing", "update", "--out", tmp_path / "r3", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err  # the group follow-up still lacks its role
    row = read_results(tmp_path / "r3")[2]
    assert (row["status"], row["objectId"], row["userPrincipalName"]) == (
        "updated, follow-up failed", first["objectId"], "bo.ek@contoso.com")
    assert [(u["id"], u["userPrincipalName"], u["surname"]) for u in _users(sb).values()
            if u["givenName"] == "Bo"] == [(first["objectId"], "bo.ek@contoso.com", "Eck")]
    with Journal.open(tmp_path / "r3") as journal:
        assert journal.meta()["retry"]["parent_run"] == str((tmp_path / "r2").resolve())
        bound = journal.bindings()[2]
        assert (bound.object_id, bound.upn, bound.run) == (first["objectId"], "bo.ek@contoso.com",
                                                           str((tmp_path / "r1").resolve()))

    # a third retry (default --existing skip): the surname PATCHed in r3 is no edit any more; the follow-up goes
    sb.set_knobs(roles=ROLES + ("RoleManagement.ReadWrite.Directory",))
    code, out, err = cli(sb, "retry", tmp_path / "r3", "--existing", "skip", "--out", tmp_path / "r4",
                         "--no-progress")
    assert code == ExitStatus.OK, out + err
    row = read_results(tmp_path / "r4")[2]
    assert (row["status"], row["objectId"], row["followUps"]) == (
        "skipped", first["objectId"], "group Helpdesk Admins: done")
    assert sb.stats()["users_created"] == 1


def test_a_roster_password_is_read_again_or_the_row_says_it_is_lost(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    lines = ["Pia,Lund,Pia Lund,pia.lund@contoso.com,Roster!Pass-1x,XX,,,,",  # 2: invalid usageLocation
             "Ole,Berg,Ole Berg,ole.berg@contoso.com,Roster!Pass-2y,XX,,,,"]  # 3: the same
    roster = write(tmp_path / "staff.csv", lines)
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "r1", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    book = tmp_path / "r1" / "results.xlsx"
    assert [r[8] for r in _sheet(book, "Invalid")] == [None, None]  # passwords are never copied into a report
    _edit(book, "Invalid", {"J2": "SE", "J3": "SE"})

    # the roster is unchanged: row 2's password is the roster's, not a generated one
    code, out, err = cli(sandbox, "retry", book, "--out", tmp_path / "r2", "--no-progress")
    assert code == ExitStatus.OK, out + err
    with Journal.open(tmp_path / "r2") as journal:
        assert {r.row: (r.state.value, r.password_source) for r in journal.rows()} == {
            2: ("created", "roster"), 3: ("created", "roster")}
    assert not (tmp_path / "r2" / "passwords.csv").exists()

    # the roster changed since: a row whose cell is still empty is refused, one filled in again goes ahead
    roster2 = write(tmp_path / "staff2.csv", ["Ida,Holm,Ida Holm,ida.holm@contoso.com,Roster!Pass-3z,XX,,,,",
                                              "Eva,Dahl,Eva Dahl,eva.dahl@contoso.com,Roster!Pass-4w,XX,,,,"])
    code, out, err = cli(sandbox, "run", roster2, "--out", tmp_path / "r3", "--no-progress")
    book = tmp_path / "r3" / "results.xlsx"
    _edit(book, "Invalid", {"J2": "SE", "J3": "SE", "I3": "Typed!Again-5v"})
    roster2.write_text(roster2.read_text(encoding="utf-8") + "New,Row,New Row,new.row@contoso.com,,SE,,,,\n",
                       encoding="utf-8")
    code, out, err = cli(sandbox, "retry", book, "--out", tmp_path / "r4", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    results = read_results(tmp_path / "r4")
    assert (results[2]["status"], results[2]["errorCode"]) == ("invalid", "retry-password-lost")
    assert results[2]["message"] == (
        f"password: staff2.csv gave row 2 a password, which reports never copy, and staff2.csv changed since the "
        f"run {tmp_path / 'r3'}, so it cannot be read again; type the password again in the sheet, or retry this "
        f"run with the cell left empty to have one generated")
    assert results[3]["status"] == "created"
    with Journal.open(tmp_path / "r4") as journal:
        assert journal.get(3).password_source == "roster"
    assert "ida.holm@contoso.com" not in _users(sandbox)


def test_an_excel_error_typed_into_the_sheet_is_refused_not_sent(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    roster = write(tmp_path / "staff.csv", ["Lea,Moe,Lea Moe,lea.moe@contoso.com,,XX,Clerk,,,"])
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "r1", "--no-progress")
    book = tmp_path / "r1" / "results.xlsx"
    _edit(book, "Invalid", {"J2": "SE", "K2": "#N/A"})  # openpyxl writes "#N/A" as an error cell, as Excel would
    assert openpyxl.load_workbook(book)["Invalid"]["K2"].data_type == "e"

    code, out, err = cli(sandbox, "retry", book, "--out", tmp_path / "r2", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    row = read_results(tmp_path / "r2")[2]
    assert (row["status"], row["errorCode"], row["message"]) == (
        "invalid", "excel-error", "jobTitle: the cell shows the Excel error #N/A instead of a value; type the value")
    assert _users(sandbox) == {} and sandbox.stats().get("users_created", 0) == 0
    # the retry's Invalid sheet keeps it an error value: fed back unedited, it is refused again
    assert openpyxl.load_workbook(tmp_path / "r2" / "results.xlsx")["Invalid"]["K2"].data_type == "e"
    code, out, err = cli(sandbox, "retry", tmp_path / "r2", "--out", tmp_path / "r3", "--no-progress")
    assert read_results(tmp_path / "r3")[2]["errorCode"] == "excel-error"


def test_roster_row_numbers_are_the_original_files_through_retries_of_retries(sandbox: Any, cli: Any,
                                                                                tmp_path: Path) -> None:
    precreate(sandbox, "taken@contoso.com", "Taken")
    roster = write(tmp_path / "staff.csv", [
        "Al,One,Al One,al.one@contoso.com,,SE,,,,",      # 2 created
        "Bea,Two,Bea Two,bea.two@contoso.com,,XX,,,,",   # 3 invalid
        "Cai,Three,Cai Three,cai@contoso.com,,SE,,,,",   # 4 created
        "Di,Four,Di Four,di.four@contoso.com,,XX,,,,",   # 5 invalid
        "Ed,Five,Ed Five,ed.five@contoso.com,,XX,,,,",   # 6 invalid
        "Fay,Six,Fay Six,taken@contoso.com,,SE,,,,",     # 7 failed: the UPN is taken (--existing fail)
    ])
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "r1", "--existing", "fail", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    _edit(tmp_path / "r1" / "results.xlsx", "Invalid", {"J3": "SE"})  # fixes roster row 5
    code, out, err = cli(sandbox, "retry", tmp_path / "r1", "--out", tmp_path / "r2", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    book2 = tmp_path / "r2" / "results.xlsx"
    assert [(r[0], r[2]) for r in _sheet(book2, "Created")] == [(5, "di.four@contoso.com")]
    assert [(r[7], r[0]) for r in _sheet(book2, "Invalid")] == [("bea.two@contoso.com", 3),
                                                                ("ed.five@contoso.com", 6)]
    assert [(r[7], r[0]) for r in _sheet(book2, "Failed")] == [("taken@contoso.com", 7)]
    assert sorted(read_results(tmp_path / "r2")) == [3, 5, 6, 7]

    # fixes roster row 6, and adds a person by hand (no Roster row): it gets the next number after the file's
    _edit(book2, "Invalid", {"J3": "SE", "E4": "Gus", "F4": "Hu", "G4": "Gus Hu", "H4": "gus.hu@contoso.com",
                             "J4": "SE"})
    code, out, err = cli(sandbox, "retry", book2, "--out", tmp_path / "r3", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    assert "note: Invalid sheet row 4 (added by hand) is retried as roster row 8\n" in out
    book3 = tmp_path / "r3" / "results.xlsx"
    assert [(r[0], r[2]) for r in _sheet(book3, "Created")] == [(6, "ed.five@contoso.com"),
                                                                (8, "gus.hu@contoso.com")]
    assert [(r[7], r[0]) for r in _sheet(book3, "Invalid")] == [("bea.two@contoso.com", 3)]
    assert [(r[7], r[0]) for r in _sheet(book3, "Failed")] == [("taken@contoso.com", 7)]
    results = read_results(tmp_path / "r3")
    assert sorted(results) == [3, 6, 7, 8]
    assert results[3]["message"] == (
        "usageLocation 'XX': not a two-letter ISO 3166 country code; use e.g. US, GB, DE")


def test_duplicates_are_checked_against_the_rows_earlier_runs_created(sandbox: Any, cli: Any,
                                                                      tmp_path: Path) -> None:
    header = "givenName,surname,displayName,userPrincipalName,employeeId,usageLocation\n"
    roster = write(tmp_path / "staff.csv", [
        "Ann,Lee,Ann Lee,ann@contoso.com,E1,SE",  # 2 created
        "Ben,Ray,Ben Ray,ben@contoso.com,E1,SE",  # 3 invalid: employeeId of row 2
        "Cy,Do,Cy Do,cy@contoso.com,E3,SE",       # 4 created
        "Cyd,Do,Cyd Do,cy@contoso.com,E4,SE",     # 5 invalid: UPN of row 4
        "Eli,Fa,Eli Fa,eli@contoso.com,E6,XX",    # 6 invalid: usageLocation
        "Gil,Ha,Gil Ha,gil@contoso.com,E6,XX",    # 7 invalid: usageLocation, employeeId of row 6
    ], header=header)
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "r1", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    assert sorted(_users(sandbox)) == ["ann@contoso.com", "cy@contoso.com"]
    book = tmp_path / "r1" / "results.xlsx"
    assert [r[0] for r in _sheet(book, "Invalid")] == [3, 5, 6, 7]
    _edit(book, "Invalid", {"J4": "SE", "J5": "SE"})  # rows 6 and 7: a country, the shared employeeId left

    code, out, err = cli(sandbox, "retry", book, "--out", tmp_path / "r2", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    results = read_results(tmp_path / "r2")
    r1 = (tmp_path / "r1").resolve()
    assert {n: (r["status"], r["errorCode"]) for n, r in results.items()} == {
        3: ("invalid", "duplicate-employee-id"), 5: ("invalid", "duplicate-upn"), 6: ("created", ""),
        7: ("invalid", "duplicate-employee-id")}
    assert results[3]["message"] == (f"employeeId 'E1' is already used by roster row 2, created as ann@contoso.com "
                                     f"by the run {r1}; each user needs their own")
    assert results[5]["message"] == (f"userPrincipalName 'cy@contoso.com' is already used by roster row 4, created "
                                     f"as cy@contoso.com by the run {r1}; each user needs their own")
    assert results[7]["message"] == "employeeId 'E6' is already used in row 6; each user needs their own"
    assert sorted(u["employeeId"] for u in _users(sandbox).values()) == ["E1", "E3", "E6"]

    # the first workbook retried again, without row 6 (created by r2, which r1 does not know of): the tenant has E6
    wb = openpyxl.load_workbook(book)
    wb["Invalid"].delete_rows(4)
    wb.save(book)
    code, out, err = cli(sandbox, "retry", book, "--out", tmp_path / "r3", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    results = read_results(tmp_path / "r3")
    assert {n: (r["status"], r["errorCode"]) for n, r in results.items()} == {
        3: ("invalid", "duplicate-employee-id"), 5: ("invalid", "duplicate-upn"),
        7: ("invalid", "duplicate-employee-id")}
    assert results[7]["message"] == ("employeeId 'E6' already belongs to eli@contoso.com in the tenant; each user "
                                     "needs their own")
    assert sorted(u["employeeId"] for u in _users(sandbox).values()) == ["E1", "E3", "E6"]


def test_a_workbook_without_the_sheets_names_what_it_found(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    roster = write(tmp_path / "staff.csv", ["Lea,Moe,Lea Moe,lea.moe@contoso.com,,XX,,,,"])
    cli(sandbox, "run", roster, "--out", tmp_path / "r1", "--no-progress")
    book = tmp_path / "r1" / "results.xlsx"
    wb = openpyxl.load_workbook(book)
    del wb["Failed"]
    wb["Invalid"].title = "Sheet1"
    wb.save(book)
    code, out, err = cli(sandbox, "retry", book, "--out", tmp_path / "r2", "--no-progress")
    assert (code, err) == (ExitStatus.USAGE, f"error: {book} has no sheet Failed or Invalid (found: Summary, "
                                             "Created, Updated, Skipped, Sheet1); retry reads the rows from those "
                                             "two sheets\n")
    assert not (tmp_path / "r2").exists()


def test_a_sheet_saved_as_csv_is_retried(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    roster = write(tmp_path / "staff.csv", ["Lea,Moe,Lea Moe,lea.moe@contoso.com,,XX,,,,",
                                            "Max,Nu,Max Nu,max.nu@contoso.com,,SE,,,,"])
    cli(sandbox, "run", roster, "--out", tmp_path / "r1", "--no-progress")
    # Excel's "Save As CSV" of the Invalid sheet, corrected, saved in the run folder
    frame = pd.read_excel(tmp_path / "r1" / "results.xlsx", sheet_name="Invalid", dtype=str, engine="calamine",
                          keep_default_na=False, na_filter=False)
    frame.loc[0, "usageLocation"] = "FR"
    saved = tmp_path / "r1" / "Invalid.csv"
    frame.to_csv(saved, index=False, quoting=csv.QUOTE_MINIMAL)
    code, out, err = cli(sandbox, "retry", saved, "--out", tmp_path / "r2", "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert {n: (r["status"], r["userPrincipalName"]) for n, r in read_results(tmp_path / "r2").items()} == {
        2: ("created", "lea.moe@contoso.com")}

    plain = tmp_path / "plain.csv"
    frame.drop(columns=["Row"]).to_csv(plain, index=False)
    code, out, err = cli(sandbox, "retry", plain, "--out", tmp_path / "r3", "--no-progress")
    assert (code, err) == (ExitStatus.USAGE, f"error: {plain}: the header does not start with Row, User principal "
                                             "name, Error code, Why / what to do (and has no 'Roster row' column), "
                                             "so this is not a Failed or Invalid sheet saved as CSV; give retry the "
                                             "run folder or its results.xlsx, or save the sheet again with all its "
                                             "columns\n")


def test_an_edited_upn_of_a_created_row_renames_its_account_only_with_existing_update(
        sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(roles=ROLES)
    roster = write(tmp_path / "staff.csv", ["Cy,Do,Cy Do,cy.do@contoso.com,,US,,Helpdesk Admins,,"])
    cli(sb, "run", roster, "--out", tmp_path / "r1", "--no-progress")
    first = read_results(tmp_path / "r1")[2]
    assert first["status"] == "created, follow-up failed"
    _edit(tmp_path / "r1" / "results.xlsx", "Failed", {"H2": "cy.doe@contoso.com"})
    sb.set_knobs(roles=ROLES + ("RoleManagement.ReadWrite.Directory",))

    code, out, err = cli(sb, "retry", tmp_path / "r1", "--out", tmp_path / "r2", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    row = read_results(tmp_path / "r2")[2]
    assert (row["errorCode"], row["message"]) == ("retry-bound-edited", (
        f"row 2 was created as cy.do@contoso.com by the run {(tmp_path / 'r1').resolve()}; its userPrincipalName "
        "was edited; use --existing update to change the account, or undo the edit"))

    code, out, err = cli(sb, "retry", tmp_path / "r1", "--existing", "update", "--out", tmp_path / "r3",
                         "--no-progress")
    assert code == ExitStatus.OK, out + err
    row = read_results(tmp_path / "r3")[2]
    assert (row["status"], row["objectId"], row["userPrincipalName"], row["followUps"]) == (
        "updated", first["objectId"], "cy.doe@contoso.com", "group Helpdesk Admins: done")
    assert {u: v["id"] for u, v in _users(sb).items()} == {"cy.doe@contoso.com": first["objectId"]}
    assert sb.stats()["users_created"] == 1


def test_a_created_account_deleted_since_is_not_created_again(sandbox_factory: Any, cli: Any,
                                                              tmp_path: Path) -> None:
    sb = sandbox_factory(roles=ROLES)
    roster = write(tmp_path / "staff.csv", ["Bo,Ek,,,,US,,Helpdesk Admins,,"])
    cli(sb, "run", roster, "--out", tmp_path / "r1", "--no-progress")
    first = read_results(tmp_path / "r1")[2]
    sb.reset()  # the tenant loses every user (the sandbox has no DELETE /users)
    code, out, err = cli(sb, "retry", tmp_path / "r1", "--out", tmp_path / "r2", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    row = read_results(tmp_path / "r2")[2]
    assert (row["status"], row["errorCode"], row["message"]) == ("invalid", "retry-bound-missing", (
        f"row 2 was created as bo.ek@contoso.com (object id {first['objectId']}) by the run "
        f"{(tmp_path / 'r1').resolve()}, but the tenant has no such user now; restore it from Deleted users and "
        "retry again (a new account is not created for a row that had one)"))
    assert _users(sb) == {} and sb.stats().get("users_created", 0) == 0


def test_a_formula_without_a_value_left_empty_in_the_sheet_is_not_sent_without_a_word(sandbox: Any, cli: Any,
                                                                                       tmp_path: Path) -> None:
    """The roster's jobTitle was a formula nobody calculated; the Invalid sheet can only show it empty. An unedited
    retry must not create the user without the jobTitle the administrator meant to give."""
    roster = tmp_path / "staff.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["givenName", "surname", "usageLocation", "jobTitle"])
    ws.append(["Fo", "Rmula", "US", '=UPPER("tester")'])  # openpyxl saves the formula with no calculated value
    ws.append(["Ty", "Ped", "US", '=UPPER("dev")'])
    wb.save(roster)
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "r1", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    assert [r["errorCode"] for r in read_results(tmp_path / "r1").values()] == ["formula-no-value"] * 2
    book = tmp_path / "r1" / "results.xlsx"
    assert [r[7] for r in _sheet(book, "Invalid")] == [None, None]  # nothing to show: the value was never there
    _edit(book, "Invalid", {"H3": "Developer"})  # the administrator types one of them

    code, out, err = cli(sandbox, "retry", book, "--out", tmp_path / "r2", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    results = read_results(tmp_path / "r2")
    assert (results[2]["status"], results[2]["errorCode"]) == ("invalid", "retry-formula-empty")
    assert results[2]["message"] == ("jobTitle: the roster's cell held a formula whose value was never calculated "
                                     "(or an Excel error), so the report's cell is empty; type the value in the "
                                     "sheet, or retry again with it left empty on purpose")
    assert results[3]["status"] == "created"
    users = _users(sandbox)
    assert "ty.ped@contoso.com" in users and "fo.rmula@contoso.com" not in users

    code, out, err = cli(sandbox, "retry", tmp_path / "r2", "--out", tmp_path / "r3", "--no-progress")
    assert code == ExitStatus.OK, out + err  # left empty a second time: on purpose
    assert read_results(tmp_path / "r3")[2]["status"] == "created"
    with graph(sandbox) as client:
        assert client.get_user("fo.rmula@contoso.com", select=("jobTitle",)).get("jobTitle") is None
