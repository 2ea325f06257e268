"""Secrets end to end: no client secret, certificate password, roster password, generated password or access token
appears in anything a run produced (stdout, stderr at -vv, every file of the run folder, the xlsx parts unzipped,
the SQLite journal's bytes) except ``passwords.csv``, which is mode 0600.

Two runs against one sandbox (in-process, real HTTPS): one with the certificate credential, one with the client
secret; a roster mixing generated passwords, given passwords and an invalid row that carries a given password; a
few 503s and lost responses so that the retry and reconciliation paths log too.
"""
from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import msal
import pytest
import requests

import provision

#: A JWT: base64url header and payload, both JSON objects (``{"`` encodes to ``eyJ``).
JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")
HEADER = "givenName,surname,displayName,userPrincipalName,password,employeeId\n"
TOOL_ENV = ("AZURE_", "GRAPH_", "PROVISION_")
CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _roster(path: Path, prefix: str) -> tuple[Path, list[str]]:
    """Ten rows: four generated passwords, three given (valid rows), three invalid rows holding a given password
    (a bad UPN; a password a spreadsheet would run as a formula; a password with a control character)."""
    given = [f"Given-{prefix}-Pw-{i}-x7Q!" for i in range(4)] + [f"=Formula-{prefix}-Pw-9x!", f"Ctl\x07{prefix}Pw-8x!"]
    lines = [HEADER]
    for i in range(7):
        password = given[i % 3] if i % 2 else ""
        lines.append(f"G{i},S{i},G{i} S{i},{prefix}{i:03d}@contoso.com,{password},E{prefix}{i}\n")
    lines.append(f"Bad,Row,Bad Row,{prefix}bad.@contoso.com,{given[3]},E{prefix}99\n")  # '.' before '@': invalid
    lines.append(f"Fx,Row,Fx Row,{prefix}fx@contoso.com,{given[4]},E{prefix}98\n")  # formula-looking password
    lines.append(f"Cc,Row,Cc Row,{prefix}cc@contoso.com,{given[5]},E{prefix}97\n")  # control character
    path.write_text("".join(lines), encoding="utf-8")
    return path, given


def _variants(secret: str) -> set[bytes]:
    """The ways a value could be written out: raw, XML/HTML-escaped, URL-encoded, JSON-escaped, CSV-quoted."""
    forms = {secret, html.escape(secret), html.escape(secret, quote=False), quote(secret, safe=""),
             quote_plus(secret), json.dumps(secret)[1:-1], secret.replace('"', '""')}
    return {f.encode("utf-8") for f in forms if f}


def _artifacts(run_dir: Path, out: str, err: str, *, with_passwords: bool = False) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of everything the run produced but passwords.csv (unless ``with_passwords``); xlsx files also
    part by part, inflated."""
    yield "stdout", out.encode("utf-8")
    yield "stderr", err.encode("utf-8")
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        if path.name == "passwords.csv" and not with_passwords:
            continue
        data = path.read_bytes()
        yield str(path.relative_to(run_dir)), data
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for part in zf.namelist():
                    yield f"{path.name}!{part}", zf.read(part)


def _leaks(run_dir: Path, out: str, err: str, secrets: dict[str, str], *, with_passwords: bool = False) -> list[str]:
    """Every (artifact, secret name) where a secret or a JWT appears."""
    found = []
    checked = 0
    for name, data in _artifacts(run_dir, out, err, with_passwords=with_passwords):
        checked += 1
        for label, value in secrets.items():
            if any(v in data for v in _variants(value)):
                found.append(f"{label} in {name}")
        if JWT_RE.search(data):
            found.append(f"an access token (JWT) in {name}")
        if b"PRIVATE KEY" in data:
            found.append(f"a private key in {name}")
    assert checked >= 8, f"only {checked} artifacts were scanned"
    return found


@pytest.fixture
def tool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., tuple[int, str, str]]:
    """``tool(env, *argv)``: provision.main in-process with exactly ``env`` as the tool's settings."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(TOOL_ENV) or name in CA_ENV:
            monkeypatch.delenv(name)

    def run(env: dict[str, str], *argv: Any) -> tuple[int, str, str]:
        for name in list(os.environ):
            if name.startswith(TOOL_ENV):
                monkeypatch.delenv(name)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        out, err = io.StringIO(), io.StringIO()
        code = provision.main([str(a) for a in argv], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    return run


def _issued_token(sb: Any) -> str:
    """An access token from the sandbox, acquired with MSAL as the tool does (to pin the token format)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sb.ca_bundle)
    app = msal.ConfidentialClientApplication(sb.client_id, client_credential=sb.client_secret,
                                             authority=f"{sb.authority_host}/{sb.tenant_id}", http_client=session,
                                             instance_discovery=False)
    result = app.acquire_token_for_client(scopes=[f"{sb.graph_endpoint}/.default"])
    session.close()
    return str(result["access_token"])


@pytest.mark.parametrize("credential", ["certificate", "secret"])
def test_no_secret_in_any_output(credential: str, sandbox_factory: Callable[..., Any],
                                 tool: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    sb = sandbox_factory(faults={"503": 0.15, "lost": 0.1}, seed=4, token_lifetime=3599)
    token = _issued_token(sb)
    assert JWT_RE.match(token.encode()), "the sandbox's tokens are not JWTs any more: update JWT_RE"
    env = {k: v for k, v in sb.env().items() if k != "AZURE_CLIENT_SECRET"}
    if credential == "certificate":
        env["AZURE_CLIENT_CERTIFICATE_PATH"] = str(sb.certificate_path)
        env["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = sb.certificate_password
    else:
        env["AZURE_CLIENT_SECRET"] = sb.client_secret
    roster, given = _roster(tmp_path / "roster.csv", f"sec{credential[:4]}")
    run_dir = tmp_path / "run"

    code, out, err = tool(env, "-vv", "run", roster, "--out", run_dir, "--no-progress")

    assert code == 1, err  # the invalid row; everything else created
    with open(run_dir / "results.csv", encoding="utf-8-sig", newline="") as fh:
        statuses = [r["status"] for r in csv.DictReader(fh)]
    assert statuses == ["created"] * 7 + ["invalid"] * 3
    assert "DEBUG" in err  # -vv really logged at debug level
    assert stat.S_IMODE((run_dir / "passwords.csv").stat().st_mode) == 0o600
    with open(run_dir / "passwords.csv", encoding="utf-8", newline="") as fh:
        records = list(csv.DictReader(fh))
    generated = [r["password"] for r in records]
    assert len(generated) == 4 and all(generated)
    # exactly the rows without a roster password got one, each under its own UPN
    assert [(r["row"], r["userPrincipalName"]) for r in records] == [
        (str(row), f"sec{credential[:4]}{i:03d}@contoso.com") for i, row in ((0, 2), (2, 4), (4, 6), (6, 8))]
    assert json.loads((run_dir / "summary.json").read_text())["counts"]["created"] == 7

    secrets = {"client secret": sb.client_secret, "certificate password": sb.certificate_password,
               "access token": token}
    secrets.update({f"roster password {i}": pw for i, pw in enumerate(given)})
    secrets.update({f"generated password {i}": pw for i, pw in enumerate(generated)})
    assert _leaks(run_dir, out, err, secrets) == []
    # the same scan over passwords.csv's bytes too: it sees the generated passwords there, and only there; the
    # roster's passwords (valid rows and refused ones) are not copied into it
    assert _leaks(run_dir, out, err, secrets, with_passwords=True) == [
        f"generated password {i} in passwords.csv" for i in range(len(generated))]
