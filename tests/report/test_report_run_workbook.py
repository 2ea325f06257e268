"""write_run_workbook: a run folder's journal and roster -> results.xlsx (no tenant needed)."""
from __future__ import annotations

import json
import zipfile

from provisioning.models import Issue, Severity
from provisioning.report.run_workbook import write_run_workbook
from provisioning.store.journal import Journal, Outcome, RowSeed, RowState
from report_helpers import calamine_values, openpyxl_values

ROSTER = ("Given,Family,Login,Initial password,Must change password,Cost\n"
          "Ann,Lee,ann@contoso.com,Sup3r-Secret!x,No,+100\n"
          "Bo,Ek,bo@contoso.com,,Yes,200\n"
          "Cy,Do,cy@contoso.com,,Yes,300\n"
          "Di,Ox,di@@contoso.com,,Yes,400\n")


def _run(tmp_path, *, dry_run=False, record_roster=True):
    """A run's journal as ``run`` writes it; ``record_roster=False``: as an earlier version wrote it (no cells)."""
    roster = tmp_path / "hr.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    mapping = tmp_path / "hr.json"
    mapping.write_text(json.dumps({"columns": {"Given": "givenName", "Family": "surname",
                                               "Login": "userPrincipalName", "Cost": "costCenter"}}))
    from provisioning.roster.reader import load_roster

    loaded = load_roster(roster, mapping=mapping)
    sha = loaded.sha256
    run = tmp_path / "run"
    run.mkdir()
    journal = Journal.create(run, {"roster_path": str(roster), "roster_sha256": sha, "mapping": str(mapping),
                                   "dry_run": dry_run, "command_line": "python provision.py --sandbox",
                                   "settings": {"tenant_id": "tid-1"}})
    bad = Issue(5, "Login", "upn-syntax", Severity.ERROR, "not a UPN")
    journal.add_rows([
        RowSeed(2, "ann@contoso.com", "create", RowState.PENDING, password_source="roster", display_name="Ann Lee"),
        RowSeed(3, "bo@contoso.com", "create", RowState.PENDING, password_source="generated"),
        RowSeed(4, "cy@contoso.com", "create", RowState.PENDING, password_source="generated"),
        RowSeed(5, "di@@contoso.com", "invalid", RowState.INVALID, issues=[bad]),
    ])
    if record_roster:
        journal.add_roster(loaded)
    journal.mark_sending([2, 3])
    journal.record(2, Outcome(RowState.CREATED, object_id="oid-ann", http_status=201))
    journal.record(3, Outcome(RowState.FAILED, http_status=400, error_code="Request_BadRequest",
                              message="-bad property", request_id="rid-3"))
    return run, journal


def test_journal_and_roster_to_workbook(tmp_path):
    run, journal = _run(tmp_path)
    with journal:
        path = write_run_workbook(run, journal=journal)
    assert openpyxl_values(path, "Created")[1][:7] == (2, "created", "ann@contoso.com", "Ann Lee", "oid-ann", None,
                                                       None)  # a roster password is not "generated"
    failed = calamine_values(path, "Failed")
    assert failed[0][4:10] == ["Given", "Family", "Login", "Initial password", "Must change password", "Cost"]
    # row 3 failed; row 4 was never sent (interrupted run): both are on Failed, none dropped
    assert failed[1:] == [
        ["3", "bo@contoso.com", "Request_BadRequest", "-bad property",
         "Bo", "Ek", "bo@contoso.com", "", "Yes", "200", "failed", "rid-3", "1"],
        ["4", "cy@contoso.com", "", "", "Cy", "Do", "cy@contoso.com", "", "Yes", "300", "not sent", "", ""]]
    invalid = calamine_values(path, "Invalid")
    assert invalid[1] == ["5", "di@@contoso.com", "upn-syntax", "Login: not a UPN",
                          "Di", "Ox", "di@@contoso.com", "", "Yes", "400", "invalid", "", ""]
    items = {r[0]: r[1] for r in openpyxl_values(path, "Summary") if r[0]}
    assert items["Tenant"] == "tid-1"
    assert items["Retry failed and invalid rows"] == f"python provision.py --sandbox retry {run}"
    assert items["Resume if interrupted"] == f"python provision.py --sandbox resume {run}"
    assert items["Passwords"].startswith("No passwords were generated.")
    summary = openpyxl_values(path, "Summary")
    at = summary.index(("Error code", "Rows"))
    assert summary[at + 1:] == [("Request_BadRequest", 1), ("upn-syntax", 1)]
    with zipfile.ZipFile(path) as z:
        assert b"Sup3r-Secret!x" not in b"".join(z.read(n) for n in z.namelist())


def test_roster_gone_still_reports_every_row(tmp_path):
    run, journal = _run(tmp_path, record_roster=False)
    journal.close()
    (tmp_path / "hr.csv").unlink()
    path = write_run_workbook(run)
    assert [[r[4], r[2]] for r in calamine_values(path, "Failed")] == [
        ["Status", "Error code"], ["failed", "Request_BadRequest"], ["not sent", ""]]
