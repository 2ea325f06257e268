"""``--notify``: the summary mail goes through Graph sendMail on the sandbox over HTTPS, with results.xlsx attached
(opened with openpyxl), never a password; a failing mail is reported, never raised."""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

import provision
from provisioning.api import make_client
from provisioning.context import CommandContext
from provisioning.exitcodes import ExitStatus
from provisioning.report.notify import (
    NotifyOptions,
    check_notify_arguments,
    maybe_notify,
    next_step,
    send_notification,
    subject_line,
)
from provisioning.report.run_workbook import write_run_workbook
from provisioning.settings import load_settings

HEADER = "givenName,surname,displayName,userPrincipalName,password,employeeId\n"
SENDER = "notifier@contoso.com"


def _client(sb: Any) -> Any:
    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sb.env())
    return make_client(settings)


@pytest.fixture
def finished_run(sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Path]]:
    """A sandbox with a sender mailbox and a finished run of 5 created users and 1 invalid row."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):  # only the sandbox's settings, whatever an earlier test left behind
        if name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GRAPH_ENDPOINT") or name.startswith(("AZURE_",
                                                                                                  "PROVISION_")):
            monkeypatch.delenv(name, raising=False)
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    with _client(sandbox) as client:
        client.request("POST", "/users", json={
            "accountEnabled": True, "displayName": "Notifier", "mailNickname": "notifier",
            "userPrincipalName": SENDER, "passwordProfile": {"password": "Sender-Pass-99x"}})
    roster = tmp_path / "team.csv"
    roster.write_text(HEADER + "".join(f"G{i},S{i},G{i} S{i},mail.user{i}@contoso.com,,E{i}\n" for i in range(5))
                      + "Weak,Pw,Weak Pw,weak.pw@contoso.com,abc,E9\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["run", str(roster), "--out", str(run_dir), "--no-progress"], stdout=out, stderr=err)
    assert code == ExitStatus.ROWS_FAILED, err.getvalue()
    if not (run_dir / "results.xlsx").is_file():
        write_run_workbook(run_dir)
    yield sandbox, run_dir


def test_mail_arrives_with_summary_and_workbook_and_no_password(finished_run: tuple[Any, Path]) -> None:
    sb, run_dir = finished_run
    options = NotifyOptions.parse("admin@contoso.com, hr@example.org", SENDER)
    with _client(sb) as client:
        result = send_notification(client, options, run_dir, command_line="python provision.py")
    assert result.sent and result.attached and result.warning is None
    assert result.recipients == ("admin@contoso.com", "hr@example.org")

    (mail,) = sb.mail()
    assert mail["from"] == SENDER
    assert [r for r in mail["toRecipients"]] == ["admin@contoso.com", "hr@example.org"]
    assert mail["subject"] == f"Provisioning run {run_dir.name}: 5 created, 0 skipped, 0 failed, 1 invalid"
    content = mail["body"]["content"]
    assert mail["body"]["contentType"].lower() == "html"
    for expected in ("created", "invalid", "Users/s", "Duration", str(run_dir),
                     f"python provision.py retry {run_dir}"):
        assert expected in content, expected

    (att,) = mail["attachments"]
    assert att["name"] == "results.xlsx" and att["size"] == (run_dir / "results.xlsx").stat().st_size
    book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(att["contentBytes"])), read_only=True)
    assert {"Summary", "Created", "Invalid"} <= set(book.sheetnames)
    created = [r for r in book["Created"].iter_rows(values_only=True)][1:]
    assert len([r for r in created if any(r)]) == 5

    passwords = [ln.split(",")[-1] for ln in (run_dir / "passwords.csv").read_text().splitlines()[1:]]
    assert len(passwords) == 5
    everything = json.dumps(mail)
    for pw in passwords:
        assert pw and pw not in everything and base64.b64encode(pw.encode()).decode() not in everything
    assert "passwords.csv" not in [a["name"] for a in mail["attachments"]]


def test_unknown_sender_is_reported_not_raised(finished_run: tuple[Any, Path]) -> None:
    sb, run_dir = finished_run
    with _client(sb) as client:
        result = send_notification(client, NotifyOptions.parse("admin@contoso.com", "nobody@contoso.com"), run_dir)
    assert not result.sent and result.error_code == "ErrorInvalidUser"
    assert result.warning and "nobody@contoso.com" in result.warning and "404" in result.warning
    assert result.request_id
    assert sb.mail() == []


def test_oversized_workbook_is_not_attached_and_the_body_says_where(finished_run: tuple[Any, Path]) -> None:
    sb, run_dir = finished_run
    with _client(sb) as client:
        result = send_notification(client, NotifyOptions.parse("admin@contoso.com", SENDER), run_dir,
                                   max_attachment_bytes=1000)
    assert result.sent and not result.attached
    (mail,) = sb.mail()
    assert mail["attachments"] == []
    assert "attachment limit" in mail["body"]["content"] and str(run_dir / "results.xlsx") in mail["body"]["content"]


def test_maybe_notify_builds_its_client_and_warns_on_failure(finished_run: tuple[Any, Path]) -> None:
    sb, run_dir = finished_run
    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sb.env())
    out, err = io.StringIO(), io.StringIO()
    ctx = CommandContext(out=out, err=err, settings=settings)
    assert maybe_notify(ctx, argparse.Namespace(notify=None, notify_from=None), run_dir) is None

    ok = maybe_notify(ctx, argparse.Namespace(notify="a@contoso.com;b@contoso.com", notify_from=SENDER), run_dir)
    assert ok is not None and ok.sent and "notification sent to a@contoso.com, b@contoso.com" in out.getvalue()

    bad = maybe_notify(ctx, argparse.Namespace(notify="a@contoso.com", notify_from="ghost@contoso.com"), run_dir)
    assert bad is not None and not bad.sent
    assert "warning: the notification was not sent" in err.getvalue() and "ErrorInvalidUser" in err.getvalue()
    assert len(sb.mail()) == 1

    # even an unusable client (no settings at all) only produces a warning
    broken = CommandContext(out=io.StringIO(), err=io.StringIO(), settings=None)
    res = maybe_notify(broken, argparse.Namespace(notify="a@contoso.com", notify_from=SENDER), run_dir)
    assert res is not None and not res.sent and "warning" in broken.err.getvalue()


def test_pure_parts(tmp_path: Path) -> None:
    assert NotifyOptions.parse(" a@x.com,, b@y.com ;c@z.com", " s@x.com ") == NotifyOptions(
        ("a@x.com", "b@y.com", "c@z.com"), "s@x.com")
    assert check_notify_arguments(argparse.Namespace(notify="a@x.com", notify_from=None))
    assert check_notify_arguments(argparse.Namespace(notify=" , ", notify_from="s@x.com"))
    assert check_notify_arguments(argparse.Namespace(notify="a@x.com", notify_from="s@x.com")) is None
    run = tmp_path / "r un"
    assert next_step({"exit_status": 130, "counts": {}}, run, "p") == f"p resume '{run}'"
    assert next_step({"exit_status": 1, "counts": {"failed": 2}}, run, "p") == f"p retry '{run}'"
    assert next_step({"exit_status": 0, "counts": {"created": 2}}, run, "p") == ""
    assert subject_line({"exit_status": 130, "counts": {"created": 3, "skipped": 1}}, run) == \
        "Provisioning run r un: 3 created, 1 skipped, 0 failed [interrupted]"


def test_watch_subjects_say_the_outcome() -> None:
    from provisioning.exitcodes import ExitStatus as S
    from provisioning.report.notify import watch_subject
    from provisioning.watcher import FileResult

    done = FileResult("staff.csv", S.ROWS_FAILED, Path("done/x"), "done", "error: ignored for done",
                      {"created": 25, "skipped": 0, "invalid": 2, "failed": 0})
    assert watch_subject(done) == "entra-provision: staff.csv: 25 created, 2 invalid \u2014 done"
    unusable = FileResult("staff.csv", S.USAGE, Path("failed/x"), "failed",
                          "/srv/inbox/.processing/staff-1/staff.csv: the roster has no header row\nmore")
    assert watch_subject(unusable) == "entra-provision: staff.csv: failed: the roster has no header row"
    graph = FileResult("staff.csv", S.ROWS_FAILED, Path("failed/x"), "failed", "", {"created": 20, "failed": 5})
    assert watch_subject(graph) == "entra-provision: staff.csv: 20 created, 5 failed \u2014 failed"
    deferred = FileResult("staff.csv", S.CONFIG, None, "deferred", "error: AADSTS7000215: invalid client secret",
                          retry_in_s=60, attempts=1)
    assert watch_subject(deferred) == ("entra-provision: staff.csv: deferred, retry in 60 s: AADSTS7000215: "
                                       "invalid client secret")
    long = watch_subject(FileResult("staff.csv", S.USAGE, None, "failed", "x" * 500))
    assert len(long) == 200 and long.endswith("x\u2026")
