"""The run folder becomes unwritable while a run is sending (removed, disk full): the run stops sending at once,
says in one line what was and was not sent and what to do, exits 5, and nothing it created is lost track of."""
from __future__ import annotations

import contextlib
import csv
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioning.exitcodes import ExitStatus
from sandbox import process as sandbox_process

from .conftest import created_in_journal, sandbox_env, tenant_users, write_roster

ROOT = Path(__file__).resolve().parents[2]
N = 60
#: Paced so that a test sees the first users appear with most of the roster still to send.
PACE = ["--batch-size", "5", "--max-writes-per-s", "10", "--write-burst", "5", "--no-progress"]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., dict[str, str]]]:
    """Start a sandbox in its own process (so that the run's process can be limited or killed alone), with
    ``extra`` serve options; its environment for the tool."""
    procs: list[subprocess.Popen[str]] = []

    def start(*extra: str) -> dict[str, str]:
        state = tmp_path / f"sb{len(procs)}"
        proc, env = sandbox_process.serve(state, ["--latency-ms", "30:5", "--seed", "3", *extra])
        procs.append(proc)
        return env

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            proc.communicate(timeout=10)


@pytest.fixture
def slow_sandbox(serve: Callable[..., dict[str, str]]) -> dict[str, str]:
    """A sandbox answering in about 30 ms."""
    return serve()


def _start(argv: list[str], cwd: Path, env: dict[str, str],
           preexec: Callable[[], None] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ROOT / "provision.py"), *argv], cwd=cwd, env=sandbox_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec)


def _cli(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "provision.py"), *argv], cwd=cwd, env=sandbox_env(env),
                          capture_output=True, text=True, timeout=120)


def _wait_for_users(env: dict[str, str], proc: subprocess.Popen[str], at_least: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(tenant_users(env)) < at_least:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run created nobody in time"


def _one_line(err: str) -> str:
    """The one error line (the run folder is announced on its own line when the run starts)."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("run folder: ")]
    assert len(lines) == 1, err
    return lines[0]


def _password_rows(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["userPrincipalName"].lower(): r["password"] for r in csv.DictReader(fh)}


@pytest.mark.slow
def test_run_folder_removed_mid_run_stops_sending_and_the_rescued_journal_resumes(
        tmp_path: Path, slow_sandbox: dict[str, str]) -> None:
    roster = write_roster(tmp_path / "roster.csv", N)
    run = tmp_path / "runs" / "lost"
    proc = _start(["run", str(roster), "--out", str(run), *PACE], tmp_path, slow_sandbox)
    _wait_for_users(slow_sandbox, proc, 1)
    shutil.rmtree(run)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == ExitStatus.RUN_FOLDER_LOST, err
    line = _one_line(err)
    m = re.fullmatch(
        rf"error: {re.escape(str(run))}: the run folder was removed \(journal\.sqlite is gone\); sending stopped "
        rf"after (\d+) of {N} creates: (\d+) users were created; (\d+) of them have generated passwords that "
        r"could not be recorded \(([^)]*)\); reset their passwords in the Entra admin center \(Users > Reset "
        r"password\); the journal was saved to (\S+) \(created\.csv there lists the users created\): `python "
        r"provision\.py resume (\S+)` continues the run and names them again", line)
    assert m, line
    sent, created, unrecorded, rescued = int(m[1]), int(m[2]), int(m[3]), Path(m[5])
    tenant = tenant_users(slow_sandbox)
    # nothing left after the removal was seen: the tenant holds exactly the users the message counts
    assert created == unrecorded == len(tenant) and 0 < sent < N, (line, len(tenant))
    assert m[4].startswith("user000") and rescued.parent == run.parent and m[6] == str(rescued)
    assert not run.exists()
    conn = sqlite3.connect(rescued / "journal.sqlite")
    sent_rows = conn.execute("SELECT COUNT(*) FROM rows WHERE attempts > 0").fetchone()[0]
    journaled = {u for (u,) in conn.execute("SELECT lower(upn) FROM rows WHERE state='created'")}
    conn.close()
    assert journaled == set(tenant) and sent_rows >= sent
    with open(rescued / "created.csv", encoding="utf-8-sig", newline="") as fh:
        listed = {r["userPrincipalName"].lower(): r for r in csv.DictReader(fh)}
    assert set(listed) == set(tenant) and {r["passwordRecorded"] for r in listed.values()} == {"no"}
    assert all(listed[u]["objectId"] == tenant[u]["id"] for u in listed)

    # the rescued copy resumes: everyone once, and the users whose password was lost are named with what to do
    done = _cli(["resume", str(rescued), "--no-progress"], tmp_path, slow_sandbox)
    assert done.returncode == ExitStatus.ROWS_FAILED, done.stderr
    warning = _one_line(done.stderr)
    assert warning.startswith(f"warning: {created} users exist without a recorded password (their generated "
                              "password was lost with passwords.csv): row 2 user00000@contoso.com"), warning
    assert warning.endswith("reset their passwords in the Entra admin center (Users > Reset password), or put "
                            "just these rows in a roster and run `python provision.py run THAT_ROSTER "
                            "--existing update --reset-passwords` (the new passwords go to that run's "
                            "passwords.csv)"), warning
    after = tenant_users(slow_sandbox)
    assert len(after) == N
    assert set(_password_rows(rescued / "passwords.csv")) == set(after) - journaled


def test_journal_replaced_mid_run_stops_sending_and_keeps_the_passwords(
        tmp_path: Path, slow_sandbox: dict[str, str]) -> None:
    roster = write_roster(tmp_path / "roster.csv", N)
    run = tmp_path / "run"
    proc = _start(["run", str(roster), "--out", str(run), *PACE], tmp_path, slow_sandbox)
    _wait_for_users(slow_sandbox, proc, 1)
    shutil.copy(run / "journal.sqlite", tmp_path / "copy.sqlite")
    os.replace(tmp_path / "copy.sqlite", run / "journal.sqlite")  # another file under the journal's name
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == ExitStatus.RUN_FOLDER_LOST, err
    line = _one_line(err)
    m = re.fullmatch(
        rf"error: {re.escape(str(run))}: journal\.sqlite was replaced by another file; sending stopped after "
        rf"(\d+) of {N} creates: (\d+) users were created; the journal was saved to (\S+) \(created\.csv there "
        r"lists the users created\): `python provision\.py resume (\S+)` continues the run; the generated "
        rf"passwords sent so far are in {re.escape(str(run / 'passwords.csv'))}", line)
    assert m, line
    tenant = tenant_users(slow_sandbox)
    assert int(m[2]) == len(tenant) and 0 < int(m[1]) < N
    assert set(tenant) <= set(_password_rows(run / "passwords.csv"))


def _fill(path: Path) -> None:
    """Take every free byte of the file system holding ``path``."""
    with open(path, "wb", buffering=0) as fh:
        for size in (65536, 512):
            with contextlib.suppress(OSError):
                while fh.write(b"\0" * size):
                    pass


@contextlib.contextmanager
def _tmpfs(where: Path) -> Iterator[None]:
    """A 16 MB tmpfs at ``where`` (root only; skipped where mounting is not allowed)."""
    where.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the file-size-limit variant simulates the full disk")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _file_size_limit() -> None:
    """In the run's process: files may not grow past 160 KB (the journal's -wal reaches it after a few chunks),
    and the write fails with EFBIG instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (160 * 1024, resource.RLIM_INFINITY))


