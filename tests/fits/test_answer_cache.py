"""The GET-recommendation answer cache: expiry, invalidation, one computation per burst."""

import asyncio

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

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return b"answer"

    answers = await asyncio.gather(*(cache.get_or_compute("e", "k", compute) for _ in range(8)))
    assert answers == [b"answer"] * 8
    assert calls == 1
    assert await cache.get_or_compute("e", "k", compute) == b"answer"
    assert calls == 1


@pytest.mark.anyio
async def test_a_failed_computation_reaches_every_waiter_and_is_not_cached() -> None:
    cache = AnswerCache(ttl=5)

    async def fail() -> bytes:
        await asyncio.sleep(0.02)
        raise LookupError("no fit")

    results = await asyncio.gather(
        *(cache.get_or_compute("e", "k", fail) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(result, LookupError) for result in results)
    assert cache.get("e", "k") is None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
