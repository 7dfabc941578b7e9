"""Errors of the read API: each one is an HTTP status, a machine-readable code and a message.

Handlers raise `ApiError` subclasses; `api.http.EXCEPTION_HANDLERS` (the read API's and the
ingest's) turns every one into `{"error": {"code": ..., "message": ...}}` with its status and
headers (and, for refused items, the list of them). Bad input is always a 4xx; the database
or the log being unreachable is a 503; a 500 is a bug.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from aop.runtime.errors import AopError

if TYPE_CHECKING:
    from aop.api.shapes import RefusedItem

__all__ = [
    "ApiError",
    "BadRequestError",
    "DatabaseUnavailableError",
    "GoneError",
    "ItemsRefusedError",
    "LogUnavailableError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "ServiceBusyError",
    "UnauthorizedError",
    "UnsafeIntegerError",
    "UnsupportedMediaTypeError",
]


class ApiError(AopError):
    """Raised by a handler to answer with `status` and the JSON error body."""

    status = 500

    def __init__(
        self,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        items: Sequence[RefusedItem] = (),
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        #: extra answer headers (Retry-After, WWW-Authenticate).
        self.headers = dict(headers or {})
        #: the refused items of an ingest request (the answer's `error.items`).
        self.items = list(items)


class BadRequestError(ApiError, ValueError):
    """Raised when a path parameter, query parameter or body is malformed (400)."""

    status = 400


class NotFoundError(ApiError, LookupError):
    """Raised when a well-formed channel, root or wallet has no data (404)."""

    status = 404


class GoneError(ApiError):
    """Raised when a well-formed root exists but its proofs are gone: its leaves and tree
    levels were pruned (older than the newest AOP_PROOF_ROOTS_KEPT roots of its account) and
    only its `roots` row remains (410)."""

    status = 410


class UnauthorizedError(ApiError):
    """Raised when an ingest request carries no bearer token, or one no source holds (401)."""

    status = 401

    def __init__(self, message: str) -> None:
        super().__init__("unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


class PayloadTooLargeError(ApiError):
    """Raised when a request body exceeds its size limit (AOP_API_MAX_BODY_BYTES,
    AOP_INGEST_MAX_BODY_BYTES) or an ingest request holds more than AOP_INGEST_MAX_ITEMS
    items (413)."""

    status = 413


class UnsupportedMediaTypeError(ApiError):
    """Raised when a request body is not `application/json` (415)."""

    status = 415


class UnsafeIntegerError(ApiError):
    """Raised when an answer that must carry amounts as JSON numbers would carry one above
    2^53 - 1, which JavaScript clients silently round (422; the message gives the exact
    values and the endpoint that serves them as strings)."""

    status = 422


class ItemsRefusedError(ApiError):
    """Raised when an ingest request has items the ingest refuses: nothing of the request is
    written, and `items` names each refused one, its index and the reason (422)."""

    status = 422

    def __init__(self, items: Sequence[RefusedItem]) -> None:
        reasons = sorted({item.reason for item in items})
        super().__init__(
            "items_refused",
            f"{len(items)} item(s) refused ({', '.join(reasons)}); nothing was written",
            items=items,
        )


class RateLimitedError(ApiError):
    """Raised when a source's token bucket cannot pay for a request's items (429); the
    Retry-After header says when it can."""

    status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__("rate_limited", message, headers={"Retry-After": str(retry_after_s)})


class ServiceBusyError(ApiError):
    """Raised when a bounded resource (dataset streams) is exhausted; retry later (503)."""

    status = 503


class DatabaseUnavailableError(ApiError):
    """Raised when no database connection could be had or a query failed or timed out (503)."""

    status = 503

    def __init__(self, message: str) -> None:
        super().__init__("database_unavailable", message)


class LogUnavailableError(ApiError):
    """Raised when the ingest could not get a request's items acknowledged by the log (no
    broker, a transaction aborted or timed out); nothing acknowledged, retry (503)."""

    status = 503

    def __init__(self, message: str) -> None:
        super().__init__("log_unavailable", message)
