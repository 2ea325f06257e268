"""Nobody twice, end to end against the sandbox: one person in two Unicode forms in one file, the same people
re-run from an export in the other form, namesakes, and namesakes re-run in another order."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from provisioning.exitcodes import ExitStatus

from .conftest import read_results, tenant_users

DATA = Path(__file__).resolve().parents[1] / "data" / "identity"


def _copy(name: str, tmp_path: Path, as_name: str | None = None) -> Path:
    path = tmp_path / (as_name or name)
    path.write_bytes((DATA / name).read_bytes())
    return path


def test_one_person_twice_in_one_file_makes_one_account(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    code, out, err = cli(sandbox, "run", _copy("one-person-twice.csv", tmp_path), "--out", tmp_path / "run",
                         "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, err
    res = read_results(tmp_path / "run")
    assert {r: v["status"] for r, v in res.items()} == {2: "created", 3: "invalid", 4: "created", 5: "invalid",
                                                       6: "created", 7: "invalid", 8: "invalid"}
    assert res[5]["errorCode"] == "duplicate-row"
    assert set(tenant_users(sandbox)) == {"jose.nunez@contoso.com", "priya.raman@contoso.com", "dup.row@contoso.com"}
    assert sandbox.stats()["users_created"] == 3


def test_the_same_people_from_an_export_in_the_other_unicode_form_are_skipped(sandbox: Any, cli: Any,
                                                                             tmp_path: Path) -> None:
    code, _, err = cli(sandbox, "run", _copy("export-nfc.csv", tmp_path), "--out", tmp_path / "run1",
                       "--no-progress")
    assert code == ExitStatus.OK, err
    before = tenant_users(sandbox)
    assert set(before) == {"zoe.bronte@contoso.com", "jose.nunez@contoso.com", "priya.raman@contoso.com",
                           "mia.sorensen@contoso.com"}
    for mode in ("skip", "update"):
        code, _, err = cli(sandbox, "run", _copy("export-other-form.csv", tmp_path), "--existing", mode,
                           "--out", tmp_path / f"run-{mode}", "--no-progress")
        assert code == ExitStatus.OK, err
        res = read_results(tmp_path / f"run-{mode}")
        assert {r: (v["status"], v["userPrincipalName"], v["objectId"]) for r, v in res.items()} == {
            r: ("skipped", upn, before[upn]["id"]) for r, upn in zip(range(2, 6), before, strict=True)}
    assert tenant_users(sandbox).keys() == before.keys()
    assert sandbox.stats()["users_created"] == 4  # no second account for anybody


def test_namesakes_get_two_accounts_and_keep_them_whatever_the_row_order(sandbox: Any, cli: Any,
                                                                        tmp_path: Path) -> None:
    roster = _copy("namesakes.csv", tmp_path)
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "run1", "--no-progress")
    assert code == ExitStatus.OK, err
    res = read_results(tmp_path / "run1")
    assert [(v["status"], v["userPrincipalName"]) for v in res.values()] == [
        ("created", "ann.lee@contoso.com"), ("created", "ann.lee2@contoso.com")]
    users = tenant_users(sandbox)
    assert {u: users[u]["employeeId"] for u in users} == {"ann.lee@contoso.com": "E100",
                                                          "ann.lee2@contoso.com": "E200"}
    # the next export lists them the other way round: each row is matched to its own account
    lines = roster.read_text(encoding="utf-8").splitlines()
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("\n".join([lines[0], lines[2], lines[1]]) + "\n", encoding="utf-8")
    code, _, err = cli(sandbox, "run", swapped, "--out", tmp_path / "run2", "--no-progress")
    assert code == ExitStatus.OK, err
    res = read_results(tmp_path / "run2")
    assert [(v["status"], v["userPrincipalName"], v["objectId"]) for v in res.values()] == [
        ("skipped", "ann.lee2@contoso.com", users["ann.lee2@contoso.com"]["id"]),
        ("skipped", "ann.lee@contoso.com", users["ann.lee@contoso.com"]["id"])]
    assert sandbox.stats()["users_created"] == 2
