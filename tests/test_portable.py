"""What differs on Windows, exercised here on Linux through the platform checks themselves (``sys.platform`` set to
``win32``): printed commands quoted for cmd.exe/PowerShell, owner-only files through ``icacls`` (a stand-in
``icacls`` on PATH records its arguments: the real one exists only on Windows), ``resume`` appending to a
passwords.csv whose mode Windows reports as 0o666. And, end to end, a console that cannot encode a roster's name.

Not testable here: that the real ``icacls`` gives the ACL asked for, ``msvcrt.locking`` (provisioning/store/lock.py),
the console script ``entra-provision.exe`` and the absence of a folder fsync on NTFS."""
from __future__ import annotations

import argparse
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from provisioning import cli, portable
from provisioning.store.secrets import PasswordFile, create_private

ROOT = Path(__file__).resolve().parents[1]
WINDOWS_PATH = r"C:\Users\Anna Admin\runs\20260101-120000-roster"


@pytest.fixture
def on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")


def test_commands_are_quoted_for_the_posix_shell() -> None:
    assert portable.quote_command(["python", "provision.py", "resume", "/srv/my runs/r'1"]) == \
        "python provision.py resume '/srv/my runs/r'\"'\"'1'"
    assert portable.quote_arg("/srv/runs/r1") == "/srv/runs/r1"


@pytest.mark.usefixtures("on_windows")
def test_commands_are_quoted_for_windows() -> None:
    assert portable.quote_command(["entra-provision", "resume", WINDOWS_PATH]) == \
        f'entra-provision resume "{WINDOWS_PATH}"'
    assert portable.quote_arg(r"C:\runs\r1") == r"C:\runs\r1"
    assert portable.quote_arg('a "b"') == r'"a \"b\""'


def _args(**given: object) -> argparse.Namespace:
    values: dict[str, object] = {"env_file": None, "config": None, "sandbox": False,
                                 "sandbox_dir": cli.DEFAULT_SANDBOX_DIR}
    values.update(given)
    return argparse.Namespace(**values)


def test_the_command_line_names_the_program_as_invoked(tmp_path: Path) -> None:
    env = tmp_path / "my prod.env"
    assert cli._command_line(_args(env_file=env), cli.SHIM) == f"python provision.py --env-file '{env}'"
    assert cli._command_line(_args(sandbox=True), cli.INSTALLED) == "entra-provision --sandbox"


@pytest.mark.usefixtures("on_windows")
def test_the_command_line_is_quoted_for_windows(tmp_path: Path) -> None:
    env = tmp_path / "my prod.env"
    assert cli._command_line(_args(env_file=env), cli.INSTALLED) == f'entra-provision --env-file "{env}"'


def _fake_icacls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int) -> Path:
    """An ``icacls.EXE`` on PATH (found by shutil.which's Windows rules) that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "icacls.args"
    fake = bin_dir / "icacls.EXE"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\nexit {status}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("PATHEXT", ".EXE")
    monkeypatch.setenv("USERNAME", "anna")
    monkeypatch.setenv("USERDOMAIN", "CONTOSO")
    return record


@pytest.mark.usefixtures("on_windows")
def test_a_private_file_gets_an_acl_of_its_owner_alone_on_windows(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    record = _fake_icacls(tmp_path, monkeypatch, status=0)
    path = tmp_path / "passwords.csv"
    os.close(create_private(path))
    assert record.read_text().splitlines() == [str(path), "/inheritance:r", "/grant:r", "CONTOSO\\anna:F"]


@pytest.mark.usefixtures("on_windows")
def test_without_an_acl_a_warning_says_the_file_is_as_private_as_its_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _fake_icacls(tmp_path, monkeypatch, status=5)
    path = tmp_path / "passwords.csv"
    with caplog.at_level(logging.WARNING, logger="provisioning.portable"):
        os.close(create_private(path))
    assert path.exists()
    assert caplog.messages == [f"{path} could not be made private to your account (icacls failed); it is only as "
                               "private as its folder: keep the folder where only you can read it"]


def test_a_private_file_is_mode_0600_on_posix(tmp_path: Path) -> None:
    path = tmp_path / "passwords.csv"
    os.close(create_private(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _readable_by_all(tmp_path: Path) -> Path:
    """A passwords.csv as Windows reports every file: mode 0o666."""
    path = tmp_path / "passwords.csv"
    path.write_text("row,userPrincipalName,password\r\n2,a@x,Pw-one-1A\r\n", encoding="utf-8")
    path.chmod(0o666)
    return path


def test_resume_refuses_a_passwords_file_others_can_read_on_posix(tmp_path: Path) -> None:
    path = _readable_by_all(tmp_path)
    with pytest.raises(PermissionError, match="refusing to append to a link or a file others can read"):
        PasswordFile(path).add([(3, "b@x", "Pw-two-2B")])


@pytest.mark.usefixtures("on_windows")
def test_resume_appends_to_the_passwords_file_on_windows(tmp_path: Path) -> None:
    path = _readable_by_all(tmp_path)
    pf = PasswordFile(path)
    assert pf.load() == {2: ("a@x", "Pw-one-1A")}
    pf.add([(3, "b@x", "Pw-two-2B")])
    pf.close()
    assert path.read_bytes() == b"row,userPrincipalName,password\r\n2,a@x,Pw-one-1A\r\n3,b@x,Pw-two-2B\r\n"


def test_a_console_that_cannot_encode_a_name_gets_an_escape_not_a_crash(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("givenName,surname,userPrincipalName\nŁukasz,Nowak,łukasz@contoso.com\n", encoding="utf-8")
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    done = subprocess.run([sys.executable, str(ROOT / "provision.py"), "validate", str(roster)], cwd=tmp_path,
                          env=env, capture_output=True, timeout=120)
    out, err = done.stdout.decode("cp1252"), done.stderr.decode("cp1252")
    assert done.returncode == 1, err
    assert "internal error" not in err
    assert err.startswith(f"{roster}: 1 row (csv, header on row 1); 0 valid, 1 with errors; 1 error, 0 warnings\n")
    issue = ("upn-invalid-chars  userPrincipalName '\\u0142ukasz@contoso.com': '\\u0142' not allowed before '@' (only "
             "A-Z a-z 0-9 ' . - _ ! # ^ ~; no accents or spaces); remove or replace them")
    # the issue list follows the summary by code (its own table), one line per issue
    assert [line for line in out.splitlines() if line.endswith(issue)], out
