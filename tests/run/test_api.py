"""The library run API called directly against the sandbox: a stop event set from another thread stops
``start_run`` cleanly and ``resume_run`` finishes the run; a stop set before the run leaves nothing to resume;
``watch`` stops its run through its one stop event (no thread forwards signals)."""
from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import provision
from provisioning import Existing, ResumeOptions, RunOptions, RunResult, Stop, resume_run, start_run
from provisioning.context import CommandContext
from provisioning.exitcodes import ExitStatus
from provisioning.settings import Settings, load_settings
from provisioning.store.journal import RowState
from tests.helpers.journal import journal_count

from .conftest import env_file, read_results, tenant_users, write_roster


def _settings(sb: Any) -> Settings:
    return load_settings(flags={}, environ={}, env_file=None, config_file=None, sandbox_env=sb.env())


def _console() -> CommandContext:
    return CommandContext(out=io.StringIO(), err=io.StringIO(), command_line="python provision.py")


def _count(run: Path, sql: str) -> int:
    return journal_count(run / 'journal.sqlite', sql)


def _when(condition: Callable[[], bool], then: Callable[[], None], timeout: float = 60) -> threading.Thread:
    """A thread that calls ``then`` as soon as ``condition`` holds."""
    def wait() -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.005)
        then()

    thread = threading.Thread(target=wait, name="test-stopper", daemon=True)
    thread.start()
    return thread


def test_a_stop_set_from_another_thread_stops_the_run_and_resume_run_finishes_it(sandbox: Any,
                                                                                  tmp_path: Path) -> None:
    n = 24
    roster = write_roster(tmp_path / "roster.csv", n)
    run = tmp_path / "run"
    stop = threading.Event()
    stopper = _when(lambda: _count(run, "SELECT COUNT(*) FROM rows WHERE state='created'") >= 4, stop.set)
    console = _console()
    paced = RunOptions(run_dir=run, progress=False, batch_size=2, max_writes_per_s=20.0, write_burst=2.0)
    first = start_run(_settings(sandbox), roster, paced, stop=stop, console=console)  # 24 creates: over 1 s
    stopper.join()
    created = _count(run, "SELECT COUNT(*) FROM rows WHERE state='created'")
    assert 4 <= created < n and sandbox.stats()["users_created"] == created
    assert first == RunResult(
        ExitStatus.INTERRUPTED, run,
        {RowState.CREATED: created, RowState.SKIPPED: 0, RowState.FAILED: 0, RowState.INVALID: 0,
         RowState.PENDING: n - created},
        {}, created=created, fatal="", messages=(f"interrupted; the journal of {run} is consistent.",))
    assert first.interrupted and not first.complete
    assert console.err.getvalue().splitlines()[-1] == f"to continue: python provision.py resume {run}"
    assert _count(run, "SELECT COUNT(*) FROM rows WHERE state IN ('sending', 'unknown')") == 0

    second = resume_run(_settings(sandbox), run, ResumeOptions(progress=False), stop=threading.Event(),
                        console=_console())
    assert second == RunResult(
        ExitStatus.OK, run,
        {RowState.CREATED: n, RowState.SKIPPED: 0, RowState.FAILED: 0, RowState.INVALID: 0},
        {}, created=n - created, fatal="", messages=())
    assert second.complete and not second.interrupted
    assert {r["status"] for r in read_results(run).values()} == {"created"}
    assert sandbox.stats()["users_created"] == n and len(tenant_users(sandbox)) == n


def test_a_stop_set_before_the_run_sends_nothing_and_leaves_nothing_to_resume(sandbox: Any,
                                                                              tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "roster.csv", 3)
    run = tmp_path / "run"
    stop = threading.Event()
    stop.set()
    console = _console()
    result = start_run(_settings(sandbox), roster, RunOptions(run_dir=run, existing=Existing.UPDATE), stop=stop,
                       console=console)
    line = f"interrupted before anything was sent: nothing to resume in {run}; start the run again"
    assert result == RunResult(ExitStatus.INTERRUPTED, run, messages=(line,))
    assert console.err.getvalue().splitlines() == [f"run folder: {run}", line]
    assert not (run / "journal.sqlite").exists() and tenant_users(sandbox) == {}


