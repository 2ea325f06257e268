"""Progress of a phase (the creates, the follow-ups): a tqdm bar on a terminal, a plain line every 30 s when
stderr is not one (CI, scheduled tasks: a log that shows the run is alive without a bar's carriage returns).

The bar also says when Graph's write quota holds the writes back ("waiting for Graph's write quota: 12 s"), as the
create phase's bar does (:class:`provisioning.run.creates.Progress`). The clock is injected: a test advances it and
calls :meth:`PhaseProgress.tick` instead of waiting 30 s.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

#: How often a plain progress line is written when stderr is not a terminal.
LINE_EVERY_S = 30.0


class PhaseProgress:
    """Counts answers of one phase and shows them on a bar (``bar``: a factory ``total -> tqdm``) or as plain lines
    on ``lines`` every ``every_s``; with neither it only counts."""

    TICK_S = 0.5

    def __init__(self, label: str, *, bar: Callable[[int], Any] | None = None, lines: TextIO | None = None,
                 every_s: float = LINE_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self._bar_factory = bar
        self._lines = lines
        self.every_s = every_s
        self._clock = clock
        self.bar: Any = None
        self.total = self.answered = self.failed = 0
        self._last_line = 0.0
        self._quota_wait: Callable[[], float] | None = None
        self._lock = threading.Lock()
        self._ticking = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self, total: int) -> None:
        """The phase begins with ``total`` things to answer."""
        with self._lock:
            self.total, self.answered, self.failed = total, 0, 0
            self._last_line = self._clock()
            if self._bar_factory is not None and total > 0 and self.bar is None:
                self.bar = self._bar_factory(total)

    def advance(self, n: int = 1, *, failed: int = 0) -> None:
        """``n`` more answered (``failed`` of them failed)."""
        if n <= 0:
            return
        with self._lock:
            self.answered += n
            self.failed += failed
            if self.bar is not None:
                self.bar.update(n)
                self._show(refresh=False)
        self.tick()

    def watch(self, quota_wait: Callable[[], float] | None) -> None:
        """Refresh every :attr:`TICK_S` (bar text, plain line when due) until :meth:`close`; ``quota_wait``: the
        seconds the write governor holds writes back."""
        self._quota_wait = quota_wait
        if (self.bar is None and self._lines is None) or self._ticker is not None:
            return
        self._ticking.clear()
        self._ticker = threading.Thread(target=self._tick, name=f"progress-{self.label}", daemon=True)
        self._ticker.start()

    def tick(self) -> None:
        """Redraw the bar; write a plain line when :attr:`every_s` passed since the last one."""
        with self._lock:
            if self.bar is not None:
                self._show(refresh=True)
            if self._lines is None or self._clock() - self._last_line < self.every_s:
                return
            self._last_line = self._clock()
            self._lines.write(self.line() + "\n")
            self._lines.flush()

    def line(self) -> str:
        """The plain progress line: ``follow-ups: 120/400 answered, 2 failed``, and the quota wait if any."""
        text = f"{self.label}: {self.answered}/{self.total} answered, {self.failed} failed"
        wait = self._wait()
        return text + (f"; waiting for Graph's write quota: {wait:.0f} s" if wait >= 1.0 else "")

    def close(self) -> None:
        """Stop the ticker and close the bar."""
        self._stop_ticker()
        with self._lock:
            if self.bar is not None:
                self._show(refresh=True)
                self.bar.close()
                self.bar = None

    def _stop_ticker(self) -> None:
        self._ticking.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None

    def _tick(self) -> None:
        while not self._ticking.wait(self.TICK_S):
            self.tick()

    def _wait(self) -> float:
        try:
            return float(self._quota_wait()) if self._quota_wait is not None else 0.0
        except Exception:  # noqa: BLE001 - a progress display never stops the run
            return 0.0

    def _show(self, *, refresh: bool) -> None:
        """The bar's text (the caller holds the lock)."""
        wait = self._wait()
        self.bar.set_description_str(f"waiting for Graph's write quota: {wait:.0f} s" if wait >= 1.0
                                     else self.label, refresh=False)
        self.bar.set_postfix(failed=self.failed, refresh=refresh)


def phase_progress(label: str, err: TextIO, *, interactive: bool, enabled: bool, unit: str = "follow-up",
                   clock: Callable[[], float] = time.monotonic) -> PhaseProgress | None:
    """The progress of a phase on ``err``: a tqdm bar when it is a terminal, plain lines every 30 s otherwise,
    None when disabled (``--no-progress``, ``--quiet``)."""
    if not enabled:
        return None
    if not interactive:
        return PhaseProgress(label, lines=err, clock=clock)

    def bar(total: int) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, file=err, unit=unit, desc=label, dynamic_ncols=True, smoothing=0.1)

    return PhaseProgress(label, bar=bar, clock=clock)
