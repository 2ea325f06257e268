"""Benchmark: ``validate`` on a generated 100,000-row roster, against pandas reading the same file alone.

    python bench/roster_scale.py [--rows N]

Targets (same run, same files): xlsx end to end <= 0.5x ``pandas.read_excel(engine="openpyxl")``; csv end to end
<= 3.5x ``pandas.read_csv`` (a guard: 3x was retired in Step 11, 0.37 s for 100,000 rows being invisible beside a
quota-bound run of them); peak memory of ``validate`` < 600 MB, measured per file in a fresh subprocess that
does only that validation, without tracemalloc (whose per-allocation records would count too): its ``VmHWM`` (peak
resident set of the process's own address space, from ``/proc/self/status``). ``ru_maxrss`` is not used on
Linux: a child started with vfork/exec inherits the parent's high-water mark, so it reported the benchmark's own
peak (the same figure for csv and xlsx). "End to end" is ``provision.main(["validate", ...])``: read, map, derive,
every rule, the issues table and CSV. Also printed, for information: ``validate_roster`` (which adds one UserRow with a
generated password per row, as the run engine uses it). Exits 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = ("employeeId", "givenName", "surname", "displayName", "userPrincipalName", "jobTitle", "department",
           "companyName", "usageLocation", "city", "country", "officeLocation", "mobilePhone", "businessPhones",
           "postalCode", "accountEnabled", "manager")
GIVEN = ["Ann", "José", "Zoë", "Łukasz", "Chloé", "Jürgen", "Siobhán", "Mehmet", "Priya", "Kwame", "Yuki", "Åsa",
         "Søren", "Renée", "Tomás", "Björk", "Mary", "Ólafur", "Héloïse", "Nguyễn"]
SURNAMES = ["Lee", "Núñez-Ødegård", "Smith", "Wiśniewski", "Lefèvre", "Groß", "O'Brien", "Yılmaz", "Raghunathan",
            "Mensah", "Tanaka", "Lindström", "Kierkegård", "Château", "Ó Súilleabháin", "Þórðarson", "Müller",
            "Conceição", "Dupont", "Mäkinen"]
SYLLABLES = ["", "son", "berg", "ström", "ová", "ić", "ez", "ini", "escu", "ski", "sen", "ardt", "elli", "ault",
             "ier", "ano", "oğlu", "stad", "vik", "heim", "ley", "ton", "wood", "ford", "more", "dal", "gaard", "lund",
             "quist", "mann"]
DEPTS = ["Engineering", "Sales", "Finance", "Marketing", "Support", "Legal", "Operations"]
COUNTRIES = [("US", "United States", "Seattle"), ("GB", "United Kingdom", "London"), ("DE", "Germany", "Berlin"),
             ("FR", "France", "Paris"), ("JP", "Japan", "Tokyo"), ("IN", "India", "Bengaluru")]


def generate(rows: int, folder: Path) -> tuple[Path, Path]:
    """A realistic roster: UPN and displayName left empty (derived) on most rows, a manager chain."""
    rng = random.Random(7)
    data = []
    for i in range(rows):
        g = rng.choice(GIVEN)
        s = rng.choice(SURNAMES) + rng.choice(SYLLABLES) + rng.choice(SYLLABLES)
        loc, country, city = rng.choice(COUNTRIES)
        explicit = i % 4 == 0
        data.append([f"{i:07d}", g, s, f"{g} {s}" if explicit else "",
                     f"user{i}@contoso.com" if explicit else "", "Engineer", rng.choice(DEPTS), "Contoso", loc,
                     city, country, f"B{i % 40}", f"+1 555 {i % 10000:04d}", f"+1 425 {i % 10000:04d}",
                     f"{i % 99999:05d}", "Yes", "user0@contoso.com" if i else ""])
    csv_path, xlsx_path = folder / "roster.csv", folder / "roster.xlsx"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(data)
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Users")
    ws.append(COLUMNS)
    for r in data:
        ws.append(r)
    wb.save(xlsx_path)
    return csv_path, xlsx_path


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_validate(path: Path) -> int:
    import provision

    out, err = io.StringIO(), io.StringIO()
    code = provision.main(["validate", str(path), "--domain", "contoso.com", "--out",
                           str(path.with_suffix(".issues.csv"))], stdout=out, stderr=err)
    if code not in (0, 1):
        raise SystemExit(f"validate failed ({code}): {err.getvalue()}")
    return code


_PEAK_SCRIPT = """
import resource, sys, tracemalloc
sys.path.insert(0, %r)
from pathlib import Path
from bench.roster_scale import run_validate
if %r:
    tracemalloc.start()
