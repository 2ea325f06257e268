"""One daemon per drop folder, and a run folder moved to done/ or failed/ can still be resumed."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from provisioning.exitcodes import ExitStatus
from provisioning.store.journal import Journal
from tests.watch.test_watch_e2e import HEADER, ROOT, _env, _one, _wait, _watch

# real watch daemons in subprocesses, polling with real settle times
pytestmark = pytest.mark.slow


def test_a_second_watch_on_the_same_inbox_is_refused(sandbox: Any, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    first = _watch(inbox, _env(sandbox), "--interval", "0.2", "--settle", "0.2")
    try:
        assert first.stdout is not None and " watching " in first.stdout.readline()
        second = subprocess.run([sys.executable, str(ROOT / "provision.py"), "watch", str(inbox), "--once"],
                                cwd=tmp_path, env=_env(sandbox), capture_output=True, text=True, timeout=60)
    finally:
        first.terminate()
        first.communicate(timeout=30)
    assert second.returncode == ExitStatus.USAGE, second.stderr
    line = second.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {inbox} is in use by another process (pid {first.pid} on host "), line
    assert line.endswith(", watch); wait for it to finish, or stop it"), line
    # the lock died with the first daemon: a new one may start
    again = subprocess.run([sys.executable, str(ROOT / "provision.py"), "watch", str(inbox), "--once"],
                           cwd=tmp_path, env=_env(sandbox), capture_output=True, text=True, timeout=60)
    assert again.returncode == ExitStatus.OK, again.stderr


def test_a_run_folder_moved_to_done_still_finds_its_roster(sandbox: Any, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "staff.csv").write_text(HEADER + "Mo,Ved,Mo Ved,mo.ved@contoso.com,,E1\n", encoding="utf-8")
    proc = _watch(inbox, _env(sandbox), "--interval", "0.2", "--settle", "0.2")
    try:
        _wait(lambda: (inbox / "done").is_dir() and any((inbox / "done").iterdir()), proc)
        time.sleep(0.3)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    done = _one(inbox / "done")
    with Journal.open(done / "run") as journal:
        assert journal.meta()["roster_path"] == str((done / "staff.csv").resolve())
    resumed = subprocess.run([sys.executable, str(ROOT / "provision.py"), "resume", str(done / "run")],
                             cwd=tmp_path, env=_env(sandbox), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == ExitStatus.OK, resumed.stderr
    assert "is not there any more" not in resumed.stderr
