"""The API's hand-written connection pool, as it was before psycopg-pool replaced it: the
baseline of bench/api_pool.py (BENCHMARKS.md, "API connection pool"). Not used by the API.

A small bounded pool of psycopg 3 async connections, bound to the projection schema.

Why not SQLAlchemy's async engine: it needs `greenlet`, which the project does not install,
and its per-query overhead costs more than the whole proof query on the hot path. The
statements stay plain SQL (some are `projections.queries` compiled for psycopg).

Connections are autocommit (a read is one round trip, no BEGIN/ROLLBACK), use the schema's
`search_path` and a `statement_timeout`, and auto-prepare statements run repeatedly (psycopg's
`prepare_threshold`) with `plan_cache_mode=force_generic_plan`: the API's statements are
index probes whose generic plan is right, and planning the batched claim query costs ~2 ms,
more than running it (Postgres kept re-planning it for every batch size otherwise).
A connection that fails, or whose request was cancelled mid-query, is
closed instead of being returned. Every failure to reach the database becomes
`DatabaseUnavailableError` (503), never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

from aop.api.errors import DatabaseUnavailableError
from aop.projections.db import libpq_options, libpq_url
from aop.runtime.settings import Settings

__all__ = ["HandPool"]

log = logging.getLogger(__name__)

Params = Mapping[str, Any] | Sequence[Any] | None


class HandPool:
    """At most `size` connections, opened on demand and reused (see the module docstring)."""

    def __init__(
        self,
        conninfo: str,
        *,
        options: str,
        size: int,
        acquire_timeout_s: float,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self._conninfo = conninfo
        self._options = options
        self._size = size
        self._acquire_timeout_s = acquire_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._idle: deque[AsyncConnection[Any]] = deque()
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> HandPool:
        """The API's pool: AOP_DATABASE_URL/SCHEMA, AOP_API_POOL_*, AOP_API_STATEMENT_TIMEOUT_MS."""
        options = (
            f"{libpq_options(settings)} -c statement_timeout={settings.api_statement_timeout_ms}"
            " -c plan_cache_mode=force_generic_plan"
        )
        return cls(
            libpq_url(settings),
            options=options,
            size=settings.api_pool_size,
            acquire_timeout_s=settings.api_pool_timeout_s,
        )

    @property
    def size(self) -> int:
        return self._size

    async def _connect(self) -> AsyncConnection[Any]:
        try:
            return await asyncio.wait_for(
                AsyncConnection.connect(
                    self._conninfo,
                    autocommit=True,
                    options=self._options,
                    application_name="aop-api",
                ),
                self._connect_timeout_s,
            )
        except (psycopg.Error, OSError, TimeoutError) as exc:
            raise DatabaseUnavailableError(f"cannot connect to the database: {exc}") from exc

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection for one request; waits up to the acquire timeout for a free one.

        Raises:
            DatabaseUnavailableError: the pool is closed, no connection freed up in time, the
                database is unreachable, or a statement failed on the server's side.
        """
        if self._closed:
            raise DatabaseUnavailableError("the API is shutting down")
        try:
            if self._slots.locked():
                await asyncio.wait_for(self._slots.acquire(), self._acquire_timeout_s)
            else:
                await self._slots.acquire()  # free now: no timer, no task
        except TimeoutError:
            raise DatabaseUnavailableError(
                f"all {self._size} database connections stayed busy for {self._acquire_timeout_s} s"
            ) from None
        conn: AsyncConnection[Any] | None = None
        try:
            while self._idle and conn is None:
                candidate = self._idle.pop()
                if candidate.closed:
                    continue
                conn = candidate
            if conn is None:
                conn = await self._connect()
            try:
                yield conn
            except psycopg.errors.QueryCanceled as exc:
                raise DatabaseUnavailableError(f"query timed out: {exc}") from exc
            except psycopg.Error as exc:
                raise DatabaseUnavailableError(f"database error: {exc}") from exc
        except BaseException:
            if conn is not None:
                await self._discard_or_keep(conn)
                conn = None
            raise
        finally:
            if conn is not None:
                self._keep(conn)
            self._slots.release()

    def _keep(self, conn: AsyncConnection[Any]) -> None:
        status = conn.info.transaction_status
        if self._closed or conn.closed or status != TransactionStatus.IDLE:
            asyncio.get_running_loop().create_task(self._close(conn))
        else:
            self._idle.append(conn)

    async def _discard_or_keep(self, conn: AsyncConnection[Any]) -> None:
        """After a failure: keep a connection only if it is idle and healthy."""
        if (
            not conn.closed
            and not conn.broken
            and conn.info.transaction_status in (TransactionStatus.IDLE,)
        ):
            self._keep(conn)
        else:
            await self._close(conn)

    @staticmethod
    async def _close(conn: AsyncConnection[Any]) -> None:
        try:
            await conn.close()
        except Exception:  # closing a broken connection may fail; it is gone either way
            log.debug("closing a database connection failed", exc_info=True)

    async def fetchone(self, query: str, params: Params = None) -> tuple[Any, ...] | None:
        """The first row of `query` (binary results: bytea arrives as bytes), or None."""
        async with self.connection() as conn:
            cursor = conn.cursor(binary=True)
            await cursor.execute(query, params)  # type: ignore[arg-type]
            return await cursor.fetchone()

    async def fetchall(self, query: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Every row of `query` (binary results)."""
        async with self.connection() as conn:
            cursor = conn.cursor(binary=True)
            await cursor.execute(query, params)  # type: ignore[arg-type]
            return await cursor.fetchall()

    async def close(self) -> None:
        """Close the idle connections; connections in use close when they come back."""
        self._closed = True
        while self._idle:
            await self._close(self._idle.pop())
