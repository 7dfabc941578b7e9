"""The hand-written claim encoder gives exactly the bytes of the generic JSON encoder."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aop.api.http import json_bytes
from aop.api.reader import claim_json

_HEX = st.binary(min_size=32, max_size=32).map(bytes.hex)
_B58 = st.just("4oPCg5ZkXHG8Ktce8Z4W5aUZ3c5NSsYaTSCmec38WDD1")
_DIGITS = st.integers(0, 2**64 - 1).map(str)
_TEXT = st.text(max_size=70)


@given(
    channel=_TEXT,
    fmt=st.sampled_from(["cumulative-v2", "ring-v0", 'we"ird\\']),
    claim_state=st.none() | _B58,
    numbers=st.tuples(*[st.integers(0, 2**63 - 1)] * 4),
    amounts=st.tuples(_DIGITS, st.none() | _DIGITS, st.none() | _DIGITS, st.none() | _DIGITS),
    claim_id=st.none() | _TEXT,
    proof=st.lists(_HEX, max_size=32),
    stale=st.booleans(),
    status=st.none() | _TEXT,
    leaf=_HEX,
)
def test_claim_json_equals_json_bytes(
    channel, fmt, claim_state, numbers, amounts, claim_id, proof, stale, status, leaf
) -> None:  # type: ignore[no-untyped-def]
    claim = {
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
    assert claim_json(claim) == json_bytes(claim)
