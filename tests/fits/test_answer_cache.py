"""The GET-recommendation answer cache: expiry, invalidation, one computation per burst, and
computations one at a time."""

import asyncio
import threading
import time

import pytest

from service.fits.answers import AnswerCache


def test_answers_expire_and_are_dropped_by_writes() -> None:
    now = [0.0]
    cache = AnswerCache(ttl=0.2, clock=lambda: now[0])
    cache.put("exp", "k", b"1")
    assert cache.get("exp", "k") == b"1"
    cache.invalidate("other")
    assert cache.get("exp", "k") == b"1"
    cache.invalidate("exp")
    assert cache.get("exp", "k") is None
    cache.put("exp", "k", b"2")
    now[0] += 0.2
    assert cache.get("exp", "k") == b"2"  # good for exactly ttl seconds
    now[0] += 0.01
    assert cache.get("exp", "k") is None
    assert AnswerCache(ttl=0).get("exp", "k") is None


@pytest.mark.anyio
async def test_a_burst_of_misses_computes_once() -> None:
    cache = AnswerCache(ttl=5)
    calls = 0

    def compute() -> bytes:
        nonlocal calls
        calls += 1
        time.sleep(0.05)
        return b"answer"

    answers = await asyncio.gather(*(cache.get_or_compute("e", "k", compute) for _ in range(8)))
    assert answers == [b"answer"] * 8
    assert calls == 1
    assert await cache.get_or_compute("e", "k", compute) == b"answer"
    assert calls == 1


@pytest.mark.anyio
async def test_a_failed_computation_reaches_every_waiter_and_is_not_cached() -> None:
    cache = AnswerCache(ttl=5)

    def fail() -> bytes:
        time.sleep(0.02)
        raise LookupError("no fit")

    results = await asyncio.gather(
        *(cache.get_or_compute("e", "k", fail) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(result, LookupError) for result in results)
    assert cache.get("e", "k") is None


@pytest.mark.anyio
async def test_different_questions_are_computed_one_at_a_time_off_the_event_loop() -> None:
    cache = AnswerCache(ttl=0)
    lock = threading.Lock()
    running, most = 0, 0
    loop_thread = threading.get_ident()
    threads = set()

    def compute() -> bytes:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threads.add(threading.get_ident())
        time.sleep(0.02)
        with lock:
            running -= 1
        return b"answer"

    answers = await asyncio.gather(*(cache.get_or_compute("e", k, compute) for k in range(5)))
    assert answers == [b"answer"] * 5
    assert most == 1
    assert loop_thread not in threads


@pytest.mark.anyio
async def test_a_write_during_a_computation_keeps_its_answer_out_of_later_requests() -> None:
    cache = AnswerCache(ttl=5)
    read_before_the_write = threading.Event()
    write_committed = threading.Event()
    bodies = iter([b"before the write", b"after the write"])

    def compute() -> bytes:
        body = next(bodies)  # what the database said when this computation read it
        read_before_the_write.set()
        write_committed.wait(5)
        return body

    first = asyncio.create_task(cache.get_or_compute("e", "k", compute))
    assert await asyncio.to_thread(read_before_the_write.wait, 5)
    cache.invalidate("e")  # a write to e committed (FitPolicy.on_change)
    # A request after the write neither joins the computation that read before it...
    second = asyncio.create_task(cache.get_or_compute("e", "k", compute))
    write_committed.set()
    assert await first == b"before the write"  # (its own requests get what it read)
    assert await second == b"after the write"
    # ...nor is answered later from it: only the computation after the write was kept.
    assert cache.get("e", "k") == b"after the write"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
