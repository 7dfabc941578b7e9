"""HTTP plumbing of the read API and the ingest: JSON answers with validators, the error
answers of every exception (`EXCEPTION_HANDLERS`), and bounded JSON request bodies.

Validators: strong ETags, Cache-Control, and 304 on If-None-Match.

* immutable answers (a given root once published, its dataset, a proof for a given root):
  `Cache-Control: public, max-age=31536000, immutable`;
* mutable answers (latest roots, claims with claimable, lists): `public, max-age=<short>`;
* every 200 carries a strong ETag, the BLAKE2b of its body (or, for a dataset, derived from
  its dataset_hash), so `If-None-Match` answers 304 without a body.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from hashlib import blake2b

from msgspec import Struct
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from aop.api.errors import ApiError, PayloadTooLargeError, UnsupportedMediaTypeError
from aop.api.shapes import RefusedItem, encode, error_body

__all__ = [
    "EXCEPTION_HANDLERS",
    "IMMUTABLE",
    "answer_api_error",
    "api_error_response",
    "error_response",
    "etag_matches",
    "json_response",
    "mutable",
    "not_modified",
    "read_json_body",
]

log = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
JSON = "application/json"


def mutable(max_age_s: int) -> str:
    """The Cache-Control of an answer that may change within `max_age_s` seconds."""
    return f"public, max-age={max_age_s}"


def etag_of(body: bytes) -> str:
    """A strong entity tag for `body`."""
    return '"' + blake2b(body, digest_size=16).hexdigest() + '"'


def etag_matches(request: Request, etag: str) -> bool:
    """Whether the request's If-None-Match names `etag` (weak comparison, as RFC 9110 says)."""
    header = next(
        (v.decode("latin-1") for k, v in request.scope["headers"] if k == b"if-none-match"), None
    )  # (not request.headers: building that mapping costs more than this whole check)
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def not_modified(etag: str, cache_control: str) -> Response:
    """A 304 with the validators and no body."""
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})


def json_response(request: Request, answer: Struct, *, cache_control: str) -> Response:
    """200 with `answer` as JSON (`api.shapes.encode`), its ETag and `cache_control`; 304 if
    the client has it."""
    body = encode(answer)
    etag = etag_of(body)
    if etag_matches(request, etag):
        return not_modified(etag, cache_control)
    return Response(body, media_type=JSON, headers={"ETag": etag, "Cache-Control": cache_control})


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    items: list[RefusedItem] | None = None,
) -> Response:
    """`{"error": {"code", "message"[, "items"]}}` with `status`; never cached."""
    return Response(
        error_body(code, message, items),
        status_code=status,
        media_type=JSON,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def api_error_response(exc: ApiError) -> Response:
    """The JSON error answer of `exc`, with its headers (503s ask to retry after a second)."""
    headers = {"Retry-After": "1"} if exc.status == 503 else {}
    return error_response(
        exc.status, exc.code, exc.message, {**headers, **exc.headers}, exc.items or None
    )


# -- the error answers of every exception ---------------------------------------------------

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


async def answer_api_error(request: Request, exc: Exception) -> Response:
    """An `ApiError` as its JSON answer (5xx ones logged)."""
    if not isinstance(exc, ApiError):  # pragma: no cover - registered for ApiError only
        raise exc
    if exc.status >= 500:
        log.warning("answering %d %s: %s", exc.status, exc.code, exc.message)
    return api_error_response(exc)


async def _answer_http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover
        raise exc
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail
    if exc.status_code == 404:
        message = f"no route matches {request.url.path[:200]!r}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "?")
        message = f"{request.method} is not allowed here (allowed: {allowed})"
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


async def _answer_internal_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error (logged)")


#: Starlette's `exception_handlers` of every application: our errors, HTTP errors (404, 405,
#: ...) and anything unexpected (a 500 `internal_error`: a bug, bad input never gets one).
EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
    ApiError: answer_api_error,
    HTTPException: _answer_http_error,
    Exception: _answer_internal_error,
}


# -- request bodies -------------------------------------------------------------------------


async def read_json_body(request: Request, max_bytes: int, setting: str) -> bytes:
    """The request's body, which must be `application/json` and at most `max_bytes` long.

    Args:
        setting: the variable that sets `max_bytes`, named in the 413's message.
    Raises:
        UnsupportedMediaTypeError: another content type (415).
        PayloadTooLargeError: a declared or actual length above `max_bytes` (413); the body
            is not read past the limit.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaTypeError(
            "unsupported_media_type",
            f"the body must be application/json (got {media_type or 'no content type'!r})",
        )
    declared = request.headers.get("content-length")
    # ASCII digits only: "²".isdigit() is true but int() refuses it (a 500, not a 413)
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and (len(declared) > 20 or int(declared) > max_bytes)
    ):
        raise PayloadTooLargeError(
            "body_too_large",
            f"the body must be at most {max_bytes} bytes ({setting}) (got {declared[:24]})",
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(
                "body_too_large",
                f"the body must be at most {max_bytes} bytes ({setting}) (got more)",
            )
        chunks.append(chunk)
    return b"".join(chunks)
