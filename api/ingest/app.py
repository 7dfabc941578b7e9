"""The Starlette application of `aop ingest`: the legacy `POST /ingest`, `POST /v1/signals`,
`POST /v1/bindings`, and /healthz, /readyz, /metrics, /openapi.json.

Every POST takes the same steps (`IngestHandlers._take`):

1. Authenticate: `Authorization: Bearer <token>` must be a token of AOP_INGEST_TOKENS_FILE
   (401 otherwise; a token is never logged or echoed). It names the source.
2. Read the body: `application/json` (415), at most AOP_INGEST_MAX_BODY_BYTES (413).
3. Decode and check the items (`api.ingest.items`): 400 for a body that is not the route's
   envelope, 413 for more than AOP_INGEST_MAX_ITEMS items.
4. Rate limit: the source's token bucket pays for the items, or 429 with Retry-After.
5. Refuse items by time against the writer's watermark and clock (`late`, `future`), so one
   answer names every refused item: any refusal so far is a 422 listing them all.
6. Hand the job to the writer thread (`api.ingest.worker`) and wait: 202 `{accepted,
   duplicates, request_id}` once the brokers acknowledged the transaction; 422 if the writer
   refused items (`id_reused`, or late by then); 503 if the log did not acknowledge it or the
   wait passed AOP_INGEST_REQUEST_TIMEOUT_S (retrying is safe: duplicates count once).

Errors use the read API's envelope, `{"error": {"code", "message"}}` (`api.http`); a 422
adds `error.items`, one `{index, id, reason, message}` per refused item.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, NoReturn

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aop.api.errors import (
    ItemsRefusedError,
    LogUnavailableError,
    RateLimitedError,
    UnauthorizedError,
)
from aop.api.http import EXCEPTION_HANDLERS, read_json_body
from aop.api.ingest import metrics
from aop.api.ingest.items import (
    ItemRules,
    Parsed,
    parse_bindings,
    parse_legacy,
    parse_signals,
    time_refusal,
)
from aop.api.ingest.rate_limit import RateLimiter
from aop.api.ingest.shapes import Accepted, BindingsRequest, LegacyRequest, SignalsRequest
from aop.api.ingest.tokens import TokenFile
from aop.api.ingest.worker import WriterThread
from aop.api.ingest.writer import Job, Refused, new_request_id, unix_ms
from aop.api.metrics import MetricsMiddleware
from aop.api.openapi import openapi_document
from aop.api.operations import Operation
from aop.api.shapes import Health, Ready, Refusal, RefusedItem, encode
from aop.runtime.errors import AopError, SettingsError
from aop.runtime.settings import Settings

__all__ = ["INGEST_OPERATIONS", "IngestHandlers", "create_ingest_app"]

log = logging.getLogger(__name__)

_NO_STORE = {"Cache-Control": "no-store"}
_JSON = "application/json"
_HEALTHY = encode(Health(status="ok"))
_READY = encode(Ready(status="ready"))
_BEARER = "bearer "

_POST_ERRORS = (
    (
        400,
        "bad_body: the body is not the route's JSON envelope (bad_epoch: a legacy epoch "
        "that is not an epoch id)",
    ),
    (401, "unauthorized: no bearer token, or one no source holds"),
    (413, "body_too_large (AOP_INGEST_MAX_BODY_BYTES) or too_many_items (AOP_INGEST_MAX_ITEMS)"),
    (415, "unsupported_media_type: the body is not application/json"),
    (
        422,
        "items_refused: error.items names every refused item, its index, id and reason; "
        "nothing of the request was written",
    ),
    (429, "rate_limited: the source's AOP_INGEST_RATE_LIMIT; retry after Retry-After seconds"),
    (
        503,
        "log_unavailable: the log did not acknowledge the request; retry (duplicates count once)",
    ),
)
_ACCEPTED_DOC = (
    "every item is on the log (the brokers acknowledged the transaction), as new or as a "
    "duplicate of an earlier one"
)

#: every endpoint of the ingest, in the router's order.
INGEST_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST", "/v1/signals", "signals", "postSignals",
        summary="Append attention signals (all or nothing)",
        answer=Accepted, answer_doc=_ACCEPTED_DOC,
        errors=_POST_ERRORS, error_bodies=((422, Refusal),), body=SignalsRequest,
    ),
    Operation(
        "POST", "/v1/bindings", "bindings", "postBindings",
        summary="Bind platform users to wallets from the next attention epoch on (all or "
        "nothing; written to every partition)",
        answer=Accepted, answer_doc=_ACCEPTED_DOC,
        errors=_POST_ERRORS, error_bodies=((422, Refusal),), body=BindingsRequest,
    ),
    Operation(
        "POST", "/ingest", "legacy", "postLegacyIngest",
        summary="The legacy aggregator's contract, unchanged: each non-zero count becomes a "
        "signal of the named epoch; the same batch posted again counts once",
        answer=Accepted, answer_doc=_ACCEPTED_DOC + " (counts are signals, not events)",
        errors=_POST_ERRORS, error_bodies=((422, Refusal),), body=LegacyRequest,
    ),
    Operation(
        "GET", "/healthz", "healthz", "healthz",
        summary="Liveness: the process answers", answer=Health, answer_doc="alive",
    ),
    Operation(
        "GET", "/readyz", "readyz", "readyz",
        summary="Readiness: the writer writes (its last transaction committed)",
        answer=Ready, answer_doc="ready",
        errors=((503, "log_unavailable: the writer is failing or recovering"),),
    ),
    Operation(
        "GET", "/metrics", "metrics", "metrics",
        summary="Prometheus metrics (aop_ingest_*)",
        answer_doc="Prometheus text exposition", media=(("text/plain", str),),
    ),
    Operation(
        "GET", "/openapi.json", "openapi", "openapi",
        summary="This document (OpenAPI 3.1)",
        answer_doc="the OpenAPI document", media=(("application/json", dict[str, Any]),),
    ),
)  # fmt: skip

_INFO = {
    "title": "Attention Oracle Pipeline ingest",
    "version": "1",
    "description": "Trusted collectors append attention signals and user-to-wallet bindings "
    "to the log (aop.attention.signals). Every POST needs `Authorization: Bearer <token>`; a "
    "202 comes only once the log acknowledged the request; a request is written whole or not "
    "at all. Times are unix milliseconds (integers). Errors are "
    '{"error": {"code", "message"}}; a 422 adds error.items.',
}


def ingest_document() -> dict[str, Any]:
    """The ingest's OpenAPI document: `INGEST_OPERATIONS`, with the bearer scheme."""
    document = openapi_document(INGEST_OPERATIONS, info=_INFO)
    document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path in ("/v1/signals", "/v1/bindings", "/ingest"):
        document["paths"][path]["post"]["security"] = [{"bearer": []}]
    return document


