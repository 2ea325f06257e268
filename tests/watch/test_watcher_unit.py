"""The watcher's logic with the engine replaced by plain functions (real files and folders, no tenant)."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from graph.errors import AuthError, ServiceUnavailableError
from provisioning.errors import RosterError, status_for_exception
from provisioning.exitcodes import ExitStatus
from provisioning.watcher import FileResult, RunOutcome, WatchConfig, Watcher, backoff_s

SETTLE = 5.0


def _watcher(inbox: Path, results: dict[str, object], clock: list[float] | None = None,
             mono: list[float] | None = None, during: dict[str, Callable[[], None]] | None = None,
             notified: list[FileResult] | None = None) -> Watcher:
    """A watcher whose engine returns ``results[name]`` (a status, a RunOutcome or an exception to raise);
    ``during[name]`` runs inside that file's run (e.g. a new upload arriving meanwhile)."""
    def run_roster(roster: Path, run_dir: Path) -> RunOutcome:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "summary.json").write_text("{}")
        (run_dir / "seen.txt").write_text(roster.read_text())
        if during and roster.name in during:
            during.pop(roster.name)()
        got = results[roster.name]
        if isinstance(got, BaseException):
            raise got
        if isinstance(got, RunOutcome):
            return got
        return RunOutcome(ExitStatus(got), counts={"created": 1})

    def resume_run(run_dir: Path) -> RunOutcome:
        return RunOutcome(ExitStatus.OK)

    now = clock or [1000.0]
    mono_now = mono if mono is not None else [0.0]
    return Watcher(WatchConfig(inbox=inbox, interval=0.01, settle=SETTLE), run_roster, resume_run,
                   events=lambda _: None, clock=lambda: now[0], monotonic=lambda: mono_now[0],
                   notify=notified.append if notified is not None else None)


def _settled(w: Watcher, mono: list[float]) -> list[str]:
    """Observe now and after the settle time: the names taken then."""
    w.observe()
    mono[0] += SETTLE
    return [p.name for p in w.stable_files()]


def test_files_are_taken_once_settled_and_moved_by_outcome(tmp_path: Path) -> None:
    for name in ("ok.csv", "rows.xlsx", "broken.csv", "crash.xlsm", "notes.txt", "partial.csv", ".hidden.csv"):
        (tmp_path / name).write_text("x")
    mono = [0.0]
    w = _watcher(tmp_path, {"ok.csv": 0, "rows.xlsx": 1, "broken.csv": RosterError("broken.csv", "no header row"),
                            "crash.xlsm": ValueError("boom"), "notes.txt": 0,
                            "partial.csv": RunOutcome(ExitStatus.ROWS_FAILED, counts={"created": 2, "invalid": 1},
                                                      complete=True)}, mono=mono)
    assert w.stable_files() == []  # first sighting
    mono[0] += SETTLE - 0.1
    assert w.stable_files() == []  # not yet unchanged for the settle time
    (tmp_path / "ok.csv").write_text("xy")  # still growing: its settle time starts again
    mono[0] += 0.1
    assert [p.name for p in w.stable_files()] == ["broken.csv", "crash.xlsm", "notes.txt", "partial.csv",
                                                  "rows.xlsx"]
    mono[0] += SETTLE
    w.poll_once()
    done = {d.name.rsplit("-", 2)[0]: d for d in (tmp_path / "done").iterdir()}
    assert set(done) == {"ok", "notes", "partial"}
    assert (done["ok"] / "ok.csv").read_text() == "xy" and (done["ok"] / "run" / "seen.txt").read_text() == "xy"
    failed = {d.name.rsplit("-", 2)[0]: d for d in (tmp_path / "failed").iterdir()}
    assert set(failed) == {"rows", "broken", "crash"}
    assert "no header row" in (failed["broken"] / "broken.csv.error.txt").read_text()
    assert "internal error: ValueError: boom" in (failed["crash"] / "crash.xlsm.error.txt").read_text()
    assert "rows failed at Graph" in (failed["rows"] / "rows.xlsx.error.txt").read_text()
    assert (failed["rows"] / "run").is_dir()
    assert (tmp_path / ".hidden.csv").exists() and list((tmp_path / ".processing").iterdir()) == []
    assert sorted(int(r.status) for r in w.results) == [0, 0, 1, 1, 2, 70]
    assert {r.roster: r.verdict for r in w.results}["partial.csv"] == "done"


