"""provisioning.bulk: the cyclic collector paused for bulk steps, counted across threads; the libraries frozen once."""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
from pathlib import Path

from provisioning.bulk import gc_paused

ROOT = Path(__file__).resolve().parents[1]


def test_nested_and_overlapping_pauses_restore_the_collector_only_when_the_last_one_ends():
    assert gc.isenabled()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    with gc_paused():
        t.start()
        assert inside.wait(10)
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread's step is still under way
    release.set()
    t.join(10)
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_exception_in_the_step_still_restores_the_collector():
    try:
        with gc_paused():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()


def test_the_libraries_are_frozen_once_per_process_and_later_garbage_is_still_collected():
    # a fresh interpreter: this one has frozen (or not) already, depending on which tests ran before
    code = """if True:
        import gc, json, sys
        from provisioning.bulk import loading_libraries
        with loading_libraries():
            import decimal, fractions
            assert not gc.isenabled()
        first = gc.get_freeze_count()
        with loading_libraries():
            import statistics
        kept = [[] for _ in range(1000)]
        second = gc.get_freeze_count()
        cycle = []
        cycle.append(cycle)
        del cycle
        print(json.dumps([first, second, gc.isenabled(), gc.collect()]))
    """
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    first, second, enabled, collected = json.loads(done.stdout)
    assert first > 1000  # the interpreter's objects and the imports'
    assert second == first  # the second import froze nothing more: garbage then would be kept for good
    assert enabled and collected >= 1  # the collector runs again, and a cycle made after the freeze is freed
