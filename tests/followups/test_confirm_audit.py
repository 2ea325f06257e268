"""A run that resets passwords asks first, on a terminal, naming the tenant (``--yes`` for scripts; without a
terminal and without ``--yes`` it refuses, exit 2, nothing sent); every run records who ran what against which
tenant in summary.json and run.log, and a fatal error in run.log too."""
from __future__ import annotations

import getpass
import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import provisioning
from provisioning.exitcodes import ExitStatus
from provisioning.run import audit
from provisioning.run.audit import redact_argv

from .conftest import precreate, write

ROOT = Path(__file__).resolve().parents[2]
HEADER = "userPrincipalName,displayName,jobTitle,department,officeLocation,password\n"
TENANT = "Contoso (sandbox) (contoso.com, 8a6f2c1e-3b4d-4e5f-9a7b-0c1d2e3f4a5b)"


def _roster(sb: Any, tmp_path: Path) -> Path:
    precreate(sb, "pw@contoso.com", "Pw Person", jobTitle="Dev")
    return write(tmp_path / "pw.csv", ["pw@contoso.com,Pw Person,Dev,,,"], header=HEADER)


def test_reset_without_a_terminal_and_without_yes_is_refused_before_anything_is_sent(
        sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox_factory()
    roster = _roster(sb, tmp_path)
    before = sb.stats()
    code, out, err = cli(sb, "run", roster, "--existing", "update", "--reset-passwords", "--out", tmp_path / "r",
                         "--no-progress")
    assert (code, out) == (ExitStatus.USAGE, "")
    assert err.splitlines()[-1] == (f"error: this run would reset the password of 1 existing user in the tenant "
                                    f"{TENANT}; no terminal to confirm it on: give --yes to confirm it (nothing "
                                    "was sent)")
    assert not (tmp_path / "r" / "journal.sqlite").exists()
    assert sb.stats()["users_created"] == before["users_created"]
    assert "fatal error: UsageError: this run would reset" in (tmp_path / "r" / "run.log").read_text()


def _pty_run(sb: Any, tmp_path: Path, roster: Path, answer: bytes) -> tuple[int, str]:
    """The real command on a terminal (a pty): answer the prompt, return (exit status, everything shown)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "COLUMNS")}
    env.update(sb.env())
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(ROOT / "provision.py"), "run", str(roster), "--existing", "update",
                             "--reset-passwords", "--out", str(tmp_path / "r"), "--no-progress"],
                            stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env)
    os.close(slave)
    shown = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        if not answered and b"Type yes to go on: " in shown:
            os.write(master, answer)
            answered = True
        if proc.poll() is not None and not ready:
            break
    os.close(master)
    return proc.wait(timeout=30), shown.decode("utf-8", "replace").replace("\r\n", "\n")


def test_reset_on_a_terminal_names_the_tenant_and_goes_on_after_yes(sandbox_factory: Any, tmp_path: Path) -> None:
    sb = sandbox_factory()
    roster = _roster(sb, tmp_path)
    code, shown = _pty_run(sb, tmp_path, roster, b"yes\n")
    assert code == ExitStatus.OK, shown
    assert (f"Tenant: {TENANT}\nThis run will reset the password of 1 existing user.\nType yes to go on: yes\n"
            in shown), shown
    assert "pw@contoso.com" in (tmp_path / "r" / "passwords.csv").read_text()
    log = (tmp_path / "r" / "run.log").read_text()
    assert (f"confirmed on the terminal by {audit.operator()}: reset the password of 1 existing user in {TENANT}"
            in log)


def test_reset_on_a_terminal_stops_on_any_other_answer(sandbox_factory: Any, tmp_path: Path) -> None:
    sb = sandbox_factory()
    roster = _roster(sb, tmp_path)
    code, shown = _pty_run(sb, tmp_path, roster, b"n\n")
    assert code == ExitStatus.USAGE, shown
    assert shown.endswith("Type yes to go on: n\nerror: not confirmed: nothing was sent\n"), shown
    assert not (tmp_path / "r" / "passwords.csv").exists()
    assert not (tmp_path / "r" / "journal.sqlite").exists()


def test_summary_json_and_run_log_record_the_session(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox_factory()
    roster = _roster(sb, tmp_path)
    code, out, err = cli(sb, "run", roster, "--existing", "update", "--reset-passwords", "--yes", "--out",
                         tmp_path / "r", "--no-progress")
    assert code == ExitStatus.OK, out + err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    command = (f"python provision.py run {roster} --existing update --reset-passwords --yes --out {tmp_path / 'r'} "
               "--no-progress")
    assert summary["audit"] == {
        "tool_version": provisioning.running_version(), "operator": getpass.getuser(), "host": socket.gethostname(),
        "command": command, "tenant_id": "8a6f2c1e-3b4d-4e5f-9a7b-0c1d2e3f4a5b", "tenant_name": "Contoso (sandbox)",
        "default_domain": "contoso.com", "app_id": sb.env()["AZURE_CLIENT_ID"]}
    assert summary["fatal"] == ""
    log = (tmp_path / "r" / "run.log").read_text()
    session = next(line for line in log.splitlines() if " provisioning.audit " in line and "session: " in line)
    assert session.endswith(f"session: tool_version={provisioning.running_version()}, operator={getpass.getuser()}, "
                            f"host={socket.gethostname()}, command={command}, "
                            "tenant_id=8a6f2c1e-3b4d-4e5f-9a7b-0c1d2e3f4a5b, tenant_name=Contoso (sandbox), "
                            f"default_domain=contoso.com, app_id={sb.env()['AZURE_CLIENT_ID']}")
    assert f"confirmed by --yes: reset the password of 1 existing user in {TENANT}" in log
    assert sb.client_secret not in log and sb.client_secret not in json.dumps(summary)


def test_secrets_are_redacted_from_the_recorded_command_line() -> None:
    assert redact_argv(["python", "provision.py", "--client-secret", "abc", "--certificate-password=pw", "run",
                        "a b.csv", "--reset-passwords", "--note", "xs3cr3tx"], ["s3cr3t"]) == (
        "python provision.py --client-secret '***' '--certificate-password=***' run 'a b.csv' --reset-passwords "
        "--note 'x***x'")


def test_operator_falls_back_when_the_os_cannot_name_the_user(monkeypatch: Any) -> None:
    def no_user() -> str:
        raise OSError("no login name")

    monkeypatch.setattr(getpass, "getuser", no_user)
    monkeypatch.setenv("USERNAME", "")
    monkeypatch.setenv("USER", "ops")
    assert audit.operator() == "ops"
    monkeypatch.delenv("USER")
    assert audit.operator() == "unknown"


def test_a_fatal_error_is_written_to_run_log_not_twice_to_the_console(sandbox_factory: Any, cli: Any,
                                                                       tmp_path: Path) -> None:
    sb = sandbox_factory(secret_expired=True)
    roster = write(tmp_path / "one.csv", ["Ada,Lovelace,,ada@contoso.com,,,,,,"])
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "r", "--no-progress")
    assert code == ExitStatus.CONFIG
    assert [ln for ln in err.splitlines() if "AADSTS7000222" in ln] == [
        next(ln for ln in err.splitlines() if ln.startswith("error: authentication failed (AADSTS7000222"))]
    fatal = [ln for ln in (tmp_path / "r" / "run.log").read_text().splitlines() if "fatal error: " in ln]
    assert len(fatal) == 1 and " ERROR provisioning.audit " in fatal[0], fatal
    assert fatal[0].split("fatal error: ", 1)[1].startswith("AuthError: authentication failed (AADSTS7000222, "
                                                            "invalid_client): the client secret has expired")
    assert sb.client_secret not in (tmp_path / "r" / "run.log").read_text()
