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
    RUN_FOLDER_LOST = 5  # the run folder or its journal became unwritable mid-run; sending stopped at once
    INTERNAL = 70  # a bug in the tool (BSD sysexits EX_SOFTWARE); never used for a data or usage problem
    INTERRUPTED = 130  # Ctrl-C / SIGTERM / SIGHUP (SIGTERM too: not 143); the journal is consistent, `resume` continues


EXIT_CODES_HELP = """exit codes:
  0    every row ended created, updated or skipped (validate: no errors)
  1    some rows were invalid or failed (see the report)
  2    usage error, or a roster that cannot be used
  3    configuration or authentication error
  4    the service stayed unavailable after retries
  5    the run folder became unwritable (removed, disk full, read-only); sending stopped at once
  70   internal error (a bug): run again with --traceback and report it
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP); the journal is consistent, `resume RUN_DIR` continues"""
