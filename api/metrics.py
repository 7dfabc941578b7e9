"""The API's Prometheus metrics (DESIGN §10) and the ASGI middleware that updates them.

Labels use the ROUTE TEMPLATE (`/v1/channels/{channel}/claims/{wallet}`), never the raw
path, and a closed set of methods, so the number of series stays bounded whatever clients
send. Requests that match no route count under route="unmatched".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CLAIM_BATCH_SIZE",
    "HOT_ROOTS_BYTES",
    "REQUESTS",
    "REQUEST_SECONDS",
    "MetricsMiddleware",
]

REQUESTS = Counter(
    "aop_api_requests_total",
    "HTTP requests answered by the read API, by route template, method and status",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "aop_api_request_seconds",
    "Time from request to the last byte of the answer, by route template",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
CLAIM_BATCH_SIZE = Histogram(
    "aop_api_claim_batch_size",
    "Claim lookups answered by one batched query (api.batch)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
HOT_ROOTS_BYTES = Gauge(
    "aop_api_hot_roots_bytes",
    "Memory held by roots kept whole in memory (api.hot_roots), AOP_API_HOT_ROOTS_BYTES at most",
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
#: routes not counted: Prometheus's own scrapes of /metrics would otherwise weigh in the
#: request rate, the error ratio and the latency quantiles the alerts read.
UNCOUNTED = frozenset({"/metrics"})
_PRECREATED_STATUSES = (500, 503)


class MetricsMiddleware:
    """Counts and times every HTTP request by route template, method and status.

    Args:
        routes: the application's routes, whose series of `statuses` are created at start.
        statuses: the statuses an alert reads (500 and 503 unless told).
        requests, seconds: the counter (labels route, method, status) and the histogram
            (label route) to update; the read API's unless told (the ingest has its own).
    """

    def __init__(
        self,
        app: ASGIApp,
        routes: Sequence[BaseRoute] = (),
        *,
        requests: Counter = REQUESTS,
        seconds: Histogram = REQUEST_SECONDS,
        statuses: Sequence[int] = _PRECREATED_STATUSES,
    ) -> None:
        self.app = app
        self._requests = requests
        self._seconds = seconds
        # the labelled children, looked up once per (route, method, status): the label sets
        # are bounded (route templates x methods x statuses)
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[str, Any] = {}
        # each route's series of the alerts' statuses from the start, so the first 500/503
        # (or 401) is an increase the alert sees (runtime.metrics.precreate)
        for route in routes:
            template = getattr(route, "path", None)
            for method in sorted(getattr(route, "methods", None) or ()):
                if template and template not in UNCOUNTED and method in _METHODS:
                    for status in statuses:
                        requests.labels(template, method, str(status))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            if template not in UNCOUNTED:
                self._count(template, scope["method"], status, started)

    def _count(self, template: str, method: str, status: int, started: float) -> None:
        method = method if method in _METHODS else "OTHER"
        key = (template, method, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self._requests.labels(template, method, str(status))
        timer = self._timers.get(template)
        if timer is None:
            timer = self._timers[template] = self._seconds.labels(template)
        counter.inc()
        timer.observe(time.perf_counter() - started)
