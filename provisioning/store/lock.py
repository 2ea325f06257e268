"""One process at a time per run folder: an OS lock on ``RUN_DIR/.lock`` that dies with its process.

Two processes sending from one journal create users twice and lose generated passwords (each rewrites
``passwords.csv`` from what it knows). ``run``, ``resume`` and ``retry`` therefore hold this lock from before they
write anything in the folder until their report is written. It is ``fcntl.flock`` on POSIX and ``msvcrt.locking``
on Windows: the kernel releases it when the holder exits in any way (SIGKILL and power loss included), so a crashed
run never leaves a stale lock behind. The file itself stays (removing it would let two processes lock two different
files); it records who holds the lock (pid, host, since when) for the refusal message.
"""
from __future__ import annotations

import json
import os
import socket
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from provisioning.errors import RunFolderError
from provisioning.store.folder import RunFolder

#: Byte 0 is the one locked on Windows (msvcrt locks byte ranges, and a locked range cannot be read by others), so
#: the holder's description starts at byte 1 on every platform.
_INFO_AT = 1


class RunFolderBusy(RunFolderError):
    """Another process holds the run folder."""


def _try_lock(fh: IO[bytes]) -> bool:
    if sys.platform == "win32":
        import msvcrt

        fh.seek(0)
        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError (EWOULDBLOCK/EAGAIN): held by another open file
        return False
    return True


def _holder(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            fh.seek(_INFO_AT)
            return dict(json.loads(fh.read().decode("utf-8") or "{}"))
    except (OSError, ValueError, TypeError):
        return {}


class RunLock:
    """The held lock of one run folder; release with :meth:`release` (or use as a context manager)."""

    def __init__(self, folder: Path, fh: IO[bytes]) -> None:
        self.folder = folder
        self._fh: IO[bytes] | None = fh

    def release(self) -> None:
        """Give the folder up (closing the file releases the OS lock)."""
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_run_folder(folder: Path, command: str = "") -> RunLock:
    """Take ``folder``'s lock or raise :class:`RunFolderBusy` naming the process that holds it."""
    folder = Path(folder)
    path = RunFolder(folder).lock
    try:
        # never truncate before holding it: the holder's description is read by others. The handle is the lock, held
        # past this function and closed by RunLock.release, so no `with` here.
        fh = open(path, "a+b")  # noqa: SIM115
    except OSError as exc:
        raise RunFolderError(f"{folder}: cannot create {RunFolder.LOCK} ({exc.strerror or exc}); the run folder "
                             "must be writable") from None
    if not _try_lock(fh):
        fh.close()
        who = _holder(path)
        raise RunFolderBusy(
            f"{folder} is in use by another process (pid {who.get('pid', '?')} on host {who.get('host', '?')}"
            f"{' since ' + str(who['since']) if who.get('since') else ''}"
            f"{', ' + str(who['command']) if who.get('command') else ''}); wait for it to finish, or stop it")
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.now().astimezone().isoformat(timespec="seconds"), "command": command}
    fh.seek(0)
    fh.truncate()
    fh.write(b"\n" + json.dumps(info).encode("utf-8"))
    fh.flush()
    return RunLock(folder, fh)
