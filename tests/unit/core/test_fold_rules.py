"""The fold's rules one by one: epochs closing, idle gaps, refusals, skips and rejections."""

from __future__ import annotations

from aop.core.epoch import EpochClock
from aop.core.fold import ReferenceFold, fold_log
from aop.core.validation import U64_MAX
from tests.support.fold_logs import (
    LogWriter,
    chain_event,
    claimed,
    config_for,
    key,
    slot_batch,
    stake,
    unstake,
)


def test_epoch_clock_bounds_and_slots_held() -> None:
    clock = EpochClock(genesis_slot=1000, epoch_slots=100)
    assert (clock.epoch_of(999), clock.epoch_of(1000), clock.epoch_of(1199)) == (-1, 0, 1)
    assert (clock.first_slot(2), clock.last_slot(2)) == (1200, 1299)
    assert [clock.slots_from(s, 1) for s in (900, 1100, 1150, 1199, 1200)] == [100, 100, 50, 1, 0]


def test_one_batch_closes_every_epoch_of_an_idle_gap_with_a_root_each() -> None:
    """A position held across a gap earns every epoch; the one batch closes them all."""
    config = config_for(["alpha"], partitions=1, epoch_slots=10, emission=100)
    alpha = config.channels[0].config
    log = LogWriter(1)
    log.batch(0, 4, [log.event(stake(key("w"), alpha, key("n"), 3), 5 - 1)])
    log.batch(0, 45)
    roots = fold_log(log.records, config)
    assert [(r.epoch, r.root_seq, r.epoch_root["total"]) for r in roots] == [
        (0, 1, "100"),
        (1, 2, "200"),
        (2, 3, "300"),
        (3, 4, "400"),
    ]
    assert [r.epoch_root["input"][0]["first_offset"] for r in roots] == [0, 1, 1, 1]
    assert {r.epoch_root["closed_at_slot"] for r in roots} == {45}


def test_events_of_a_straddling_batch_apply_to_their_own_epochs() -> None:
    """Slots 8 and 12 in one batch: the first counts in epoch 0, the second only in epoch 1."""
    config = config_for(["alpha"], partitions=1, epoch_slots=10, emission=1000)
    alpha = config.channels[0].config
    a, b = key("a"), key("b")
    log = LogWriter(1)
    log.batch(
        0,
        19,
        [
            log.event(stake(a, alpha, key("na"), 1), 8),
            log.event(stake(b, alpha, key("nb"), 1), 12),
        ],
    )
    roots = fold_log(log.records, config)
    # epoch 0: only a (2 slots) -> 1000; epoch 1: a 10 slots, b 8 slots -> 556 / 444 (+1 to a).
    assert [dict(zip(r.tree.wallets, r.tree.amounts, strict=True)) for r in roots] == [
        {a: 1000},
        {a: 1556, b: 444},
    ]


def test_no_weight_means_no_root_and_no_root_seq() -> None:
    config = config_for(["alpha"], partitions=1, epoch_slots=10, emission=7)
    alpha = config.channels[0].config
    log = LogWriter(1)
    log.batch(0, 25)  # epochs 0 and 1 close with nobody staked
    log.batch(
        0,
        29,
        [
            log.event(stake(key("w"), alpha, key("n"), 1), 27),
            log.event(unstake(key("w"), alpha, key("n")), 27),  # held 0 slots
        ],
    )
    log.batch(0, 39, [log.event(stake(key("w"), alpha, key("m"), 1), 30)])
    roots = fold_log(log.records, config)
    assert [(r.epoch, r.root_seq) for r in roots] == [(3, 1)]


def test_zero_emission_channel_gets_no_root() -> None:
    config = config_for(["alpha"], partitions=1, epoch_slots=10, emission=0)
    alpha = config.channels[0].config
    log = LogWriter(1)
    log.batch(0, 30, [log.event(stake(key("w"), alpha, key("n"), 1), 1)])
    assert fold_log(log.records, config) == []


