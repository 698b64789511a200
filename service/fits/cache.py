"""Fit results kept in memory by fit id: a stored fit never changes once it succeeded."""

import threading
from collections import OrderedDict
from collections.abc import Callable

from service.scaling import FitResult


class FitCache:
    """A thread-safe LRU of parsed `FitResult`s (parsing bootstrap samples costs milliseconds)."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[int, str], FitResult] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, fit_id: int, sha256: str, load: Callable[[], FitResult]) -> FitResult:
        key = (fit_id, sha256)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
        result = load()
        with self._lock:
            self._items[key] = result
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return result