def test_upload_names_are_never_taken_and_other_files_go_to_failed_with_a_note(tmp_path: Path) -> None:
    ignored = ("staff.csv.part", "staff.xlsx.crdownload", "staff.csv.filepart", "staff.csv.partial",
               "staff.csv.download", "staff.csv.tmp", "~$staff.xlsx", "~WRL0001.tmp", ".staff.csv.Xa81f2",
               ".~lock.staff.csv#", ".staff.csv.swp", "staff.csv~", "#staff.csv#", "Thumbs.db", "desktop.ini",
               "staff.csv.sb-2a1f9c0e-Qx3bZt")
    for name in ignored:
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "empty.csv").write_text("")  # Firefox's placeholder under the final name while .part fills
    (tmp_path / "staff.tsv").write_text("x")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf")
    mono: list[float] = [0.0]
    notified: list[FileResult] = []
    w = _watcher(tmp_path, {"staff.tsv": 0}, mono=mono, notified=notified)
    assert _settled(w, mono) == ["old.xls", "photo.jpg", "staff.tsv"]
    w.poll_once()
    for name in ignored:
        assert (tmp_path / name).read_text() == "x", name
    assert (tmp_path / "sub").is_dir() and (tmp_path / "empty.csv").is_file()
    (done,) = (tmp_path / "done").iterdir()
    assert (done / "staff.tsv").is_file()
    failed = {d.name.rsplit("-", 2)[0]: d for d in (tmp_path / "failed").iterdir()}
    assert (failed["photo"] / "photo.jpg").read_bytes() == b"\xff\xd8"
    assert (failed["photo"] / "photo.jpg.error.txt").read_text() == (
        "exit 2 (USAGE)\nphoto.jpg: not a roster file (.jpg): watch takes .csv .txt .tsv .xlsx .xlsm; "
        "drop it again with one of these extensions\n")
    assert "save an .xls or .ods workbook as .xlsx" in (failed["old"] / "old.xls.error.txt").read_text()
    assert [(r.roster, r.verdict) for r in notified] == [("old.xls", "failed"), ("photo.jpg", "failed"),
                                                         ("staff.tsv", "done")]


def test_a_file_replaced_while_settling_waits_again(tmp_path: Path) -> None:
    roster = tmp_path / "a.csv"
    roster.write_text("one")
    st = roster.stat()
    mono = [0.0]
    w = _watcher(tmp_path, {"a.csv": 0}, mono=mono)
    w.observe()
    replacement = tmp_path / "a.new"
    replacement.write_text("two")  # same size, same mtime, another inode: a new upload renamed over the first
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, roster)
    mono[0] += SETTLE
    assert w.stable_files() == []
    mono[0] += SETTLE
    assert [p.name for p in w.stable_files()] == ["a.csv"]


def test_a_second_upload_of_the_same_name_during_a_run_gets_its_own_run(tmp_path: Path) -> None:
    (tmp_path / "staff.csv").write_text("first")
    mono = [0.0]
    w = _watcher(tmp_path, {"staff.csv": 0}, mono=mono,
                 during={"staff.csv": lambda: (tmp_path / "staff.csv").write_text("second upload")})
    assert _settled(w, mono) == ["staff.csv"]
    w.poll_once()  # runs the first; the second arrives during it and stays in INBOX
    assert (tmp_path / "staff.csv").read_text() == "second upload"
    (first,) = (tmp_path / "done").iterdir()
    assert (first / "staff.csv").read_text() == "first" == (first / "run" / "seen.txt").read_text()
    w.poll_once()  # first sighting of the second upload
    mono[0] += SETTLE
    w.poll_once()
    second = [d for d in (tmp_path / "done").iterdir() if d != first]
    assert len(second) == 1 and second[0].name.startswith("staff-") and second[0].name != first.name
    assert (second[0] / "staff.csv").read_text() == "second upload" == (second[0] / "run" / "seen.txt").read_text()
    assert not (tmp_path / "staff.csv").exists() and list((tmp_path / ".processing").iterdir()) == []


def test_a_file_that_changes_as_it_is_taken_is_given_back_not_run(tmp_path: Path) -> None:
    roster = tmp_path / "a.csv"
    roster.write_text("one")
    mono = [0.0]
    w = _watcher(tmp_path, {"a.csv": ValueError("must not run")}, mono=mono)
    w.observe()
    mono[0] += SETTLE
    ((path, sig),) = w.observe()
    with open(roster, "a") as fh:
        fh.write("two")  # written between the settle check and the move
    assert w.take(path, sig) is None
    assert roster.read_text() == "onetwo" and not (tmp_path / ".processing").exists()
    place = tmp_path / ".processing" / "a-1"  # changed just after the move: put back, never over a newer upload
    place.mkdir(parents=True)
    os.rename(roster, place / "a.csv")
    roster.write_text("newer upload")
    w._give_back(place / "a.csv", roster)
    assert roster.read_text() == "newer upload" and (tmp_path / "a (2).csv").read_text() == "onetwo"


