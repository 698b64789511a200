"""Pause Python's cyclic garbage collector while a large batch is parsed and stored.

A 10,000-run batch allocates a few hundred thousand objects that live until the response is
sent (the parsed models, their dumps, the rows). Each of them counts towards the collector's
thresholds, so the batch triggers collections that walk every live object of the process, up
to full ones, and finds nothing to free: a quarter to a third of the batch's time on the API
path (bench/ingest.py; README, Benchmarks). Reference counting still frees everything the
batch drops; only cycles wait for the collector, which runs again when the last pause ends.

The collector is one switch per process and requests run in threads, so pauses are counted:
the switch comes back on when the last one ends, and only if it was on when the first began.
"""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_restore = False


@contextmanager
def collector_paused() -> Iterator[None]:
    global _depth, _restore
    with _lock:
        if _depth == 0:
            _restore = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _restore:
                gc.enable()
