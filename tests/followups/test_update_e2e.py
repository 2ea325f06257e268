"""``--existing update`` end to end against the sandbox: only what differs is PATCHed, the Updated sheet shows
old -> new per property, ``--dry-run`` shows the same diff and writes nothing, passwords only on request."""
from __future__ import annotations

import stat
import time
from pathlib import Path
from typing import Any

import openpyxl

from provisioning.exitcodes import ExitStatus

from .conftest import graph, precreate, read_results, write

HEADER = "userPrincipalName,displayName,jobTitle,department,usageLocation,password\n"


def _patches(sb: Any) -> int:
    return int(sb.stats().get("writes", 0))


def test_update_changes_only_what_differs(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(replication_lag_ms=300)
    same = precreate(sb, "same@contoso.com", "Same Person", jobTitle="Dev", department="R&D")
    moved = precreate(sb, "moved@contoso.com", "Moved Person", jobTitle="Dev", department="R&D")
    time.sleep(0.4)
    roster = write(tmp_path / "upd.csv", [
        "same@contoso.com,Same Person,Dev,R&D,,",          # 2 unchanged -> skipped
        "moved@contoso.com,Moved Person,Lead,Sales,GB,",   # 3 jobTitle, department, usageLocation differ
        "fresh@contoso.com,Fresh Person,Dev,,,",           # 4 created
    ], header=HEADER)
    writes = _patches(sb)
    code, out, err = cli(sb, "run", roster, "--existing", "update", "--dry-run", "--out", tmp_path / "dry")
    assert code == ExitStatus.OK, out + err
    assert _patches(sb) == writes  # the dry run wrote nothing
    assert "would update row 3 moved@contoso.com: jobTitle: 'Dev' -> 'Lead'" in out
    dry = read_results(tmp_path / "dry")
    assert [dry[r]["status"] for r in (2, 3, 4)] == ["would skip", "would update", "would create"]
    expected = [("department", "R&D", "Sales"), ("jobTitle", "Dev", "Lead"), ("usageLocation", None, "GB")]
    book = openpyxl.load_workbook(tmp_path / "dry" / "results.xlsx", read_only=True)
    lines = sorted((r[5], r[6], r[7]) for r in book["Updated"].iter_rows(min_row=2, values_only=True))
    assert lines == expected

    code, out, err = cli(sb, "run", roster, "--existing", "update", "--out", tmp_path / "live", "--no-progress")
    assert code == ExitStatus.OK, out + err
    live = read_results(tmp_path / "live")
    assert [live[r]["status"] for r in (2, 3, 4)] == ["skipped", "updated", "created"]
    assert "unchanged" in live[2]["message"]
    assert _patches(sb) - writes == 2  # one PATCH for the one user that differs, one POST for the new one
    book = openpyxl.load_workbook(tmp_path / "live" / "results.xlsx", read_only=True)
    rows = list(book["Updated"].iter_rows(min_row=2, values_only=True))
    assert sorted((r[0], r[2], r[5], r[6], r[7]) for r in rows) == [(3, "moved@contoso.com", *e) for e in expected]
    with graph(sb) as client:
        user = client.get(f"/users/{moved}", {"$select": "jobTitle,department,usageLocation,displayName"})
        assert (user["jobTitle"], user["department"], user["usageLocation"]) == ("Lead", "Sales", "GB")
        assert client.get(f"/users/{same}", {"$select": "jobTitle"})["jobTitle"] == "Dev"
    assert not (tmp_path / "live" / "passwords.csv").exists() or "moved@" not in \
        (tmp_path / "live" / "passwords.csv").read_text()

    # again: nothing differs any more -> no PATCH
    time.sleep(0.4)  # the user created above replicates (pre-flight finds it)
    writes = _patches(sb)
    code, out, err = cli(sb, "run", roster, "--existing", "update", "--out", tmp_path / "again", "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert {r["status"] for r in read_results(tmp_path / "again").values()} == {"skipped"}
    assert _patches(sb) == writes


def test_update_reset_passwords(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox_factory()
    precreate(sb, "pw@contoso.com", "Pw Person", jobTitle="Dev")
    roster = write(tmp_path / "pw.csv", ["pw@contoso.com,Pw Person,Dev,,,"], header=HEADER)
    code, out, err = cli(sb, "run", roster, "--existing", "update", "--reset-passwords", "--out", tmp_path / "r",
                         "--no-progress", "--yes")  # no terminal here: --yes confirms the resets
    assert code == ExitStatus.OK, out + err
    assert read_results(tmp_path / "r")[2]["status"] == "updated"
    pw_file = tmp_path / "r" / "passwords.csv"
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    assert "pw@contoso.com" in pw_file.read_text()


def test_reset_passwords_needs_update_mode(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    roster = write(tmp_path / "pw.csv", ["x@contoso.com,X,Dev,,,"], header=HEADER)
    code, out, err = cli(sandbox, "run", roster, "--reset-passwords")
    assert code == ExitStatus.USAGE and "--existing update" in err
