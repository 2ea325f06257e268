"""What differs between Windows and POSIX, in one place: how a printed command is quoted, and what "readable only by
its owner" means for a file.

- :func:`quote_command` / :func:`quote_arg`: ``subprocess.list2cmdline`` on Windows (what ``cmd.exe`` and
  PowerShell hand to a Python program), ``shlex.join`` elsewhere. Every command the tool prints or records
  (``to continue: ...``, the report's resume and retry lines) is quoted by these two.
- :func:`restrict_to_owner`: on POSIX the file is made mode 0600; on Windows (where the mode only sets the
  read-only flag) its ACL is replaced by one entry, full control for the current user, through ``icacls``; where
  that fails a warning says the file is only as private as its folder.
- :func:`is_owner_only`: whether an existing file may be appended to as a private file (resume); on Windows
  ``st_mode`` reports 0o666 for every file, so only the link check applies there.
"""
from __future__ import annotations

import getpass
import logging
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def is_windows() -> bool:
    """True on Windows (read at each call, so tests can switch ``sys.platform``)."""
    return sys.platform == "win32"


def quote_command(parts: Sequence[str]) -> str:
    """A command line the user can paste into the shell of this platform."""
    return subprocess.list2cmdline(list(parts)) if is_windows() else shlex.join(parts)


def quote_arg(arg: str) -> str:
    """One argument quoted for this platform's shell (a path in a printed command)."""
    return quote_command([arg])


def _windows_user() -> str:
    """``DOMAIN\\user`` of the current user, as ``icacls`` names an account."""
    user = os.environ.get("USERNAME") or getpass.getuser()
    domain = os.environ.get("USERDOMAIN")
    return f"{domain}\\{user}" if domain else user


def restrict_to_owner(path: Path, fd: int | None = None) -> bool:
    """Make ``path`` (open as ``fd``, when given) readable and writable by its owner only; True when that could be
    done.

    POSIX: mode 0600 (``fchmod`` of ``fd``, else ``chmod``; the umask cannot widen it). Windows: ``icacls PATH
    /inheritance:r /grant:r USER:F``, the folder's inherited entries removed, so not even the folder's other users
    can read it; when ``icacls`` is missing or fails, a warning says the file is as private as its folder and False
    is returned."""
    if not is_windows():
        if fd is not None:
            os.fchmod(fd, 0o600)
        else:
            os.chmod(path, 0o600)
        return True
    icacls = shutil.which("icacls")
    if icacls is not None:
        try:
            done = subprocess.run([icacls, str(path), "/inheritance:r", "/grant:r", f"{_windows_user()}:F"],
                                  capture_output=True, check=False, timeout=30)
        except (OSError, subprocess.SubprocessError):
            done = None
        if done is not None and done.returncode == 0:
            return True
    log.warning("%s could not be made private to your account (icacls failed); it is only as private as its "
                "folder: keep the folder where only you can read it", path)
    return False


def is_owner_only(path: Path) -> bool:
    """Whether the existing file ``path`` is private to its owner as far as this platform tells: no group or
    other permission bit on POSIX; on Windows the ACL :func:`restrict_to_owner` set is not read back (``st_mode``
    says 0o666 for every file), so any regular file passes."""
    return is_windows() or not (path.stat().st_mode & 0o077)
