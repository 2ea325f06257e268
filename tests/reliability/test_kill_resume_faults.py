"""SIGKILL at random points and resume, against a sandbox with every fault at once: the CI-sized subset.

The full size (3,000 rows, 10 kills) is ``python bench/reliability.py``; the logic lives in ``harness.py``.
"""
from __future__ import annotations

from pathlib import Path

from .harness import Scenario, run_scenario

#: 300 rows, 3 kills, 5 % 503, 2 % resets, 2 % lost, 1 % slow beyond the client's read timeout, 20 s tokens, 2 s lag.
CI = Scenario(rows=300, kills=3, seed=11, existing=6, invalid_every=25, target_s=10.0)


def test_sigkill_resume_under_faults_every_row_once(tmp_path: Path) -> None:
    out = run_scenario(CI, tmp_path)
    assert out.violations == [], out.describe()
    assert len(out.kills) == CI.kills, out.describe()
    assert out.counts == {"created": 282, "skipped": 6, "invalid": 12}, out.describe()
    assert out.stats["users_created"] == 282
    assert sum(out.stats["faults"].values()) > 0, "the sandbox injected no fault: the scenario tested nothing"
