"""Roster in, accounts out: roster -> validated rows -> plan -> journaled run -> report (docs/architecture.md).

The library API (:mod:`provisioning.api`), importable from here::

    from provisioning import RunOptions, Stop, start_run, resume_run
    result = start_run(settings, Path("staff.xlsx"), RunOptions(dry_run=True), stop=Stop())

Imports point down one way, ``commands > api, watcher > report > run > validation > roster > leaves``
(tests/test_imports.py). Nothing below ``commands`` prints except to the console a run is handed; library modules
log.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioning.api import (
        Existing,
        ResumeOptions,
        RetryOptions,
        RunOptions,
        RunResult,
        Stop,
        resume_run,
        start_retry,
        start_run,
    )

#: The tool's version, as in pyproject.toml (``entra-provision --version`` reads the installed metadata first).
__version__ = "0.14.0"

#: The distribution's name on PyPI and in the installed metadata.
DISTRIBUTION = "entra-provision"


def running_version() -> str:
    """The version of the code that is running: the installed distribution's metadata when this very package is
    the installed one, else :data:`__version__` (a checkout run beside an installed copy reports its own)."""
    from importlib import metadata  # some 30 ms: only for --version and a run's audit record
    from pathlib import Path

    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return __version__
    installed = Path(str(dist.locate_file("provisioning/__init__.py"))).resolve()
    return dist.version if installed == Path(__file__).resolve() else __version__


__all__ = ["Existing", "ResumeOptions", "RetryOptions", "RunOptions", "RunResult", "Stop", "resume_run", "start_retry",
           "start_run"]


def __getattr__(name: str) -> Any:
    """The API's names, imported on first use: ``import provisioning.exitcodes`` (the command line's start-up)
    does not load the whole run machinery."""
    if name in __all__:
        return getattr(importlib.import_module("provisioning.api"), name)
    raise AttributeError(f"module 'provisioning' has no attribute {name!r}")
