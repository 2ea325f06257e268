"""What pre-flight reads, counted by the sandbox: the rows' UPNs and employeeIds go in one wave of ``in`` filters
inside ``$batch`` (15 values an item), Deleted users is read as one list page when it fits in one, and only a
Deleted users list longer than a page makes pre-flight look the rows to create up in it, with filters. Either way
the plan is the same: the row whose person is in Deleted users is the issue ``user-deleted``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provisioning.exitcodes import ExitStatus
from provisioning.validation import tenant as tenant_view
from tests.followups.conftest import graph, precreate

from .conftest import read_results

ROWS = 40  # 3 items of 15 values for each kind of lookup
HEADER = "givenName,surname,displayName,userPrincipalName,mailNickname,employeeId\n"


def _roster(path: Path) -> Path:
    lines = [f"Pat{i},Row{i},Pat{i} Row{i},pat{i:03d}@contoso.com,pat{i:03d},P{i:04d}\n" for i in range(ROWS)]
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


def _delete(sb: Any, upn: str, display: str, **extra: Any) -> str:
    uid = precreate(sb, upn, display, **extra)
    with graph(sb) as client:
        assert client.request("DELETE", f"/users/{uid}").status_code == 204
    return uid


def _dry_run(sb: Any, cli: Any, tmp_path: Path, name: str) -> tuple[dict[int, dict[str, str]], int]:
    """A dry run of the roster; its results and the ``$batch`` items the sandbox answered during it."""
    before = sb.stats()["batch_items"]
    code, out, err = cli(sb, "run", _roster(tmp_path / f"{name}.csv"), "--dry-run", "--out", tmp_path / name)
    assert code == ExitStatus.ROWS_FAILED, out + err  # the deleted person's row is invalid
    return read_results(tmp_path / name), sb.stats()["batch_items"] - before


@pytest.fixture
def deleted_people(sandbox: Any) -> tuple[str, str]:
    """Two users in Deleted users: row 7's person (employeeId P0005) and someone the roster does not name."""
    return (_delete(sandbox, "pat.old@contoso.com", "Pat5 Row5", employeeId="P0005"),
            _delete(sandbox, "gone@contoso.com", "Gone Person", employeeId="X1"))


def _check(res: dict[int, dict[str, str]], uid: str) -> None:
    assert [r for r, v in res.items() if v["status"] == "invalid"] == [7]
    assert res[7]["errorCode"] == "user-deleted"
    assert res[7]["message"].startswith(f"employeeId 'P0005' belongs to a deleted user: Pat5 Row5 "
                                        f"(pat.old@contoso.com, object id {uid}), deleted ")
    assert sum(1 for v in res.values() if v["status"] == "would create") == ROWS - 1


def test_one_wave_of_filters_and_deleted_users_as_one_page(sandbox: Any, cli: Any, tmp_path: Path,
                                                           deleted_people: tuple[str, str]) -> None:
    res, items = _dry_run(sandbox, cli, tmp_path, "one-page")
    _check(res, deleted_people[0])
    assert items == 3 + 3  # UPNs and employeeIds; Deleted users cost one GET of its list, no filter


def test_a_deleted_users_list_longer_than_a_page_is_searched_with_filters(
        sandbox: Any, cli: Any, tmp_path: Path, deleted_people: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tenant_view, "DELETED_PAGE", 1)  # two deleted users: a second page
    res, items = _dry_run(sandbox, cli, tmp_path, "filters")
    _check(res, deleted_people[0])
    # UPNs and employeeIds, then the 40 rows' UPN, mailNickname and employeeId in Deleted users
    assert items == 3 + 3 + 3 * 3


@pytest.fixture
def present_people(sandbox: Any) -> tuple[str, str]:
    """Two users of the tenant: row 5's (its UPN in capitals) and someone holding row 9's employeeId."""
    return (precreate(sandbox, "PAT003@contoso.com", "Pat3 Row3", employeeId="P0003"),
            precreate(sandbox, "someone@contoso.com", "Some One", employeeId="P0007"))


def _plans(sandbox: Any, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, page: int,
           least_items: int) -> tuple[dict[int, dict[str, str]], int]:
    monkeypatch.setattr(tenant_view, "USERS_PAGE", page)
    monkeypatch.setattr(tenant_view, "LIST_MIN_ITEMS", least_items)
    res, items = _dry_run(sandbox, cli, tmp_path, f"page{page}-least{least_items}")
    times = ("firstAt", "lastAt")  # when the run planned each row: the only cells that differ between the runs
    return {r: {k: v for k, v in cells.items() if k not in times} for r, cells in res.items()}, items


def test_a_tenant_of_one_users_page_is_read_whole_and_plans_the_same(
        sandbox: Any, cli: Any, tmp_path: Path, deleted_people: tuple[str, str], present_people: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    filtered, items = _plans(sandbox, cli, tmp_path, monkeypatch, page=999, least_items=7)
    assert items == 3 + 3  # six lookup items: under the least for which the page is read, so the filters ask
    whole, items = _plans(sandbox, cli, tmp_path, monkeypatch, page=999, least_items=6)
    assert items == 0  # the tenant's two users in one page: nothing left to look up
    longer, items = _plans(sandbox, cli, tmp_path, monkeypatch, page=1, least_items=6)
    assert items == 3 + 3  # two users, pages of one: a longer tenant is looked up by the filters
    assert whole == filtered == longer
    assert [r for r, v in filtered.items() if v["status"] == "invalid"] == [7]  # the deleted person's row
    assert filtered[7]["errorCode"] == "user-deleted"
    # rows 5 and 9 are the present users' (row 5 by its UPN in another case, row 9 by its employeeId alone)
    assert {r: (v["status"], v["objectId"]) for r, v in filtered.items() if v["status"] == "would skip"} == {
        5: ("would skip", present_people[0]), 9: ("would skip", present_people[1])}
    assert sum(1 for v in filtered.values() if v["status"] == "would create") == ROWS - 3