def test_total_overflow_is_refused_without_consuming_a_root_seq() -> None:
    """The second epoch would take the wallet past u64: dead letter, no root, then recovery."""
    config = config_for(["alpha"], partitions=1, epoch_slots=10, emission=U64_MAX)
    alpha = config.channels[0].config
    log = LogWriter(1)
    log.batch(0, 9, [log.event(stake(key("w"), alpha, key("n"), 1), 0)])
    log.batch(0, 19)
    fold = ReferenceFold(config)
    first, second = fold.feed_all(log.records)
    assert [r.root_seq for r in first.roots] == [1]
    assert second.roots == []
    [rejection] = second.rejections
    assert rejection.reason == "refused_total_overflow"
    assert "above the u64 maximum" in rejection.detail
    state = fold.stores[0].wallet(alpha, key("w"))
    assert state is not None and state.total == U64_MAX


def test_more_than_1024_ring_claims_are_refused() -> None:
    config = config_for(
        ["alpha"], partitions=1, epoch_slots=10, emission=10**6, formats={"alpha": "ring-v0"}
    )
    alpha = config.channels[0].config
    log = LogWriter(1)
    log.batch(
        0, 9, [log.event(stake(key(f"w{i}"), alpha, key(f"n{i}"), 1), 0) for i in range(1025)]
    )
    [result] = ReferenceFold(config).feed_all(log.records)
    assert result.roots == []
    assert [r.reason for r in result.rejections] == ["refused_too_many_claims"]


def test_unknown_channels_are_skipped_and_foreign_partitions_rejected() -> None:
    config = config_for(["alpha", "beta", "gamma", "delta"], partitions=4, epoch_slots=10)
    by_partition = {s.partition: s for s in config.channels}
    here, there = sorted(by_partition)[:2]
    log = LogWriter(4)
    log.batch(
        here,
        9,
        [
            log.event(stake(key("w"), key("not a served channel"), key("n1"), 1), 1),
            log.event(stake(key("w"), by_partition[there].config, key("n2"), 1), 2),
            log.event(stake(key("w"), by_partition[here].config, key("n3"), 1), 3),
        ],
    )
    [result] = ReferenceFold(config).feed_all(log.records)
    assert result.counts["skipped_unknown_channel"] == 1
    assert [r.reason for r in result.rejections] == ["wrong_partition"]
    assert [r.channel for r in result.roots] == [by_partition[here].name]


def test_late_and_replayed_batches_change_nothing() -> None:
    config = config_for(["alpha"], partitions=1, epoch_slots=10, emission=10)
    alpha = config.channels[0].config
    log = LogWriter(1)
    first = log.batch(0, 5, [log.event(stake(key("w"), alpha, key("n"), 1), 3)])
    log.append(0, first)  # the same batch again, at a later offset: all its slots are late
    log.batch(0, 9)
    fold = ReferenceFold(config)
    results = list(fold.feed_all(log.records))
    assert results[1].counts["skipped_late_batch"] == 1
    assert fold.feed(0, 0, first).skipped  # an offset already folded
    [root] = results[2].roots
    assert root.epoch_root["total"] == "10"


def test_bad_records_and_events_are_rejected_with_reasons() -> None:
    config = config_for(["alpha"], partitions=1, epoch_slots=10)
    alpha = config.channels[0].config
    event = chain_event(stake(key("w"), alpha, key("n"), 1), 50, "sig")
    claim = chain_event(claimed(alpha, key("w"), 1), 3, "bad")
    garbled = {**claim, "data": claim["data"][:20]}
    fold = ReferenceFold(config)
    wrong = fold.feed(0, 0, slot_batch(3, 0, 9))
    inside = fold.feed(0, 1, slot_batch(0, 0, 9, [event, garbled]))
    undecodable = fold.feed_undecodable(0, 2, b"junk", "not avro")
    assert [r.reason for r in wrong.rejections] == ["partition_mismatch"]
    reasons = sorted(r.reason for r in inside.rejections)
    assert reasons == ["event_outside_batch", "undecodable_event"]
    assert [r.reason for r in undecodable.rejections] == ["undecodable_batch"]
    other_program = {**event, "slot": 12, "program_id": "11111111111111111111111111111111"}
    skipped = fold.feed(0, 3, slot_batch(0, 10, 19, [other_program]))
    assert skipped.counts["skipped_other_program"] == 1
