"""The fold's parts on their own: the split against its definition, the payload fast path
against core's decoder, the SlotBatch reader, the bucketed store and the fault plan."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aop.core.errors import EventDecodeError
from aop.core.events import decode_event
from aop.core.fold_state import ChannelMeta, PartitionMeta, Position
from aop.core.policy import (
    PolicyRefusedError,
    check_cumulative_totals,
    check_epoch_amounts,
    policy_event,
    policy_event_from_payload,
    split_emission,
)
from aop.log.avro import AvroCodec, AvroDecodeError
from aop.log.slot_batch import SlotBatchDecoder
from aop.streams.fold.table_state import (
    MAX_VALUE_BYTES,
    StateFormatError,
    StateTooLargeError,
    TableState,
)
from tests.support.fold_logs import (
    chain_event,
    claimed,
    config_for,
    emergency_unstake,
    key,
    slot_batch,
    stake,
    unstake,
)

wallets = st.binary(min_size=32, max_size=32)


def _split_by_definition(emission: int, weights: dict[bytes, int]) -> dict[bytes, int]:
    total = sum(weights.values())
    shares = {w: emission * x // total for w, x in weights.items() if x}
    ranked = sorted((-(emission * x % total), w) for w, x in weights.items() if x)
    for _, wallet in ranked[: emission - sum(shares.values())]:
        shares[wallet] += 1
    return shares


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 10**19),
    st.dictionaries(wallets, st.integers(0, 10**30), min_size=1, max_size=40).filter(
        lambda w: sum(w.values()) > 0
    ),
)
def test_split_matches_its_definition_and_sums_to_the_emission(
    emission: int, weights: dict[bytes, int]
) -> None:
    shares = split_emission(emission, weights)
    assert shares == _split_by_definition(emission, weights)
    assert sum(shares.values()) == emission


def test_epoch_checks_refuse_wrong_sums_and_falling_or_huge_totals() -> None:
    a, b = b"\x01" * 32, b"\x02" * 32
    with pytest.raises(PolicyRefusedError, match="sum_mismatch: allocations sum to 9"):
        check_epoch_amounts(10, {a: 4, b: 5})
    with pytest.raises(PolicyRefusedError, match="total_decreased") as refused:
        check_cumulative_totals({a: 5, b: 1}, {a: 4, b: 2})
    assert refused.value.reason == "total_decreased"
    with pytest.raises(PolicyRefusedError, match="total_overflow"):
        check_cumulative_totals({a: 5}, {a: 2**64})
    check_cumulative_totals({a: 5}, {a: 5, b: 1})


@given(
    st.sampled_from(["open", "close", "emergency", "claim"]),
    wallets,
    wallets,
    wallets,
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
)
def test_payload_fast_path_reads_what_core_decodes(
    kind: str, wallet: bytes, channel: bytes, nft: bytes, amount: int, boost: int
) -> None:
    event = {
        "open": lambda: stake(wallet, channel, nft, amount, boost),
        "close": lambda: unstake(wallet, channel, nft, amount),
        "emergency": lambda: emergency_unstake(wallet, channel, nft),
        "claim": lambda: claimed(channel, wallet, amount),
    }[kind]()
    data = event.encode()
    assert policy_event_from_payload(data) == policy_event(decode_event(data))
    for broken in (data[:-1], data + b"\x00"):
        with pytest.raises(EventDecodeError):
            policy_event_from_payload(broken)


def test_payload_fast_path_leaves_other_events_to_core() -> None:
    assert policy_event_from_payload(b"\x00" * 8 + b"anything") is None


def test_slot_batch_reader_keeps_what_the_fold_reads() -> None:
    codec = AvroCodec()
    channel = config_for(["a"], partitions=1).channels[0].config
    event = chain_event(stake(key("w"), channel, key("n"), 5), 3, "sig")
    event["fields"] = {"amount": "5"}
    batch = slot_batch(0, 1, 9, [event])
    decoded = SlotBatchDecoder(codec).decode(codec.encode("SlotBatch", batch))
    assert decoded == {
        "partition": 0,
        "first_slot": 1,
        "last_slot": 9,
        "events": [{k: event[k] for k in ("id", "slot", "program_id", "data")}],
        "last_block_time": None,
    }
    with pytest.raises(AvroDecodeError, match="expected a SlotBatch"):
        SlotBatchDecoder(codec).decode(
            codec.encode(
                "InputRange",
                {
                    "partition": 0,
                    "first_offset": 0,
                    "last_offset": 1,
                },
            )
        )
    with pytest.raises(AvroDecodeError):
        SlotBatchDecoder(codec).decode(b"junk")


def test_store_splits_buckets_and_keeps_every_entry() -> None:
    """Five wallets with two entries per bucket: the wallet buckets double until they fit."""
    table: dict[bytes, bytes] = {}
    state = TableState(table, max_entries=2)
    channel = key("channel")
    store = state.chunk(0)
    for i in range(5):
        store.wallet_for_update(channel, key(f"w{i}"))[0] = i + 1
    store.open_position(channel, key("n"), Position(key("w0"), 1, 2, 3))
    store.put_channel(channel, ChannelMeta(0, 15, 0))
    store.put_partition_meta(PartitionMeta(offset=7))
    writes = store.writes(7)
    assert writes[-1].key == b"p|0"
    for write in writes:
        table[write.key] = write.data
        state.remember(write)
    assert all(len(w.value[1]) <= 2 for w in writes if w.key.startswith(b"w|"))
    again = TableState(table, max_entries=2).chunk(0)
    assert sorted(s[0] for _, s in again.wallets(channel)) == [1, 2, 3, 4, 5]
    assert again.position(channel, key("n")) == Position(key("w0"), 1, 2, 3)
    assert again.partition_meta() == PartitionMeta(offset=7)


def test_store_reads_a_partly_written_chunk_through_its_undo() -> None:
    """A key written by a chunk whose partition meta never landed reads as before it."""
    table: dict[bytes, bytes] = {}
    state = TableState(table)
    channel = key("channel")
    first = state.chunk(0)
    first.wallet_for_update(channel, key("w"))[0] = 1
    first.put_partition_meta(PartitionMeta(offset=3))
    for write in first.writes(3):
        table[write.key] = write.data
    second = TableState(table).chunk(0)
    second.wallet_for_update(channel, key("w"))[0] = 99
    second.put_partition_meta(PartitionMeta(offset=9))
    partial = [w for w in second.writes(9) if w.key != b"p|0"]
    for write in partial:
        table[write.key] = write.data
    after_crash = TableState(table).chunk(0)
    state_at_3 = after_crash.wallet(channel, key("w"))
    assert state_at_3 is not None and state_at_3.rate == 1
    assert after_crash.base_offset == 3


def test_store_refuses_huge_values_and_foreign_formats() -> None:
    state = TableState({}, max_entries=10**6)
    store = state.chunk(0)
    channel = key("channel")
    for i in range(MAX_VALUE_BYTES // 40):
        store.wallet_for_update(channel, i.to_bytes(32, "little"))
    with pytest.raises(StateTooLargeError, match="operator action"):
        store.writes(0)
    with pytest.raises(StateFormatError, match=r"format b'\{'"):
        TableState({b"p|0": b'{"o": 1}'}).chunk(0)