def test_a_dry_run_through_the_api_counts_what_it_would_do(sandbox: Any, tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "roster.csv", 3, extra="Bad,Row,Bad Row,not-an-upn,,E9\n")
    result = start_run(_settings(sandbox), roster, RunOptions(run_dir=tmp_path / "run", dry_run=True))
    assert result == RunResult(
        ExitStatus.ROWS_FAILED, tmp_path / "run",
        {RowState.SKIPPED: 0, RowState.FAILED: 0, RowState.INVALID: 1, RowState.PLANNED: 3,
         RowState.CREATED: 0}, {}, created=0, fatal="", messages=())
    assert list(result.counts) == [RowState.CREATED, RowState.SKIPPED, RowState.FAILED, RowState.INVALID,
                                   RowState.PLANNED]
    assert tenant_users(sandbox) == {}


def test_watch_stops_its_run_through_the_one_stop_event(sandbox_factory: Any, tmp_path: Path,
                                                        monkeypatch: Any) -> None:
    """SIGTERM to this process while ``watch`` runs a roster: the handler ``watch`` installed sets its stop event
    (the same one the run was handed: the run installs no handler of its own), no thread forwards the signal, the
    run stops cleanly (exit 130, nothing left *sending*) and its marker stays for the next start."""
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith(("AZURE_", "GRAPH_", "PROVISION_", "REQUESTS_CA", "CURL_CA"))]:
        monkeypatch.delenv(name, raising=False)
    sb = sandbox_factory(write_quota=(20, 1.0), latency_ms=(40, 10))  # ~20 creates/s: the run takes seconds
    env = env_file(tmp_path / "prod.env", sb)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_roster(inbox / "big.csv", 60)
    seen: dict[str, Any] = {}

    def journals() -> list[Path]:
        return list((inbox / ".runs").glob("*/journal.sqlite"))

    def creating() -> bool:
        return bool(journals()) and _count(journals()[0].parent, "SELECT COUNT(*) FROM rows WHERE "
                                                                   "state='created'") >= 4

    def terminate() -> None:
        seen["handler"] = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the run is still stopping: any forwarder would be running now
        seen["threads"] = [t.name for t in threading.enumerate()]

    stopper = _when(creating, terminate)
    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["--env-file", str(env), "watch", str(inbox), "--interval", "0.1", "--settle", "0.2"],
                          stdout=out, stderr=err)
    stopper.join()
    assert code == ExitStatus.INTERRUPTED, out.getvalue() + err.getvalue()
    term, interrupt = seen["handler"]
    assert term == interrupt and isinstance(term.__self__, Stop) and term.__self__.is_set()
    assert term.__self__.signal_name == "SIGTERM"
    assert not [name for name in seen["threads"] if "forward" in name or "signal" in name], seen["threads"]
    assert signal.getsignal(signal.SIGTERM) is not term  # restored when watch returned
    (run,) = (inbox / ".runs").iterdir()
    created = _count(run, "SELECT COUNT(*) FROM rows WHERE state='created'")
    assert 4 <= created < 60 and _count(run, "SELECT COUNT(*) FROM rows WHERE state='sending'") == 0
    assert len(list((inbox / ".processing").glob("*/.marker.json"))) == 1
    assert "finished big.csv: exit 130" in out.getvalue() and \
        f"interrupted; the journal of {run.resolve()} is consistent." in out.getvalue()


def _signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the handler runs on this (the main) thread, between two bytecodes


def test_a_stop_gives_each_signal_the_meaning_of_the_phase_the_run_is_in(tmp_path: Path) -> None:
    from provisioning.store.folder import RunFolder

    said: list[str] = []
    stop = Stop(idle=said.append)
    console = _console()
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]
    with stop.signals():
        assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGHUP)  # one handler for all three
        _signal_self(signal.SIGHUP)  # between runs: the idle callback, once
        _signal_self(signal.SIGTERM)
        assert said == ["SIGHUP"] and stop.is_set() and stop.signal_name == "SIGHUP"
        stop.begin_run(console)  # pre-flight: at once
        try:
            _signal_self(signal.SIGTERM)
            raise AssertionError("the pre-flight was not interrupted")
        except KeyboardInterrupt:
            pass
        stop.arm(RunFolder(tmp_path))  # journaled: the first signal only asks the run to stop
        _signal_self(signal.SIGINT)
        assert console.err.getvalue() == ("\nstopping (SIGINT): no new request is sent; waiting for the answers "
                                          "in flight to record them (Ctrl-C again to abort at once)\n")
        stop.end_run()
        _signal_self(signal.SIGINT)
        assert said == ["SIGHUP"]
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == before


def test_without_an_idle_callback_a_signal_between_runs_interrupts_at_once() -> None:
    stop = Stop()
    with stop.signals():
        try:
            _signal_self(signal.SIGTERM)
            raise AssertionError("not interrupted")
        except KeyboardInterrupt:
            pass
    assert stop.is_set() and stop.signal_name == "SIGTERM"
