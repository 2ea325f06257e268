"""``--existing fail``: a row whose user already exists is failed with an error code, in results.csv and on the
Failed sheet (it was empty)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from provisioning.exitcodes import ExitStatus

from .conftest import read_results, write_roster


def test_existing_fail_gives_an_error_code(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "people.csv", 2)
    assert cli(sandbox, "run", roster, "--out", tmp_path / "first", "--no-progress")[0] == ExitStatus.OK
    code, _, _ = cli(sandbox, "run", roster, "--out", tmp_path / "second", "--existing", "fail", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED
    results = read_results(tmp_path / "second")
    assert [(r["status"], r["errorCode"]) for r in results.values()] == [("failed", "UserExists")] * 2
    ws = load_workbook(tmp_path / "second" / "results.xlsx")["Failed"]
    header = [c.value for c in ws[1]]
    codes = [ws.cell(r, header.index("Error code") + 1).value for r in range(2, ws.max_row + 1)]
    assert codes == ["UserExists", "UserExists"]
