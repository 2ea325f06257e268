"""The benchmarks of Steps 3-14 (see README.md); run each as ``python bench/NAME.py``."""
from __future__ import annotations

import compileall
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def byte_compile_tool() -> None:
    """Byte-compile the tool's packages, as ``pip install`` does for an installed tool and as a checkout's first
    run does. With ``PYTHONDONTWRITEBYTECODE`` set (as on the shared box) CPython would otherwise compile every
    module of the tool again in every process the benchmark starts: a cost of its compiler, not of the tool."""
    for package in ("provisioning", "graph"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
