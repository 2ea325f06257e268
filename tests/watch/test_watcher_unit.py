"""The watcher's logic with the engine replaced by plain functions (real files and folders, no tenant)."""
from __future__ import annotations

import json
from pathlib import Path

from graph.errors import AuthError, ServiceUnavailableError
from provisioning.errors import RosterError
from provisioning.exitcodes import ExitStatus
from provisioning.watcher import RunOutcome, WatchConfig, Watcher, backoff_s, status_for_exception


def _watcher(inbox: Path, results: dict[str, object], clock: list[float] | None = None) -> Watcher:
    def run_roster(roster: Path, run_dir: Path) -> RunOutcome:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "summary.json").write_text("{}")
        got = results[roster.name]
        if isinstance(got, BaseException):
            raise got
        return RunOutcome(ExitStatus(got), counts={"created": 1})

    def resume_run(run_dir: Path) -> RunOutcome:
        return RunOutcome(ExitStatus.OK)

    now = clock or [1000.0]
    return Watcher(WatchConfig(inbox=inbox, interval=0.01), run_roster, resume_run, events=lambda _: None,
                   clock=lambda: now[0])


def test_files_are_taken_once_stable_and_moved_by_outcome(tmp_path: Path) -> None:
    for name in ("ok.csv", "rows.xlsx", "broken.csv", "crash.xlsm", "notes.txt", ".hidden.csv"):
        (tmp_path / name).write_text("x")
    w = _watcher(tmp_path, {"ok.csv": 0, "rows.xlsx": 1, "broken.csv": RosterError("broken.csv", "no header row"),
                            "crash.xlsm": ValueError("boom")})
    assert w.stable_files() == []  # first sighting
    (tmp_path / "ok.csv").write_text("xy")  # still growing
    assert [p.name for p in w.stable_files()] == ["broken.csv", "crash.xlsm", "rows.xlsx"]
    w.poll_once()
    done = list((tmp_path / "done").iterdir())
    assert [d.name.startswith("ok-") for d in done] == [True]
    assert (done[0] / "ok.csv").read_text() == "xy" and (done[0] / "run" / "summary.json").is_file()
    failed = {d.name.rsplit("-", 2)[0]: d for d in (tmp_path / "failed").iterdir()}
    assert set(failed) == {"rows", "broken", "crash"}
    assert "no header row" in (failed["broken"] / "broken.csv.error.txt").read_text()
    assert "ValueError: boom" in (failed["crash"] / "crash.xlsm.error.txt").read_text()
    assert not (failed["rows"] / "rows.xlsx.error.txt").exists() and (failed["rows"] / "run").is_dir()
    assert (tmp_path / "notes.txt").exists() and list((tmp_path / ".processing").iterdir()) == []
    assert sorted(int(r.status) for r in w.results) == [0, 1, 1, 2]


def test_auth_and_unavailable_are_deferred_with_backoff_then_retried(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x")
    (tmp_path / "b.csv").write_text("y")
    clock = [1000.0]
    results: dict[str, object] = {"a.csv": AuthError("bad secret"), "b.csv": ServiceUnavailableError("503")}
    w = _watcher(tmp_path, results, clock)
    w.stable_files()
    w.poll_once()
    assert (tmp_path / "a.csv").exists() and (tmp_path / "b.csv").exists()
    marker = json.loads((tmp_path / ".processing" / "a.csv.json").read_text())
    assert marker["attempts"] == 1 and marker["last_status"] == 3 and marker["retry_at"] == 1000.0 + 1.0
    assert not (tmp_path / "failed").exists()
    w.poll_once()  # not due yet: nothing happens
    assert len(w.results) == 2
    clock[0] += 1.5
    results["a.csv"] = 0
    w.poll_once()  # a is retried (same run folder), b failed again and backs off longer
    assert len(list((tmp_path / "done").iterdir())) == 1 and not (tmp_path / "a.csv").exists()
    marker = json.loads((tmp_path / ".processing" / "b.csv.json").read_text())
    assert marker["attempts"] == 2 and marker["retry_at"] == clock[0] + 2.0
    assert backoff_s(10, 30) == 900 and backoff_s(0, 30) == 30


def test_a_marker_with_a_journal_is_resumed_not_started_again(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("x")
    run_dir = tmp_path / ".runs" / "r-1"
    run_dir.mkdir(parents=True)
    (run_dir / "journal.sqlite").write_text("")
    (tmp_path / ".processing").mkdir()
    (tmp_path / ".processing" / "r.csv.json").write_text(json.dumps(
        {"roster": "r.csv", "work": "r-1", "run_dir": str(run_dir)}))
    w = _watcher(tmp_path, {"r.csv": ValueError("must not start again")})
    w.poll_once()
    assert [r.status for r in w.results] == [ExitStatus.OK]
    assert (tmp_path / "done" / "r-1" / "r.csv").exists() and (tmp_path / "done" / "r-1" / "run").is_dir()


def test_interrupted_run_keeps_marker_and_stops(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("x")
    w = _watcher(tmp_path, {"r.csv": 130})
    w.stable_files()
    w.poll_once()
    assert w.interrupted and w.stop.is_set()
    assert (tmp_path / ".processing" / "r.csv.json").exists() and (tmp_path / "r.csv").exists()


def test_status_for_exception() -> None:
    assert status_for_exception(AuthError("x")) is ExitStatus.CONFIG
    assert status_for_exception(ServiceUnavailableError("x")) is ExitStatus.UNAVAILABLE
    assert status_for_exception(RosterError("f", "m")) is ExitStatus.USAGE
    assert status_for_exception(FileNotFoundError(2, "gone")) is ExitStatus.USAGE
    assert status_for_exception(RuntimeError()) is ExitStatus.ROWS_FAILED
