"""One database read shared by the uncached questions that were waiting for it.

Questions about one experiment that queue for the answer thread (a dashboard asking a dozen
budgets at once, eight clients each with a budget of their own) would each read the experiment
and its fit in force. A read that began after a question was asked sees every write committed
before it, so that question may take its result as its own: each question is numbered when it is
asked (`ask`, on the event loop), each read remembers the last number given out before it began,
and a question reuses a read only if that number covers it. A question asked after a read began
never gets it, so what a write in any process changed is never missed.
"""

import itertools
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from service.fits.cache import Lru

T = TypeVar("T")


class SharedReads(Generic[T]):
    """The last read of each key (at most `capacity` keys), with the number of the last
    question asked before it began."""

    def __init__(self, capacity: int = 64) -> None:
        self._numbers = itertools.count(1)
        self._last_asked = 0
        self._reads: Lru[tuple[int, T]] = Lru(capacity)

    def ask(self) -> int:
        """A number for a question asked now: later questions get larger ones."""
        number = next(self._numbers)
        self._last_asked = number
        return number

    def read(self, asked: int, key: Hashable, read: Callable[[], T]) -> T:
        """The result of `read()` for `key`: the last one, if it began after question `asked`
        was asked, else a new one (an exception is raised, not kept)."""
        # Taken before the read: every question numbered up to here was asked before it.
        began_after = self._last_asked
        kept = self._reads.get(
            key, lambda: (began_after, read()), usable=lambda kept: asked <= kept[0]
        )
        return kept[1]
