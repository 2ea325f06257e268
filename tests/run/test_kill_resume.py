"""A run in a separate process, interrupted (Ctrl-C) and killed (SIGKILL) mid-way, then resumed: every valid user
ends created exactly once; the roster may not change in between."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioning.exitcodes import ExitStatus
from sandbox import process as sandbox_process

from .conftest import created_in_journal, read_results, sandbox_env, tenant_users, write_roster

ROOT = Path(__file__).resolve().parents[2]
N = 300


def _serve(state: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    return sandbox_process.serve(state, ["--latency-ms", "20:5", "--fault", "lost=0.03", "--seed", "5"])


def _start_run(roster: Path, run: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "provision.py"), "run", str(roster), "--out", str(run), "--no-progress",
         "--max-writes-per-s", "60"],
        cwd=roster.parent, env=sandbox_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _waitcreated_in_journal(run: Path, at_least: int, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while created_in_journal(run / "journal.sqlite") < at_least:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.slow
def test_ctrl_c_then_sigkill_then_resume_creates_each_user_once(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    sb, env = _serve(tmp_path / "sb")
    try:
        roster = write_roster(tmp_path / "roster.csv", N)
        run = tmp_path / "run"

        # 1. Ctrl-C: stops sending, records in-flight answers, prints how to resume, exits 130
        proc = _start_run(roster, run, env)
        _waitcreated_in_journal(run, 40, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == ExitStatus.INTERRUPTED, err
        assert f"to continue: python provision.py resume {run}" in err
        conn = sqlite3.connect(run / "journal.sqlite")
        states = dict(conn.execute("SELECT state, COUNT(*) FROM rows GROUP BY state").fetchall())
        conn.close()
        assert "sending" not in states and 40 <= states["created"] < N, states

        # 2. resume, SIGKILL mid-way
        proc = subprocess.Popen([sys.executable, str(ROOT / "provision.py"), "resume", str(run), "--no-progress"],
                                cwd=tmp_path, env=sandbox_env(env), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        _waitcreated_in_journal(run, states["created"] + 60, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

        # 3. resume again: completes, nobody twice
        done = subprocess.run([sys.executable, str(ROOT / "provision.py"), "resume", str(run), "--no-progress"],
                              cwd=tmp_path, env=sandbox_env(env), capture_output=True, text=True, timeout=120)
        assert done.returncode == ExitStatus.OK, done.stderr
        res = read_results(run)
        assert len(res) == N and {v["status"] for v in res.values()} == {"created"}
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
        users = tenant_users(env)
        assert len(users) == N
        assert {v["objectId"] for v in res.values()} == {u["id"] for u in users.values()}
        pw_lines = (run / "passwords.csv").read_text().splitlines()
        assert len(pw_lines) == N + 1 and len({ln.split(",")[0] for ln in pw_lines[1:]}) == N

        # 4. the roster changed: resume refuses with exit 2
        roster.write_text(roster.read_text() + "X,Y,X Y,x.y@contoso.com,,E9\n")
        again = subprocess.run([sys.executable, str(ROOT / "provision.py"), "resume", str(run)], cwd=tmp_path,
                               env=sandbox_env(env), capture_output=True, text=True, timeout=60)
        assert again.returncode == ExitStatus.USAGE
        assert "changed since the run started" in again.stderr
    finally:
        sb.send_signal(signal.SIGTERM)
        sb.wait(timeout=10)
