"""The declared answers: their bytes are the generic JSON encoding of their fields in
declaration order, and their fields and order are the ones clients have been reading."""

from __future__ import annotations

import json

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from aop.api import shapes
from aop.api.shapes import Claim, RootClaim, encode, error_body
from tests.support.api_answers import CLAIM_KEYS, ROOT_CLAIM_KEYS

_HEX = st.binary(min_size=32, max_size=32).map(bytes.hex)
_B58 = st.just("4oPCg5ZkXHG8Ktce8Z4W5aUZ3c5NSsYaTSCmec38WDD1")
_DIGITS = st.integers(0, 2**64 - 1).map(str)
_TEXT = st.text(max_size=70)


def _stdlib_json(value: object) -> bytes:
    """What clients got before: compact json.dumps, UTF-8, non-ASCII unescaped."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@given(
    channel=_TEXT,
    fmt=st.sampled_from(["cumulative-v2", "ring-v0"]),
    claim_state=st.none() | _B58,
    numbers=st.tuples(*[st.integers(0, 2**63 - 1)] * 4),
    amounts=st.tuples(_DIGITS, st.none() | _DIGITS, st.none() | _DIGITS, st.none() | _DIGITS),
    claim_id=st.none() | _TEXT,
    proof=st.lists(_HEX, max_size=32),
    stale=st.booleans(),
    status=st.none() | _TEXT,
    leaf=_HEX,
)
def test_claim_bytes_are_the_generic_json_of_its_fields_in_order(
    channel, fmt, claim_state, numbers, amounts, claim_id, proof, stale, status, leaf
) -> None:  # type: ignore[no-untyped-def]
    fields = {
        "channel": channel,
        "channel_config": "82zAAUuaFWLMhFN7saWZiVVz42eM6nAvcGCMyewD8wXB",
        "format": fmt,
        "program_id": "GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop",
        "mint": "Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM",
        "wallet": "4oPCg5ZkXHG8Ktce8Z4W5aUZ3c5NSsYaTSCmec38WDD1",
        "claim_state": claim_state,
        "root_seq": numbers[0],
        "epoch": numbers[1],
        "leaf_index": numbers[2],
        "amount": amounts[0],
        "cumulative_total": amounts[1],
        "claimed_total": amounts[2],
        "claimable": amounts[3],
        "claim_id": claim_id,
        "leaf": leaf,
        "root": leaf,
        "proof": proof,
        "latest_root_seq": numbers[3],
        "stale": stale,
        "settlement_status": status,
    }
    assert encode(Claim(**fields)) == _stdlib_json(fields)


@given(code=st.from_regex("[a-z_]+", fullmatch=True), message=st.text())
def test_error_body_is_the_documented_object(code: str, message: str) -> None:
    assert error_body(code, message) == _stdlib_json({"error": {"code": code, "message": message}})


def test_claim_fields_are_those_clients_read_in_that_order() -> None:
    assert list(Claim.__struct_fields__) == CLAIM_KEYS
    assert list(RootClaim.__struct_fields__) == ROOT_CLAIM_KEYS


def test_every_answer_is_a_closed_object_in_its_schema() -> None:
    answers = [
        value
        for value in vars(shapes).values()
        if isinstance(value, type)
        and issubclass(value, shapes.Answer)
        and value is not shapes.Answer
    ]
    _, components = msgspec.json.schema_components(answers)
    assert len(components) >= 18
    for name, schema in components.items():
        assert schema["additionalProperties"] is False, name
        assert schema["required"] == list(schema["properties"]), name
