"""The progress bar under a tight write quota: 429s show as they happen, and the quota wait is said."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

import provision
from provisioning.exitcodes import ExitStatus

from .conftest import write_roster


class TerminalErr(io.StringIO):
    """stderr as a terminal, so the tool draws its progress bar (what an administrator sees)."""

    def isatty(self) -> bool:
        return True


@pytest.mark.slow
def test_bar_shows_429s_and_the_quota_wait_before_answers_arrive(sandbox_factory: Any, monkeypatch: Any,
                                                                    tmp_path: Path) -> None:
    sb = sandbox_factory(write_quota=(2, 4))  # 2 writes per 4 s: most of the first $batch is answered 429
    monkeypatch.chdir(tmp_path)
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    roster = write_roster(tmp_path / "r.csv", 6)
    out, err = io.StringIO(), TerminalErr()
    code = provision.main(["run", str(roster), "--out", str(tmp_path / "run")], stdout=out, stderr=err)
    assert code == ExitStatus.OK, err.getvalue()
    screens = err.getvalue().split("\r")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    throttled = summary["throttled_429"]
    assert throttled > 0, summary
    # a frame drawn while fewer than all rows were answered already counts the 429s seen so far
    early = [s for s in screens if re.search(r"\b[0-5]/6\b", s) and re.search(r"throttled=[1-9]", s)]
    assert early, screens[-5:]
    assert any(re.search(r"waiting for Graph's write quota: [1-9]\d* s", s) for s in screens), screens[-5:]


def test_create_phase_plain_line_every_30_s_without_a_terminal() -> None:
    """stderr is not a terminal (CI, a scheduled task): a plain line every 30 s instead of a bar (fake clock)."""
    from provisioning.run.creates import Progress
    from provisioning.store.journal import RowState

    now = [100.0]
    err = io.StringIO()
    progress = Progress(lines=err, total=4, clock=lambda: now[0])
    progress.watch(lambda: 7, lambda: 0.0)
    try:
        progress.done(RowState.CREATED)
        progress.done(RowState.FAILED)
        now[0] = 129.0
        progress.tick()
        assert err.getvalue() == ""
        now[0] = 130.0
        progress.tick()
    finally:
        progress.close()
    assert err.getvalue() == "creating: 2/4 answered, 1 created, 1 failed, 7 answered 429\n"
