#!/usr/bin/env python3
"""Start-up time of the command line (Step 14): ``provision.py --help`` against ``python -c pass``, in one run.

Each command is started ``--runs`` times in a fresh process, alternating with the reference so that a burst of
load on the shared machine hits both; the figure is the median wall time of each, and their ratio. Targets: the
median ``--help`` at most 0.25 s, and about 20x ``python -c pass`` at most (the 0.25 s on this machine, where
``python -c pass`` takes some 12 ms). Also timed, for information: ``COMMAND --help`` of ``run`` and ``validate``
of the five-row roster ``tests/data`` keeps for that (no pandas for help; ``validate`` needs pandas and numpy).
The tool is byte-compiled first, as installed (``bench.byte_compile_tool``). Exit 1 on a missed target.

    python bench/startup.py [--runs N]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the repository is not on the path
    sys.path.insert(0, str(ROOT))

from bench import byte_compile_tool  # noqa: E402

TARGET_S = 0.25
TARGET_RATIO = 20.0
ROSTER = "givenName,surname,userPrincipalName\nAda,Lovelace,ada@contoso.com\nAlan,Turing,alan@contoso.com\n"


def _time(argv: Sequence[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="starts of each command (default 15)")
    args = parser.parse_args(argv)
    byte_compile_tool()  # timed as installed (see bench/__init__.py)
    with tempfile.TemporaryDirectory() as tmp:
        roster = Path(tmp) / "roster.csv"
        roster.write_text(ROSTER, encoding="utf-8")
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "provision.py --help": [sys.executable, "provision.py", "--help"],
            "provision.py run --help": [sys.executable, "provision.py", "run", "--help"],
            "provision.py validate (2 rows)": [sys.executable, "provision.py", "validate", str(roster),
                                               "--out", str(Path(tmp) / "issues.csv"), "--force"],
        }
        for command in commands.values():  # warm the file cache and the .pyc files
            _time(command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(_time(command))
    median = {name: statistics.median(values) for name, values in times.items()}
    base, helped = median["python -c pass"], median["provision.py --help"]
    ratio = helped / base
    print(f"median of {args.runs} starts each (Python {sys.version.split()[0]})")
    for name, value in median.items():
        print(f"    {name:<32} {value * 1000:7.1f} ms  ({value / base:5.1f}x python -c pass)")
    ok_time, ok_ratio = helped <= TARGET_S, ratio <= TARGET_RATIO
    print(f"    --help median                  {helped:7.3f} s   target <= {TARGET_S} s  {'ok' if ok_time else 'MISS'}")
    print(f"    --help / python -c pass        {ratio:7.1f}x   target <= {TARGET_RATIO:.0f}x   "
          f"{'ok' if ok_ratio else 'MISS'}")
    return 0 if ok_time and ok_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
