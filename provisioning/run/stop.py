"""The one stop of a command: Ctrl-C, SIGTERM and SIGHUP as a ``threading.Event`` a run checks between
requests, with the meaning each signal has in the phase the run is in."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from provisioning.context import CommandContext
from provisioning.exitcodes import ExitStatus
from provisioning.portable import quote_arg
from provisioning.store.folder import RunFolder

log = logging.getLogger(__name__)


#: The signals that stop a run: Ctrl-C, what service managers and ``kill`` send, a closed terminal.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def resume_hint(ctx: CommandContext, folder: RunFolder) -> str:
    """The exact command that continues this run (with the options it was started with)."""
    return f"to continue: {ctx.command_line} resume {quote_arg(str(folder.path))}"


class Stop(threading.Event):
    """The one stop of a command: a :class:`threading.Event` that Ctrl-C, SIGTERM and SIGHUP set while
    :meth:`signals` is in effect (on the main thread). Any ``threading.Event`` stops a run; this one also gives
    each signal the meaning it has in the phase the run is in:

    - no run in progress: ``idle(signal name)`` is called on the first signal (``watch`` says it is stopping);
      without ``idle`` the signal interrupts at once (``KeyboardInterrupt``), as before any run started;
    - a run's pre-flight (nothing journaled, nothing sent): it interrupts at once; the run says that there is
      nothing to resume;
    - once the run's journal exists: the first signal only sets the event: no new request leaves, the answers in
      flight are awaited and journaled, the phases still to come (updates, follow-ups) are left to ``resume``,
      the reports are written and the run ends with 130 and the command that continues it. A second signal aborts
      at once: the process exits 130 right away, as a SIGKILL would, after printing the same command; the journal
      stays consistent (each change is its own SQLite transaction; a row whose answer was not recorded stays
      *sending* and ``resume`` looks it up).
    """

    def __init__(self, idle: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.idle = idle
        self.signal_name = ""  # the first signal's name, "" while none came
        self._console: CommandContext | None = None  # the run in progress, if any
        self._folder: RunFolder | None = None  # its run folder, once its journal exists
        self._count = 0  # signals during the run in progress

    @contextlib.contextmanager
    def signals(self) -> Iterator[Stop]:
        """Ctrl-C, SIGTERM and SIGHUP set this event for the duration (on the main thread; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def begin_run(self, console: CommandContext) -> None:
        """A run's pre-flight starts: a signal interrupts it at once."""
        self._console, self._folder, self._count = console, None, 0

    def arm(self, folder: RunFolder) -> None:
        """The run's journal exists: from now on a signal stops it cleanly instead of interrupting it."""
        self._folder = folder

    def end_run(self) -> None:
        """The run is over: back to what a signal means between runs."""
        self._console = self._folder = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        first = not self.is_set()
        self.signal_name = self.signal_name or name
        self.set()
        console, folder = self._console, self._folder
        if console is None:
            if self.idle is None:
                raise KeyboardInterrupt
            if first:
                self.idle(name)
            return
        if folder is None:
            raise KeyboardInterrupt
        # no logging here: the handler may have interrupted a log record being written to the same stream
        self._count += 1
        if self._count == 1:
            _say(console, f"\nstopping ({name}): no new request is sent; waiting for the answers in flight to "
                          "record them (Ctrl-C again to abort at once)\n")
            return
        _say(console, f"\naborted at once ({name}): the requests in flight stay 'sending' in the journal of "
                      f"{folder.path}; resume looks them up before sending anything again.\n"
                      f"{resume_hint(console, folder)}\n")
        with contextlib.suppress(Exception):
            console.out.flush()
        os._exit(int(ExitStatus.INTERRUPTED))


def _say(console: CommandContext, text: str) -> None:
    # a signal handler may have interrupted a write to the same stream: losing the message beats crashing
    with contextlib.suppress(Exception):
        console.err.write(text)
        console.err.flush()
