"""A ``--credential tap --deliver managers`` run killed (SIGKILL) while it issues passes, then resumed: every created
user ends with exactly one pass on file, the one Graph holds, and each manager receives exactly one mail listing
exactly their reports."""
from __future__ import annotations

import csv
import html
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from provisioning.exitcodes import ExitStatus
from tests.followups.conftest import precreate, read_results
from tests.run.conftest import sandbox_env

ROOT = Path(__file__).resolve().parents[2]
N = 60
MANAGERS = [f"boss{m}@contoso.com" for m in range(4)]


def _lines(path: Path) -> int:
    try:
        return max(0, len(path.read_text(encoding="utf-8").splitlines()) - 1)
    except OSError:
        return 0


def test_sigkill_while_issuing_passes_then_resume_delivers_once(sandbox: Any, tmp_path: Path) -> None:
    precreate(sandbox, "hr@contoso.com", "HR Sender")
    for m in MANAGERS:
        precreate(sandbox, m, m.split("@")[0])
    lines = ["givenName,surname,displayName,userPrincipalName,password,manager\n"]
    want: dict[str, set[str]] = {m: set() for m in MANAGERS}
    for i in range(N):
        upn = f"new{i:03d}@contoso.com"
        boss = MANAGERS[i % len(MANAGERS)]
        want[boss].add(upn)
        lines.append(f"G{i},S{i},G{i} S{i},{upn},,{boss}\n")
    roster = tmp_path / "roster.csv"
    roster.write_text("".join(lines), encoding="utf-8")
    run = tmp_path / "run"
    env = sandbox_env(sandbox)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "provision.py"), "run", str(roster), "--out", str(run), "--no-progress",
         "--max-writes-per-s", "25", "--batch-size", "5", "--credential", "tap", "--deliver", "managers",
         "--deliver-from", "hr@contoso.com"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while _lines(run / "credentials.csv") < 10:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _lines(run / "credentials.csv") < N  # killed mid-way through the passes
    assert sandbox.mail() == []  # no delivery yet

    done = subprocess.run([sys.executable, str(ROOT / "provision.py"), "resume", str(run), "--no-progress"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == ExitStatus.OK, done.stderr
    with open(run / "credentials.csv", encoding="utf-8", newline="") as fh:
        recs = list(csv.DictReader(fh))
    assert sorted(r["userPrincipalName"] for r in recs) == sorted(u for us in want.values() for u in us)
    for r in recs:
        assert sandbox.tap_matches(r["userPrincipalName"], r["temporaryAccessPass"])
    stats = sandbox.stats()
    assert stats["taps_issued"] - stats["taps_replaced"] == N
    by_to: dict[str, list[str]] = {}
    for m in sandbox.mail():
        (to,) = m["toRecipients"]
        by_to.setdefault(to, []).append(html.unescape(m["body"]["content"]))
    assert set(by_to) == set(MANAGERS) and all(len(v) == 1 for v in by_to.values())
    for boss, (content,) in ((b, by_to[b]) for b in MANAGERS):
        listed = {f"new{i:03d}@contoso.com" for i in range(N) if f"new{i:03d}@contoso.com" in content}
        assert listed == want[boss]
    assert {r["status"] for r in read_results(run).values()} == {"created"}
    assert not (run / "passwords.csv").exists()