run_validate(Path(%r))
traced = tracemalloc.get_traced_memory()[1]
try:
    hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(hwm, traced)
"""


def _child(path: Path, trace: bool) -> tuple[int, int]:
    res = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT % (str(ROOT), trace, str(path))], capture_output=True,
                         text=True, check=True)
    rss_kb, traced = res.stdout.strip().splitlines()[-1].split()
    return int(rss_kb), int(traced)


def peak_mb(path: Path) -> tuple[float, float, float]:
    """``(peak RSS, tracemalloc peak, peak RSS under tracemalloc)`` in MB of fresh processes that only run
    ``validate`` on ``path``.

    The RSS figure is the child's own ``VmHWM`` (its address space's high-water mark), measured in a child that
    does not trace: tracemalloc keeps a record for every live allocation, which on 100,000 rows added 150-250 MB
    to the same process's peak (xlsx: 372 MB plain vs 622 MB traced, before the streaming reader). A second child
    runs with tracemalloc for the Python-allocation peak; its own RSS is printed for comparison with older figures.
    """
    rss_kb, _ = _child(path, False)
    traced_rss_kb, traced = _child(path, True)
    return rss_kb / 1024, traced / 2**20, traced_rss_kb / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--csv-only", action="store_true", help="skip the (slow) xlsx/openpyxl comparison")
    args = parser.parse_args(argv)
    import pandas as pd

    from provisioning.roster.reader import load_roster
    from provisioning.validation.engine import validate_roster

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        csv_path, xlsx_path = generate(args.rows, Path(tmp))
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        run_validate(csv_path)  # warm imports
        pd_csv = min(timed(lambda: pd.read_csv(csv_path, dtype=str, keep_default_na=False)) for _ in range(3))
        v_csv = min(timed(lambda: run_validate(csv_path)) for _ in range(3))
        full_csv = timed(lambda: validate_roster(load_roster(csv_path), default_domain="contoso.com"))
        checks = [("csv: validate / pandas.read_csv", v_csv / pd_csv, 3.5, f"{v_csv:.3f}s vs {pd_csv:.3f}s")]
        if not args.csv_only:
            pd_xlsx = timed(lambda: pd.read_excel(xlsx_path, engine="openpyxl", dtype=str))
            v_xlsx = timed(lambda: run_validate(xlsx_path))
            checks.append(("xlsx: validate / pandas.read_excel(openpyxl)", v_xlsx / pd_xlsx, 0.5,
                           f"{v_xlsx:.2f}s vs {pd_xlsx:.2f}s"))
        for path in (csv_path,) if args.csv_only else (csv_path, xlsx_path):
            rss, traced, traced_rss = peak_mb(path)
            checks.append((f"peak memory {path.suffix[1:]} (MB)", rss, 600.0,
                           f"fresh process, VmHWM; tracemalloc peak {traced:.0f} MB in a second process, "
                           f"whose VmHWM with tracing is {traced_rss:.0f} MB"))
    failed = False
    for name, value, target, detail in checks:
        ok = value <= target
        failed |= not ok
        print(f"{name:48s} {value:9.2f}  target <= {target:<6g} {'ok' if ok else 'MISSED'}  ({detail})")
    print(f"{'info: validate_roster (UserRows + passwords), csv':48s} {full_csv:9.3f}s "
          f"({full_csv / pd_csv:.1f}x pandas.read_csv)")
    results = {n: round(v, 3) for n, v, _, _ in checks}
    print(json.dumps(results), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
