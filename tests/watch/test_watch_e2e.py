"""``provision.py watch`` in a subprocess against a sandbox over HTTPS: good and bad drops, auth failure deferral,
SIGTERM mid-run then a restart that resumes the run (nobody created twice)."""
from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from provisioning.api import make_client
from provisioning.exitcodes import ExitStatus
from provisioning.settings import load_settings
from tests.run.conftest import created_in_journal

ROOT = Path(__file__).resolve().parents[2]
SENDER = "ops@contoso.com"
HEADER = "givenName,surname,displayName,userPrincipalName,password,employeeId\n"


def _roster(path: Path, n: int, prefix: str) -> Path:
    path.write_text(HEADER + "".join(f"G{i},S{i},G{i} S{i},{prefix}{i:04d}@contoso.com,,E{prefix}{i}\n"
                                     for i in range(n)), encoding="utf-8")
    return path


def _env(sb: Any, **override: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GRAPH_ENDPOINT")
           and not k.startswith(("AZURE_", "PROVISION_"))}  # only the sandbox's settings, whatever leaked before
    env.update(sb.env())
    env.update(override)
    return env


def _watch(inbox: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ROOT / "provision.py"), "watch", str(inbox), *extra],
                            cwd=inbox.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _users(sb: Any) -> list[str]:
    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sb.env())
    with make_client(settings) as client:
        return [u["userPrincipalName"].lower() for u in client.iter_users(select=("userPrincipalName",))]


def _one(folder: Path) -> Path:
    (only,) = list(folder.iterdir())
    return only


