"""The tool against a sandbox whose client secret has expired (``secret_expired`` knob, AADSTS7000222)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

import provision
from provisioning.exitcodes import ExitStatus

FIX = ("the client secret has expired: create a new one under App registrations > Certificates & secrets and set "
       "AZURE_CLIENT_SECRET to its Value, or use a certificate (AZURE_CLIENT_CERTIFICATE_PATH)")


def _expect_expired(sb: Any, code: int, out: str, err: str) -> None:
    assert code == ExitStatus.CONFIG, err
    err = "".join(ln for ln in err.splitlines(keepends=True) if not ln.startswith("run folder: "))  # run's start
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: authentication failed (AADSTS7000222, invalid_client): {FIX} [server said: "
                          f"The provided client secret keys for app '{sb.client_id}' are expired."), err
    assert sb.client_secret not in out + err


def test_check_with_expired_secret_exit_3(sandbox_factory: Any, cli: Any) -> None:
    sb = sandbox_factory(secret_expired=True)
    _expect_expired(sb, *cli(sb, "check"))


def test_run_with_expired_secret_exit_3_nothing_created(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(secret_expired=True)
    roster = tmp_path / "roster.csv"
    roster.write_text("givenName,surname,userPrincipalName\nAda,Lovelace,ada.lovelace@contoso.com\n",
                      encoding="utf-8")
    _expect_expired(sb, *cli(sb, "run", roster, "--out", tmp_path / "run", "--no-progress"))
    assert sb.stats()["users"] == 0


def test_sandbox_env_with_the_certificate_uncommented_works(sandbox_factory: Any, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    """The env file's own instruction: comment out AZURE_CLIENT_SECRET, uncomment the certificate lines."""
    sb = sandbox_factory(secret_expired=True)
    monkeypatch.chdir(tmp_path)  # another folder than the state's: the paths in the file are absolute
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    env_file = sb.state_dir / "sandbox.env"

    def check() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = provision.main(["--env-file", str(env_file), "check"], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()
    _expect_expired(sb, *check())
    lines = env_file.read_text().splitlines()
    edited = ["# " + ln if ln.startswith("AZURE_CLIENT_SECRET=") else
              ln[2:] if ln.startswith("# AZURE_CLIENT_CERTIFICATE_") else ln for ln in lines]
    env_file.write_text("\n".join(edited) + "\n")
    code, out, err = check()
    assert code == ExitStatus.OK, err
    assert "Token:        acquired" in out and "Certificate:  SHA-1 thumbprint " in out


def test_serve_option_secret_expired() -> None:
    from sandbox.cli import build_parser, knobs_from_args
    assert knobs_from_args(build_parser("sandbox").parse_args(["serve", "--secret-expired"])) == \
        {"secret_expired": True}
    assert knobs_from_args(build_parser("sandbox").parse_args(["serve"])) == {}
