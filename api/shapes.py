"""The JSON the API sends and takes, declared once: one `msgspec.Struct` per shape.

Everything else comes from these declarations: the OpenAPI components (`api.openapi`, with
`msgspec.json.schema_components`), the bytes of every answer (`encode`, one
`msgspec.json.Encoder`) and their field order (the declaration order). A handler builds a
Struct and answers `encode(...)` of it; nothing writes JSON by hand. A new answer is one
Struct here and one `Operation` beside its route (`api.routes.OPERATIONS`).

Why msgspec: of the libraries that derive both a JSON Schema and an encoder from one
declaration, it encoded a claim fastest, faster than the hand-written f-string encoder it
replaces (BENCHMARKS.md, "API, session 6"); pydantic was measured too.

Conventions, as clients see them: amounts (u64 totals, u128 sums) are strings of decimal
digits (JavaScript numbers lose precision above 2^53); hashes are lower-case hex without
0x; keys base58; times ISO 8601. An answer that carries amounts as JSON numbers declares
them `U64Number`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from aop.api.params import I64_MAX, MAX_LIMIT, U64_MAX
from aop.core.channel import MAX_CHANNEL_NAME_LEN
from aop.core.merkle import MAX_PROOF_LEN

__all__ = [
    "BASE58",
    "HEX32",
    "SAFE_INTEGER",
    "ChannelDetail",
    "ChannelList",
    "ChannelName",
    "ChannelSummary",
    "Claim",
    "DatasetEntry",
    "Error",
    "ErrorDetail",
    "Format",
    "GlobalClaim",
    "GlobalClaimText",
    "GlobalFormat",
    "Health",
    "Hex",
    "InputRange",
    "Key",
    "Ready",
    "Refusal",
    "RefusalDetail",
    "RefusedItem",
    "RootClaim",
    "RootDetail",
    "RootList",
    "RootSummary",
    "Seq",
    "Settlement",
    "TwoPartDatasetEntry",
    "U64Number",
    "U64Text",
    "VerifyRequest",
    "VerifyResult",
    "WalletClaims",
    "encode",
    "encode_lines",
    "error_body",
]

BASE58 = "^[1-9A-HJ-NP-Za-km-z]{32,44}$"
HEX32 = "^[0-9a-f]{64}$"

# -- the value types -----------------------------------------------------------------------

Key = Annotated[str, Meta(pattern=BASE58, description="base58 public key")]
Hex = Annotated[str, Meta(pattern=HEX32, description="32 bytes, lower-case hex")]
U64Text = Annotated[str, Meta(pattern="^[0-9]{1,20}$", description="u64, decimal string")]
U128Text = Annotated[str, Meta(pattern="^[0-9]{1,39}$", description="u128, decimal string")]
#: a u64 as a JSON number (msgspec bounds must fit an int64: the maximum goes in as schema).
U64Number = Annotated[int, Meta(ge=0, extra_json_schema={"maximum": U64_MAX})]
Seq = Annotated[int, Meta(ge=0, le=I64_MAX)]
Count = Annotated[int, Meta(ge=0)]
Stamp = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
Format = Literal["cumulative-v2", "ring-v0", "global-v4", "global-v5"]
GlobalFormat = Literal["global-v4", "global-v5"]
Status = Annotated[
    str | None,
    Meta(
        description="settlement_outbox status (pending, sent, published, failed, dry_run, "
        "sequence_mismatch); null when unknown"
    ),
]
Proof = Annotated[list[Hex], Meta(max_length=MAX_PROOF_LEN)]
ChannelName = Annotated[
    str, Meta(min_length=1, max_length=MAX_CHANNEL_NAME_LEN, pattern=r"^[\x00-\x7f]+$")
]
_AnyHex = Annotated[str, Meta(pattern="^[0-9a-fA-F]{64}$")]


class Answer(Struct, forbid_unknown_fields=True, gc=False):
    """The base of every answer: a closed object (additionalProperties false), untracked by
    the garbage collector (answers hold no cycles)."""


# -- service ----------------------------------------------------------------------------------


class RefusedItem(Answer):
    """One item of an ingest request the ingest refused (`api.ingest`), and why."""

    index: Annotated[int, Meta(ge=0, description="its position in the request's list")]
    id: Annotated[str, Meta(description="its id ('' when it has none)")]
    reason: Annotated[str, Meta(pattern="^[a-z_]+$", description="the refusal code")]
    message: str


class ErrorDetail(Answer):
    code: Annotated[str, Meta(pattern="^[a-z_]+$")]
    message: str


class RefusalDetail(ErrorDetail):
    """An error that refuses some items of an ingest request: every one of them."""

    items: Annotated[
        list[RefusedItem],
        Meta(description="every refused item (nothing of the request was written)"),
    ]


class Error(Answer):
    """Every 4xx and 5xx answer: a machine-readable code and a message naming the input."""

    error: ErrorDetail


class Refusal(Answer):
    """The ingest's 422: the error, with every refused item of the request."""

    error: RefusalDetail


