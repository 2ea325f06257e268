"""A run folder belongs to one tenant and one process: ``resume``/``retry`` with another tenant's settings are
refused (exit 3) before anything is sent; a second process on a folder in use is refused (exit 2), and a crashed
holder leaves no lock behind."""
from __future__ import annotations

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

from provisioning.exitcodes import ExitStatus
from sandbox import TENANT_ID

from .conftest import env_file, read_results, tenant_users, tool_process_env, write_roster

ROOT = Path(__file__).resolve().parents[2]


def reopen_rows(run: Path, rows: list[int]) -> None:
    """As if the run had been stopped before the answers to these rows' creates arrived (resume looks them up)."""
    conn = sqlite3.connect(run / "journal.sqlite")
    conn.executemany("UPDATE rows SET state='unknown', object_id='', attempts=1 WHERE row=?", [(r,) for r in rows])
    conn.commit()
    conn.close()


def state(run: Path, row: int) -> str:
    with sqlite3.connect(run / "journal.sqlite") as conn:
        return str(conn.execute("SELECT state FROM rows WHERE row=?", (row,)).fetchone()[0])


def test_resume_with_another_tenants_endpoint_is_refused_and_sends_nothing(
        sandbox_factory: Any, tool: Any, tmp_path: Path) -> None:
    a, b = sandbox_factory(), sandbox_factory()
    roster = write_roster(tmp_path / "roster.csv", 4)
    env_a, env_b = env_file(tmp_path / "a.env", a), env_file(tmp_path / "b.env", b)
    code, out, err = tool(env_a, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert err.splitlines()[0] == f"run folder: {tmp_path / 'run'}"
    with sqlite3.connect(tmp_path / "run" / "journal.sqlite") as conn:
        upn = conn.execute("SELECT upn FROM rows WHERE row=5").fetchone()[0]
    reopen_rows(tmp_path / "run", [5])

    code, out, err = tool(env_b, "resume", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.CONFIG, out + err
    assert err == (f"error: this run folder belongs to tenant {TENANT_ID} at {a.graph_endpoint} (journal); the "
                   f"settings name tenant {TENANT_ID} at {b.graph_endpoint}; use the --env-file/--config the run "
                   "was started with\n")
    assert tenant_users(b) == {} and b.stats()["users_created"] == 0 and state(tmp_path / "run", 5) == "unknown"

    code, out, err = tool(env_b, "retry", tmp_path / "run", "--no-progress")  # retry: the same refusal
    assert code == ExitStatus.CONFIG and "this run folder belongs to tenant" in err, out + err
    assert tenant_users(b) == {}

    code, out, err = tool(env_a, "resume", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert read_results(tmp_path / "run")[5]["status"] == "created" and upn in tenant_users(a)


def test_another_tenant_id_is_refused_and_the_same_tenant_by_domain_name_is_not(
        sandbox: Any, tool: Any, tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "roster.csv", 3)
    code, out, err = tool(env_file(tmp_path / "a.env", sandbox), "run", roster, "--out", tmp_path / "run",
                          "--no-progress")
    assert code == ExitStatus.OK, out + err
    reopen_rows(tmp_path / "run", [4])
    other = "0b1c2d3e-4f50-4162-8374-95a6b7c8d9e0"
    code, out, err = tool(env_file(tmp_path / "o.env", sandbox, AZURE_TENANT_ID=other), "resume",
                          tmp_path / "run", "--no-progress")
    assert code == ExitStatus.CONFIG, out + err
    assert err.startswith(f"error: this run folder belongs to tenant {TENANT_ID} at {sandbox.graph_endpoint} "
                          f"(journal); the settings name tenant {other} at {sandbox.graph_endpoint};"), err
    # a domain name no token is issued for: not the run's tenant either (and the same one-line refusal)
    code, out, err = tool(env_file(tmp_path / "f.env", sandbox, AZURE_TENANT_ID="fabrikam.onmicrosoft.com"),
                          "resume", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.CONFIG and "the settings name tenant fabrikam.onmicrosoft.com at" in err, err
    assert state(tmp_path / "run", 4) == "unknown"
    # the same tenant by its domain name: the token's tenant id is the journal's
    code, out, err = tool(env_file(tmp_path / "d.env", sandbox, AZURE_TENANT_ID="contoso.onmicrosoft.com"),
                          "resume", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert read_results(tmp_path / "run")[4]["status"] == "created"


def test_printed_and_recorded_commands_carry_the_settings_options(sandbox: Any, tool: Any, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    roster = write_roster(tmp_path / "roster.csv", 2, extra="Bad,Row,Bad Row,bad.@contoso.com,,E9\n")
    env = env_file(tmp_path / "prod.env", sandbox)
    code, out, err = tool(Path("prod.env"), "run", roster, "--out", "run", "--no-progress")
    assert code == ExitStatus.ROWS_FAILED, out + err
    summary = {r[0].value: r[1].value for r in load_workbook(tmp_path / "run" / "results.xlsx")["Summary"].iter_rows()
               if r[0].value}
    assert summary["Retry failed and invalid rows"] == (f"python provision.py --env-file {env} retry "
                                                        f"{tmp_path / 'run'}")
    meta = json.loads(sqlite3.connect(tmp_path / "run" / "journal.sqlite").execute(
        "SELECT value FROM meta WHERE key='command_line'").fetchone()[0])
    assert meta == f"python provision.py --env-file {env}"


def _holder(run: Path) -> subprocess.Popen[str]:
    """Another process holding the run folder's lock until killed."""
    code = ("import sys, time; from pathlib import Path; from provisioning.store.lock import lock_run_folder; "
            "held = lock_run_folder(Path(sys.argv[1]), 'resume'); print('locked', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


def test_a_folder_in_use_is_refused_and_a_killed_holder_leaves_no_lock(sandbox: Any, tool: Any,
                                                                         tmp_path: Path) -> None:
    import socket

    roster = write_roster(tmp_path / "roster.csv", 3)
    env = env_file(tmp_path / "a.env", sandbox)
    code, out, err = tool(env, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    reopen_rows(tmp_path / "run", [3])
    holder = _holder(tmp_path / "run")
    try:
        for command in ("resume", "retry"):
            code, out, err = tool(env, command, tmp_path / "run", "--no-progress")
            assert code == ExitStatus.USAGE, out + err
            assert err.startswith(f"error: {tmp_path / 'run'} is in use by another process (pid {holder.pid} on "
                                  f"host {socket.gethostname()} since "), err
            assert err.endswith("); wait for it to finish, or stop it\n"), err
        assert state(tmp_path / "run", 3) == "unknown"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    code, out, err = tool(env, "resume", tmp_path / "run", "--no-progress")  # the kernel dropped the lock
    assert code == ExitStatus.OK, out + err
    assert read_results(tmp_path / "run")[3]["status"] == "created"


@pytest.mark.slow
def test_resume_while_the_run_is_still_going_is_refused(sandbox_factory: Any, tool: Any, tmp_path: Path) -> None:
    n = 25
    sb = sandbox_factory(write_quota=(5, 1.0), latency_ms=(30, 5))  # ~5 creates/s: the run takes a few s
    roster = write_roster(tmp_path / "roster.csv", n)
    env = env_file(tmp_path / "a.env", sb)
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "provision.py"), "--env-file", str(env), "run", str(roster),
                             "--out", str(run), "--no-progress", "--max-writes-per-s", "5", "--write-burst", "5"],
                            cwd=tmp_path, env=tool_process_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (run / "journal.sqlite").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        code, out, err = tool(env, "resume", run, "--no-progress")
        assert code == ExitStatus.USAGE, out + err
        assert f"is in use by another process (pid {proc.pid} on host" in err, err
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == ExitStatus.OK, err
    assert sb.stats()["users_created"] == n and len(tenant_users(sb)) == n
    lines = (run / "passwords.csv").read_text().splitlines()
    assert len(lines) == n + 1 and len({ln.split(",")[0] for ln in lines[1:]}) == n


def test_the_in_process_sandbox_is_known_by_its_state_folder(tmp_path: Path, monkeypatch: Any) -> None:
    import io

    import provision

    monkeypatch.chdir(tmp_path)

    def tool(*argv: Any) -> tuple[int, str]:
        err = io.StringIO()
        return provision.main([str(a) for a in argv], stdout=io.StringIO(), stderr=err), err.getvalue()

    roster = write_roster(tmp_path / "roster.csv", 2)
    code, err = tool("--sandbox", "--sandbox-dir", "sb1", "run", roster, "--out", "run", "--no-progress")
    assert code == ExitStatus.OK, err
    reopen_rows(tmp_path / "run", [3])
    code, err = tool("--sandbox", "--sandbox-dir", "sb2", "resume", "run", "--no-progress")
    assert code == ExitStatus.CONFIG, err
    assert err == (f"error: this run folder belongs to tenant {TENANT_ID} at the sandbox in {tmp_path / 'sb1'} "
                   f"(journal); the settings name tenant {TENANT_ID} at the sandbox in {tmp_path / 'sb2'}; use the "
                   "--sandbox-dir the run was started with\n")
    code, err = tool("--sandbox", "--sandbox-dir", "sb1", "resume", "run", "--no-progress")  # a new port: same one
    assert code == ExitStatus.OK, err
    assert state(tmp_path / "run", 3) == "created"