Parser = Callable[[bytes, int], Parsed]


class IngestHandlers:
    """The endpoints of `INGEST_OPERATIONS`, bound to the writer thread and the settings."""

    def __init__(
        self,
        writer: WriterThread,
        tokens: TokenFile,
        rules: ItemRules,
        *,
        settings: Settings,
        clock: Callable[[], int] = unix_ms,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._writer = writer
        self._tokens = tokens
        self._rules = rules
        self._limiter = RateLimiter(
            rate=settings.ingest_rate_limit, burst=settings.ingest_rate_burst
        )
        self._max_body = settings.ingest_max_body_bytes
        self._skew_ms = settings.ingest_clock_skew_s * 1000
        self._timeout_s = settings.ingest_request_timeout_s
        self._clock = clock
        self._registry = registry
        self._openapi = encode(ingest_document())

    def routes(self) -> list[Route]:
        """The routes of `INGEST_OPERATIONS`, in order."""
        return [
            Route(op.path, getattr(self, op.endpoint), methods=[op.method])
            for op in INGEST_OPERATIONS
        ]

    # -- the POST routes ---------------------------------------------------------------------

    async def signals(self, request: Request) -> Response:
        return await self._take(
            request, "signal", lambda body, _at: parse_signals(body, self._rules)
        )

    async def bindings(self, request: Request) -> Response:
        return await self._take(
            request, "binding", lambda body, _at: parse_bindings(body, self._rules)
        )

    async def legacy(self, request: Request) -> Response:
        return await self._take(
            request, "signal", lambda body, at: parse_legacy(body, self._rules, at)
        )

    async def _take(self, request: Request, kind: str, parse: Parser) -> Response:
        """Steps 1-6 of the module docstring."""
        received_at = self._clock()
        source = self._source(request)
        body = await read_json_body(request, self._max_body, "AOP_INGEST_MAX_BODY_BYTES")
        parsed = parse(body, received_at)
        cost = len(parsed.items) + len(parsed.refused)
        self._rate_limit(source, cost)
        now = self._clock()
        watermark = self._writer.writer.watermark_ms
        refused = list(parsed.refused)
        for item in parsed.items:
            late = time_refusal(item, watermark_ms=watermark, now_ms=now, skew_ms=self._skew_ms)
            if late is not None:
                refused.append(late)
        if refused:
            self._refuse(source, sorted(refused, key=lambda r: r.index))
        request_id = new_request_id()
        job = Job(source, request_id, received_at, parsed.items)
        try:
            outcome = await asyncio.wait_for(self._writer.submit(job), self._timeout_s)
        except TimeoutError:
            raise LogUnavailableError(
                f"the log did not acknowledge the request within {self._timeout_s:g} s "
                "(AOP_INGEST_REQUEST_TIMEOUT_S); retry (duplicates count once)"
            ) from None
        except AopError as exc:
            raise LogUnavailableError(f"the log did not acknowledge the request: {exc}") from exc
        if isinstance(outcome, Refused):
            self._refuse(source, outcome.items)
        metrics.ITEMS.labels(source, kind, "accepted").inc(outcome.accepted)
        metrics.ITEMS.labels(source, kind, "duplicate").inc(outcome.duplicates)
        answer = Accepted(outcome.accepted, outcome.duplicates, request_id)
        return Response(encode(answer), status_code=202, media_type=_JSON, headers=_NO_STORE)

    def _source(self, request: Request) -> str:
        """Step 1: the source whose token the request carries."""
        header = request.headers.get("authorization", "")
        if header[: len(_BEARER)].lower() != _BEARER:
            raise UnauthorizedError("an `Authorization: Bearer <token>` header is required")
        source = self._tokens.table.source_of(header[len(_BEARER) :].strip())
        if source is None:
            raise UnauthorizedError("the bearer token is not one of AOP_INGEST_TOKENS_FILE")
        return source

    def _rate_limit(self, source: str, cost: int) -> None:
        """Step 4."""
        wait_s = self._limiter.take(source, cost, time.monotonic())
        if wait_s > 0:
            metrics.RATE_LIMITED.labels(source).inc()
            retry = 60 if math.isinf(wait_s) else max(1, math.ceil(wait_s))
            raise RateLimitedError(
                f"source {source!r} may send {self._limiter.rate:g} items/s, bursts of "
                f"{self._limiter.burst} (AOP_INGEST_RATE_LIMIT, AOP_INGEST_RATE_BURST); this "
                f"request's {cost} items fit in {retry} s",
                retry,
            )

    @staticmethod
    def _refuse(source: str, refused: list[RefusedItem]) -> NoReturn:
        for item in refused:
            metrics.REFUSED.labels(source, item.reason).inc()
        raise ItemsRefusedError(refused)

    # -- service -----------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return Response(_HEALTHY, media_type=_JSON, headers=_NO_STORE)

    async def readyz(self, request: Request) -> Response:
        if not self._writer.ready:
            raise LogUnavailableError("the writer is failing or recovering; see the ingest's log")
        return Response(_READY, media_type=_JSON, headers=_NO_STORE)

    async def metrics(self, request: Request) -> Response:
        return Response(
            generate_latest(self._registry), media_type=CONTENT_TYPE_LATEST, headers=_NO_STORE
        )

    async def openapi(self, request: Request) -> Response:
        return Response(self._openapi, media_type=_JSON)


async def _watch_tokens(tokens: TokenFile, every_s: float = 1.0) -> None:
    """Re-read AOP_INGEST_TOKENS_FILE when it changes (`TokenFile.reload_if_changed`)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            if tokens.reload_if_changed():
                metrics.TOKENS_RELOADS.labels("ok").inc()
                log.info("tokens reloaded", extra={"sources": list(tokens.table.sources)})
        except SettingsError as exc:
            metrics.TOKENS_RELOADS.labels("refused").inc()
            log.error("tokens file refused; the previous tokens stay in force: %s", exc)


def create_ingest_app(
    settings: Settings,
    writer: WriterThread,
    tokens: TokenFile,
    rules: ItemRules,
    *,
    clock: Callable[[], int] = unix_ms,
) -> Starlette:
    """The ingest application over a started writer thread, which it stops at shutdown
    (after the open requests are answered)."""
    handlers = IngestHandlers(writer, tokens, rules, settings=settings, clock=clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watcher = asyncio.create_task(_watch_tokens(tokens))
        try:
            yield
        finally:
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
            await asyncio.to_thread(writer.stop)

    routes = handlers.routes()
    middleware = [
        Middleware(
            MetricsMiddleware,
            routes=routes,
            requests=metrics.REQUESTS,
            seconds=metrics.REQUEST_SECONDS,
            statuses=(401, 500, 503),  # AopIngestUnauthorized reads the 401s
        )
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
