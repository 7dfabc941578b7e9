"""JSON responses with validators: strong ETags, Cache-Control, and 304 on If-None-Match.

* immutable answers (a given root once published, its dataset, a proof for a given root):
  `Cache-Control: public, max-age=31536000, immutable`;
* mutable answers (latest roots, claims with claimable, lists): `public, max-age=<short>`;
* every 200 carries a strong ETag, the BLAKE2b of its body (or, for a dataset, derived from
  its dataset_hash), so `If-None-Match` answers 304 without a body.
"""

from __future__ import annotations

from hashlib import blake2b

from msgspec import Struct
from starlette.requests import Request
from starlette.responses import Response

from aop.api.errors import ApiError
from aop.api.shapes import encode, error_body

__all__ = [
    "IMMUTABLE",
    "error_response",
    "etag_matches",
    "json_response",
    "mutable",
    "not_modified",
]

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
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """`{"error": {"code", "message"}}` with `status`; never cached."""
    return Response(
        error_body(code, message),
        status_code=status,
        media_type=JSON,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def api_error_response(exc: ApiError) -> Response:
    """The JSON error answer of `exc` (503s ask to retry after a second)."""
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return error_response(exc.status, exc.code, exc.message, headers)
