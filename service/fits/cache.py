"""What answers read, kept in memory: parsed fits by fit id (a stored fit never changes once it
succeeded) and what an experiment's runs say beyond the fit, by data version (every change to
an experiment's runs bumps it: service.fits.service.runs_changed)."""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from service.scaling import FitResult

T = TypeVar("T")
FIT_CACHE_CAPACITY = 256


class Lru(Generic[T]):
    """A thread-safe LRU; a miss loads outside the lock (two threads may both load once)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(
        self, key: Hashable, load: Callable[[], T], usable: Callable[[T], bool] | None = None
    ) -> T:
        """The value kept for `key`, else `load()` (then kept); with `usable`, a kept value it
        refuses counts as a miss and is replaced."""
        with self._lock:
            if key in self._items and (usable is None or usable(self._items[key])):
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
        value = load()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class FitCache:
    """Parsed `FitResult`s (parsing bootstrap samples costs milliseconds) and experiments' run
    summaries (reading every run's hyperparameters costs milliseconds per answer)."""

    def __init__(self, capacity: int = FIT_CACHE_CAPACITY) -> None:
        self._fits: Lru[FitResult] = Lru(capacity)
        self._runs: Lru[Any] = Lru(capacity)

    @property
    def hits(self) -> int:
        return self._fits.hits

    @property
    def misses(self) -> int:
        return self._fits.misses

    def get(self, fit_id: int, sha256: str, load: Callable[[], FitResult]) -> FitResult:
        return self._fits.get((fit_id, sha256), load)

    def clear(self) -> None:
        """Forget everything (the next answers read the database again)."""
        self._fits.clear()
        self._runs.clear()

    def runs_summary(self, key: Hashable, load: Callable[[], T]) -> T:
        """What `load` derives from an experiment's runs, under `key` (which must change with
        the runs: experiment id, creation time and data version)."""
        value: T = self._runs.get(key, load)
        return value
