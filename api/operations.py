"""What a route is, for the router and for the OpenAPI document alike: an `Operation`.

`api.routes.OPERATIONS` declares every endpoint once: its method and path, the handler that
answers it, its parameters and the shape of its answer (a Struct of `api.shapes`, or other
types for non-JSON bodies). `Handlers.routes` builds the Starlette routes from them and
`api.openapi` the document, so neither can list an endpoint the other lacks.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Annotated, Any, Literal

from msgspec import Meta

from aop.api.dataset import DatasetFormat
from aop.api.params import MAX_LIMIT
from aop.api.shapes import BASE58, ChannelName, Format, Hex, Seq

__all__ = [
    "AFTER",
    "BAD_PARAMETER",
    "BEFORE",
    "CHANNEL",
    "DATASET_FORMAT",
    "DATASET_HEADERS",
    "IF_NONE_MATCH",
    "LIMIT",
    "PROOFS_PRUNED",
    "ROOT_SEQ",
    "UNAVAILABLE",
    "WALLET",
    "Operation",
    "Param",
    "get",
]

#: the 503 every database-backed endpoint may answer.
UNAVAILABLE = "database unreachable or busy; retry (Retry-After)"
#: the 400 of every endpoint with parameters.
BAD_PARAMETER = "malformed parameter (the error code names it)"
#: the 410 of the endpoints that read a given root's leaves or tree levels.
PROOFS_PRUNED = (
    "proofs_pruned: the root is older than the newest AOP_PROOF_ROOTS_KEPT roots of its "
    "account, so its leaves and tree levels are gone (its row remains: GET the root); the "
    "message names the account, the root_seq and the newest root_seq to claim with instead"
)


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter; `type` is its value's type (its schema)."""

    name: str
    where: Literal["path", "query", "header"]
    type: Any
    description: str = ""

    @property
    def required(self) -> bool:
        return self.where == "path"


@dataclass(frozen=True)
class Operation:
    """One endpoint: the route, the handler and what the document says of it.

    Attributes:
        method, path: as the router matches them.
        endpoint: the name of the `api.routes.Handlers` method that answers.
        answer: the 200 body's type (an `api.shapes` Struct for JSON), or None when
            `media` gives the body's types per media type instead.
        conditional: the 200 carries ETag and Cache-Control, and If-None-Match gives a 304.
        errors: (status, description) of the error answers (`api.shapes.Error` bodies, or
            the type `error_bodies` gives for the status).
        error_bodies: (status, body type) of error answers whose body is not an `Error`
            (the ingest's 422 `Refusal`).
        body: the request body's type (JSON), if it takes one.
        media: (media type, body type) of each representation of a 200 that is not
            `answer` as JSON.
        headers: more 200 headers, (name, value type).
    """

    method: Literal["GET", "POST"]
    path: str
    endpoint: str
    operation_id: str
    _: KW_ONLY
    summary: str
    answer: Any = None
    answer_doc: str = ""
    params: tuple[Param, ...] = ()
    conditional: bool = False
    errors: tuple[tuple[int, str], ...] = ()
    error_bodies: tuple[tuple[int, Any], ...] = ()
    body: Any = None
    media: tuple[tuple[str, Any], ...] = ()
    headers: tuple[tuple[str, Any], ...] = ()


def get(
    path: str,
    endpoint: str,
    operation_id: str,
    *,
    summary: str,
    params: tuple[Param, ...],
    answer: Any,
    answer_doc: str,
    not_found: str | None = None,
    gone: str | None = None,
) -> Operation:
    """A GET of a JSON answer with validators: 200, 304, 400, 404 (if `not_found` names its
    codes), 410 (if `gone` says when) and 503."""
    errors = [(400, BAD_PARAMETER)]
    if not_found:
        errors.append((404, not_found))
    if gone:
        errors.append((410, gone))
    errors.append((503, UNAVAILABLE))
    return Operation(
        "GET",
        path,
        endpoint,
        operation_id,
        summary=summary,
        answer=answer,
        answer_doc=answer_doc,
        params=params,
        conditional=True,
        errors=tuple(errors),
    )


CHANNEL = Param(
    "channel",
    "path",
    ChannelName,
    "channel name (1-64 ASCII characters, case-insensitive) or its config PDA (base58); a "
    "PDA that is also some channel's name means the PDA",
)
WALLET = Param(
    "wallet", "path", Annotated[str, Meta(pattern=BASE58)], "base58 public key (32 bytes)"
)
ROOT_SEQ = Param("root_seq", "path", Seq)
LIMIT = Param(
    "limit", "query", Annotated[int, Meta(ge=1, le=MAX_LIMIT)], f"page size, 1..{MAX_LIMIT}"
)
AFTER = Param(
    "after",
    "query",
    Annotated[str, Meta(pattern=BASE58)],
    "a channel config PDA: the page starts after it (`next_after` of a page)",
)
BEFORE = Param(
    "before", "query", Seq, "only roots with root_seq below this (`next_before` of a page)"
)
IF_NONE_MATCH = Param(
    "If-None-Match",
    "header",
    str,
    "an ETag of an earlier answer: 304 without a body if it still holds",
)
DATASET_FORMAT = Param(
    "format",
    "query",
    DatasetFormat,
    "json (default): a JSON array of entries; ndjson: one entry per line; binary: the "
    "canonical dataset bytes (keccak256 of the body = dataset_hash)",
)
#: the headers of a dataset answer besides the validators.
DATASET_HEADERS = (
    ("X-AOP-Root", Hex),
    ("X-AOP-Dataset-Hash", Hex),
    ("X-AOP-Leaf-Count", Annotated[str, Meta(pattern="^[0-9]+$")]),
    ("X-AOP-Format", Format),
)
