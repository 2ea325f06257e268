"""A run in a separate process, stopped by a signal (SIGINT, SIGTERM, SIGHUP; once, or twice quickly) during its
creates or its follow-ups: it exits 130, prints the command that continues it (with the --env-file it was given),
the Summary's resume line says so, and ``resume`` completes every row and every follow-up."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provisioning.exitcodes import ExitStatus
from tests.helpers.journal import journal_count

from .conftest import env_file, read_results, tenant_users, tool_process_env, write_roster

ROOT = Path(__file__).resolve().parents[2]
#: The tool's own pacing makes the run last a few seconds: 2 requests per $batch, 4 writes/s.
SLOW = ("--no-progress", "--batch-size", "2", "--max-writes-per-s", "4", "--write-burst", "2")
FOLLOWUP_HEADER = "givenName,surname,displayName,userPrincipalName,password,usageLocation,groups,manager\n"


def _journal(run: Path, sql: str) -> int:
    return journal_count(run / 'journal.sqlite', sql)


def _run(env: Path, roster: Path, run: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ROOT / "provision.py"), "--env-file", str(env), "run", str(roster),
                             "--out", str(run), *SLOW], cwd=roster.parent, env=tool_process_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(proc: subprocess.Popen[str], until: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _stopped(proc: subprocess.Popen[str], *signums: int) -> tuple[str, str]:
    try:
        for signum in signums:
            proc.send_signal(signum)
            time.sleep(0.05)
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _summary_resume(run: Path) -> tuple[str, str]:
    from openpyxl import load_workbook

    sheet = load_workbook(run / "results.xlsx", read_only=True)["Summary"]
    items = {r[0]: r[1] for r in sheet.iter_rows(values_only=True) if r and r[0]}
    return json.loads((run / "summary.json").read_text())["resume"], items["Resume if interrupted"]


def _creating(sandbox: Any, tmp_path: Path, n: int) -> tuple[Path, Path, subprocess.Popen[str]]:
    """A run of ``n`` users started in a subprocess, returned once its first creates are journaled."""
    roster = write_roster(tmp_path / "roster.csv", n)
    env = env_file(tmp_path / "prod.env", sandbox)
    run = tmp_path / "run"
    proc = _run(env, roster, run)
    _wait(proc, lambda: _journal(run, "SELECT COUNT(*) FROM rows WHERE state='created'") >= 4)
    return env, run, proc


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_during_the_creates_stops_cleanly_and_resume_completes(
        signame: str, sandbox: Any, tool: Any, tmp_path: Path) -> None:
    n = 24
    env, run, proc = _creating(sandbox, tmp_path, n)
    out, err = _stopped(proc, getattr(signal, signame))
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    hint = f"to continue: python provision.py --env-file {env} resume {run}"
    assert err.splitlines()[0] == f"run folder: {run}" and f"stopping ({signame})" in err, err
    assert err.splitlines()[-2:] == [f"interrupted; the journal of {run} is consistent.", hint], err
    assert _journal(run, "SELECT COUNT(*) FROM rows WHERE state IN ('sending', 'unknown')") == 0
    created = _journal(run, "SELECT COUNT(*) FROM rows WHERE state='created'")
    assert 4 <= created < n
    assert _summary_resume(run) == (hint.removeprefix("to continue: "),) * 2

    code, out, err = tool(env, "resume", run, "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert {r["status"] for r in read_results(run).values()} == {"created"}
    assert sandbox.stats()["users_created"] == n and len(tenant_users(sandbox)) == n
    assert _summary_resume(run) == ("", "(nothing to resume)")


def test_a_ctrl_c_during_the_creates_in_process_stops_cleanly_and_resume_completes(
        sandbox: Any, tool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above without a subprocess or pacing: a real SIGINT to this process as the third chunk leaves."""
    import os

    from provisioning.run.creates import ApplyEngine

    on_send = ApplyEngine._on_send
    chunks = []

    def signalled(self: Any, chunk: Any) -> None:
        on_send(self, chunk)
        chunks.append(len(chunk))
        if len(chunks) == 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ApplyEngine, "_on_send", signalled)
    n = 24
    roster = write_roster(tmp_path / "roster.csv", n)
    env = env_file(tmp_path / "prod.env", sandbox)
    run = tmp_path / "run"
    code, out, err = tool(env, "run", roster, "--out", run, "--no-progress", "--batch-size", "2")
    assert code == ExitStatus.INTERRUPTED, out + err
    hint = f"to continue: python provision.py --env-file {env} resume {run}"
    assert err.splitlines()[0] == f"run folder: {run}" and "stopping (SIGINT)" in err, err
    assert err.splitlines()[-2:] == [f"interrupted; the journal of {run} is consistent.", hint], err
    assert _journal(run, "SELECT COUNT(*) FROM rows WHERE state IN ('sending', 'unknown')") == 0
    created = _journal(run, "SELECT COUNT(*) FROM rows WHERE state='created'")
    assert 4 <= created <= 6 and sandbox.stats()["users_created"] == created  # the chunks sent, no more
    assert _summary_resume(run) == (hint.removeprefix("to continue: "),) * 2

    monkeypatch.setattr(ApplyEngine, "_on_send", on_send)
    code, out, err = tool(env, "resume", run, "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert {r["status"] for r in read_results(run).values()} == {"created"}
    assert sandbox.stats()["users_created"] == n and len(tenant_users(sandbox)) == n
    assert _summary_resume(run) == ("", "(nothing to resume)")


@pytest.mark.slow
def test_two_quick_ctrl_c_abort_at_once_and_resume_creates_each_user_once(
        sandbox: Any, tool: Any, tmp_path: Path) -> None:
    n = 24
    env, run, proc = _creating(sandbox, tmp_path, n)
    out, err = _stopped(proc, signal.SIGINT, signal.SIGINT)
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert "aborted at once (SIGINT)" in err, err
    assert err.splitlines()[-1] == f"to continue: python provision.py --env-file {env} resume {run}", err

    code, out, err = tool(env, "resume", run, "--no-progress")
    assert code == ExitStatus.OK, out + err
    results = read_results(run)
    assert {r["status"] for r in results.values()} == {"created"}
    assert sandbox.stats()["users_created"] == n
    assert {r["objectId"] for r in results.values()} == {u["id"] for u in tenant_users(sandbox).values()}
    lines = (run / "passwords.csv").read_text().splitlines()
    assert len(lines) == n + 1 and len({ln.split(",")[0] for ln in lines[1:]}) == n


@pytest.mark.slow
@pytest.mark.parametrize("signums", [("SIGINT",), ("SIGTERM",), ("SIGINT", "SIGINT")])
def test_a_signal_during_the_followups_stops_cleanly_and_resume_sends_the_rest(
        signums: tuple[str, ...], sandbox: Any, tool: Any, tmp_path: Path) -> None:
    from tests.followups.conftest import graph, manager_of, members

    n = 10
    lines = ["Bo,Ss,Bo Ss,boss@contoso.com,,US,Finance,"]
    lines += [f"G{i},S{i},G{i} S{i},team{i:02d}@contoso.com,,US,Finance,boss@contoso.com" for i in range(1, n)]
    roster = tmp_path / "team.csv"
    roster.write_text(FOLLOWUP_HEADER + "".join(f"{ln}\n" for ln in lines), encoding="utf-8")
    env = env_file(tmp_path / "prod.env", sandbox)
    run = tmp_path / "run"
    proc = _run(env, roster, run)
    _wait(proc, lambda: _journal(run, "SELECT COUNT(*) FROM rows WHERE state='created'") == n
          and _journal(run, "SELECT COUNT(*) FROM followups WHERE state='done'") >= 2)
    out, err = _stopped(proc, *(getattr(signal, s) for s in signums))
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    hint = f"to continue: python provision.py --env-file {env} resume {run}"
    assert err.splitlines()[-1] == hint, err
    pending = _journal(run, "SELECT COUNT(*) FROM followups WHERE state='pending'")
    assert pending > 0 and _journal(run, "SELECT COUNT(*) FROM followups WHERE state='failed'") == 0
    if len(signums) == 1:  # a clean stop writes the reports; an abort leaves them to resume
        assert _summary_resume(run) == (hint.removeprefix("to continue: "),) * 2
        assert "follow-up pending" in {r["status"].split(", ")[-1] for r in read_results(run).values()}

    code, out, err = tool(env, "resume", run, "--no-progress")
    assert code == ExitStatus.OK, out + err
    results = read_results(run)
    assert {r["status"] for r in results.values()} == {"created"}
    ids = {r["userPrincipalName"]: r["objectId"] for r in results.values()}
    with graph(sandbox) as client:
        assert members(client, sandbox.groups["Finance"]) == set(ids.values())
        assert {upn: manager_of(client, oid) for upn, oid in ids.items() if upn != "boss@contoso.com"} == \
            {upn: ids["boss@contoso.com"] for upn in ids if upn != "boss@contoso.com"}
    assert _summary_resume(run) == ("", "(nothing to resume)")


def test_a_signal_while_the_reports_are_written_still_exits_130_with_the_hint(
        sandbox: Any, tool: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from provisioning.report import run_workbook as run_report

    write = run_report.write_run_workbook

    def signalled(*args: Any, **kwargs: Any) -> Any:  # a real Ctrl-C to this process, mid-report
        os.kill(os.getpid(), signal.SIGINT)
        return write(*args, **kwargs)

    monkeypatch.setattr(run_report, "write_run_workbook", signalled)
    roster = write_roster(tmp_path / "roster.csv", 3)
    env = env_file(tmp_path / "prod.env", sandbox)
    code, out, err = tool(env, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.INTERRUPTED, out + err
    assert err.splitlines()[-1] == f"to continue: python provision.py --env-file {env} resume {tmp_path / 'run'}"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["exit_status"] == 130 and summary["interrupted"] is True
    assert (tmp_path / "run" / "results.xlsx").is_file()
    monkeypatch.setattr(run_report, "write_run_workbook", write)
    code, out, err = tool(env, "resume", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["exit_status"] == 0


def test_a_signal_before_anything_was_sent_says_so(sandbox: Any, tool: Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from provisioning import api

    check = api.check_tenant_references

    def signalled(*args: Any, **kwargs: Any) -> Any:  # a real Ctrl-C during the pre-flight
        os.kill(os.getpid(), signal.SIGINT)
        return check(*args, **kwargs)

    monkeypatch.setattr(api, "check_tenant_references", signalled)
    roster = write_roster(tmp_path / "roster.csv", 3)
    code, out, err = tool(env_file(tmp_path / "prod.env", sandbox), "run", roster, "--out", tmp_path / "run")
    assert code == ExitStatus.INTERRUPTED, out + err
    assert err.splitlines()[-1] == (f"interrupted (SIGINT) before anything was sent: nothing to resume in "
                                    f"{tmp_path / 'run'}; start the run again")
    assert not (tmp_path / "run" / "journal.sqlite").exists() and tenant_users(sandbox) == {}
