"""Errors of the read API: each one is an HTTP status, a machine-readable code and a message.

Handlers raise `ApiError` subclasses; `api.app` turns every one into
`{"error": {"code": ..., "message": ...}}` with its status. Bad input is always a 4xx; the
database being unreachable is a 503; a 500 is a bug.
"""

from __future__ import annotations

from aop.runtime.errors import AopError

__all__ = [
    "ApiError",
    "BadRequestError",
    "DatabaseUnavailableError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ServiceBusyError",
    "UnsafeIntegerError",
    "UnsupportedMediaTypeError",
]


class ApiError(AopError):
    """Raised by a handler to answer with `status` and the JSON error body."""

    status = 500

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class BadRequestError(ApiError, ValueError):
    """Raised when a path parameter, query parameter or body is malformed (400)."""

    status = 400


class NotFoundError(ApiError, LookupError):
    """Raised when a well-formed channel, root or wallet has no data (404)."""

    status = 404


class PayloadTooLargeError(ApiError):
    """Raised when a request body exceeds AOP_API_MAX_BODY_BYTES (413)."""

    status = 413


class UnsupportedMediaTypeError(ApiError):
    """Raised when a request body is not `application/json` (415)."""

    status = 415


class UnsafeIntegerError(ApiError):
    """Raised when an answer that must carry amounts as JSON numbers would carry one above
    2^53 - 1, which JavaScript clients silently round (422; the message gives the exact
    values and the endpoint that serves them as strings)."""

    status = 422


class ServiceBusyError(ApiError):
    """Raised when a bounded resource (dataset streams) is exhausted; retry later (503)."""

    status = 503


class DatabaseUnavailableError(ApiError):
    """Raised when no database connection could be had or a query failed or timed out (503)."""

    status = 503

    def __init__(self, message: str) -> None:
        super().__init__("database_unavailable", message)
