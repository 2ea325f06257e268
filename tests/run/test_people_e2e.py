"""People, not UPNs, end to end against the sandbox: rows matched to tenant users by employeeId (a changed UPN is
the same person), the UPN/employeeId conflict, users in Deleted users reported and restored (``--restore-deleted``:
the same object id, the roster's values, the follow-ups), and a restore killed mid-way then resumed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from provisioning.exitcodes import ExitStatus
from sandbox import process as sandbox_process
from tests.followups.conftest import graph, members, precreate

from .conftest import read_results, sandbox_env

ROOT = Path(__file__).resolve().parents[2]
HEADER = "givenName,surname,displayName,userPrincipalName,jobTitle,groups,employeeId\n"


def _roster(path: Path, lines: list[str]) -> Path:
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _deleted(sb: Any, upn: str, display: str, **extra: Any) -> tuple[str, str]:
    """Create a user, delete it; return its object id and deletedDateTime."""
    uid = precreate(sb, upn, display, **extra)
    with graph(sb) as client:
        assert client.request("DELETE", f"/users/{uid}").status_code == 204
        return uid, str(client.get(f"/directory/deletedItems/{uid}")["deletedDateTime"])


def test_employee_id_matches_a_user_whose_upn_changed(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    ann = precreate(sandbox, "ann.lee@contoso.com", "Ann Lee", employeeId="E100", jobTitle="Dev")
    bob = precreate(sandbox, "bob.ray@contoso.com", "Bob Ray", givenName="Bob", surname="Ray", jobTitle="Dev")
    roster = _roster(tmp_path / "people.csv", [
        "Ann,Smith,Ann Smith,ann.smith@contoso.com,Lead,,E100",  # 2 married: a new UPN, the same employeeId
        "Bob,Ray,Bob Ray,bob.ray@contoso.com,Dev,,",              # 3 no employeeId: matched by UPN
    ])
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "skip", "--no-progress")
    assert code == ExitStatus.OK, out + err
    res = read_results(tmp_path / "skip")
    assert (res[2]["status"], res[2]["objectId"], res[2]["userPrincipalName"]) == ("skipped", ann,
                                                                                     "ann.lee@contoso.com")
    assert res[2]["message"] == ("a user with this employeeId already exists (matched by employeeId 'E100' to "
                                 "ann.lee@contoso.com (the row's userPrincipalName is 'ann.smith@contoso.com'))")
    assert (res[3]["status"], res[3]["objectId"]) == ("skipped", bob)
    assert res[3]["message"] == ("a user with this userPrincipalName already exists (matched by "
                                 "userPrincipalName)")
    assert sandbox.stats()["users_created"] == 2  # the two precreated: no second account for Ann

    code, out, err = cli(sandbox, "run", roster, "--existing", "update", "--out", tmp_path / "upd", "--no-progress")
    assert code == ExitStatus.OK, out + err
    res = read_results(tmp_path / "upd")
    assert (res[2]["status"], res[2]["objectId"], res[2]["userPrincipalName"]) == ("updated", ann,
                                                                                     "ann.smith@contoso.com")
    assert res[3]["status"] == "skipped"
    with graph(sandbox) as client:
        user = client.get(f"/users/{ann}", {"$select": "userPrincipalName,surname,displayName,jobTitle"})
    assert {k: user[k] for k in ("userPrincipalName", "surname", "displayName", "jobTitle")} == {
        "userPrincipalName": "ann.smith@contoso.com", "surname": "Smith", "displayName": "Ann Smith",
        "jobTitle": "Lead"}
    assert sandbox.stats()["users_created"] == 2


def test_upn_of_one_user_and_employee_id_of_another_is_an_issue(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    ann = precreate(sandbox, "ann.lee@contoso.com", "Ann Lee", employeeId="E100")
    cy = precreate(sandbox, "cy.x@contoso.com", "Cy X", employeeId="E200")
    roster = _roster(tmp_path / "people.csv", ["Ann,Lee,Ann Lee,ann.lee@contoso.com,,,E200"])
    code, out, err = cli(sandbox, "run", roster, "--existing", "update", "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    res = read_results(tmp_path / "run")
    assert (res[2]["status"], res[2]["errorCode"]) == ("invalid", "employee-id-conflict")
    assert res[2]["message"] == (
        f"userPrincipalName 'ann.lee@contoso.com' belongs to Ann Lee (ann.lee@contoso.com, employeeId E100, object "
        f"id {ann}) but employeeId 'E200' belongs to another user, Cy X (cy.x@contoso.com, employeeId E200, object "
        f"id {cy}); correct the row (or one of the two users) so that both name the same person")
    assert sandbox.stats()["writes"] == 2  # the two precreated users: nothing was sent for the row


def test_a_deleted_user_is_reported_then_restored(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    ann, ann_when = _deleted(sandbox, "ann.lee@contoso.com", "Ann Lee", employeeId="E100", jobTitle="Dev",
                             givenName="Ann", surname="Lee", accountEnabled=False)  # disabled, then deleted
    bob, bob_when = _deleted(sandbox, "bob.old@contoso.com", "Bob Old", employeeId="E300", givenName="Bob",
                             surname="Old")
    roster = _roster(tmp_path / "people.csv", [
        "Ann,Lee,Ann Lee,ann.lee@contoso.com,Lead,Engineering,E100",  # 2 a rehire, deleted by mistake
        "Bob,New,Bob New,bob.new@contoso.com,Ops,Sales,E300",         # 3 the same person, a new UPN
        "Cy,Fresh,Cy Fresh,cy.fresh@contoso.com,Dev,,E400",           # 4 new
    ])
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "report", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    res = read_results(tmp_path / "report")
    assert [res[r]["status"] for r in (2, 3, 4)] == ["invalid", "invalid", "created"]
    assert res[2]["errorCode"] == "user-deleted"
    assert res[2]["message"] == (
        f"employeeId 'E100' belongs to a deleted user: Ann Lee (ann.lee@contoso.com, object id {ann}), deleted "
        f"{ann_when}; run with --restore-deleted to restore that account (same object id) with this row's values, "
        f"or delete it permanently from Deleted users to create a new account")
    assert res[3]["message"].startswith(f"employeeId 'E300' belongs to a deleted user: Bob Old (bob.old@contoso.com, "
                                        f"object id {bob}), deleted {bob_when};")
    assert sandbox.stats()["users_restored"] == 0
    writes = sandbox.stats()["writes"]
    code, out, err = cli(sandbox, "run", roster, "--restore-deleted", "--dry-run", "--out", tmp_path / "dry")
    assert code == ExitStatus.OK, out + err
    assert [read_results(tmp_path / "dry")[r]["status"] for r in (2, 3, 4)] == ["would restore", "would restore",
                                                                                "would skip"]
    assert sandbox.stats()["writes"] == writes and sandbox.stats()["restore_requests"] == 0

    code, out, err = cli(sandbox, "run", roster, "--restore-deleted", "--out", tmp_path / "restore", "--no-progress")
    assert code == ExitStatus.OK, out + err
    res = read_results(tmp_path / "restore")
    assert [res[r]["status"] for r in (2, 3, 4)] == ["restored", "restored", "skipped"]
    assert (res[2]["objectId"], res[3]["objectId"]) == (ann, bob)  # the same accounts
    assert res[2]["message"] == f"restored from Deleted users (deleted {ann_when}; matched by employeeId)"
    assert sandbox.stats()["users_restored"] == 2
    with graph(sandbox) as client:
        a = client.get(f"/users/{ann}", {"$select": "userPrincipalName,jobTitle,accountEnabled"})
        b = client.get(f"/users/{bob}", {"$select": "userPrincipalName,jobTitle,surname,displayName"})
        assert (a["userPrincipalName"], a["jobTitle"], a["accountEnabled"]) == ("ann.lee@contoso.com", "Lead", True)
        assert (b["userPrincipalName"], b["jobTitle"], b["surname"], b["displayName"]) == \
            ("bob.new@contoso.com", "Ops", "New", "Bob New")
        assert ann in members(client, sandbox.groups["Engineering"])  # the follow-ups went
        assert bob in members(client, sandbox.groups["Sales"])
        assert client.get("/directory/deletedItems/microsoft.graph.user")["value"] == []
    import openpyxl

    book = openpyxl.load_workbook(tmp_path / "restore" / "results.xlsx", read_only=True)
    lines = sorted((r[0], r[1], r[5], r[6], r[7]) for r in book["Updated"].iter_rows(min_row=2, values_only=True))
    assert lines == [(2, "restored", "accountEnabled", "false", "true"),
                     (2, "restored", "jobTitle", "Dev", "Lead"),
                     (3, "restored", "displayName", "Bob Old", "Bob New"),
                     (3, "restored", "jobTitle", None, "Ops"),
                     (3, "restored", "surname", "Old", "New"),
                     (3, "restored", "userPrincipalName", "bob.old@contoso.com", "bob.new@contoso.com")]


def _serve(state: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    return sandbox_process.serve(state, ["--latency-ms", "20:5"])


def _stats(env: dict[str, str]) -> dict[str, Any]:
    """``GET /_sandbox/stats`` of a subprocess sandbox."""
    return sandbox_process.stats(env)


class _Env:
    """A subprocess sandbox as the helpers take it (``env()``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env

    def env(self) -> dict[str, str]:
        return dict(self._env)


@pytest.mark.slow
def test_sigkill_during_restores_then_resume_restores_each_once(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    n = 40
    sb, env = _serve(tmp_path / "sb")
    try:
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
        box = _Env(env)
        ids = {i: _deleted(box, f"user{i:03d}@contoso.com", f"User {i}", employeeId=f"E{i:03d}")[0]
               for i in range(n)}
        roster = _roster(tmp_path / "people.csv", [f"U{i},S{i},User {i},user{i:03d}@contoso.com,Role{i},Sales,"
                                                   f"E{i:03d}" for i in range(n)])
        run = tmp_path / "run"
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "provision.py"), "run", str(roster), "--restore-deleted", "--out", str(run),
             "--no-progress", "--max-writes-per-s", "8", "--write-burst", "1"],
            cwd=tmp_path, env=sandbox_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        with graph(box) as client:
            while len(client.get("/directory/deletedItems/microsoft.graph.user")["value"]) > n - 5:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with graph(box) as client:
            left = len(client.get("/directory/deletedItems/microsoft.graph.user")["value"])
        assert 0 < left <= n - 5  # killed mid-way through the restores

        done = subprocess.run([sys.executable, str(ROOT / "provision.py"), "resume", str(run), "--no-progress"],
                              cwd=tmp_path, env=sandbox_env(env), capture_output=True, text=True, timeout=120)
        assert done.returncode == ExitStatus.OK, done.stdout + done.stderr
        res = read_results(run)
        assert {r: (v["status"], v["objectId"]) for r, v in res.items()} == \
            {i + 2: ("restored", ids[i]) for i in range(n)}
        stats = _stats(env)  # each account restored once, across the kill and the resume, and never asked twice
        assert (stats["users_restored"], stats["restore_requests"]) == (n, n)
        with graph(box) as client:
            assert client.get("/directory/deletedItems/microsoft.graph.user")["value"] == []
            for i in (0, n - 1):
                assert client.get(f"/users/{ids[i]}", {"$select": "jobTitle"})["jobTitle"] == f"Role{i}"
            [sales] = client.get("/groups", {"$filter": "displayName eq 'Sales'"})["value"]
            assert set(ids.values()) <= members(client, sales["id"])
    finally:
        sb.send_signal(signal.SIGTERM)
        sb.wait(timeout=10)


def test_retry_restores_the_deleted_users_a_run_reported(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    ann, _ = _deleted(sandbox, "ann.lee@contoso.com", "Ann Lee", employeeId="E100", givenName="Ann", surname="Lee")
    roster = _roster(tmp_path / "people.csv", ["Ann,Lee,Ann Lee,ann.lee@contoso.com,Lead,,E100"])
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    assert read_results(tmp_path / "run")[2]["errorCode"] == "user-deleted"
    code, out, err = cli(sandbox, "retry", tmp_path / "run", "--restore-deleted", "--out", tmp_path / "retry",
                         "--no-progress")
    assert code == ExitStatus.OK, out + err
    res = read_results(tmp_path / "retry")
    assert (res[2]["status"], res[2]["objectId"]) == ("restored", ann)
    assert sandbox.stats()["users_restored"] == 1
