"""The garbage-collector pause around validation leaves the collector as it found it."""
from __future__ import annotations

import gc
import weakref

from provisioning.validation.engine import gc_paused


class _Node:
    other: _Node | None = None


def test_a_pause_freezes_nothing_so_older_cycles_stay_collectable():
    # the watch daemon validates roster after roster: a frozen cycle would never be freed
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
    gc.collect()
    assert gone() is None


def test_a_nested_pause_keeps_the_collector_off_until_the_outer_one_ends():
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
