"""The API's connections: psycopg-pool's `AsyncConnectionPool`, bound to the projection schema.

Why not SQLAlchemy's async engine: it needs `greenlet`, which the project does not install,
and its per-query overhead costs more than the whole proof query on the hot path. The
statements stay plain SQL (some are `projections.queries` compiled for psycopg). The pool is
the psycopg project's own (measured against the hand-written pool it replaced: BENCHMARKS.md,
"API connection pool").

Connections are autocommit (a read is one round trip, no BEGIN/ROLLBACK), use the schema's
`search_path` and a `statement_timeout`, and auto-prepare statements run repeatedly (psycopg's
`prepare_threshold`) with `plan_cache_mode=force_generic_plan`: the API's statements are
index probes whose generic plan is right, and planning the batched claim query costs ~2 ms,
more than running it (Postgres kept re-planning it for every batch size otherwise).
The pool opens at the first request (connections on demand, up to AOP_API_POOL_SIZE, kept
while used); a connection that fails, or whose request was cancelled mid-query, is closed by
the pool instead of being reused. Every failure to reach the database becomes
`DatabaseUnavailableError` (503), never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from aop.api.errors import DatabaseUnavailableError
from aop.projections.db import libpq_options, libpq_url
from aop.runtime.settings import Settings

__all__ = ["Database"]

log = logging.getLogger(__name__)

Params = Mapping[str, Any] | Sequence[Any] | None


class Database:
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
        self._size = size
        self._acquire_timeout_s = acquire_timeout_s
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo,
            kwargs={
                "autocommit": True,
                "options": options,
                "application_name": "aop-api",
                "connect_timeout": max(1, round(connect_timeout_s)),
            },
            min_size=0,
            max_size=size,
            timeout=acquire_timeout_s,
            max_idle=24 * 3600.0,
            name="aop-api",
            open=False,
        )
        self._opening: asyncio.Lock | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
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

    async def _open(self) -> None:
        """Open the pool at the first request (it needs the running event loop)."""
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool.closed and not self._closed:
                await self._pool.open(wait=False)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection for one request; waits up to the acquire timeout for a free one.

        Raises:
            DatabaseUnavailableError: the pool is closed, no connection freed up in time, the
                database is unreachable, or a statement failed on the server's side.
        """
        if self._closed:
            raise DatabaseUnavailableError("the API is shutting down")
        if self._pool.closed:
            await self._open()
        try:
            async with self._pool.connection() as conn:
                try:
                    yield conn
                except psycopg.errors.QueryCanceled as exc:
                    raise DatabaseUnavailableError(f"query timed out: {exc}") from exc
                except psycopg.Error as exc:
                    raise DatabaseUnavailableError(f"database error: {exc}") from exc
        except PoolTimeout:
            raise DatabaseUnavailableError(
                f"no database connection within {self._acquire_timeout_s} s (all {self._size} "
                "busy, or the database unreachable)"
            ) from None
        except PoolClosed:
            raise DatabaseUnavailableError("the API is shutting down") from None
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailableError(f"cannot connect to the database: {exc}") from exc

    async def fetchone(self, query: str, params: Params = None) -> tuple[Any, ...] | None:
        """The first row of `query` (binary results: bytea arrives as bytes), or None."""
        async with self.connection() as conn:
            cursor = conn.cursor(binary=True)
            await cursor.execute(query, params)
            return await cursor.fetchone()

    async def fetchall(self, query: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Every row of `query` (binary results)."""
        async with self.connection() as conn:
            cursor = conn.cursor(binary=True)
            await cursor.execute(query, params)
            return await cursor.fetchall()

    async def close(self) -> None:
        """Close the pool: idle connections now, connections in use when they come back."""
        self._closed = True
        if not self._pool.closed:
            await self._pool.close(timeout=5.0)
