"""``rollback`` end to end against the sandbox: it deletes exactly the users the run created, reverts exactly its
updates (a property the tenant changed since is a conflict, left as it is), removes the follow-ups it added to
existing users, writes nothing without a terminal or --yes, nothing with --dry-run, and is refused for another
tenant."""
from __future__ import annotations

import csv
import os
import pty
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openpyxl

from provisioning.exitcodes import ExitStatus
from tests.followups.conftest import graph, licences, manager_of, members, precreate, read_results, write
from tests.run.conftest import env_file, sandbox_env

UPDATE_HEADER = "userPrincipalName,displayName,jobTitle,department,usageLocation,password\n"


def steps(folder: Path) -> dict[int, dict[str, str]]:
    """A rollback folder's results.csv keyed by step."""
    with open(folder / "results.csv", encoding="utf-8-sig", newline="") as fh:
        return {int(r["step"]): r for r in csv.DictReader(fh)}


def rollback_folders(run: Path) -> list[Path]:
    return sorted(run.glob("rollback-*"))


def deleted_ids(sb: Any) -> set[str]:
    with graph(sb) as client:
        return {u["id"] for page in client.iter_pages("/directory/deletedItems/microsoft.graph.user") for u in page}


def test_rollback_undoes_creates_and_followups_and_nothing_else(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox
    boss = precreate(sb, "boss@contoso.com", "The Boss")
    ann = precreate(sb, "ann.a@contoso.com", "Ann A", usageLocation="US")
    keep = precreate(sb, "keep@contoso.com", "Keep K", usageLocation="US")
    sales, engineering = sb.groups["Sales"], sb.groups["Engineering"]
    flow = sb.sku_ids["FLOW_FREE"]
    with graph(sb) as client:
        client.request("POST", f"/groups/{sales}/members/$ref",
                       json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{keep}"})
    roster = write(tmp_path / "r.csv", [
        "New,One,New One,new.one@contoso.com,,US,Dev,Sales,FLOW_FREE,boss@contoso.com",   # 2 created
        "Ann,A,Ann A,ann.a@contoso.com,,US,Lead,Engineering,FLOW_FREE,new.one@contoso.com",  # 3 skipped + 3 follow-ups
        "Keep,K,Keep K,keep@contoso.com,,US,,Sales,,",                                     # 4 skipped, in place
        "Bad,Row,Bad Row,not-an-upn,,US,,,,",                                               # 5 invalid
    ])
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    res = read_results(tmp_path / "run")
    assert [res[r]["status"] for r in (2, 3, 4, 5)] == ["created", "skipped", "skipped", "invalid"]
    new = res[2]["objectId"]
    with graph(sb) as client:
        assert manager_of(client, ann) == new and flow.lower() in licences(client, ann)
    run = tmp_path / "run"
    before = sb.stats()

    # no terminal, no --yes: refused before any write, no rollback folder
    code, out, err = cli(sb, "rollback", run)
    assert code == ExitStatus.USAGE, out + err
    assert "there is no terminal to ask on: pass --yes" in err
    assert sb.stats()["writes"] == before["writes"] and rollback_folders(run) == []
    assert out.splitlines()[0] == ("rollback plan: 1 user(s) the run created to delete; 0 propert(y/ies) of 0 "
                                   "updated user(s) to revert to their recorded old values; follow-ups to remove: "
                                   "1 group membership(s), 1 licence(s), 1 manager(s)")
    # the tenant by name (Graph's /organization) before anything is asked or sent
    assert f"in the tenant Contoso (sandbox) (contoso.com, {sb.tenant_id})" in out.splitlines()

    # --dry-run: the plan, read in the tenant, written to a rollback folder; no write
    code, out, err = cli(sb, "rollback", run, "--dry-run")
    assert code == ExitStatus.OK, out + err
    assert sb.stats()["writes"] == before["writes"]
    [dry] = rollback_folders(run)
    planned = steps(dry)
    assert sorted((s["action"], s["userPrincipalName"], s["outcome"]) for s in planned.values()) == [
        ("delete user", "new.one@contoso.com", "would undo"),
        ("remove from group", "ann.a@contoso.com", "would undo"),
        ("remove licence", "ann.a@contoso.com", "would undo"),
        ("remove manager", "ann.a@contoso.com", "would undo")]

    code, out, err = cli(sb, "rollback", run, "--yes")
    assert code == ExitStatus.OK, out + err
    after = sb.stats()
    assert (after["users_deleted"], after["members_removed"], after["licenses_removed"],
            after["managers_removed"]) == (1, 1, 1, 1)
    assert after["writes"] - before["writes"] == 4
    assert "stay restorable for 30 days" in out
    folder = next(p for p in rollback_folders(run) if p != dry)
    done = steps(folder)
    assert {s["outcome"] for s in done.values()} == {"done"} and len(done) == 4
    book = openpyxl.load_workbook(folder / "results.xlsx", read_only=True)
    assert len(list(book["Rollback"].iter_rows(min_row=2))) == 4
    overview = [r[0] for r in book["Summary"].iter_rows(values_only=True)]
    assert overview[0] == "rollback: 1 user(s) deleted, 0 propert(y/ies) reverted, 3 follow-up(s) removed"
    assert any(str(line).startswith("the 1 deleted user(s) stay restorable for 30 days, until about ")
               for line in overview)
    assert deleted_ids(sb) == {new}
    with graph(sb) as client:
        users = {u["id"] for page in client.iter_pages("/users", {"$select": "id"}) for u in page}
        assert users == {boss, ann, keep}  # the skipped, pre-existing and invalid rows are untouched
        assert ann not in members(client, engineering) and keep in members(client, sales)
        assert licences(client, ann) == set() and manager_of(client, ann) is None

    with graph(sb) as client:  # restorable, with its object id
        client.request("POST", f"/directory/deletedItems/{new}/restore")
        assert client.get(f"/users/{new}", {"$select": "id,userPrincipalName"})["userPrincipalName"] == \
            "new.one@contoso.com"
        client.request("DELETE", f"/users/{new}")

    # again: every step reads as already undone, nothing is sent
    writes = sb.stats()["writes"]
    code, out, err = cli(sb, "rollback", run, "--yes")
    assert code == ExitStatus.OK, out + err
    assert sb.stats()["writes"] == writes
    assert "4 step(s) already undone in the tenant: nothing sent for them" in out


def test_rollback_reverts_updates_and_reports_a_conflict(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox
    moved = precreate(sb, "moved@contoso.com", "Moved Person", jobTitle="Dev", department="R&D", usageLocation="US")
    other = precreate(sb, "other@contoso.com", "Other Person", jobTitle="Dev")
    same = precreate(sb, "same@contoso.com", "Same Person", jobTitle="Dev")
    roster = write(tmp_path / "u.csv", [
        "moved@contoso.com,Moved Person,Lead,Sales,GB,",   # 2 updated: 3 properties
        "other@contoso.com,Other Person,Boss,,,",          # 3 updated, then changed in the tenant again
        "same@contoso.com,Same Person,Dev,,,",             # 4 unchanged: skipped
        "fresh@contoso.com,Fresh Person,Dev,,,",           # 5 created
    ], header=UPDATE_HEADER)
    code, out, err = cli(sb, "run", roster, "--existing", "update", "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    res = read_results(tmp_path / "run")
    assert [res[r]["status"] for r in (2, 3, 4, 5)] == ["updated", "updated", "skipped", "created"]
    with graph(sb) as client:
        client.request("PATCH", f"/users/{other}", json={"jobTitle": "CEO"})
    before = sb.stats()

    code, out, err = cli(sb, "rollback", tmp_path / "run", "--yes")
    assert code == ExitStatus.ROWS_FAILED, out + err  # the conflict
    after = sb.stats()
    assert after["writes"] - before["writes"] == 2  # one PATCH for moved, one DELETE for fresh
    assert after["users_deleted"] == 1
    [folder] = rollback_folders(tmp_path / "run")
    got = sorted((s["userPrincipalName"], s["action"], s["target"], s["runValue"], s["restoredValue"], s["outcome"])
                 for s in steps(folder).values())
    assert got == [
        ("fresh@contoso.com", "delete user", "Fresh Person", "", "", "done"),
        ("moved@contoso.com", "revert property", "department", "Sales", "R&D", "done"),
        ("moved@contoso.com", "revert property", "jobTitle", "Lead", "Dev", "done"),
        ("moved@contoso.com", "revert property", "usageLocation", "GB", "US", "done"),
        ("other@contoso.com", "revert property", "jobTitle", "Boss", "Dev", "conflict")]
    assert "1 conflict(s): the tenant changed since the run; left as it is" in out
    assert ("revert row 3 other@contoso.com: jobTitle: 'Boss' -> 'Dev': changed since the run: the tenant holds "
            "'CEO', the run wrote 'Boss'; left as it is") in out
    with graph(sb) as client:
        user = client.get(f"/users/{moved}", {"$select": "jobTitle,department,usageLocation"})
        assert (user["jobTitle"], user["department"], user["usageLocation"]) == ("Dev", "R&D", "US")
        assert client.get(f"/users/{other}", {"$select": "jobTitle"})["jobTitle"] == "CEO"
        assert client.get(f"/users/{same}", {"$select": "jobTitle"})["jobTitle"] == "Dev"
    assert deleted_ids(sb) == {res[5]["objectId"]}


def test_rollback_is_refused_for_another_tenant(sandbox_factory: Any, tool: Any, tmp_path: Path) -> None:
    a, b = sandbox_factory(), sandbox_factory()
    roster = write(tmp_path / "r.csv", ["New,One,New One,new.one@contoso.com,,US,,,,"])
    env_a, env_b = env_file(tmp_path / "a.env", a), env_file(tmp_path / "b.env", b)
    code, out, err = tool(env_a, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    code, out, err = tool(env_b, "rollback", tmp_path / "run", "--yes")
    assert code == ExitStatus.CONFIG, out + err
    assert "this run folder belongs to tenant" in err
    assert b.stats()["writes"] == 0 and a.stats()["users_deleted"] == 0
    assert rollback_folders(tmp_path / "run") == []
    with sqlite3.connect(tmp_path / "run" / "journal.sqlite") as conn:
        assert conn.execute("SELECT state FROM rows WHERE row=2").fetchone()[0] == "created"


def test_rollback_asks_on_a_terminal(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    """On a terminal (stdin and stderr a tty) rollback asks, and a "y" rolls back."""
    roster = write(tmp_path / "r.csv", ["New,One,New One,new.one@contoso.com,,US,,,,"])
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    root = Path(__file__).resolve().parents[2]
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(root / "provision.py"), "rollback", str(tmp_path / "run")],
                            cwd=tmp_path, env=sandbox_env(sandbox), stdin=slave, stderr=slave,
                            stdout=subprocess.PIPE, text=True)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while b"[y/N]" not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, seen
        seen += os.read(master, 4096)
    assert sandbox.stats()["users_deleted"] == 0  # nothing before the answer
    os.write(master, b"y\n")
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == ExitStatus.OK, out
    assert b"roll back as listed above? [y/N] " in seen
    assert sandbox.stats()["users_deleted"] == 1
