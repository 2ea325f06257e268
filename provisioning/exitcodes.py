"""Exit codes of ``provision.py``, documented in ``--help`` and the README."""
from __future__ import annotations

from enum import IntEnum, unique


@unique
class ExitStatus(IntEnum):
    """What the process tells its caller (a shell, CI, the drop-folder daemon)."""

    OK = 0  # every row ended created, updated or skipped (or: nothing wrong found)
    ROWS_FAILED = 1  # some rows were invalid or failed; the report says which and why
    USAGE = 2  # bad command line, or a roster that cannot be used at all
    CONFIG = 3  # configuration or authentication error
    UNAVAILABLE = 4  # the service stayed unavailable after retries
    INTERRUPTED = 130  # Ctrl-C / SIGTERM; the journal is consistent and `resume` continues


EXIT_CODES_HELP = """exit codes:
  0    every row ended created, updated or skipped (validate: no errors)
  1    some rows were invalid or failed (see the report)
  2    usage error, or a roster that cannot be used
  3    configuration or authentication error
  4    the service stayed unavailable after retries
  130  interrupted; the journal is consistent, `resume RUN_DIR` continues"""
