"""``resume`` continues pending follow-ups; a journal of schema version 1 (before follow-ups) still opens."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from provisioning.exitcodes import ExitStatus
from provisioning.store.journal import Journal
from provisioning.store.records import FollowUpState

from .conftest import graph, members, read_results, write

ROLES = ("User.ReadWrite.All", "Directory.Read.All", "Organization.Read.All", "Domain.Read.All")


def test_resume_sends_pending_followups(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(roles=ROLES)  # no GroupMember.ReadWrite.All: the membership is refused (403)
    roster = write(tmp_path / "r.csv", ["Fi,Nance,Fi Nance,fi.nance@contoso.com,,US,,Finance,,"])
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    assert read_results(tmp_path / "run")[2]["status"] == "created, follow-up failed"
    # as if the run had been interrupted before the membership was sent
    with Journal.open(tmp_path / "run") as journal, journal.transaction() as cur:
        cur.execute("UPDATE followups SET state='pending'")
    sb.set_knobs(roles=ROLES + ("GroupMember.ReadWrite.All",))
    code, out, err = cli(sb, "resume", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    row = read_results(tmp_path / "run")[2]
    assert row["status"] == "created" and "group Finance: done" in row["followUps"]
    with graph(sb) as client:
        assert row["objectId"] in members(client, sb.groups["Finance"])


def test_schema_1_journal_opens_and_resumes(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    roster = write(tmp_path / "old.csv", ["Ol,D,Ol D,old.one@contoso.com,,,,,,"])
    code, out, err = cli(sandbox, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    conn = sqlite3.connect(tmp_path / "run" / "journal.sqlite")  # make it a version-1 journal
    conn.executescript("DROP TABLE followups; DROP TABLE updates;")
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (json.dumps(1),))
    conn.commit()
    conn.close()
    code, out, err = cli(sandbox, "resume", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    with Journal.open(tmp_path / "run") as journal:
        assert journal.meta()["schema_version"] == 2 and journal.followups() == []
    assert read_results(tmp_path / "run")[2]["status"] == "created"
    assert FollowUpState.DONE.value == "done"