@pytest.mark.slow
@pytest.mark.parametrize("disk", ["tmpfs", "file-size-limit"])
def test_disk_full_mid_run_stops_with_exit_5_and_resume_recovers_everything(
        tmp_path: Path, slow_sandbox: dict[str, str], disk: str) -> None:
    roster = write_roster(tmp_path / "roster.csv", N)
    tmpfs = disk == "tmpfs"
    with _tmpfs(tmp_path / "disk") if tmpfs else contextlib.nullcontext():
        run = tmp_path / "disk" / "run"
        filler = tmp_path / "disk" / "filler"
        proc = _start(["run", str(roster), "--out", str(run), *PACE], tmp_path, slow_sandbox,
                      None if tmpfs else _file_size_limit)
        if tmpfs:
            _wait_for_users(slow_sandbox, proc, 1)
            _fill(filler)
        out, err = proc.communicate(timeout=60)

        assert proc.returncode == ExitStatus.RUN_FOLDER_LOST, err
        line = _one_line(err)
        cause = r"the disk is full \(writing [a-z.]+: [^)]+\)" if tmpfs else \
            r"a (?:file size limit was reached|write failed) \(writing [a-z.]+: [^)]+\)"
        remedy = "free space on its disk" if tmpfs else r"(?:raise the file size limit \(ulimit -f\)|fix the cause)"
        m = re.fullmatch(
            rf"error: {re.escape(str(run))}: {cause}; sending stopped after (\d+) of {N} creates: (\d+) users "
            r"were created(, \d+ got no answer \(they may exist\))?; the journal is consistent: "
            rf"{remedy}, then continue with `python provision\.py resume {re.escape(str(run))}`", line)
        assert m, line
        assert 0 < int(m[2]) <= int(m[1]) < N and len(tenant_users(slow_sandbox)) <= int(m[1]), line
        filler.unlink(missing_ok=True)

        done = _cli(["resume", str(run), "--no-progress"], tmp_path, slow_sandbox)
        assert done.returncode == ExitStatus.OK, done.stderr
        tenant = tenant_users(slow_sandbox)
        assert len(tenant) == N
        assert set(_password_rows(run / "passwords.csv")) == set(tenant)  # every generated password recorded
        with open(run / "results.csv", encoding="utf-8-sig", newline="") as fh:
            assert {r["status"] for r in csv.DictReader(fh)} == {"created"}


