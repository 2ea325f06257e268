"""The package: pyproject.toml agrees with requirements.txt and provisioning.__version__; the wheel builds offline,
installs into a fresh venv and its ``entra-provision`` command runs a roster against the sandbox."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import openpyxl
import pytest

import provisioning
from provisioning import cli

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_project_table_has_the_requirements_ranges_and_the_package_version() -> None:
    project = PYPROJECT["project"]
    required = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert project["dependencies"] == [r for r in required if r]
    assert project["version"] == provisioning.__version__
    assert project["requires-python"] == ">=3.11"
    assert project["scripts"] == {"entra-provision": "provisioning.cli:entry_point"}


def test_version_is_the_package_version_in_a_checkout(capsys: pytest.CaptureFixture[str]) -> None:
    assert provisioning.running_version() == provisioning.__version__
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"provision.py {provisioning.__version__}\n"


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel, built offline from a copy of the sources (the build leaves build/ and *.egg-info behind)."""
    try:
        from setuptools import __version__ as setuptools_version
    except ImportError:  # pragma: no cover - requirements-dev.txt installs it
        pytest.skip("setuptools (the build backend) is not installed: pip install -r requirements-dev.txt")
    if tuple(int(p) for p in re.findall(r"\d+", setuptools_version)[:2]) < (70, 1):
        pytest.skip(f"setuptools {setuptools_version} builds no wheel without the wheel package; need >= 70.1")
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("provisioning", "graph", "sandbox", "templates", "samples"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("entra_provision-*.whl")
    return wheel


@pytest.mark.slow
def test_the_installed_command_runs_a_roster_against_the_sandbox(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)  # the dependencies come from this Python
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    command = shutil.which("entra-provision", path=str(bindir))
    assert command is not None
    work = tmp_path / "work"  # outside the repository: only the installed package can be imported
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    version = subprocess.run([command, "--version"], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert (version.returncode, version.stdout) == (0, f"entra-provision {provisioning.__version__}\n")

    share = env_dir / "share" / "entra-provision"
    assert (share / "templates" / "roster-template.xlsx").is_file()
    roster = share / "samples" / "roster.csv"
    assert roster.read_bytes() == (ROOT / "samples" / "roster.csv").read_bytes()

    done = subprocess.run([command, "run", str(roster), "--sandbox", "--out", "run", "--no-progress"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created 25, skipped 0, failed 0, invalid 0 (")
    summary = json.loads((work / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"] == {"created": 25, "failed": 0, "invalid": 0, "skipped": 0}
    ws = openpyxl.load_workbook(work / "run" / "results.xlsx")["Summary"]
    items = {row[0]: row[1] for row in ws.iter_rows(values_only=True) if row[0]}
    assert items["Retry failed and invalid rows"] == f"entra-provision --sandbox retry {(work / 'run').resolve()}"
    imported = subprocess.run([str(python), "-c", "import provisioning; print(provisioning.__file__)"], cwd=work,
                              env=env, capture_output=True, text=True, timeout=60, check=True)
    assert Path(imported.stdout.strip()).is_relative_to(env_dir)
