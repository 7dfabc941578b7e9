"""plan_range: slot ranges become contiguous, complete, deduplicated SlotBatches."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aop.log.chain_event import RoutedEvent
from aop.streams.listener.batcher import (
    PlannedBatch,
    RangeChoice,
    choose_range,
    cursor_at,
    cut_at_epoch_end,
    plan_range,
)
from aop.streams.listener.model import SignatureInfo

PARTITIONS = 4


def _event(partition: int, slot: int, signature: str, index: int, position: int = 0) -> RoutedEvent:
    fields = {"n": str(index)}
    return RoutedEvent(
        partition, slot, signature, index, "ChannelStaked", None, "P", b"", fields, position
    )


def _ids(batch: PlannedBatch) -> list[str]:
    return [e.id for e in batch.events]


def test_plan_range_writes_every_partition_including_idle_ones() -> None:
    events = [_event(2, 105, "b", 0), _event(2, 101, "a", 1), _event(2, 101, "a", 0)]
    batches = plan_range(
        first_slot=100, last_slot=110, events=events, next_slot=[100] * 4, max_events=10
    )
    assert [(b.partition, b.first_slot, b.last_slot, _ids(b)) for b in batches] == [
        (0, 100, 110, []),
        (1, 100, 110, []),
        (2, 100, 110, ["a:0", "a:1", "b:0"]),
        (3, 100, 110, []),
    ]


def test_plan_range_orders_a_slot_by_transaction_position_then_event_index() -> None:
    """Block order wins over signature order; event indices keep their order."""
    events = [_event(0, 7, "a", 1, position=1), _event(0, 7, "b", 0, position=0)]
    events += [_event(0, 7, "a", 0, position=1), _event(0, 6, "z", 0, position=3)]
    batches = plan_range(first_slot=5, last_slot=9, events=events, next_slot=[5], max_events=9)
    assert [_ids(b) for b in batches] == [["z:0", "b:0", "a:0", "a:1"]]


def test_plan_range_skips_what_a_partition_already_has() -> None:
    """A partition ahead of the range gets only its missing tail (or nothing)."""
    events = [_event(1, 103, "x", 0), _event(1, 106, "y", 0), _event(2, 104, "z", 0)]
    batches = plan_range(
        first_slot=100,
        last_slot=110,
        events=events,
        next_slot=[100, 105, 111, 100],
        max_events=10,
    )
    assert [(b.partition, b.first_slot, b.last_slot, _ids(b)) for b in batches] == [
        (0, 100, 110, []),
        (1, 105, 110, ["y:0"]),
        (3, 100, 110, []),
    ]


def test_plan_range_splits_at_slot_boundaries_but_never_inside_a_slot() -> None:
    events = [_event(0, 100, "a", i) for i in range(3)] + [
        _event(0, 102, "b", 0),
        _event(0, 107, "c", 0),
        _event(0, 107, "c", 1),
    ]
    batches = plan_range(
        first_slot=100, last_slot=109, events=events, next_slot=[100], max_events=2
    )
    assert [(b.first_slot, b.last_slot, _ids(b)) for b in batches] == [
        (100, 101, ["a:0", "a:1", "a:2"]),
        (102, 106, ["b:0"]),
        (107, 109, ["c:0", "c:1"]),
    ]


def test_plan_range_cursor_is_the_newest_signature_at_or_below_each_batch_end() -> None:
    events = [_event(0, 101, "a", 0), _event(0, 105, "b", 0)]
    newest = [(101, "a"), (103, "q"), (105, "b")]
    batches = plan_range(
        first_slot=100,
        last_slot=110,
        events=events,
        next_slot=[100, 100],
        max_events=1,
        newest=newest,
        previous_cursor="old",
    )
    assert [(b.partition, b.first_slot, b.last_slot, b.cursor) for b in batches] == [
        (0, 100, 104, "q"),
        (0, 105, 110, "b"),
        (1, 100, 110, "b"),
    ]
    assert cursor_at(newest, 100, "old") == "old"


def test_plan_range_rejects_an_event_outside_the_range() -> None:
    with pytest.raises(ValueError, match=r"event s:0 has slot 99, outside \[100, 110\]"):
        plan_range(
            first_slot=100,
            last_slot=110,
            events=[_event(0, 99, "s", 0)],
            next_slot=[100],
            max_events=5,
        )


_events = st.lists(
    st.builds(
        _event,
        st.integers(0, PARTITIONS - 1),
        st.integers(0, 40),
        st.sampled_from(["s1", "s2", "s3", "s4", "s5"]),
        st.integers(0, 3),
        st.integers(0, 2),
    ),
    max_size=60,
).map(lambda evs: list({e.id: e for e in evs}.values()))  # one slot and partition per id


@settings(max_examples=200, deadline=None)
@given(
    events=_events,
    deliveries=st.data(),
    next_slot=st.lists(st.integers(0, 45), min_size=PARTITIONS, max_size=PARTITIONS),
    max_events=st.integers(1, 8),
)
def test_plan_range_is_the_same_for_any_interleaving_or_repetition(
    events: list[RoutedEvent], deliveries: st.DataObject, next_slot: list[int], max_events: int
) -> None:
    """Shuffled and repeated deliveries give identical, contiguous, complete batches."""
    repeated = deliveries.draw(st.lists(st.sampled_from(events), max_size=30)) if events else []
    shuffled = deliveries.draw(st.permutations(events + repeated))
    kwargs = {"first_slot": 0, "last_slot": 40, "next_slot": next_slot, "max_events": max_events}
    reference = plan_range(events=events, **kwargs)
    assert plan_range(events=shuffled, **kwargs) == reference

    for partition in range(PARTITIONS):
        mine = [b for b in reference if b.partition == partition]
        start = max(0, next_slot[partition])
        if start > 40:
            assert mine == []
            continue
        assert mine[0].first_slot == start
        assert mine[-1].last_slot == 40
        for before, after in itertools.pairwise(mine):
            assert after.first_slot == before.last_slot + 1
        got = [e for b in mine for e in b.events]
        want = sorted(
            (e for e in events if e.partition == partition and e.slot >= start),
            key=lambda e: e.order,
        )
        assert got == want
        for batch in mine:
            assert all(batch.first_slot <= e.slot <= batch.last_slot for e in batch.events)
            if len({e.slot for e in batch.events}) > 1:
                assert len(batch.events) <= max_events


def _sigs(*slots: int) -> list[SignatureInfo]:
    """Newest first, as the RPC lists them: one signature per given slot."""
    infos = [SignatureInfo(f"s{i}", slot, None, None) for i, slot in enumerate(slots)]
    return sorted(infos, key=lambda info: -info.slot)


def test_choose_range_under_the_cap_takes_everything_up_to_final() -> None:
    choice = choose_range(_sigs(101, 103, 103), final_slot=120, max_txs=3)
    assert (choice.last_slot, len(choice.in_range), choice.later) == (120, 3, [])


def test_choose_range_over_the_cap_ends_before_the_first_slot_left_out() -> None:
    choice = choose_range(_sigs(101, 102, 105, 105, 107), final_slot=120, max_txs=3)
    assert choice.last_slot == 104
    assert sorted(i.slot for i in choice.in_range) == [101, 102]
    assert [i.slot for i in choice.later] == [107, 105, 105]


def test_choose_range_never_splits_a_slot_even_over_the_cap() -> None:
    choice = choose_range(_sigs(101, 101, 101, 102), final_slot=120, max_txs=2)
    assert choice.last_slot == 101
    assert [i.slot for i in choice.in_range] == [101, 101, 101]
    assert [i.slot for i in choice.later] == [102]


def _info(signature: str, slot: int) -> SignatureInfo:
    return SignatureInfo(signature, slot, None, None)


def test_a_range_is_cut_at_its_epochs_end_and_the_rest_waits() -> None:
    """Range [90, 130] with epochs of 100 slots: it ends at 99; the transactions of 120 and
    105 go to the next step, ahead of those already left for later."""
    choice = RangeChoice(130, [_info("c", 120), _info("b", 105), _info("a", 95)], [_info("z", 140)])
    cut = cut_at_epoch_end(choice, 99)
    assert cut.last_slot == 99
    assert [i.signature for i in cut.in_range] == ["a"]
    assert [i.signature for i in cut.later] == ["c", "b", "z"]
    assert cut_at_epoch_end(choice, 130) is choice


def test_the_batches_ending_the_range_carry_its_last_block_time() -> None:
    """Partition 0's span splits into [100, 101] and [102, 110]: only the one ending at 110
    has the time; idle partition 1 has one batch, ending at 110, with the time."""
    events = [_event(0, 100, "a", 0), _event(0, 101, "b", 0), _event(0, 102, "c", 0)]
    batches = plan_range(
        first_slot=100,
        last_slot=110,
        events=events,
        next_slot=[100, 100],
        max_events=2,
        last_block_time=1_796_666_400,
    )
    assert [(b.partition, b.last_slot, b.last_block_time) for b in batches] == [
        (0, 101, None),
        (0, 110, 1_796_666_400),
        (1, 110, 1_796_666_400),
    ]
    assert batches[1].to_avro()["last_block_time"] == 1_796_666_400
