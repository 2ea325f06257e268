"""Start-up: ``--help``, ``COMMAND --help`` and ``--version`` load none of the heavy third-party packages; a
``validate`` of a small CSV without quotes loads numpy (its checks) but not pandas (such a file is split by Python's
``csv``: provisioning.roster.reader), openpyxl, or the Graph client's msal and requests; one with quotes loads
pandas. Each is run in a child process with ``-X importtime``, which names every module the process imported."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "numpy", "openpyxl", "msal", "requests", "python_calamine", "cryptography")


def _imported(tmp_path: Path, *argv: str) -> tuple[int, set[str]]:
    """Exit status and the top-level packages ``python -X importtime provision.py ARGV`` imported."""
    done = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "provision.py"), *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \| +([\w.]+)$", done.stderr, re.MULTILINE)
    assert names, done.stderr
    return done.returncode, {name.split(".")[0] for name in names}


@pytest.mark.parametrize("argv", [("--help",), ("run", "--help"), ("validate", "--help"), ("watch", "--help"),
                                  ("export-users", "-h"), ("--version",)])
def test_help_loads_no_heavy_package(tmp_path: Path, argv: tuple[str, ...]) -> None:
    status, packages = _imported(tmp_path, *argv)
    assert status == 0
    assert packages & set(HEAVY) == set()


@pytest.mark.parametrize("line, pandas", [("Ada,Lovelace,ada@contoso.com", set()),
                                          ('"Lovelace, Ada",Lovelace,ada@contoso.com', {"pandas"})])
def test_validate_of_a_small_csv_loads_neither_openpyxl_nor_the_graph_client(tmp_path: Path, line: str,
                                                                             pandas: set[str]) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(f"givenName,surname,userPrincipalName\n{line}\n", encoding="utf-8")
    status, packages = _imported(tmp_path, "validate", str(roster))
    assert status == 0
    assert packages & set(HEAVY) == {"numpy", "python_calamine"} | pandas


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_sandbox_help_is_the_sandbox_commands_help(flag: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "provision.py"), "sandbox", flag], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: provision.py sandbox [-h] COMMAND ...\n")
    assert "\n    serve     serve HTTPS on loopback until SIGTERM/SIGINT\n" in done.stdout
    assert "\n    reset     empty the sandbox's state" in done.stdout
