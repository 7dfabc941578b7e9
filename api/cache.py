"""A bounded, least-recently-used cache for immutable values, loaded once per key.

Concurrent misses of one key share a single load (the others await it), so a burst of
requests for a root that just became hot costs one query. A failed load is not cached.
Only immutable data goes in (roots never change once written; a channel's name and config
PDA are fixed), so entries never need invalidating.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["AsyncLRU"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class AsyncLRU(Generic[K, V]):
    """At most `max_size` entries (0 disables caching: every `get` loads)."""

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: K) -> V | None:
        """The cached value of `key` (marking it recently used), or None."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return value

    def put(self, key: K, value: V) -> None:
        if self._max_size <= 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The value of `key`, from the cache or from `load()` (once for concurrent misses).

        Raises:
            whatever `load` raises (nothing is cached then).
        """
        while True:
            value = self.peek(key)
            if value is not None:
                return value
            pending = self._loading.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request was cancelled
                # the request that was loading it was cancelled: load it here instead
        self.misses += 1
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(value)
            self.put(key, value)
            return value
        finally:
            del self._loading[key]
