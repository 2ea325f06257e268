"""The journal: schema, short transactions, thread safety, no secrets, consistency after a kill."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from provisioning.errors import RunFolderError
from provisioning.models import Issue, Roster, Severity
from provisioning.store.journal import SCHEMA_VERSION, Journal, Outcome, RowSeed, RowState, strip_secrets

BODY = {"userPrincipalName": "a@contoso.com", "displayName": "A",
        "passwordProfile": {"password": "S3cret!pass", "forceChangePasswordNextSignIn": True}}


def _seeds(n: int) -> list[RowSeed]:
    return [RowSeed(row=i + 2, upn=f"u{i}@contoso.com", action="create", state=RowState.PENDING,
                    password_source="generated", body=BODY, display_name=f"U {i}") for i in range(n)]


def test_create_open_meta_and_schema_version(tmp_path: Path) -> None:
    j = Journal.create(tmp_path, {"roster_sha256": "ab", "settings": {"client_id": "x"}})
    meta = j.meta()
    assert meta["schema_version"] == SCHEMA_VERSION and meta["roster_sha256"] == "ab"
    assert "started" in meta
    j.close()
    with pytest.raises(RunFolderError, match="already exists"):
        Journal.create(tmp_path, {})
    j2 = Journal.open(tmp_path)
    assert j2.meta()["settings"] == {"client_id": "x"}
    j2.close()
    with pytest.raises(RunFolderError, match="no journal.sqlite"):
        Journal.open(tmp_path / "nope")


def test_journal_is_wal(tmp_path: Path) -> None:
    Journal.create(tmp_path, {}).close()
    conn = sqlite3.connect(tmp_path / "journal.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rows_lifecycle_and_no_password_stored(tmp_path: Path) -> None:
    issue = Issue(9, "Mail", "mail.invalid", Severity.ERROR, "bad")
    with Journal.create(tmp_path, {}) as j:
        j.add_rows(_seeds(2) + [RowSeed(row=9, upn="", action="invalid", state=RowState.INVALID,
                                        issues=(issue,))])
        j.mark_sending([2, 3])
        j.mark_sending([3])
        j.record(2, Outcome(RowState.CREATED, object_id="id-2", http_status=201, request_id="r1"))
        j.record(3, Outcome(RowState.FAILED, http_status=400, error_code="Request_BadRequest", message="no",
                            request_id="r2"))
        rows = {r.row: r for r in j.rows()}
        assert rows[2].state is RowState.CREATED and rows[2].attempts == 1 and rows[2].object_id == "id-2"
        assert rows[3].state is RowState.FAILED and rows[3].attempts == 2 and rows[3].error_code == "Request_BadRequest"
        assert rows[2].body["passwordProfile"] == {"forceChangePasswordNextSignIn": True}
        assert j.counts() == {"created": 1, "failed": 1, "invalid": 1}
        assert j.issues()[9] == [issue]
        assert [r.row for r in j.rows([RowState.INVALID])] == [9]
    raw = (tmp_path / "journal.sqlite").read_bytes()
    assert b"S3cret!pass" not in raw


def test_strip_secrets_keeps_flags_only() -> None:
    clean = strip_secrets({**BODY, "clientSecret": "x"})
    assert clean == {"userPrincipalName": "a@contoso.com", "displayName": "A",
                     "passwordProfile": {"forceChangePasswordNextSignIn": True}}


def test_bodies_and_cells_read_back_as_given_whatever_their_text(tmp_path: Path) -> None:
    # non-ASCII, a zero-width joiner, a formula, an emoji, and a lone surrogate (which orjson refuses: json then)
    texts = ["Zo\u00eb M\u00fcller", "\u0645\u062d\u0645\u062f\u200c\u0631\u0636\u0627", "=1+2", "\U0001f600",
             "bad \udcff byte"]
    roster = Roster(path=str(tmp_path / "r.csv"), sheet=None, kind="csv", headers=("displayName", "Note"), header_row=1,
                    row_numbers=tuple(range(2, 2 + len(texts))), columns=(tuple(texts), tuple(t[::-1] for t in texts)),
                    column_map={"displayName": "displayName", "Note": None})
    with Journal.create(tmp_path, {}) as j:
        profile = {"password": "S3cret!pass", "forceChangePasswordNextSignIn": False}
        j.add_rows([RowSeed(2 + i, f"u{i}@contoso.com", "create", RowState.PENDING,
                            body={"displayName": t, "accountEnabled": True, "businessPhones": [t],
                                  "passwordProfile": profile})
                    for i, t in enumerate(texts)], roster=roster)
        rows = j.rows()
        cells = j.snapshot().cells
    assert [r.body for r in rows] == [{"displayName": t, "accountEnabled": True, "businessPhones": [t],
                                       "passwordProfile": {"forceChangePasswordNextSignIn": False}} for t in texts]
    assert cells == {2 + i: (t, t[::-1]) for i, t in enumerate(texts)}


def test_concurrent_updates_from_threads(tmp_path: Path) -> None:
    with Journal.create(tmp_path, {}) as j:
        j.add_rows(_seeds(400))

        def work(start: int) -> None:
            for r in range(start, 402, 4):
                j.mark_sending([r])
                j.record(r, Outcome(RowState.CREATED, object_id=f"id{r}", http_status=201))

        threads = [threading.Thread(target=work, args=(2 + k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert j.counts() == {"created": 400}


KILLER = r"""
import os, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from provisioning.store.journal import Journal, Outcome, RowSeed, RowState
j = Journal.create(Path({d!r}), {{}})
j.add_rows([RowSeed(row=i, upn=f"u{{i}}@x", action="create", state=RowState.PENDING) for i in range(2, 2002)])
for i in range(2, 2002):
    j.mark_sending([i])
    j.record(i, Outcome(RowState.CREATED, object_id=f"id{{i}}", http_status=201))
    if i == 1000:
        print("go", flush=True)
"""


def test_consistent_after_sigkill(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen([sys.executable, "-c", KILLER.format(root=root, d=str(tmp_path))],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "go"
    os.kill(proc.pid, 9)
    proc.wait()
    with Journal.open(tmp_path) as j:
        counts = j.counts()
        assert sum(counts.values()) == 2000
        assert set(counts) <= {"created", "pending", "sending"}
        assert counts.get("sending", 0) <= 1
        assert counts["created"] >= 999
        for r in j.rows([RowState.CREATED]):
            assert r.object_id == f"id{r.row}" and r.attempts == 1