def _wait(predicate: Any, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_daemon_moves_a_good_drop_to_done_and_a_bad_one_to_failed(sandbox: Any, tmp_path: Path) -> None:
    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sandbox.env())
    with make_client(settings) as client:  # the --notify-from mailbox
        client.request("POST", "/users", json={
            "accountEnabled": True, "displayName": "Ops", "mailNickname": "ops", "userPrincipalName": SENDER,
            "passwordProfile": {"password": "Sender-Pass-99x"}})
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = _watch(inbox, _env(sandbox), "--interval", "0.3", "--settle", "0.6", "--notify",
                  "admin@contoso.com,it@contoso.com", "--notify-from", SENDER)
    try:
        _roster(inbox / "good.csv", 4, "good")
        (inbox / "bad.csv").write_text("this is not a roster\n", encoding="utf-8")
        (inbox / "next.csv.part").write_text("an upload in progress")
        _wait(lambda: (inbox / "done").is_dir() and any((inbox / "done").iterdir())
              and (inbox / "failed").is_dir() and any((inbox / "failed").iterdir()), proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitStatus.OK, err  # stopped while idle: 0

    done = _one(inbox / "done")
    assert done.name.startswith("good-") and (done / "good.csv").is_file()
    with open(done / "run" / "results.csv", encoding="utf-8-sig", newline="") as fh:
        assert {r["status"] for r in csv.DictReader(fh)} == {"created"}
    assert (done / "run" / "results.xlsx").is_file()
    failed = _one(inbox / "failed")
    assert (failed / "bad.csv").is_file() and "bad.csv" in (failed / "bad.csv.error.txt").read_text()
    assert (inbox / "next.csv.part").exists() and not any((inbox / ".processing").iterdir())
    assert sorted(u for u in _users(sandbox) if u != SENDER) == [f"good{i:04d}@contoso.com" for i in range(4)]
    mails = {m["subject"].split(":")[1].strip(): m for m in sandbox.mail()}  # every outcome is mailed
    assert set(mails) == {"good.csv", "bad.csv"}
    mail = mails["good.csv"]
    assert mail["toRecipients"] == ["admin@contoso.com", "it@contoso.com"]
    assert mail["subject"] == "entra-provision: good.csv: 4 created \u2014 done"
    assert [a["name"] for a in mail["attachments"]] == ["results.xlsx"]
    assert mails["bad.csv"]["subject"].startswith("entra-provision: bad.csv: failed: required column(s) missing")
    assert "notification sent to admin@contoso.com, it@contoso.com" in out
    for event in ("picked up good.csv", "finished good.csv: exit 0 (created 4", "moved good.csv to",
                  "picked up bad.csv", "finished bad.csv: exit 2", "moved bad.csv to"):
        assert event in out, (event, out)


@pytest.mark.slow
def test_auth_failure_leaves_the_file_and_a_later_pass_runs_it(sandbox: Any, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _roster(inbox / "team.csv", 3, "team")
    bad = subprocess.run([sys.executable, str(ROOT / "provision.py"), "watch", str(inbox), "--once",
                          "--interval", "0.1", "--settle", "0.3"], cwd=tmp_path,
                         env=_env(sandbox, AZURE_CLIENT_SECRET="wrong-secret"), capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == ExitStatus.CONFIG, bad.stderr + bad.stdout
    (marker_path,) = (inbox / ".processing").glob("*/.marker.json")
    marker = json.loads(marker_path.read_text())
    assert (marker_path.parent / "team.csv").is_file() and not any((inbox / "failed").iterdir())
    assert marker["attempts"] == 1 and marker["last_status"] == 3 and "deferred team.csv" in bad.stdout
    assert "wrong-secret" not in bad.stdout + bad.stderr + json.dumps(marker)

    time.sleep(max(0.0, marker["retry_at"] - time.time()) + 0.1)  # the back-off (1 s at this interval)
    good = subprocess.run([sys.executable, str(ROOT / "provision.py"), "watch", str(inbox), "--once",
                           "--interval", "0.3", "--settle", "0.3"], cwd=tmp_path, env=_env(sandbox),
                          capture_output=True, text=True, timeout=60)
    assert good.returncode == ExitStatus.OK, good.stderr + good.stdout
    done = _one(inbox / "done")
    assert (done / "team.csv").is_file() and (done / "run" / "journal.sqlite").is_file()
    assert not (inbox / "team.csv").exists() and not any((inbox / ".processing").iterdir())
    assert len(_users(sandbox)) == 3


@pytest.mark.slow
def test_sigterm_mid_run_then_restart_resumes_without_duplicates(sandbox_factory: Any, tmp_path: Path) -> None:
    n = 80
    sb = sandbox_factory(write_quota=(20, 1.0), latency_ms=(40, 10))  # ~20 creates/s: the run takes a few s
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = _watch(inbox, _env(sb), "--interval", "0.2", "--settle", "0.4")
    try:
        _roster(inbox / "big.csv", n, "big")
        journals = lambda: list((inbox / ".runs").glob("*/journal.sqlite"))  # noqa: E731
        _wait(lambda: bool(journals()) and created_in_journal(journals()[0]) >= 15, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitStatus.INTERRUPTED, err + out
    (marker_path,) = (inbox / ".processing").glob("*/.marker.json")
    marker = json.loads(marker_path.read_text())
    run_dir = Path(marker["run_dir"])
    first = created_in_journal(run_dir / "journal.sqlite")
    assert 15 <= first < n, first
    assert Path(marker["path"]).is_file() and not any((inbox / "done").iterdir())
    conn = sqlite3.connect(run_dir / "journal.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM rows WHERE state='sending'").fetchone()[0] == 0
    conn.close()

    again = subprocess.run([sys.executable, str(ROOT / "provision.py"), "watch", str(inbox), "--once",
                            "--interval", "0.3", "--settle", "0.3"], cwd=tmp_path, env=_env(sb),
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == ExitStatus.OK, again.stderr + again.stdout
    assert "resuming big.csv" in again.stdout
    done = _one(inbox / "done")
    assert done.name == marker["work"] and (done / "big.csv").is_file()
    with open(done / "run" / "results.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n and {r["status"] for r in rows} == {"created"}
    users = _users(sb)
    assert len(users) == n == len(set(users))
    assert len((done / "run" / "passwords.csv").read_text().splitlines()) == n + 1
