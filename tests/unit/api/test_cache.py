"""AsyncLRU: bounded, one load per key for concurrent misses, failures not cached."""

from __future__ import annotations

import asyncio

import pytest

from aop.api.cache import AsyncLRU


async def test_concurrent_misses_share_one_load() -> None:
    cache: AsyncLRU[str, int] = AsyncLRU(4)
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 7

    assert await asyncio.gather(*(cache.get("k", load) for _ in range(10))) == [7] * 10
    assert calls == 1
    assert await cache.get("k", load) == 7 and calls == 1


async def test_least_recently_used_entry_is_evicted() -> None:
    cache: AsyncLRU[int, int] = AsyncLRU(2)

    async def value(v: int) -> int:
        return v

    for key in (1, 2):
        await cache.get(key, lambda key=key: value(key))
    assert cache.peek(1) == 1  # 1 is now the most recent
    await cache.get(3, lambda: value(3))
    assert cache.peek(2) is None and cache.peek(1) == 1 and len(cache) == 2


async def test_failed_load_is_not_cached() -> None:
    cache: AsyncLRU[str, int] = AsyncLRU(2)

    async def fail() -> int:
        raise LookupError("nope")

    async def ok() -> int:
        return 1

    with pytest.raises(LookupError):
        await cache.get("k", fail)
    assert await cache.get("k", ok) == 1


async def test_cancelled_loader_lets_a_waiter_load() -> None:
    cache: AsyncLRU[str, int] = AsyncLRU(2)
    started = asyncio.Event()

    async def slow() -> int:
        started.set()
        await asyncio.sleep(10)
        return 0

    async def fast() -> int:
        return 5

    first = asyncio.create_task(cache.get("k", slow))
    await started.wait()
    second = asyncio.create_task(cache.get("k", fast))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 5
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_size_zero_never_caches() -> None:
    cache: AsyncLRU[str, int] = AsyncLRU(0)
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        return 1

    await cache.get("k", load)
    await cache.get("k", load)
    assert calls == 2 and len(cache) == 0
