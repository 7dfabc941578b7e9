"""The proof endpoint's shortcut past Starlette's router and exception middleware.

Why: a claim answer is the API's hot path, and Starlette's dispatch (the router trying each
route, `ExceptionMiddleware`, the request/response wrappers and their `send` closures) cost
a measurable share of its CPU (bench/api.py, BENCHMARKS.md). This middleware sits innermost
of the application's own (inside metrics and CORS, which still see every request) and answers
a GET that the claim route matches fully by calling its endpoint itself; every other request
goes on to the router unchanged. The route's own `matches` decides, so the paths taken are
exactly the router's; an `ApiError` is answered by the application's handler as before, and
anything else propagates to Starlette's server-error handler (a JSON 500).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from aop.api.errors import ApiError

__all__ = ["HotRoute"]


class HotRoute:
    """ASGI middleware answering GETs of `route` directly (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        route: Route,
        on_api_error: Callable[[Request, Exception], Awaitable[Response]],
    ) -> None:
        self.app = app
        self._route = route
        self._endpoint: Callable[[Request], Awaitable[Response]] = route.endpoint
        self._on_api_error = on_api_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match, child_scope = self._route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                scope["route"] = self._route
                request = Request(scope, receive, send)
                try:
                    response = await self._endpoint(request)
                except ApiError as exc:
                    response = await self._on_api_error(request, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
