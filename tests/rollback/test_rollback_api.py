"""The rollback library API in-process against the sandbox: asking first (a refusal sends nothing), a stop before
any write leaves a rollback that a new ``rollback`` refuses to repeat and ``resume`` completes (refused for another
tenant), a dry run's folder cannot be resumed, a run with creates in doubt cannot be rolled back."""
from __future__ import annotations

import io
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from provisioning.api import RollbackOptions, resume_rollback, start_rollback
from provisioning.context import CommandContext
from provisioning.errors import ConfigError, RunFolderError, UsageError
from provisioning.exitcodes import ExitStatus
from provisioning.settings import Settings, load_settings
from tests.followups.conftest import graph, precreate, read_results, write
from tests.run.conftest import env_file

UPDATE_HEADER = "userPrincipalName,displayName,jobTitle,department,usageLocation,password\n"


def _settings(sb: Any) -> Settings:
    return load_settings(flags={}, environ=sb.env(), env_file=None, config_file=None, sandbox_env=None)


def _console() -> CommandContext:
    return CommandContext(out=io.StringIO(), err=io.StringIO())


def _run(sb: Any, cli: Any, tmp_path: Path, n: int = 3) -> Path:
    roster = write(tmp_path / "r.csv", [f"N{i},S{i},N{i} S{i},n{i}@contoso.com,,US,,,," for i in range(n)])
    code, out, err = cli(sb, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    return tmp_path / "run"


def _users(sb: Any) -> int:
    return int(sb.stats()["users"])


def test_asks_first_and_a_no_sends_nothing(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    run = _run(sandbox, cli, tmp_path)
    questions: list[str] = []
    console = _console()
    result = start_rollback(_settings(sandbox), run, confirm=lambda q: questions.append(q) or False, console=console)
    assert result.status is ExitStatus.OK and result.rollback_dir is None
    assert questions == ["roll back as listed above? [y/N] "]
    assert console.out.getvalue().splitlines()[-1] == "rollback cancelled: nothing was sent"
    assert _users(sandbox) == 3 and sandbox.stats()["users_deleted"] == 0 and not list(run.glob("rollback-*"))
    with pytest.raises(UsageError, match="no terminal to ask on"):  # no confirm, no --yes
        start_rollback(_settings(sandbox), run, console=_console())
    result = start_rollback(_settings(sandbox), run, confirm=lambda q: True, console=_console())
    assert result.status is ExitStatus.OK and result.steps == {"done": 3}
    assert _users(sandbox) == 0 and sandbox.stats()["users_deleted"] == 3


def test_stopped_rollback_is_resumed_not_repeated(sandbox_factory: Any, cli: Any, tmp_path: Path) -> None:
    sb, other = sandbox_factory(), sandbox_factory()
    run = _run(sb, cli, tmp_path)
    stop = threading.Event()
    stop.set()  # as if Ctrl-C came as soon as the rollback's journal existed
    console = _console()
    result = start_rollback(_settings(sb), run, RollbackOptions(yes=True), stop=stop, console=console)
    assert result.status is ExitStatus.INTERRUPTED and result.steps == {"pending": 3}
    folder = result.rollback_dir
    assert folder is not None and folder.parent == run and folder.name.startswith("rollback-")
    assert f"to continue: python provision.py resume {folder}" in console.err.getvalue()
    assert sb.stats()["users_deleted"] == 0

    with pytest.raises(RunFolderError, match="is an unfinished rollback of this run; continue it"):
        start_rollback(_settings(sb), run, RollbackOptions(yes=True), console=_console())
    with pytest.raises(ConfigError, match="this run folder belongs to tenant"):
        resume_rollback(_settings(other), folder, console=_console())
    assert other.stats()["writes"] == 0 and sb.stats()["users_deleted"] == 0

    code, out, err = cli(sb, "resume", folder)
    assert code == ExitStatus.OK, out + err
    assert out.splitlines()[0] == "rollback: 3 user(s) deleted, 0 propert(y/ies) reverted, 0 follow-up(s) removed"
    assert sb.stats()["users_deleted"] == 3 and _users(sb) == 0


def test_dry_run_folder_is_not_resumed(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    run = _run(sandbox, cli, tmp_path, n=1)
    code, out, err = cli(sandbox, "rollback", run, "--dry-run")
    assert code == ExitStatus.OK, out + err
    [folder] = run.glob("rollback-*")
    code, out, err = cli(sandbox, "resume", folder)
    assert code == ExitStatus.USAGE and "is the dry run of a rollback" in err, out + err
    assert sandbox.stats()["users_deleted"] == 0


def test_run_with_creates_in_doubt_is_refused(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    run = _run(sandbox, cli, tmp_path)
    with sqlite3.connect(run / "journal.sqlite") as conn:
        conn.execute("UPDATE rows SET state='sending' WHERE row=3")
    code, out, err = cli(sandbox, "rollback", run, "--yes")
    assert code == ExitStatus.USAGE, out + err
    assert "the creates of 1 row(s) are in doubt (rows 3); `resume` the run first" in err
    assert sandbox.stats()["users_deleted"] == 0 and not list(run.glob("rollback-*"))


def test_revert_to_an_empty_value_next_to_a_conflict(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    sb = sandbox
    uid = precreate(sb, "other@contoso.com", "Other Person", jobTitle="Dev")
    roster = write(tmp_path / "u.csv", ["other@contoso.com,Other Person,Boss,Ops,,"], header=UPDATE_HEADER)
    code, out, err = cli(sb, "run", roster, "--existing", "update", "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    assert read_results(tmp_path / "run")[2]["status"] == "updated"
    with graph(sb) as client:
        client.request("PATCH", f"/users/{uid}", json={"jobTitle": "CEO"})
    result = start_rollback(_settings(sb), tmp_path / "run", RollbackOptions(yes=True), console=_console())
    assert result.status is ExitStatus.ROWS_FAILED and result.steps == {"conflict": 1, "done": 1}
    with graph(sb) as client:
        user = client.get(f"/users/{uid}", {"$select": "jobTitle,department"})
    assert (user["jobTitle"], user.get("department")) == ("CEO", None)


def test_env_file_settings_reach_the_same_binding(sandbox: Any, tool: Any, tmp_path: Path) -> None:
    roster = write(tmp_path / "r.csv", ["N,S,N S,n@contoso.com,,US,,,,"])
    env = env_file(tmp_path / "a.env", sandbox)
    code, out, err = tool(env, "run", roster, "--out", tmp_path / "run", "--no-progress")
    assert code == ExitStatus.OK, out + err
    code, out, err = tool(env, "rollback", tmp_path / "run", "--yes")
    assert code == ExitStatus.OK, out + err
    assert sandbox.stats()["users_deleted"] == 1


def test_a_missing_permission_fails_the_step_and_names_it(sandbox: Any, cli: Any, tmp_path: Path) -> None:
    run = _run(sandbox, cli, tmp_path, n=1)
    sandbox.set_knobs(roles=("User.Read.All",))
    result = start_rollback(_settings(sandbox), run, RollbackOptions(yes=True), console=_console())
    assert result.status is ExitStatus.ROWS_FAILED and result.steps == {"failed": 1}
    assert result.rollback_dir is not None
    with open(result.rollback_dir / "results.csv", encoding="utf-8-sig") as fh:
        line = fh.read().splitlines()[1]
    assert "delete users (rollback) needs the application permission User.ReadWrite.All" in line
    assert sandbox.stats()["users_deleted"] == 0
