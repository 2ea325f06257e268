"""The report is built from the journal alone: one read of it at the end of a session, the roster never re-read."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from provisioning.exitcodes import ExitStatus
from provisioning.report.run_workbook import write_run_workbook
from provisioning.store.journal import Journal
from report_helpers import calamine_values

HEADER = "Given name,Surname,userPrincipalName,Initial password,Cost\n"
ROSTER = (HEADER + "Ann,Lee,ann.lee@contoso.com,,100\n"
          "Bo,Ek,bo.ek@@contoso.com,Secret-Pw-99x,200\n")  # row 3 is invalid (its UPN)


def _results_status(run: Path) -> dict[str, str]:
    with open(run / "results.csv", encoding="utf-8-sig", newline="") as fh:
        return {r["row"]: r["status"] for r in csv.DictReader(fh)}


@pytest.mark.parametrize("change", ["deleted", "edited"])
def test_report_keeps_the_original_cells_after_the_roster_changed(sandbox: Any, cli: Any, tmp_path: Path,
                                                                  change: str) -> None:
    roster = tmp_path / "staff.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    if change == "deleted":
        roster.unlink()
    else:
        roster.write_text(HEADER + "Xa,Yb,xa@contoso.com,,1\nZz,Qq,zz@contoso.com,,2\n", encoding="utf-8")
    (tmp_path / "run" / "results.xlsx").unlink()
    write_run_workbook(tmp_path / "run")
    invalid = calamine_values(tmp_path / "run" / "results.xlsx", "Invalid")
    assert invalid[0][4:9] == ["Given name", "Surname", "userPrincipalName", "Initial password", "Cost"]
    # the original cells, the password column blank (the journal never holds it)
    assert invalid[1][4:10] + [invalid[1][2]] == ["Bo", "Ek", "bo.ek@@contoso.com", "", "200", "invalid",
                                                  "upn-at-sign"]
    with Journal.open(tmp_path / "run") as journal:
        snapshot = journal.snapshot()
    assert snapshot.headers == ("Given name", "Surname", "userPrincipalName", "Initial password", "Cost")
    assert snapshot.cells == {2: ("Ann", "Lee", "ann.lee@contoso.com", "", "100"),
                              3: ("Bo", "Ek", "bo.ek@@contoso.com", "", "200")}
    assert b"Secret-Pw-99x" not in (tmp_path / "run" / "journal.sqlite").read_bytes()


def test_the_reports_come_from_one_journal_read_without_the_roster(sandbox: Any, cli: Any, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    roster = tmp_path / "staff.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    reads: list[str] = []
    real_snapshot = Journal.snapshot

    def snapshot(self: Journal) -> Any:
        roster.unlink()  # from here on, the roster file is gone: the reports must not need it
        reads.append("snapshot")
        return real_snapshot(self)

    def spying(name: str) -> Any:
        real = getattr(Journal, name)

        def spy(self: Journal, *args: Any, **kwargs: Any) -> Any:
            if reads:  # a read of the journal after the reports' one read
                reads.append(name)
            return real(self, *args, **kwargs)

        return spy

    monkeypatch.setattr(Journal, "snapshot", snapshot)
    for name in ("rows", "issues", "followups", "changes", "meta", "followup_view"):
        monkeypatch.setattr(Journal, name, spying(name))
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    assert reads == ["snapshot"]
    assert _results_status(tmp_path / "run") == {"2": "created", "3": "invalid"}
    invalid = calamine_values(tmp_path / "run" / "results.xlsx", "Invalid")
    assert invalid[1][4:9] == ["Bo", "Ek", "bo.ek@@contoso.com", "", "200"]
