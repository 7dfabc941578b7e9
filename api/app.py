"""The Starlette application of `aop api`: routes, error handling, CORS, metrics, lifespan.

Middleware, outermost first: metrics (every request, by route template), CORS (when
AOP_API_CORS_ORIGINS is set), the proof endpoint's shortcut past the router
(`api.hot_route`), then Starlette's exception handling (`api.http.EXCEPTION_HANDLERS`),
which answers every `ApiError` and HTTP error as `{"error": {"code", "message"}}`. An
unexpected exception is a 500 `internal_error` (a bug: bad input never gets one). The database
pool opens lazily and closes at shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from aop.api.dataset import DatasetStreams
from aop.api.db import Database
from aop.api.hot_route import HotRoute
from aop.api.http import EXCEPTION_HANDLERS, answer_api_error
from aop.api.metrics import MetricsMiddleware
from aop.api.openapi import docs_html, openapi_document
from aop.api.reader import Reader
from aop.api.routes import OPERATIONS, Handlers
from aop.runtime.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings, *, db: Database | None = None) -> Starlette:
    """The API application for `settings` (database, caches, CORS, limits).

    Args:
        settings: AOP_DATABASE_*, AOP_API_*, AOP_MINT and AOP_PROGRAM_ID are read.
        db: a pool to use instead of one built from the settings (closed at shutdown either way).
    """
    pool = db or Database.from_settings(settings)
    reader = Reader(
        pool,
        cache_roots=settings.api_cache_roots,
        cache_level_nodes=settings.api_cache_level_nodes,
        hot_roots_bytes=settings.api_hot_roots_bytes,
        hot_root_claims=settings.api_hot_root_claims,
        facts_max_age_s=settings.api_facts_max_age_ms / 1000,
    )
    streams = DatasetStreams(
        pool, chunk_rows=settings.api_dataset_chunk_rows, max_streams=settings.api_dataset_streams
    )
    document = openapi_document(OPERATIONS)
    handlers = Handlers(
        reader,
        streams,
        mutable_max_age_s=settings.api_mutable_max_age_s,
        max_body_bytes=settings.api_max_body_bytes,
        default_mint=settings.mint,
        default_program_id=settings.program_id,
        global_account=settings.global_root_account,
        openapi=document,
        docs=docs_html(document),
    )
    routes = handlers.routes()
    middleware = [Middleware(MetricsMiddleware, routes=routes)]
    if settings.api_cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.api_cors_origins,
                allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
                allow_headers=["Content-Type", "If-None-Match"],
                expose_headers=[
                    "ETag",
                    "X-AOP-Root",
                    "X-AOP-Dataset-Hash",
                    "X-AOP-Leaf-Count",
                    "X-AOP-Format",
                ],
                max_age=600,
            )
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            reader.hot_roots.close()
            await pool.close()

    claim_route = next(route for route in routes if route.endpoint == handlers.claim)
    middleware.append(Middleware(HotRoute, route=claim_route, on_api_error=answer_api_error))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.reader = reader
    app.state.db = pool
    return app
