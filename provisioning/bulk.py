"""Bulk steps: Python's cyclic garbage collector paused while millions of short-lived objects are made.

Importing the libraries of a run, reading and checking a roster, planning it and writing the plan to the journal
allocate millions of objects, almost none of them in reference cycles (reference counting frees them); the collector
would meanwhile walk every long-lived object again and again (about a tenth of the time: 0.25 s of a 6,000-row
run's start). Writing results.xlsx is another (each cell an openpyxl object: a sixth of a 100,000-row workbook's
time). Nothing is frozen on the way out of a step (``gc.freeze`` would make every garbage cycle of the process
uncollectable for good, a leak in the ``watch`` daemon, which validates roster after roster): the collector simply
resumes where it was.

The libraries are the exception (:func:`loading_libraries`): their modules, classes and functions (75,000 objects
with pandas and numpy) live as long as the process, yet every full collection walks them all again (0.07 s each,
and the first one falls on the first step after the pause, with its young objects). They are frozen once, right
after they are imported: what is garbage then (a few cycles of the imports themselves) is kept, once per process.
"""
from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_paused = 0  # bulk steps under way, in any thread
_was_enabled = False  # the collector's state when the first of them began


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for a bulk step. The collector is process-wide, so the pauses are counted: the
    first step to begin (in any thread) stops it, the last to end restores what it was; nesting is harmless."""
    global _paused, _was_enabled
    with _lock:
        if not _paused:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if not _paused and _was_enabled:
                gc.enable()


_frozen = False  # the libraries were frozen once: later imports are small, and freezing again would keep garbage


@contextlib.contextmanager
def loading_libraries() -> Iterator[None]:
    """Import a command's libraries: a bulk step, after which (the first time in the process) everything the
    process holds is moved out of the collector's sight for good (``gc.freeze``; see the module's docstring)."""
    global _frozen
    with gc_paused():
        yield
    with _lock:
        if not _frozen:
            _frozen = True
            gc.freeze()
