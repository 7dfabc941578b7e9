"""Coalesces concurrent claim lookups into one query: one round trip for many requests.

Why: per query, psycopg costs ~100-170 us of the API's CPU and Postgres ~100-130 us of
executor start and plan-cache work, more than the index probes of one wallet. Measured on a
1M-leaf root: one wallet per query cost 100 us (client) + 130 us (server); 8 per query cost
29 + 43 us per wallet (bench/api.py, BENCHMARKS.md).

Protocol:

1. `lookup(config, wallet)` queues the pair with a future and schedules a flush for the end
   of the current event-loop iteration (so requests that arrived together go together);
2. a flush starts a batch (at most `max_batch` pairs) if fewer than `max_inflight` batches
   are running; otherwise the pairs wait, and accumulate, until one finishes;
3. the batch runs its statement (`CLAIMS_BATCH_SQL`, or `CLAIM_FACTS_BATCH_SQL` for hot
   roots) and resolves each future with its row (None: no row) or, if the query failed,
   with the error; a finished batch flushes what waits.

A single request on an idle server waits for no timer: it is flushed in the same loop
iteration. A request cancelled while waiting just leaves its future unused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aop.api.db import Database
from aop.api.errors import DatabaseUnavailableError
from aop.api.metrics import CLAIM_BATCH_SIZE

__all__ = ["ClaimBatcher"]

Row = tuple[Any, ...]


class ClaimBatcher:
    """Batches lookups of one statement (see the module docstring).

    `sql` takes the arrays `configs` and `wallets` (`queries._BATCH_PAIRS`), plus `params`,
    and answers one row per pair it knows, its first column the pair's 1-based position.
    """

    def __init__(
        self,
        db: Database,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        max_batch: int = 64,
        max_inflight: int = 2,
    ) -> None:
        self._db = db
        self._sql = sql
        self._params = dict(params or {})
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._pending: list[tuple[str, bytes, asyncio.Future[Row | None]]] = []
        self._inflight = 0
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.lookups = 0

    async def lookup(self, channel_config: str, wallet: bytes) -> Row | None:
        """The row of (channel_config, wallet) without its position column, or None.

        Raises:
            DatabaseUnavailableError: the batch's query failed.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Row | None] = loop.create_future()
        self._pending.append((channel_config, wallet, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._pending and self._inflight < self._max_inflight:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            batch = [entry for entry in batch if not entry[2].done()]
            if not batch:
                continue
            self._inflight += 1
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[str, bytes, asyncio.Future[Row | None]]]) -> None:
        try:
            rows = await self._db.fetchall(
                self._sql,
                {
                    "configs": [config for config, _, _ in batch],
                    "wallets": [wallet for _, wallet, _ in batch],
                    **self._params,
                },
            )
        except asyncio.CancelledError:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(DatabaseUnavailableError("the API is shutting down"))
            raise
        except Exception as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            by_index = {int(row[0]): row[1:] for row in rows}
            for i, (_, _, future) in enumerate(batch, start=1):
                if not future.done():
                    future.set_result(by_index.get(i))
        finally:
            self.batches += 1
            self.lookups += len(batch)
            CLAIM_BATCH_SIZE.observe(len(batch))
            self._inflight -= 1
            if self._pending:
                self._flush()
