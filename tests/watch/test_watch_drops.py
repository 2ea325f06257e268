"""What ``watch`` takes and when, against a sandbox over HTTPS: a file written in two parts with a pause longer than
the poll interval is taken once, whole; a second upload of the same name during a run gets its own run; --notify
mails every outcome (an unusable roster too) with the outcome in the subject; a roster whose only leftovers are
invalid rows goes to done/ with them listed."""
from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from provisioning.api import make_client
from provisioning.exitcodes import ExitStatus
from provisioning.settings import load_settings
from tests.run.conftest import created_in_journal
from tests.watch.test_watch_e2e import HEADER, SENDER, _env, _one, _roster, _wait, _watch


def _people(sb: Any) -> dict[str, tuple[str, str]]:
    """userPrincipalName -> (givenName, surname) of every user in the sandbox but the sender."""
    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sb.env())
    with make_client(settings) as client:
        return {u["userPrincipalName"].lower(): (u.get("givenName"), u.get("surname"))
                for u in client.iter_users(select=("userPrincipalName", "givenName", "surname"))
                if u["userPrincipalName"].lower() != SENDER}


def _row(i: int, prefix: str) -> str:
    return f"Given{i},Surname{prefix}{i},Given{i} Surname{prefix}{i},{prefix}{i:04d}@contoso.com,,E{prefix}{i}\n"


@pytest.mark.slow
def test_a_file_written_in_two_parts_is_taken_once_whole(sandbox: Any, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    text = HEADER + "".join(_row(i, "up") for i in range(6))
    cut = text.index("Surnameup3") + len("Surn")  # the upload pauses in the middle of row 5's surname
    proc = _watch(inbox, _env(sandbox), "--interval", "0.2", "--settle", "1.5")
    try:
        assert proc.stdout is not None and " watching " in proc.stdout.readline()  # polling from now on
        with open(inbox / "staff.csv", "w", encoding="utf-8") as fh:
            fh.write(text[:cut])
            fh.flush()
            time.sleep(0.8)  # several polls, less than the settle time
            fh.write(text[cut:])
        _wait(lambda: (inbox / "done").is_dir() and any((inbox / "done").iterdir()), proc)
        time.sleep(0.5)  # a few more polls: nothing else may be taken
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitStatus.OK, err
    assert _people(sandbox) == {f"up{i:04d}@contoso.com": (f"Given{i}", f"Surnameup{i}") for i in range(6)}
    done = _one(inbox / "done")
    assert (done / "staff.csv").read_text(encoding="utf-8") == text
    assert not any((inbox / "failed").iterdir()) and out.count("picked up staff.csv") == 1, out
    assert out.count("picked up") == 1, out


@pytest.mark.slow
def test_a_second_upload_of_the_same_name_during_a_run_is_its_own_run(sandbox_factory: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(write_quota=(20, 1.0), latency_ms=(40, 10))  # the first run takes a few seconds
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = _watch(inbox, _env(sb), "--interval", "0.2", "--settle", "0.4")
    try:
        _roster(inbox / "staff.csv", 60, "first")
        journals = lambda: list((inbox / ".runs").glob("*/journal.sqlite"))  # noqa: E731
        _wait(lambda: bool(journals()) and created_in_journal(journals()[0]) >= 5, proc)
        _roster(inbox / "staff.csv", 5, "second")  # five other people, same name, while the first is processed
        _wait(lambda: (inbox / "done").is_dir() and len(list((inbox / "done").iterdir())) == 2, proc, timeout=60)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitStatus.OK, err
    assert sorted(_people(sb)) == sorted([f"first{i:04d}@contoso.com" for i in range(60)]
                                         + [f"second{i:04d}@contoso.com" for i in range(5)])
    runs = {len((d / "staff.csv").read_text().splitlines()) - 1: d for d in (inbox / "done").iterdir()}
    assert sorted(runs) == [5, 60] and all(d.name.startswith("staff-") for d in runs.values())
    assert "second0000@contoso.com" in (runs[5] / "run" / "results.csv").read_text(encoding="utf-8-sig")
    assert "second" not in (runs[60] / "run" / "results.csv").read_text(encoding="utf-8-sig")
    assert out.count("picked up staff.csv") == 2 and not any((inbox / "failed").iterdir())


def test_notify_mails_an_unusable_roster_and_an_invalid_leftover_one_goes_to_done(
        sandbox: Any, tmp_path: Path, cli: Any) -> None:
    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sandbox.env())
    with make_client(settings) as client:
        client.request("POST", "/users", json={
            "accountEnabled": True, "displayName": "Ops", "mailNickname": "ops", "userPrincipalName": SENDER,
            "passwordProfile": {"password": "Sender-Pass-99x"}})
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "team.csv").write_text(HEADER + "".join(_row(i, "team") for i in range(3))
                                    + "Weak,Pw,Weak Pw,weak.pw@contoso.com,abc,E9\n", encoding="utf-8")
    (inbox / "bad.csv").write_text("this is not a roster\n", encoding="utf-8")
    code, out, err = cli(sandbox, "watch", inbox, "--once", "--interval", "0.1", "--settle", "0.3",
                         "--notify", "admin@contoso.com", "--notify-from", SENDER)
    assert code == ExitStatus.USAGE, out + err  # --once: the worst status of the pass (bad.csv)

    done = _one(inbox / "done")  # every valid row created: done/, though exit 1 (an invalid row)
    assert (done / "team.csv").is_file() and (done / "run" / "results.xlsx").is_file()
    issues = (done / "team.csv.issues.txt").read_text(encoding="utf-8").splitlines()
    assert len(issues) == 2 and issues[1].startswith("row 5 (weak.pw@contoso.com): ")
    failed = _one(inbox / "failed")
    assert (failed / "bad.csv").is_file() and "required column(s) missing" in (failed / "bad.csv.error.txt").read_text()
    assert sorted(_people(sandbox)) == [f"team{i:04d}@contoso.com" for i in range(3)]

    mails = {m["subject"].split(":")[1].strip(): m for m in sandbox.mail()}
    assert set(mails) == {"team.csv", "bad.csv"}
    team, bad = mails["team.csv"], mails["bad.csv"]
    assert team["subject"] == "entra-provision: team.csv: 3 created, 1 invalid \u2014 done"
    assert "1 invalid rows were not created" in team["body"]["content"]
    assert "row 5 (weak.pw@contoso.com)" in team["body"]["content"]
    assert str(done / "team.csv") in team["body"]["content"]  # where the roster is now, not its private path
    assert f"retry {done / 'run'}" in team["body"]["content"] and ".processing" not in team["body"]["content"]
    (att,) = team["attachments"]
    book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(att["contentBytes"])), read_only=True)
    assert att["name"] == "results.xlsx" and "Invalid" in book.sheetnames
    assert bad["subject"] == ("entra-provision: bad.csv: failed: required column(s) missing: displayName (or "
                              "givenName and surname to derive it); userPrincipalName (or givenName and surname to "
                              "derive it). Add them, or map your headers with --mapping")[:199] + "\u2026"
    assert str(failed) in bad["body"]["content"] and not bad["attachments"]
    assert "Sender-Pass-99x" not in repr(sandbox.mail()) and "abc" not in team["body"]["content"]
