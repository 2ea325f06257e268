"""A clock for tests that moves only when the code under test sleeps: waits of many seconds take none."""
from __future__ import annotations

from collections.abc import Callable


class FakeTime:
    """``clock()`` and ``sleep(s)`` to inject; ``sleeps`` records every wait; ``on_sleep(n)`` runs after the n-th."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None, *, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))