def test_a_file_moved_into_processing_without_its_marker_is_run(tmp_path: Path) -> None:
    place = tmp_path / ".processing" / "team-20260101-000000"
    place.mkdir(parents=True)
    (place / "team.csv").write_text("x")  # the daemon stopped between the move and writing the marker
    w = _watcher(tmp_path, {"team.csv": 0})
    w.poll_once()
    assert (tmp_path / "done" / "team-20260101-000000" / "team.csv").read_text() == "x"
    assert list((tmp_path / ".processing").iterdir()) == []


def _marker(inbox: Path, roster: str) -> dict[str, object]:
    (found,) = [m for m in (json.loads(p.read_text()) for p in (inbox / ".processing").glob("*/.marker.json"))
                if m["roster"] == roster]
    return found


def test_auth_and_unavailable_are_deferred_with_backoff_then_retried(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x")
    (tmp_path / "b.csv").write_text("y")
    clock, mono = [1000.0], [0.0]
    notified: list[FileResult] = []
    results: dict[str, object] = {"a.csv": AuthError("bad secret"), "b.csv": ServiceUnavailableError("503")}
    w = _watcher(tmp_path, results, clock, mono, notified=notified)
    _settled(w, mono)
    w.poll_once()
    marker = _marker(tmp_path, "a.csv")
    assert marker["attempts"] == 1 and marker["last_status"] == 3 and marker["retry_at"] == 1000.0 + 1.0
    assert Path(str(marker["path"])).read_text() == "x" and not (tmp_path / "a.csv").exists()
    assert not (tmp_path / "failed").exists() or not any((tmp_path / "failed").iterdir())
    w.poll_once()  # not due yet: nothing happens
    assert len(w.results) == 2
    clock[0] += 1.5
    results["a.csv"] = 0
    w.poll_once()  # a is retried (same run folder), b failed again and backs off longer
    (done,) = (tmp_path / "done").iterdir()
    assert (done / "a.csv").read_text() == "x"
    marker = _marker(tmp_path, "b.csv")
    assert marker["attempts"] == 2 and marker["retry_at"] == clock[0] + 2.0
    assert backoff_s(10, 30) == 900 and backoff_s(0, 30) == 30
    # mailed: each deferral once (not again at the retry), then a's outcome
    assert [(r.roster, r.verdict, r.attempts) for r in notified] == [
        ("a.csv", "deferred", 1), ("b.csv", "deferred", 1), ("a.csv", "done", 0)]


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
    mono = [0.0]
    w = _watcher(tmp_path, {"r.csv": 130}, mono=mono)
    _settled(w, mono)
    w.poll_once()
    assert w.interrupted and w.stop.is_set()
    marker = _marker(tmp_path, "r.csv")
    assert marker["last_status"] == 130 and Path(str(marker["path"])).read_text() == "x"


def test_status_for_exception() -> None:
    assert status_for_exception(AuthError("x")) is ExitStatus.CONFIG
    assert status_for_exception(ServiceUnavailableError("x")) is ExitStatus.UNAVAILABLE
    assert status_for_exception(RosterError("f", "m")) is ExitStatus.USAGE
    assert status_for_exception(FileNotFoundError(2, "gone")) is ExitStatus.USAGE
    assert status_for_exception(RuntimeError()) is ExitStatus.INTERNAL


def test_a_run_is_complete_only_when_invalid_rows_are_all_that_is_left(tmp_path: Path) -> None:
    from provisioning.api import RunResult
    from provisioning.commands.watch import _outcome
    from provisioning.store.journal import RowState
    from provisioning.store.records import FollowUpState

    def outcome(status: int, counts: dict[str, int], followups_by_row: dict[str, int] | None = None,
                fatal: str = "") -> RunOutcome:  # the run's RunResult, as summary.json says it
        return _outcome(RunResult(ExitStatus(status), tmp_path, {RowState(k): n for k, n in counts.items()},
                                  {FollowUpState(k): n for k, n in (followups_by_row or {}).items()},
                                  fatal=fatal, messages=("error: something",)))

    assert outcome(0, {"created": 3}).complete
    only_invalid = outcome(1, {"created": 3, "skipped": 1, "invalid": 2})
    assert only_invalid.complete and only_invalid.message == "error: something"
    assert not outcome(1, {"created": 3, "failed": 1, "invalid": 2}).complete
    assert not outcome(1, {"created": 3, "pending": 1}).complete
    assert not outcome(1, {"created": 3}, followups_by_row={"failed": 1}).complete
    assert not outcome(5, {"created": 3}, fatal="the run folder became unwritable").complete
    assert not _outcome(RunResult(ExitStatus(1), tmp_path)).complete  # stopped before any report
