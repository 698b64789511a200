"""Recent answers to the GET recommendation, as ready JSON, for a short time, and how answers
not kept are computed.

The hot question ("what should I train at C FLOPs?") is asked far more often than data or fits
change. An answer is kept `ttl` seconds; writes in this process (runs, exclusions, new fits)
drop the experiment's answers at once, so only another replica's write can take up to `ttl` to
show here.

An answer not kept is computed on a worker thread, one at a time per process, and shared by
every request that asks the same question meanwhile, up to the next write in this process: a
request after a write neither joins a computation that began before it nor gets its answer
from the cache. The work is Python and numpy under the GIL: more threads at once only take the
GIL from each other and from the event loop (bench/api.py, eight connections each asking its
own question: 1.4x the answers a second with one thread). Different questions about one
experiment that wait for the thread together share one database read (`SharedReads`). A
question asked again is read again but computed again only if that read found another source
than its last answer came from (`ResolvedSource.same_as`): another fit, staleness, vocabulary.
"""

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session, sessionmaker

from service.fits.cache import FIT_CACHE_CAPACITY, FitCache, Lru
from service.fits.recommend import ResolvedSource, current_answer_json
from service.fits.shared_reads import SharedReads
from service.schemas.recommendations import BudgetSpec, ConstraintsSpec


def recommendation_key(
    law: str, method: str, flops: float, max_params: float | None, confidence: float
) -> Hashable:
    """The key of a GET recommendation's answer (the route and its fast path build it alike)."""
    return (law, method, flops, max_params, confidence)


class AnswerCache:
    def __init__(
        self, ttl: float, capacity: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.clock = clock
        self._items: OrderedDict[tuple[str, Hashable], tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, Hashable, int], asyncio.Future[bytes]] = {}
        # Bumped by every write to an experiment: a computation that began before the write
        # read the data before it, so nothing after the write may join it or find it cached.
        self._generations: dict[str, int] = {}
        # What the answer thread last read of each experiment's fit in force, for the questions
        # asked before that read began.
        self.reads: SharedReads[ResolvedSource] = SharedReads()
        # The last answer computed for each question, with the fit in force it came from: a
        # question asked again recomputes only if a fresh read finds another (same_as). Each
        # keeps its loaded fit alive, so at most as many as the fit cache keeps fits.
        self.computed: Lru[tuple[ResolvedSource, bytes]] = Lru(FIT_CACHE_CAPACITY)
        # One thread, started at the first computation: a plain executor hands work over faster
        # than anyio's worker pool with a capacity limiter (60 against 80 us a round trip).
        self._computing = self._executor()

    @staticmethod
    def _executor() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="answers")

    def close(self) -> None:
        """End the computing thread once it is idle (the app's shutdown); a later computation
        starts a new one."""
        self._computing, old = self._executor(), self._computing
        old.shutdown(wait=False)

    async def get_or_compute(
        self, experiment: str, key: Hashable, compute: Callable[[], bytes]
    ) -> bytes:
        """The cached answer, or `compute()` run on a worker thread (one at a time), shared by
        every request that asks meanwhile (when an answer expires, concurrent clients would
        otherwise all recompute it)."""
        cached = self.get(experiment, key)
        if cached is not None:
            return cached
        generation = self._generations.get(experiment, 0)  # read before the computation reads
        full = (experiment, key, generation)
        pending = self._inflight.get(full)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[full] = future
        try:
            body = await asyncio.get_running_loop().run_in_executor(self._computing, compute)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            del self._inflight[full]
        self.put(experiment, key, body, generation=generation)
        future.set_result(body)
        return body

    def get(self, experiment: str, key: Hashable) -> bytes | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            item = self._items.get((experiment, key))
            if item is None or item[1] < self.clock():
                return None
            self._items.move_to_end((experiment, key))
            return item[0]

    def put(
        self, experiment: str, key: Hashable, body: bytes, *, generation: int | None = None
    ) -> None:
        """Keep `body`; with `generation`, only if no write to the experiment came since."""
        if self.ttl <= 0:
            return
        with self._lock:
            if generation is not None and generation != self._generations.get(experiment, 0):
                return
            self._items[(experiment, key)] = (body, self.clock() + self.ttl)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def invalidate(self, experiment: str) -> None:
        """A write to `experiment` committed: drop its answers, kept and being computed."""
        with self._lock:
            self._generations[experiment] = self._generations.get(experiment, 0) + 1
            for cached in [k for k in self._items if k[0] == experiment]:
                del self._items[cached]


async def recommendation_body(
    answers: AnswerCache,
    sessions: sessionmaker[Session],
    fits: FitCache,
    experiment: str,
    *,
    law: str,
    method: str,
    flops: float,
    max_params: float | None,
    confidence: float,
) -> bytes:
    """The GET recommendation's JSON, as the route and its fast path answer it."""

    asked = answers.reads.ask()

    def compute() -> bytes:  # the request that computes builds the specs, not those who wait
        budget, constraints = BudgetSpec(flops=flops), ConstraintsSpec(max_params=max_params)
        return current_answer_json(
            sessions,
            experiment,
            law,
            method,
            budget,
            constraints,
            confidence,
            fits,
            shared=answers.reads,
            asked=asked,
            computed=answers.computed,
        )

    key = recommendation_key(law, method, flops, max_params, confidence)
    return await answers.get_or_compute(experiment, key, compute)