class Health(Answer):
    status: Literal["ok"]


class Ready(Answer):
    status: Literal["ready"]


# -- channels and roots -------------------------------------------------------------------------


class ChannelSummary(Answer):
    name: str
    channel_config: Key
    format: Format
    latest_root_seq: Seq
    latest_epoch: Seq


class ChannelList(Answer):
    channels: Annotated[list[ChannelSummary], Meta(max_length=MAX_LIMIT)]
    next_after: Annotated[
        Key | None,
        Meta(description="pass as ?after= for the next page; null on the last page"),
    ]


class RootSummary(Answer):
    root_seq: Seq
    epoch: Seq
    root: Hex
    dataset_hash: Hex
    leaf_count: Count
    total: U128Text
    settlement_status: Status


class ChannelDetail(Answer):
    name: str
    channel_config: Key
    subject_id: Hex
    format: Format
    program_id: Key
    mint: Key
    latest_root_seq: Seq
    latest_epoch: Seq
    updated_at: Stamp
    latest_root: RootSummary | None


class RootList(Answer):
    channel: str
    channel_config: Key
    roots: Annotated[list[RootSummary], Meta(max_length=MAX_LIMIT)]
    next_before: Annotated[
        Seq | None,
        Meta(description="pass as ?before= for the next page; null on the last page"),
    ]


class InputRange(Answer):
    partition: Count
    first_offset: Count
    last_offset: Count


class Settlement(Answer):
    status: str
    signature: str | None
    slot: Count | None
    attempts: Count
    updated_at: Stamp


class RootDetail(Answer):
    channel: str
    channel_config: Key
    format: Format
    program_id: Key
    mint: Key
    root_seq: Seq
    epoch: Seq
    root: Hex
    dataset_hash: Hex
    leaf_count: Count
    tree_depth: Annotated[int, Meta(ge=0, le=MAX_PROOF_LEN)]
    total: U128Text
    emission: U128Text
    closed_at_slot: Count
    input_offsets: list[InputRange]
    created_at: Stamp
    settlement: Settlement | None
    dataset_url: str


# -- claims -----------------------------------------------------------------------------------


class ClaimLeaf(Answer):
    """The fields every claim answer starts with: whose leaf, in which root, for how much."""

    channel: str
    channel_config: Key
    format: Format
    program_id: Key
    mint: Key
    wallet: Key
    claim_state: Annotated[
        Key | None,
        Meta(description="ClaimStateV2 PDA of (channel_config, wallet); null for ring-v0"),
    ]
    root_seq: Seq
    epoch: Seq
    leaf_index: Count
    amount: Annotated[
        U64Text, Meta(description="what the leaf commits to (cumulative-v2: the total)")
    ]
    cumulative_total: U64Text | None


_ClaimId = Annotated[
    str | None,
    Meta(description="ring-v0 claim id '<channel>:<epoch>'; null for cumulative-v2"),
]


class Claim(ClaimLeaf):
    """Everything a claim transaction needs, against the newest root holding the wallet."""

    claimed_total: U64Text | None
    claimable: Annotated[
        U64Text | None,
        Meta(description="max(0, cumulative_total - claimed_total); null for ring-v0"),
    ]
    claim_id: _ClaimId
    leaf: Hex
    root: Hex
    proof: Proof
    latest_root_seq: Seq
    stale: Annotated[
        bool,
        Meta(
            description="the program no longer keeps this root (cumulative-v2: root_seq <= "
            "latest_root_seq - 4; ring-v0: epoch <= latest_epoch - 10)"
        ),
    ]
    settlement_status: Status


class RootClaim(ClaimLeaf):
    """A wallet's leaf and proof in one given root (immutable: no claimed total)."""

    claim_id: _ClaimId
    leaf: Hex
    root: Hex
    dataset_hash: Hex
    proof: Proof


