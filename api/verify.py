"""POST /v1/verify: recompute a cumulative-v2 leaf and fold a proof, as the program does.

The body names the leaf's inputs (the channel by name or config PDA, the mint, root_seq,
wallet, cumulative_total), the proof (at most 32 hex nodes) and the root. The answer says
whether the proof folds the leaf into the root, with the leaf and the root it computed; it
reads nothing from the database, so it also checks proofs this service never served.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from msgspec import NODEFAULT
from solders.pubkey import Pubkey

from aop.api.errors import BadRequestError
from aop.api.params import I64_MAX, U64_MAX, parse_hex32, parse_pubkey
from aop.api.shapes import VerifyRequest, VerifyResult
from aop.core.channel import MAX_CHANNEL_NAME_LEN
from aop.core.claims.cumulative_v2 import cumulative_leaf
from aop.core.merkle import MAX_PROOF_LEN, hash_pair
from aop.core.pda import channel_config_address

__all__ = ["VERIFY_FIELDS", "parse_json_body", "verify_claim"]

#: every field the body may have (`shapes.VerifyRequest`); others are refused (400 unknown_field).
VERIFY_FIELDS = frozenset(VerifyRequest.__struct_fields__)
_REQUIRED = tuple(
    name
    for name, default in zip(
        VerifyRequest.__struct_fields__, VerifyRequest.__struct_defaults__, strict=True
    )
    if default is NODEFAULT
)


def parse_json_body(body: bytes) -> dict[str, Any]:
    """The body as a JSON object.

    Raises:
        BadRequestError: bad_json (not UTF-8 JSON) or bad_body (not an object).
    """
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequestError("bad_json", f"the body must be JSON ({exc})") from None
    except RecursionError:
        raise BadRequestError("bad_json", "the body nests too deeply") from None
    if not isinstance(value, dict):
        raise BadRequestError(
            "bad_body", f"the body must be a JSON object (got {type(value).__name__})"
        )
    return value


def _integer(body: Mapping[str, Any], name: str, high: int) -> int:
    value = body[name]
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        value = int(value)
    if type(value) is int and 0 <= value <= high:
        return value
    raise BadRequestError(
        f"bad_{name}",
        f"{name} must be an integer in 0..{high}, as a JSON number or decimal string "
        f"(got {json.dumps(value)[:80]})",
    )


def verify_claim(
    body: Mapping[str, Any], *, default_mint: str, default_program_id: str
) -> VerifyResult:
    """Check the body's proof (a `shapes.VerifyRequest`, parsed field by field).

    Raises:
        BadRequestError: a missing, unknown or malformed field (the code names it).
    """
    unknown = sorted(set(body) - VERIFY_FIELDS)
    if unknown:
        raise BadRequestError(
            "unknown_field", f"unknown field(s) {unknown}; allowed: {sorted(VERIFY_FIELDS)}"
        )
    missing = [name for name in _REQUIRED if name not in body]
    if missing:
        raise BadRequestError("missing_field", f"missing field(s) {missing}")
    fmt = body.get("format", "cumulative-v2")
    if fmt != "cumulative-v2":
        raise BadRequestError(
            "bad_format", f"format must be 'cumulative-v2' (got {json.dumps(fmt)[:80]})"
        )
    mint = _pubkey_field(body, "mint", default_mint)
    if ("channel" in body) == ("channel_config" in body):
        raise BadRequestError(
            "bad_channel", "give exactly one of channel (a name) and channel_config (a PDA)"
        )
    if "channel" in body:
        name = body["channel"]
        if not (
            isinstance(name, str) and 1 <= len(name) <= MAX_CHANNEL_NAME_LEN and name.isascii()
        ):
            raise BadRequestError(
                "bad_channel",
                f"channel must be a name of 1-{MAX_CHANNEL_NAME_LEN} ASCII characters "
                f"(got {json.dumps(name)[:80]})",
            )
        program_id = _pubkey_field(body, "program_id", default_program_id)
        config = channel_config_address(program_id=program_id, mint=mint, channel=name).address
    else:
        if "program_id" in body:
            _pubkey_field(body, "program_id", default_program_id)
        config = _pubkey_field(body, "channel_config", "")
    root_seq = _integer(body, "root_seq", I64_MAX)
    total = _integer(body, "cumulative_total", U64_MAX)
    wallet = _pubkey_field(body, "wallet", "")
    proof_value = body["proof"]
    if not isinstance(proof_value, list):
        raise BadRequestError(
            "bad_proof", f"proof must be a list of hex nodes (got {type(proof_value).__name__})"
        )
    if len(proof_value) > MAX_PROOF_LEN:
        raise BadRequestError(
            "proof_too_long",
            f"proof must have at most {MAX_PROOF_LEN} nodes (got {len(proof_value)})",
        )
    proof = [
        parse_hex32(node, code="bad_hex", what=f"proof[{i}]") for i, node in enumerate(proof_value)
    ]
    root = parse_hex32(body["root"], code="bad_hex", what="root")
    leaf = cumulative_leaf(
        channel_config=config, mint=mint, root_seq=root_seq, wallet=bytes(wallet),
        cumulative_total=total,
    )  # fmt: skip
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return VerifyResult(
        valid=node == root, leaf=leaf.hex(), computed_root=node.hex(), channel_config=str(config)
    )


def _pubkey_field(body: Mapping[str, Any], name: str, default: str) -> Pubkey:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise BadRequestError(
            f"bad_{name}", f"{name} must be a base58 public key (got {type(value).__name__})"
        )
    return parse_pubkey(value, code=f"bad_{name}", what=name)
