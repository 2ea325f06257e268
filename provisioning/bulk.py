"""Bulk steps: Python's cyclic garbage collector paused while millions of short-lived objects are made.

Importing the libraries of a run, reading and checking a roster, planning it and writing the plan to the journal
allocate millions of objects, almost none of them in reference cycles (reference counting frees them); the collector
would meanwhile walk every long-lived object again and again (about a tenth of the time: 0.25 s of a 6,000-row
run's start). Nothing is frozen on the way out (``gc.freeze`` would make every garbage cycle of the process
uncollectable for good, a leak in the ``watch`` daemon, which validates roster after roster): the collector simply
resumes where it was.
"""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for a bulk step (the previous state is restored; nesting is harmless)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