class WalletClaims(Answer):
    wallet: Key
    claims: Annotated[list[Claim], Meta(max_length=MAX_LIMIT)]
    next_after: Key | None


class DatasetEntry(Answer):
    """One leaf of a dataset (`api.dataset`: a JSON array of them, or one per line)."""

    index: Count
    wallet: Key
    amount: U64Text


class TwoPartDatasetEntry(Answer):
    """One leaf of a global-v5 dataset: its amount (the total) and the two parts the leaf
    commits to."""

    index: Count
    wallet: Key
    amount: U64Text
    base_yield: U64Text
    attention_bonus: U64Text


# -- global claims ------------------------------------------------------------------------------

#: a JSON number the live SDKs read; the API never serves one above this (JavaScript's
#: Number.MAX_SAFE_INTEGER), it answers 422 instead.
SAFE_INTEGER = 2**53 - 1
_SafeNumber = Annotated[int, Meta(ge=0, le=SAFE_INTEGER)]


class GlobalClaim(Answer):
    """`GET /v1/claims/{wallet}`: a wallet's claim against the newest global root, with the
    live API's field names and types, so the public SDKs work unchanged (wzrd-velocity reads
    root_seq, base_yield, attention_bonus, leaf_index, proof; twzrd-trust cumulative_total,
    claimed_total): amounts are JSON numbers (at most 2^53 - 1), proof nodes lower-case hex
    without 0x."""

    root_seq: _SafeNumber
    base_yield: _SafeNumber
    attention_bonus: _SafeNumber
    cumulative_total: _SafeNumber
    claimed_total: _SafeNumber
    leaf_index: Count
    proof: Proof
    claimable: _SafeNumber
    claim_state: Annotated[Key, Meta(description="ClaimStateGlobal PDA of (mint, wallet)")]
    stale: bool
    settlement_status: Status
    leaf: Hex
    root: Hex
    format: GlobalFormat
    wallet: Key
    mint: Key
    program_id: Key
    global_root_config: Key
    latest_root_seq: Seq


class GlobalClaimText(Answer):
    """`GET /v1/global/claims/{wallet}`: the same claim with every amount a decimal string
    (any u64, for clients that read amounts as strings like the per-channel answers)."""

    root_seq: Seq
    base_yield: U64Text
    attention_bonus: U64Text
    cumulative_total: U64Text
    claimed_total: U64Text
    leaf_index: Count
    proof: Proof
    claimable: U64Text
    claim_state: Key
    stale: bool
    settlement_status: Status
    leaf: Hex
    root: Hex
    format: GlobalFormat
    wallet: Key
    mint: Key
    program_id: Key
    global_root_config: Key
    latest_root_seq: Seq


# -- verify -------------------------------------------------------------------------------------


class VerifyRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    """The body of POST /v1/verify: the leaf's inputs, the proof and the root (`api.verify`
    parses it field by field, for an error code naming the field)."""

    format: Literal["cumulative-v2"] | UnsetType = UNSET
    channel: (
        Annotated[
            ChannelName,
            Meta(description="channel name (its config PDA is derived with mint, program_id)"),
        ]
        | UnsetType
    ) = UNSET
    channel_config: Key | UnsetType = UNSET
    mint: Annotated[Key, Meta(description="default: the service's AOP_MINT")] | UnsetType = UNSET
    program_id: (
        Annotated[Key, Meta(description="default: the service's AOP_PROGRAM_ID")] | UnsetType
    ) = UNSET
    root_seq: Seq | Annotated[str, Meta(pattern="^[0-9]{1,19}$")]
    wallet: Key
    cumulative_total: U64Number | U64Text
    proof: Annotated[list[_AnyHex], Meta(max_length=MAX_PROOF_LEN)]
    root: _AnyHex


class VerifyResult(Answer):
    valid: bool
    leaf: Hex
    computed_root: Hex
    channel_config: Key


# -- the encoder --------------------------------------------------------------------------------

_ENCODER = msgspec.json.Encoder()
#: compact UTF-8 JSON of an answer (Structs, and the plain values the document is made of).
encode = _ENCODER.encode
#: newline-delimited JSON: each item of a list, then "\n".
encode_lines = _ENCODER.encode_lines


def error_body(code: str, message: str, items: list[RefusedItem] | None = None) -> bytes:
    """The bytes of `{"error": {"code", "message"}}`, or with `items` those of a `Refusal`."""
    if items:
        return encode(Refusal(RefusalDetail(code, message, items)))
    return encode(Error(ErrorDetail(code, message)))