def test_killed_right_after_a_create_arrives_every_created_user_has_its_password(
        tmp_path: Path, slow_sandbox: dict[str, str]) -> None:
    roster = write_roster(tmp_path / "roster.csv", N)
    run = tmp_path / "run"
    proc = _start(["run", str(roster), "--out", str(run), *PACE], tmp_path, slow_sandbox)
    _wait_for_users(slow_sandbox, proc, 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    tenant = tenant_users(slow_sandbox)
    assert 0 < len(tenant) < N
    assert set(tenant) <= set(_password_rows(run / "passwords.csv"))


def _in_doubt(journal: Path) -> int:
    return created_in_journal(journal, "unknown")


@pytest.mark.slow
def test_stopped_with_answers_lost_the_passwords_of_the_users_in_doubt_are_kept(
        tmp_path: Path, serve: Callable[..., dict[str, str]]) -> None:
    # "lost": the sandbox carries out a $batch, then drops the connection: its creates are in doubt until looked up
    env = serve("--fault", "lost=0.3")
    roster = write_roster(tmp_path / "roster.csv", N)
    run = tmp_path / "run"
    proc = _start(["run", str(roster), "--out", str(run), *PACE], tmp_path, env)
    deadline = time.monotonic() + 30
    while not _in_doubt(run / "journal.sqlite"):  # stopped now, they stay in doubt: the round's lookup is not done
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no answer was lost"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    conn = sqlite3.connect(run / "journal.sqlite")
    in_doubt = {u for (u,) in conn.execute("SELECT lower(upn) FROM rows WHERE state IN ('unknown', 'sending')")}
    conn.close()
    tenant = tenant_users(env)
    assert in_doubt & set(tenant), "no created user was in doubt at the stop: the test proves nothing"
    assert set(tenant) <= set(_password_rows(run / "passwords.csv"))

    done = _cli(["resume", str(run), "--no-progress"], tmp_path, env)
    assert done.returncode == ExitStatus.OK, done.stderr
    tenant = tenant_users(env)
    assert len(tenant) == N and set(_password_rows(run / "passwords.csv")) == set(tenant)


def _run_in_process(cli: Callable[..., tuple[int, str, str]], sb: Any, tmp_path: Path, n: int = 4) -> Path:
    roster = write_roster(tmp_path / "small.csv", n)
    code, _, err = cli(sb, "run", roster, "--out", tmp_path / "done", "--no-progress")
    assert code == ExitStatus.OK, err
    return tmp_path / "done"


def test_truncated_journal_is_reported_as_damaged(cli: Callable[..., tuple[int, str, str]], sandbox: Any,
                                                  tmp_path: Path) -> None:
    run = _run_in_process(cli, sandbox, tmp_path)
    journal = run / "journal.sqlite"
    data = journal.read_bytes()
    journal.write_bytes(data[: len(data) // 2])
    for argv in (["resume", run, "--no-progress"], ["retry", run, "--no-progress"]):
        code, out, err = cli(sandbox, *argv)
        assert code == ExitStatus.USAGE, err
        assert re.fullmatch(
            rf"error: {re.escape(str(journal))} is damaged \((database disk image is malformed|file is not a "
            rf"database)\); the run cannot be resumed from it; the users it created are listed in "
            rf"{re.escape(str(run / 'results.csv'))} and {re.escape(str(run / 'run.log'))}; start a new run of the "
            r"same roster with `run` \(the default --existing skip skips the users that already exist\)\n", err), err


def test_journal_whose_wal_was_lost_is_reported_as_damaged(cli: Callable[..., tuple[int, str, str]], sandbox: Any,
                                                           tmp_path: Path) -> None:
    from provisioning.store.journal import Journal, RowSeed, RowState

    run = tmp_path / "crashed"
    run.mkdir()
    journal = Journal.create(run, {"roster_path": str(tmp_path / "r.csv"), "roster_sha256": "0" * 64})
    journal.add_rows([RowSeed(2, "a@contoso.com", "create", RowState.PENDING)])
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(run / "journal.sqlite", copy / "journal.sqlite")  # the -wal, where every row still is, is lost
    journal.close()
    code, out, err = cli(sandbox, "resume", copy, "--no-progress")
    assert code == ExitStatus.USAGE, err
    assert err == (f"error: {copy / 'journal.sqlite'} is damaged (no such table: meta); the run cannot be resumed "
                   "from it; the users it created can be found in the tenant (Entra admin center, Users); start a "
                   "new run of the same roster with `run` (the default --existing skip skips the users that "
                   "already exist)\n")
