"""The follow-up phase's own progress: a tqdm bar when stderr is a terminal (a real pseudo-terminal here), a plain
line every 30 s when it is not (CI, scheduled tasks: a fake clock, no 30 s sleep), nothing with --no-progress."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import termios
import threading
from pathlib import Path
from typing import Any

import provision
from provisioning.exitcodes import ExitStatus
from provisioning.run.followups import apply_followups
from provisioning.run.progress import PhaseProgress, phase_progress

from .conftest import graph, write
from .test_bulk_members import _journal, _users


class FakeClock:
    """Seconds that move only when the test (or each reading, by ``step``) says so."""

    def __init__(self, step: float = 0.0) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_plain_line_every_30_s_on_a_fake_clock() -> None:
    clock, err = FakeClock(), io.StringIO()
    wait = [0.0]
    progress = PhaseProgress("follow-ups", lines=err, clock=clock)
    progress.start(10)
    progress.watch(lambda: wait[0])
    try:
        progress.advance(3, failed=1)
        clock.now = 29.9
        progress.tick()
        assert err.getvalue() == ""
        clock.now = 30.0
        progress.tick()
        assert err.getvalue() == "follow-ups: 3/10 answered, 1 failed\n"
        wait[0] = 12.4
        clock.now = 45.0
        progress.advance(2)
        assert err.getvalue().count("\n") == 1  # 15 s since the last line: none yet
        clock.now = 60.0
        progress.tick()
    finally:
        progress.close()
    assert err.getvalue().splitlines() == ["follow-ups: 3/10 answered, 1 failed",
                                           "follow-ups: 5/10 answered, 1 failed; waiting for Graph's write quota: 12 s"]


def test_phase_progress_choice() -> None:
    err = io.StringIO()
    assert phase_progress("follow-ups", err, interactive=False, enabled=False) is None  # --no-progress, --quiet
    plain = phase_progress("follow-ups", err, interactive=False, enabled=True)
    assert plain is not None and plain.bar is None
    plain.start(4)
    assert plain.bar is None  # no bar on a stream that is not a terminal


def test_follow_up_phase_writes_periodic_lines_without_a_terminal(sandbox: Any, tmp_path: Path) -> None:
    # every reading of the clock is 10 s later: the phase of 25 memberships and 25 licences "lasts" minutes
    clock, err = FakeClock(step=10.0), io.StringIO()
    progress = PhaseProgress("follow-ups", lines=err, clock=clock)
    with graph(sandbox) as client:
        ids = _users(client, 25)
        with _journal(tmp_path / "run", ids, "Sales", sandbox.groups["Sales"]) as journal:
            counts = apply_followups(client, journal, progress=progress)
    assert counts == {"done": 25}
    lines = err.getvalue().splitlines()
    assert lines, "no progress line"
    assert all(re.fullmatch(r"follow-ups: \d+/25 answered, 0 failed", line) for line in lines), lines
    done = [int(line.split(": ")[1].split("/")[0]) for line in lines]
    assert done == sorted(done) and len(lines) >= 2 and done[-1] >= 20  # lines as the answers come in


def test_follow_up_bar_under_a_pseudo_terminal(sandbox_factory: Any, monkeypatch: Any, tmp_path: Path) -> None:
    sb = sandbox_factory(latency_ms=(30, 0))  # the follow-ups take a few round trips: the bar is drawn
    monkeypatch.chdir(tmp_path)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    roster = write(tmp_path / "r.csv", [f"U,{i},U {i},u{i}@contoso.com,,US,,Sales;Finance,FLOW_FREE,"
                                        for i in range(6)])
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # a new pty is 0 columns wide
    screen: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            screen.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    err = os.fdopen(slave, "w", encoding="utf-8", buffering=1)
    try:
        code = provision.main(["run", str(roster), "--out", str(tmp_path / "run")], stdout=io.StringIO(),
                              stderr=err)
        err.flush()
    finally:
        err.close()
        reader.join(timeout=5)
        os.close(master)
    text = b"".join(screen).decode("utf-8", "replace")
    assert code == ExitStatus.OK, text
    assert re.search(r"creating.*6/6", text), text[-500:]
    # the follow-up phase's own bar: 6 rows x (2 groups + 1 licence) = 18 follow-ups
    assert re.search(r"follow-ups: 100%.*18/18.*failed=0", text), text[-800:]
