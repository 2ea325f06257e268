#!/usr/bin/env python3
"""Writes per user of ``provision.py run`` with follow-ups, counted by the sandbox (Step 11, scenarios d and e).

The sandbox runs in its own process (``python -m sandbox serve``, Graph's default quotas); the tool runs in a
subprocess with default options (``-q run ROSTER --no-progress``) on a generated roster of 1,000 users, each with
2 groups (of the tenant's 5), a licence (FLOW_FREE) and a manager (the first row's is a user of the tenant, every
other row's is an earlier row of the roster):

- (d) the first run: the sandbox's write counter / users   <= 3.2 (a create, 2 memberships, a licence and a manager
  one write each would be 5.0; memberships go 20 to a ``PATCH /groups/{id}``);
- (e) the same roster again (every user exists: skipped): writes   == 0 (pre-flight reads what is in place).

It also checks that every row ended as it should (created / skipped, follow-ups done / already in place) and that
the tenant holds what the roster asks for. Exit 1 on a missed target.

    python bench/followups.py [--users N] [--latency-ms MEAN:JITTER] [--keep]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the repository is not on the path
    sys.path.insert(0, str(ROOT))

from sandbox import process as sandbox_process  # noqa: E402

CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")  # would override the sandbox CA in requests sessions
GROUPS = ("All Staff", "Engineering", "Sales", "Finance", "Helpdesk Admins")
#: the sandbox's default app, plus what a role-assignable group (Helpdesk Admins) needs
ROLES = ("User.ReadWrite.All", "Domain.Read.All", "Organization.Read.All", "GroupMember.ReadWrite.All",
         "Group.Read.All", "RoleManagement.ReadWrite.Directory")
BOSS = "seed.user00001@contoso.com"  # a user of the tenant (the sandbox's first seeded user)


def write_roster(path: Path, n: int) -> None:
    """``n`` users, each with 2 of the 5 groups, FLOW_FREE and a manager."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["givenName", "surname", "displayName", "userPrincipalName", "usageLocation", "employeeId",
                    "groups", "licenses", "manager"])
        for i in range(n):
            groups = f"{GROUPS[i % 5]};{GROUPS[(i + 2) % 5]}"
            manager = BOSS if i == 0 else f"fu{(i - 1) // 20:05d}@contoso.com"
            w.writerow([f"Given{i}", f"Sur{i}", f"Given{i} Sur{i}", f"fu{i:05d}@contoso.com", "US", f"F{i:07d}",
                        groups, "FLOW_FREE", manager])


def start_sandbox(state: Path, latency: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``python -m sandbox serve`` with Graph's default quotas; returns it and its sandbox.env values."""
    return sandbox_process.serve(state, ["--latency-ms", latency, "--seed", "1", "--users", "1",
                                         "--roles", ",".join(ROLES)])


def stats(env: dict[str, str]) -> dict[str, Any]:
    """``GET /_sandbox/stats``."""
    return sandbox_process.stats(env)


def run_tool(work: Path, env: dict[str, str], roster: Path, out: str) -> tuple[float, list[dict[str, str]]]:
    """One ``provision.py -q run`` in a subprocess; (wall seconds, results.csv rows)."""
    child_env = {k: v for k, v in os.environ.items() if k not in CA_ENV}
    child_env.update(env)
    cmd = [sys.executable, str(ROOT / "provision.py"), "-q", "run", str(roster), "--out", str(work / out),
           "--no-progress"]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=work, env=child_env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stdout, done.stderr, file=sys.stderr)
        raise SystemExit(f"{out}: the run failed with exit {done.returncode} (see {work / out})")
    with open(work / out / "results.csv", encoding="utf-8-sig", newline="") as fh:
        return wall, list(csv.DictReader(fh))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1000, help="roster size (default 1000)")
    p.add_argument("--latency-ms", default="150:50", help="the sandbox's latency (default 150:50)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args(argv)
    n = args.users
    work = Path(tempfile.mkdtemp(prefix="bench-followups-"))
    sb, env = start_sandbox(work / "sandbox", args.latency_ms)
    try:
        roster = work / "roster.csv"
        write_roster(roster, n)
        s0 = stats(env)
        wall_d, first = run_tool(work, env, roster, "d")
        s1 = stats(env)
        wall_e, again = run_tool(work, env, roster, "e")
        s2 = stats(env)
        summary_d = json.loads((work / "d" / "summary.json").read_text())
    finally:
        sb.terminate()
        sb.wait(timeout=30)

    writes_d, writes_e = s1["writes"] - s0["writes"], s2["writes"] - s1["writes"]
    per_user = writes_d / n
    first_ok = all(r["status"] == "created" and r["followUps"].count(": done") == 4 for r in first)
    again_ok = all(r["status"] == "skipped" and r["followUps"].count(": already in place") == 4 for r in again)
    wired = (s1["members_added"] - s0["members_added"] == 2 * n and s1["licenses_assigned"] -
             s0["licenses_assigned"] == n and s1["managers_set"] - s0["managers_set"] == n)
    checks: list[tuple[str, str, str, bool | None]] = [
        ("(d) writes per user (sandbox counter)", f"{per_user:.3f}", "<= 3.2", per_user <= 3.2),
        ("(d) writes per user with one write per follow-up (information)", "5.000", "-", None),
        ("(d) rows created, 4 follow-ups done each", f"{len(first)} rows", "all", first_ok and len(first) == n),
        ("(d) tenant: memberships / licences / managers", f"{s1['members_added'] - s0['members_added']} / "
         f"{s1['licenses_assigned'] - s0['licenses_assigned']} / {s1['managers_set'] - s0['managers_set']}",
         f"{2 * n} / {n} / {n}", wired),
        ("(d) answered 429 (information)", str(s1["throttled"] - s0["throttled"]), "-", None),
        ("(e) writes of the second run", str(writes_e), "0", writes_e == 0),
        ("(e) rows skipped, 4 follow-ups already in place each", f"{len(again)} rows", "all",
         again_ok and len(again) == n),
    ]
    print(f"sandbox: Graph's default quotas (3000/150, tenant-wide 18000/300), latency {args.latency_ms} ms; "
          f"{n} users x (create + 2 groups of 5 + FLOW_FREE + manager); tool with default options")
    print(f"    (d) first run: {wall_d:.2f} s wall (apply phase {summary_d['apply_duration_s']:.2f} s), "
          f"{writes_d} writes, {s1['batch_items'] - s0['batch_items']} $batch items")
    print(f"    (e) second run: {wall_e:.2f} s wall, {writes_e} writes, {s2['batch_items'] - s1['batch_items']} "
          f"$batch items (reads)")
    width = max(len(c[0]) for c in checks)
    for name, value, target, ok in checks:
        verdict = "info" if ok is None else "ok" if ok else "MISS"
        print(f"    {name:<{width}}  {value:>18}  target {target:<16} {verdict}")
    if args.keep:
        print(f"    kept: {work}")
    return 0 if all(c[3] is not False for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
