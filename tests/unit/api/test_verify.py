"""POST /v1/verify's core: the leaf and fold, recomputed here with our own keccak calls."""

from __future__ import annotations

import msgspec
import pytest
from sha3 import keccak_256
from solders.pubkey import Pubkey

from aop.api.errors import BadRequestError
from aop.api.shapes import encode
from aop.api.verify import parse_json_body, verify_claim
from aop.runtime.settings import CCM_MINT, PROGRAM_ID

WALLET = bytes(range(32))


def _k(data: bytes) -> bytes:
    return keccak_256(data).digest()


def _config(channel: str) -> Pubkey:
    subject = _k(b"channel:" + channel.lower().encode())
    mint = bytes(Pubkey.from_string(CCM_MINT))
    return Pubkey.find_program_address(
        [b"channel_cfg_v2", mint, subject], Pubkey.from_string(PROGRAM_ID)
    )[0]


def _leaf(config: Pubkey, root_seq: int, total: int) -> bytes:
    return _k(
        b"TWZRD:CUMULATIVE_V2"
        + bytes(config)
        + bytes(Pubkey.from_string(CCM_MINT))
        + root_seq.to_bytes(8, "little")
        + WALLET
        + total.to_bytes(8, "little")
    )


def _verify(body: dict) -> dict:
    """The answer as a client reads it (a JSON object)."""
    result = verify_claim(body, default_mint=CCM_MINT, default_program_id=PROGRAM_ID)
    return msgspec.json.decode(encode(result))


def test_two_leaf_tree_verifies_for_both_channel_forms() -> None:
    config = _config("youtube_lofi")
    leaf = _leaf(config, 7, 1234)
    other = b"\x42" * 32
    root = _k(min(leaf, other) + max(leaf, other))
    body = {
        "channel": "YouTube_Lofi",
        "root_seq": 7,
        "wallet": str(Pubkey(WALLET)),
        "cumulative_total": "1234",
        "proof": [other.hex()],
        "root": root.hex(),
    }
    assert _verify(body) == {
        "valid": True,
        "leaf": leaf.hex(),
        "computed_root": root.hex(),
        "channel_config": str(config),
    }
    by_config = {**body, "channel_config": str(config), "cumulative_total": 1234}
    del by_config["channel"]
    assert _verify(by_config)["valid"] is True
    assert _verify({**body, "root_seq": 8})["valid"] is False


def test_empty_proof_verifies_when_leaf_is_root() -> None:
    config = _config("solo")
    leaf = _leaf(config, 1, 5)
    body = {
        "channel_config": str(config),
        "root_seq": "1",
        "wallet": str(Pubkey(WALLET)),
        "cumulative_total": 5,
        "proof": [],
        "root": leaf.hex().upper(),
    }
    assert _verify(body)["valid"] is True


def test_errors_name_the_field() -> None:
    with pytest.raises(BadRequestError, match="proof must have at most 32 nodes") as info:
        _verify(
            {
                "channel": "a",
                "root_seq": 1,
                "wallet": str(Pubkey(WALLET)),
                "cumulative_total": 1,
                "proof": ["00" * 32] * 33,
                "root": "00" * 32,
            }
        )
    assert info.value.code == "proof_too_long"
    with pytest.raises(BadRequestError, match=r"missing field\(s\) \['root'\]"):
        _verify({"channel": "a", "root_seq": 1, "wallet": "x", "cumulative_total": 1, "proof": []})


def test_body_must_be_a_json_object() -> None:
    assert parse_json_body(b'{"a": 1}') == {"a": 1}
    for body, code in ((b"nope", "bad_json"), (b"[]", "bad_body"), (b"\xfe", "bad_json")):
        with pytest.raises(BadRequestError) as info:
            parse_json_body(body)
        assert info.value.code == code
