"""claims_of: one rule for claimed totals, whichever decoder read the SlotBatch."""

from __future__ import annotations

import hashlib

import pytest
from solders.pubkey import Pubkey

from aop.core.errors import CoreError
from aop.core.events import ChannelStaked, CumulativeRewardsClaimed, GlobalRewardsClaimed
from aop.log.avro import AvroCodec
from aop.log.chain_event import RoutedEvent
from aop.log.slot_batch import SlotBatchDecoder, SlotBatchEncoder
from aop.projections.claims import ClaimUpdate, claims_of, signature_of

CHANNEL = hashlib.sha256(b"channel").digest()
WALLET_A = hashlib.sha256(b"wallet-a").digest()
WALLET_B = hashlib.sha256(b"wallet-b").digest()
PROGRAM = "GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop"


def claim(wallet: bytes, total: int, seq: int) -> bytes:
    return CumulativeRewardsClaimed(CHANNEL, wallet, total, 0, total, seq).encode()


def event(slot: int, signature: str, index: int, name: str, data: bytes) -> RoutedEvent:
    return RoutedEvent(2, slot, signature, index, name, None, PROGRAM, data, {"k": "v"})


STAKE = ChannelStaked(WALLET_A, CHANNEL, 5, WALLET_B, 0, 0, 0).encode()
EVENTS = [
    event(10, "sigA", 0, "CumulativeRewardsClaimed", claim(WALLET_A, 70, 1)),
    # the claim's bytes under another name: a claim (the discriminator decides)
    event(11, "sigB", 3, "UnknownEvent", claim(WALLET_B, 5, 1)),
    # another event's bytes under the claim's name: not a claim
    event(12, "sigC", 0, "CumulativeRewardsClaimed", STAKE),
    # the claim's discriminator, a body cut short: refused, not a claim
    event(13, "sigD", 1, "CumulativeRewardsClaimed", claim(WALLET_A, 99, 2)[:-3]),
    event(14, "sigE", 0, "ChannelStaked", STAKE),
]
#: written out from the inputs above, not from the code under test.
EXPECTED = [
    ClaimUpdate(str(Pubkey(CHANNEL)), WALLET_A, 70, 1, 10, "sigA"),
    ClaimUpdate(str(Pubkey(CHANNEL)), WALLET_B, 5, 1, 11, "sigB"),
]


@pytest.fixture
def record() -> bytes:
    """The SlotBatch as the listener writes it."""
    return SlotBatchEncoder(AvroCodec(), topic="t").encode(2, 10, 14, EVENTS, None)


def test_projector_view_and_loader_view_give_the_same_updates(record: bytes) -> None:
    """The projector decodes whole ChainEvents (AvroCodec), the loader the fold's view
    (SlotBatchDecoder: no name, no signature): the same updates from both."""
    projector_view = AvroCodec().decode_as("SlotBatch", record)
    loader_view = SlotBatchDecoder(AvroCodec()).decode(record)
    assert "name" not in loader_view["events"][0]
    assert "signature" not in loader_view["events"][0]
    from_projector = claims_of(projector_view)
    from_loader = claims_of(loader_view)
    assert from_projector.updates == EXPECTED
    assert from_loader.updates == EXPECTED
    assert [bad.event_id for bad in from_projector.undecodable] == ["sigD:1"]
    assert [bad.event_id for bad in from_loader.undecodable] == ["sigD:1"]


def test_undecodable_claim_carries_the_decoders_error(record: bytes) -> None:
    (bad,) = claims_of(AvroCodec().decode_as("SlotBatch", record)).undecodable
    assert isinstance(bad.error, CoreError)
    size = 8 + 32 + 32 + 4 * 8  # discriminator, channel, claimer, four u64
    assert str(bad.error) == (
        f"CumulativeRewardsClaimed: payload must be {size} bytes (got {size - 3}: short)"
    )


def test_signature_is_the_event_id_before_its_last_colon() -> None:
    assert signature_of("5VfY:12") == "5VfY"
    assert signature_of("a:b:0") == "a:b"


def test_global_claims_update_the_deployments_global_root_account() -> None:
    """GlobalRewardsClaimed names no account: the caller's GlobalRootConfig is the key, and
    without one (a deployment that does not serve global roots) they are skipped."""
    account = str(Pubkey(bytes([7]) * 32))
    paid = GlobalRewardsClaimed(WALLET_B, 400, 1_000, 1802).encode()
    events = [*EVENTS, event(15, "sigF", 2, "GlobalRewardsClaimed", paid)]
    record = SlotBatchEncoder(AvroCodec(), topic="t").encode(2, 10, 15, events, None)
    for view in (
        AvroCodec().decode_as("SlotBatch", record),
        SlotBatchDecoder(AvroCodec()).decode(record),
    ):
        assert claims_of(view).updates == EXPECTED
        assert claims_of(view, global_account=account).updates == [
            *EXPECTED,
            ClaimUpdate(account, WALLET_B, 1_000, 1802, 15, "sigF"),
        ]
    broken = [event(16, "sigG", 0, "GlobalRewardsClaimed", paid[:-1])]
    cut = SlotBatchEncoder(AvroCodec(), topic="t").encode(2, 16, 16, broken, None)
    (bad,) = claims_of(AvroCodec().decode_as("SlotBatch", cut), global_account=account).undecodable
    assert bad.event_id == "sigG:0"
