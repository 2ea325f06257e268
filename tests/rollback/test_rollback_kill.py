"""A rollback in a separate process, stopped with Ctrl-C, resumed and killed (SIGKILL) mid-way, then resumed again:
every user the run created ends deleted, and no write is sent twice (the sandbox's counters)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from provisioning.exitcodes import ExitStatus
from sandbox import process as sandbox_process
from tests.helpers.journal import journal_count
from tests.run.conftest import read_results, sandbox_env, write_roster

ROOT = Path(__file__).resolve().parents[2]
N = 240


def _serve(state: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    return sandbox_process.serve(state, ["--latency-ms", "20:5", "--seed", "5"])


def _stats(env: dict[str, str]) -> dict[str, Any]:
    return sandbox_process.stats(env)


def _tool(env: dict[str, str], cwd: Path, *argv: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ROOT / "provision.py"), *map(str, argv)], cwd=cwd,
                            env=sandbox_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _done_steps(folder: Path | None) -> int:
    if folder is None:
        return 0
    return journal_count(folder / "journal.sqlite", "SELECT COUNT(*) FROM rollback_steps WHERE state='done'")


def _wait_done(run: Path, at_least: int, proc: subprocess.Popen[str], timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while True:
        folders = sorted(run.glob("rollback-*"))
        folder = folders[-1] if folders else None
        if _done_steps(folder) >= at_least:
            assert folder is not None
            return folder
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.slow
def test_rollback_ctrl_c_sigkill_resume_deletes_each_user_once(tmp_path: Path) -> None:
    sb, env = _serve(tmp_path / "sb")
    try:
        roster = write_roster(tmp_path / "roster.csv", N)
        run = tmp_path / "run"
        made = subprocess.run([sys.executable, str(ROOT / "provision.py"), "run", roster, "--out", run,
                               "--no-progress", "--max-writes-per-s", "40"],
                              cwd=tmp_path, env=sandbox_env(env), capture_output=True, text=True, timeout=120)
        assert made.returncode == ExitStatus.OK, made.stderr
        created = {r["objectId"] for r in read_results(run).values()}
        assert len(created) == N
        before = _stats(env)

        # 1. Ctrl-C: stops sending, records the answers in flight, says how to continue, exits 130
        proc = _tool(env, tmp_path, "rollback", run, "--yes")
        folder = _wait_done(run, 30, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == ExitStatus.INTERRUPTED, out + err
        assert f"to continue: python provision.py resume {folder}" in err
        with sqlite3.connect(folder / "journal.sqlite") as conn:
            states = dict(conn.execute("SELECT state, COUNT(*) FROM rollback_steps GROUP BY state").fetchall())
        assert "sending" not in states and 30 <= states["done"] < N, states

        # 2. resume, SIGKILL mid-way: steps stay 'sending'
        proc = _tool(env, tmp_path, "resume", folder)
        _wait_done(run, states["done"] + 40, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with sqlite3.connect(folder / "journal.sqlite") as conn:
            killed = dict(conn.execute("SELECT state, COUNT(*) FROM rollback_steps GROUP BY state").fetchall())
        assert killed.get("sending", 0) > 0, killed  # what resume must read before sending anything again

        # 3. resume again: completes; each user deleted once, no write sent twice
        done = subprocess.run([sys.executable, str(ROOT / "provision.py"), "resume", folder], cwd=tmp_path,
                              env=sandbox_env(env), capture_output=True, text=True, timeout=120)
        assert done.returncode == ExitStatus.OK, done.stdout + done.stderr
        assert "stay restorable for 30 days" in done.stdout
        after = _stats(env)
        assert after["users_deleted"] - before["users_deleted"] == N
        assert after["writes"] - before["writes"] == N
        assert after["users"] == 0
        with sqlite3.connect(folder / "journal.sqlite") as conn:
            assert conn.execute("SELECT state, COUNT(*) FROM rollback_steps GROUP BY state").fetchall() == \
                [("done", N)]
        assert sorted(run.glob("rollback-*")) == [folder]
    finally:
        sb.send_signal(signal.SIGTERM)
        sb.wait(timeout=10)
