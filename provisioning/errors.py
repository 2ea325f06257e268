"""The one exception root of ``provisioning``.

Data problems in a row are :class:`provisioning.models.Issue` values, never exceptions. Exceptions are for
conditions that stop a command; each carries the exit status it maps to and a message that says what to do.
:func:`status_for_exception` maps any exception that stops a command to its exit status.
"""
from __future__ import annotations

import errno
import sqlite3

from graph.errors import AuthError, GraphError, ServiceUnavailableError
from provisioning.exitcodes import ExitStatus


class ProvisionError(Exception):
    """Root of every error this package raises. ``str(err)`` is one actionable line for the user."""

    exit_status: ExitStatus = ExitStatus.USAGE


class UsageError(ProvisionError):
    """The command line asks for something that cannot be done."""

    exit_status = ExitStatus.USAGE


class RosterError(ProvisionError):
    """The roster as a whole cannot be used (unreadable, no header, required columns missing, ...)."""

    exit_status = ExitStatus.USAGE

    def __init__(self, path: object, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.detail = message


class ConfigError(ProvisionError):
    """Configuration is missing or inconsistent (tenant, client id, credential, cloud, CA bundle)."""

    exit_status = ExitStatus.CONFIG


class RunFolderError(ProvisionError):
    """A run folder cannot be used for resume/retry (missing journal, roster changed, ...)."""

    exit_status = ExitStatus.USAGE


class RunFolderLost(ProvisionError):
    """The run folder or its journal became unwritable mid-run (removed, replaced, disk full, read-only): nothing
    more is sent. ``resumable``: the journal is still in place and consistent, so ``resume`` continues once the
    cause is fixed (disk full, read-only); False when the journal itself is gone or replaced."""

    exit_status = ExitStatus.RUN_FOLDER_LOST

    def __init__(self, message: str, *, reason: str = "", resumable: bool = False,
                 remedy: str = "fix the cause") -> None:
        super().__init__(message)
        self.reason = reason or message
        self.resumable = resumable
        self.remedy = remedy  # what makes the folder writable again, e.g. "free space on its disk"


#: OSError numbers that mean the disk (or a file size limit) is full or read-only: the run folder's state, not a
#: usage error.
_DISK_FULL_OR_READ_ONLY = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS, errno.EFBIG)


def status_for_exception(exc: BaseException) -> ExitStatus:
    """The exit status of a command stopped by ``exc``: the one mapping ``provision.py`` and the watch daemon use."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED
    if isinstance(exc, ProvisionError):
        return exc.exit_status
    if isinstance(exc, GraphError):
        if isinstance(exc, AuthError) or exc.status in (401, 403):
            return ExitStatus.CONFIG
        if isinstance(exc, ServiceUnavailableError) or exc.status == 0 or exc.status >= 500 or exc.status == 429:
            return ExitStatus.UNAVAILABLE
        return ExitStatus.ROWS_FAILED
    if isinstance(exc, OSError):
        return ExitStatus.RUN_FOLDER_LOST if exc.errno in _DISK_FULL_OR_READ_ONLY else ExitStatus.USAGE
    if isinstance(exc, sqlite3.Error):  # a run journal that cannot be read or written
        return ExitStatus.RUN_FOLDER_LOST
    return ExitStatus.INTERNAL
