"""The endpoints: each declared once as an `Operation` (route, handler, parameters, answer
shape; `OPERATIONS`), and the handlers that parse parameters, read, and answer with
validators (see `api.http`). The OpenAPI document is generated from the same declarations
(`api.openapi`).
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from aop.api.dataset import DATASET_FORMATS, MEDIA_TYPES, DatasetStreams, dataset_etag
from aop.api.errors import BadRequestError, UnsafeIntegerError
from aop.api.http import (
    IMMUTABLE,
    etag_matches,
    json_response,
    mutable,
    not_modified,
    read_json_body,
)
from aop.api.operations import (
    AFTER,
    BAD_PARAMETER,
    BEFORE,
    CHANNEL,
    DATASET_FORMAT,
    DATASET_HEADERS,
    LIMIT,
    PROOFS_PRUNED,
    ROOT_SEQ,
    UNAVAILABLE,
    WALLET,
    Operation,
    get,
)
from aop.api.params import parse_channel, parse_limit, parse_pubkey, parse_seq, parse_wallet
from aop.api.reader import Reader
from aop.api.shapes import (
    SAFE_INTEGER,
    ChannelDetail,
    ChannelList,
    Claim,
    DatasetEntry,
    GlobalClaim,
    GlobalClaimText,
    Health,
    Ready,
    RootClaim,
    RootDetail,
    RootList,
    VerifyRequest,
    VerifyResult,
    WalletClaims,
    encode,
)
from aop.api.verify import parse_json_body, verify_claim

__all__ = ["OPERATIONS", "Handlers"]

_NO_STORE = {"Cache-Control": "no-store"}
_RECORD_SIZES = {"cumulative-v2": 40, "ring-v0": 44, "global-v4": 40, "global-v5": 48}
#: `/v1/claims/{wallet}` is the live API's path; the hot-route middleware knows it too.
GLOBAL_CLAIM_PATH = "/v1/claims/{wallet}"
_HEALTHY = encode(Health(status="ok"))
_READY = encode(Ready(status="ready"))

#: every endpoint of DESIGN §8, in the router's order (the hot claim route first: Starlette
#: tries the routes in order).
OPERATIONS: tuple[Operation, ...] = (
    get(
        "/v1/channels/{channel}/claims/{wallet}", "claim", "getClaim",
        summary="Everything a claim transaction needs, against the newest root holding the "
        "wallet",
        params=(CHANNEL, WALLET),
        answer=Claim,
        answer_doc="the claim (short max-age: claimed_total and stale change)",
        not_found="channel_not_found or wallet_not_found",
    ),
    Operation(
        "GET", GLOBAL_CLAIM_PATH, "global_claim", "getGlobalClaim",
        summary="A wallet's claim against the newest global root (the program as deployed: "
        "claim_global_v2 / claim_global), as the live API's SDKs read it: amounts are JSON "
        "numbers, proof nodes lower-case hex. An Authorization header is accepted and "
        "ignored (proofs are public).",
        params=(WALLET,),
        answer=GlobalClaim,
        answer_doc="the claim (short max-age: claimed_total and stale change)",
        conditional=True,
        errors=(
            (400, BAD_PARAMETER),
            (404, "global_root_not_found or wallet_not_found (no claims)"),
            (422, "unsafe_integer: an amount above 2^53 - 1; the message gives the exact "
                  "values, and /v1/global/claims/{wallet} serves them as strings"),
            (503, UNAVAILABLE),
        ),
    ),
    Operation(
        "GET", "/healthz", "healthz", "healthz",
        summary="Liveness: the process answers",
        answer=Health,
        answer_doc="alive",
    ),
    Operation(
        "GET", "/readyz", "readyz", "readyz",
        summary="Readiness: the database answers with the projection tables",
        answer=Ready,
        answer_doc="ready",
        errors=((503, UNAVAILABLE),),
    ),
    Operation(
        "GET", "/metrics", "metrics", "metrics",
        summary="Prometheus metrics (aop_api_requests_total, aop_api_request_seconds)",
        answer_doc="Prometheus text exposition",
        media=(("text/plain", str),),
    ),
    Operation(
        "GET", "/openapi.json", "openapi", "openapi",
        summary="This document (OpenAPI 3.1)",
        answer_doc="the OpenAPI document",
        media=(("application/json", dict[str, Any]),),
    ),
    Operation(
        "GET", "/docs", "docs", "docs",
        summary="Human-readable documentation (self-contained HTML)",
        answer_doc="HTML page",
        media=(("text/html", str),),
    ),
    get(
        "/v1/channels", "channels", "listChannels",
        summary="Channels with roots, in config-PDA order",
        params=(LIMIT, AFTER),
        answer=ChannelList,
        answer_doc="a page of channels (default 100, at most 1000)",
    ),
    get(
        "/v1/channels/{channel}", "channel", "getChannel",
        summary="A channel: name, subject id, config PDA, format, latest root",
        params=(CHANNEL,),
        answer=ChannelDetail,
        answer_doc="the channel (short max-age: the latest root moves)",
        not_found="channel_not_found",
    ),
    get(
        "/v1/channels/{channel}/roots", "roots", "listRoots",
        summary="A channel's roots, newest first",
        params=(CHANNEL, LIMIT, BEFORE),
        answer=RootList,
        answer_doc="a page of roots (default 50, at most 1000)",
        not_found="channel_not_found",
    ),
    get(
        "/v1/channels/{channel}/roots/{root_seq}", "root", "getRoot",
        summary="One root: hashes, leaf count, total, epoch, input offsets, settlement",
        params=(CHANNEL, ROOT_SEQ),
        answer=RootDetail,
        answer_doc="the root; cached as immutable once its settlement status is `published`",
        not_found="channel_not_found or root_not_found",
    ),
    get(
        "/v1/channels/{channel}/roots/{root_seq}/claims/{wallet}", "root_claim", "getRootClaim",
        summary="A wallet's leaf and proof in one given root (immutable)",
        params=(CHANNEL, ROOT_SEQ, WALLET),
        answer=RootClaim,
        answer_doc="leaf, proof, root (Cache-Control immutable)",
        not_found="channel_not_found, root_not_found or wallet_not_found",
        gone=PROOFS_PRUNED,
    ),
    get(
        "/v1/wallets/{wallet}/claims", "wallet_claims", "listWalletClaims",
        summary="A wallet's claims in every channel",
        params=(WALLET, LIMIT, AFTER),
        answer=WalletClaims,
        answer_doc="a page of claims (default 100, at most 1000)",
        not_found="wallet_not_found (no leaf in any channel; first page only)",
    ),
    Operation(
        "GET", "/v1/roots/{channel}/{root_seq}/dataset", "dataset", "getDataset",
        summary="A root's full dataset (streamed), to recompute root and dataset_hash",
        answer_doc="every leaf in leaf order (Cache-Control immutable)",
        params=(CHANNEL, ROOT_SEQ, DATASET_FORMAT),
        conditional=True,
        errors=(
            (400, BAD_PARAMETER),
            (404, "channel_not_found or root_not_found"),
            (410, PROOFS_PRUNED),
            (503, "database unavailable, or too many dataset streams"),
        ),
        media=(
            (MEDIA_TYPES["json"], list[DatasetEntry]),
            (MEDIA_TYPES["ndjson"], str),
            (MEDIA_TYPES["binary"], Annotated[str, Meta(extra_json_schema={"format": "binary"})]),
        ),
        headers=DATASET_HEADERS,
    ),
    get(
        "/v1/global/claims/{wallet}", "global_claim_text", "getGlobalClaimText",
        summary="A wallet's claim against the newest global root, every amount a decimal string",
        params=(WALLET,),
        answer=GlobalClaimText,
        answer_doc="the claim (short max-age)",
        not_found="global_root_not_found or wallet_not_found",
    ),
    get(
        "/v1/global", "global_detail", "getGlobal",
        summary="The mint's global root account: its GlobalRootConfig PDA, format and latest root",
        params=(),
        answer=ChannelDetail,
        answer_doc="the global root account (name and subject id are empty)",
        not_found="global_root_not_found",
    ),
    get(
        "/v1/global/roots", "global_roots", "listGlobalRoots",
        summary="The global roots, newest first",
        params=(LIMIT, BEFORE),
        answer=RootList,
        answer_doc="a page of global roots (default 50, at most 1000)",
        not_found="global_root_not_found",
    ),
    get(
        "/v1/global/roots/{root_seq}", "global_root", "getGlobalRoot",
        summary="One global root: hashes, leaf count, total, epoch, settlement",
        params=(ROOT_SEQ,),
        answer=RootDetail,
        answer_doc="the root; cached as immutable once its settlement status is `published`",
        not_found="global_root_not_found or root_not_found",
    ),
    Operation(
        "POST", "/v1/verify", "verify", "verify",
        summary="Recompute a cumulative-v2 leaf and fold a proof into a root",
        answer=VerifyResult,
        answer_doc="whether the proof holds",
        errors=(
            (400, "malformed body or field (the error code names it)"),
            (413, "body larger than AOP_API_MAX_BODY_BYTES"),
            (415, "body not application/json"),
        ),
        body=Annotated[
            VerifyRequest,
            Meta(extra_json_schema={"oneOf": [{"required": ["channel"]},
                                              {"required": ["channel_config"]}]}),
        ],
    ),
)  # fmt: skip


class Handlers:
    """Every endpoint of DESIGN §8, bound to one reader and its settings."""

    def __init__(
        self,
        reader: Reader,
        streams: DatasetStreams,
        *,
        mutable_max_age_s: int,
        max_body_bytes: int,
        default_mint: str,
        default_program_id: str,
        global_account: str,
        openapi: dict[str, Any],
        docs: str,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._reader = reader
        self._streams = streams
        self._mutable = mutable(mutable_max_age_s)
        self._max_body = max_body_bytes
        self._mint = default_mint
        self._program_id = default_program_id
        self._global_account = global_account
        self._openapi = encode(openapi)
        self._docs = docs
        self._registry = registry

    def routes(self) -> list[Route]:
        """The routes of `OPERATIONS`, in order."""
        return [
            Route(op.path, getattr(self, op.endpoint), methods=[op.method]) for op in OPERATIONS
        ]

    # -- service -----------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return Response(_HEALTHY, media_type="application/json", headers=_NO_STORE)

    async def readyz(self, request: Request) -> Response:
        await self._reader.ready()
        return Response(_READY, media_type="application/json", headers=_NO_STORE)

    async def metrics(self, request: Request) -> Response:
        return Response(
            generate_latest(self._registry), media_type=CONTENT_TYPE_LATEST, headers=_NO_STORE
        )

    async def openapi(self, request: Request) -> Response:
        return Response(self._openapi, media_type="application/json")

    async def docs(self, request: Request) -> Response:
        return HTMLResponse(self._docs)

    # -- channels and roots ------------------------------------------------------------------

    async def channels(self, request: Request) -> Response:
        limit = parse_limit(request.query_params, default=100)
        after = self._after(request)
        page = await self._reader.channels(limit=limit, after=after)
        return json_response(request, page, cache_control=self._mutable)

    async def channel(self, request: Request) -> Response:
        info = await self._reader.channel(parse_channel(request.path_params["channel"]))
        detail = await self._reader.channel_detail(info)
        return json_response(request, detail, cache_control=self._mutable)

    async def roots(self, request: Request) -> Response:
        ref = parse_channel(request.path_params["channel"])
        limit = parse_limit(request.query_params, default=50)
        raw_before = request.query_params.get("before")
        before = (
            None if raw_before is None else parse_seq(raw_before, code="bad_before", what="before")
        )
        info = await self._reader.channel(ref)
        page = await self._reader.roots(info, limit=limit, before=before)
        return json_response(request, page, cache_control=self._mutable)

    async def root(self, request: Request) -> Response:
        ref = parse_channel(request.path_params["channel"])
        root_seq = parse_seq(request.path_params["root_seq"])
        info = await self._reader.channel(ref)
        detail = await self._reader.root_detail(info, root_seq)
        settled = detail.settlement is not None and detail.settlement.status == "published"
        return json_response(request, detail, cache_control=IMMUTABLE if settled else self._mutable)

    # -- claims ------------------------------------------------------------------------------

    async def claim(self, request: Request) -> Response:
        ref = parse_channel(request.path_params["channel"])
        wallet = parse_wallet(request.path_params["wallet"])
        info = await self._reader.channel(ref)
        claim = await self._reader.claim(info, wallet)
        return json_response(request, claim, cache_control=self._mutable)

    async def root_claim(self, request: Request) -> Response:
        ref = parse_channel(request.path_params["channel"])
        root_seq = parse_seq(request.path_params["root_seq"])
        wallet = parse_wallet(request.path_params["wallet"])
        info = await self._reader.channel(ref)
        meta = await self._reader.root_meta(info, root_seq)
        claim = await self._reader.claim_at(meta, wallet)
        return json_response(request, claim, cache_control=IMMUTABLE)

    async def global_claim(self, request: Request) -> Response:
        wallet = parse_wallet(request.path_params["wallet"])
        info = await self._reader.global_root(self._global_account)
        claim, bonus = await self._reader.global_claim(info, wallet)
        fields = _global_claim_fields(info.format, claim, bonus)
        amounts = {name: fields[name] for name in _GLOBAL_AMOUNTS}
        unsafe = [name for name, value in amounts.items() if value > SAFE_INTEGER]
        if unsafe:
            exact = ", ".join(f"{name}={value}" for name, value in amounts.items())
            raise UnsafeIntegerError(
                "unsafe_integer",
                f"{', '.join(unsafe)} exceed 2^53 - 1, which a JSON number cannot carry exactly "
                f"(exact values as strings: {exact}); GET /v1/global/claims/{claim.wallet} "
                "serves every amount as a string",
            )
        return json_response(request, GlobalClaim(**fields), cache_control=self._mutable)

    async def global_claim_text(self, request: Request) -> Response:
        wallet = parse_wallet(request.path_params["wallet"])
        info = await self._reader.global_root(self._global_account)
        claim, bonus = await self._reader.global_claim(info, wallet)
        fields = _global_claim_fields(info.format, claim, bonus)
        for name in _GLOBAL_AMOUNTS:
            fields[name] = str(fields[name])
        return json_response(request, GlobalClaimText(**fields), cache_control=self._mutable)

    async def global_detail(self, request: Request) -> Response:
        info = await self._reader.global_root(self._global_account)
        detail = await self._reader.channel_detail(info)
        return json_response(request, detail, cache_control=self._mutable)

    async def global_roots(self, request: Request) -> Response:
        limit = parse_limit(request.query_params, default=50)
        raw_before = request.query_params.get("before")
        before = (
            None if raw_before is None else parse_seq(raw_before, code="bad_before", what="before")
        )
        info = await self._reader.global_root(self._global_account)
        page = await self._reader.roots(info, limit=limit, before=before)
        return json_response(request, page, cache_control=self._mutable)

    async def global_root(self, request: Request) -> Response:
        root_seq = parse_seq(request.path_params["root_seq"])
        info = await self._reader.global_root(self._global_account)
        detail = await self._reader.root_detail(info, root_seq)
        settled = detail.settlement is not None and detail.settlement.status == "published"
        return json_response(request, detail, cache_control=IMMUTABLE if settled else self._mutable)

    async def wallet_claims(self, request: Request) -> Response:
        wallet = parse_wallet(request.path_params["wallet"])
        limit = parse_limit(request.query_params, default=100)
        after = self._after(request)
        page = await self._reader.wallet_claims(wallet, limit=limit, after=after)
        return json_response(request, page, cache_control=self._mutable)

    # -- datasets ----------------------------------------------------------------------------

    async def dataset(self, request: Request) -> Response:
        ref = parse_channel(request.path_params["channel"])
        root_seq = parse_seq(request.path_params["root_seq"])
        fmt = request.query_params.get("format", "json")
        if fmt not in DATASET_FORMATS:
            raise BadRequestError(
                "bad_format",
                f"format must be one of {', '.join(DATASET_FORMATS)} (got {fmt[:80]!r})",
            )
        info = await self._reader.channel(ref)
        meta = await self._reader.root_meta(info, root_seq)
        await self._reader.check_proofs_kept(meta)  # before the 304: the dataset is gone
        etag = dataset_etag(meta, fmt)
        if etag_matches(request, etag):
            return not_modified(etag, IMMUTABLE)
        headers = {
            "ETag": etag,
            "Cache-Control": IMMUTABLE,
            "X-AOP-Root": meta.root.hex(),
            "X-AOP-Dataset-Hash": meta.dataset_hash.hex(),
            "X-AOP-Leaf-Count": str(meta.leaf_count),
            "X-AOP-Format": meta.format,
        }
        if fmt == "binary" and meta.format in _RECORD_SIZES:
            headers["Content-Length"] = str(meta.leaf_count * _RECORD_SIZES[meta.format])
        if request.method == "HEAD":
            return Response(headers=headers, media_type=MEDIA_TYPES[fmt])
        self._streams.check_capacity()
        return self._streams.response(meta, fmt, headers)

    # -- verify ------------------------------------------------------------------------------

    async def verify(self, request: Request) -> Response:
        body = await read_json_body(request, self._max_body, "AOP_API_MAX_BODY_BYTES")
        result = verify_claim(
            parse_json_body(body), default_mint=self._mint, default_program_id=self._program_id
        )
        return Response(encode(result), media_type="application/json", headers=_NO_STORE)

    @staticmethod
    def _after(request: Request) -> str | None:
        raw = request.query_params.get("after")
        if raw is None:
            return None
        return str(parse_pubkey(raw, code="bad_after", what="after"))


#: the amounts of a global claim: JSON numbers in `GlobalClaim`, strings in `GlobalClaimText`.
_GLOBAL_AMOUNTS = (
    "base_yield",
    "attention_bonus",
    "cumulative_total",
    "claimed_total",
    "claimable",
)


def _global_claim_fields(fmt: str, claim: Claim, bonus: int) -> dict[str, Any]:
    """The fields of a global claim answer, amounts as ints (the claim's amount is the
    total, base_yield + attention_bonus)."""
    total = int(claim.amount)
    claimed = int(claim.claimed_total or 0)
    return {
        "root_seq": claim.root_seq,
        "base_yield": total - bonus,
        "attention_bonus": bonus,
        "cumulative_total": total,
        "claimed_total": claimed,
        "leaf_index": claim.leaf_index,
        "proof": claim.proof,
        "claimable": max(0, total - claimed),
        "claim_state": str(claim.claim_state),
        "stale": claim.stale,
        "settlement_status": claim.settlement_status,
        "leaf": claim.leaf,
        "root": claim.root,
        "format": "global-v4" if fmt == "global-v4" else "global-v5",
        "wallet": claim.wallet,
        "mint": claim.mint,
        "program_id": claim.program_id,
        "global_root_config": claim.channel_config,
        "latest_root_seq": claim.latest_root_seq,
    }
