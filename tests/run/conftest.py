"""Helpers for the run/resume end-to-end tests: point the CLI at a sandbox, write rosters, read results."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import pytest

import provision
from tests.helpers.journal import journal_count

HEADER = "givenName,surname,displayName,userPrincipalName,password,employeeId\n"

#: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a Session's ``verify`` unless trust_env is off; graph/
#: handles that now, the tests still run without them so that they exercise only the configured CA bundle.
CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
#: Settings the environment could carry into the tool; the tests that give an --env-file remove them.
TOOL_ENV = ("AZURE_", "GRAPH_", "PROVISION_")


@pytest.fixture
def tool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """``tool(env_file, *argv)``: provision.py in-process, from tmp_path, with its settings only from ``--env-file``."""
    monkeypatch.chdir(tmp_path)
    for name in [*CA_ENV, *(k for k in os.environ if k.startswith(TOOL_ENV))]:
        monkeypatch.delenv(name, raising=False)

    def run(env: Path, *argv: Any) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = provision.main(["--env-file", str(env), *map(str, argv)], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    return run


def env_file(path: Path, sb: Any, **override: str) -> Path:
    """A .env file pointing the tool at ``sb`` (``override``: other values, e.g. another AZURE_TENANT_ID)."""
    path.write_text("".join(f"{k}={v}\n" for k, v in {**sb.env(), **override}.items()), encoding="utf-8")
    return path


def tool_process_env() -> dict[str, str]:
    """The environment of a tool subprocess given an --env-file: no CA overrides, no tool settings."""
    return {k: v for k, v in os.environ.items() if k not in CA_ENV and not k.startswith(TOOL_ENV)}


def write_roster(path: Path, n: int, *, prefix: str = "user", start: int = 0, extra: str = "") -> Path:
    """A CSV roster of ``n`` valid users (generated passwords) plus ``extra`` raw lines."""
    lines = [HEADER]
    for i in range(start, start + n):
        lines.append(f"Given{i},Sur{i},Given{i} Sur{i},{prefix}{i:05d}@contoso.com,,E{i:06d}\n")
    path.write_text("".join(lines) + extra, encoding="utf-8")
    return path


def read_results(run_dir: Path) -> dict[int, dict[str, str]]:
    """results.csv keyed by row number."""
    with open(run_dir / "results.csv", encoding="utf-8-sig", newline="") as fh:
        return {int(r["row"]): r for r in csv.DictReader(fh)}


def sandbox_env(sb: Any) -> dict[str, str]:
    """The environment for a subprocess client of ``sb`` (or of a sandbox.env file's values)."""
    env = {k: v for k, v in os.environ.items() if k not in CA_ENV}
    env.update(sb if isinstance(sb, dict) else sb.env())
    return env


def tenant_users(sb: Any) -> dict[str, dict[str, Any]]:
    """Every user in the sandbox tenant keyed by lower-case UPN (paged GET /users over HTTPS)."""
    from provisioning.api import make_client
    from provisioning.settings import load_settings

    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None,
                             sandbox_env=sb if isinstance(sb, dict) else sb.env())
    with make_client(settings) as client:
        return {u["userPrincipalName"].lower(): u
                for u in client.iter_users(select=("id", "userPrincipalName", "displayName", "employeeId"))}


def created_in_journal(journal: Path, state: str = "created") -> int:
    """How many rows a (possibly running) run's journal says are in ``state``; 0 while it cannot be read yet."""
    return journal_count(journal, "SELECT COUNT(*) FROM rows WHERE state=?", (state,))
