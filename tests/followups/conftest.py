"""Helpers for the follow-up and update-mode tests: a Graph client on the sandbox, rosters with follow-up columns."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.run.conftest import read_results  # noqa: F401  (helper shared with tests/run)

HEADER = "givenName,surname,displayName,userPrincipalName,password,usageLocation,jobTitle,groups,licenses,manager\n"


@contextlib.contextmanager
def graph(sb: Any) -> Iterator[Any]:
    """A Graph client of the tool, configured for ``sb``."""
    from provisioning.api import make_client
    from provisioning.settings import load_settings

    settings = load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sb.env())
    with make_client(settings) as client:
        yield client


def precreate(sb: Any, upn: str, display: str, **extra: Any) -> str:
    """Create a user directly (outside the tool); return its id."""
    with graph(sb) as client:
        resp = client.request("POST", "/users", json={
            "accountEnabled": True, "displayName": display, "mailNickname": upn.split("@")[0],
            "userPrincipalName": upn, "passwordProfile": {"password": "Pre-Existing-9x"}, **extra})
        return str(resp.json()["id"])


def write(path: Path, lines: list[str], header: str = HEADER) -> Path:
    """A CSV roster."""
    path.write_text(header + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def members(client: Any, group_id: str) -> set[str]:
    """Ids of a group's members (GET /groups/{id}/members)."""
    return {m["id"] for page in client.iter_pages(f"/groups/{group_id}/members") for m in page}


def licences(client: Any, user_id: str) -> set[str]:
    """skuIds a user holds."""
    user = client.get(f"/users/{user_id}", {"$select": "id,assignedLicenses"})
    return {a["skuId"].lower() for a in user.get("assignedLicenses") or ()}


def manager_of(client: Any, user_id: str) -> str | None:
    """The id of a user's manager, or None."""
    from graph.errors import NotFoundError

    try:
        return str(client.get(f"/users/{user_id}/manager")["id"])
    except NotFoundError:
        return None
