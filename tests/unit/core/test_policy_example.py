"""The policy on a small log whose allocations were computed by hand (see each test's notes)."""

from __future__ import annotations

from typing import Any

import pytest
from solders.pubkey import Pubkey

from aop.core.claims import ClaimInput, TreeScope, get_claim_format
from aop.core.fold import ReferenceFold, fold_log
from aop.core.fold_config import FoldConfig
from aop.core.policy import split_emission
from tests.support.fold_logs import (
    MINT,
    PROGRAM_ID,
    LogWriter,
    claimed,
    config_for,
    emergency_unstake,
    key,
    stake,
    unstake,
)

A, B, C = key("A"), key("B"), key("C")  # bytes order: A (55..) < C (6b..) < B (df..)


def _example(config: FoldConfig) -> LogWriter:
    """Epochs of 100 slots from genesis 1000; emission 1000 per epoch; one channel, partition 0.

    batch 0 [980, 1060]: C opens n3 (7 x 10000) at 990, before genesis; A opens n1 (10 x
        10000) at 1020; B opens n2 (30 x 15000) at 1050.
    batch 1 [1061, 1120]: A closes n1 at 1070; A opens n4 (1 x 20000) at 1099, the last slot
        of epoch 0; a close of unknown n9 at 1110. last_slot 1120 >= 1099 closes epoch 0.
    batch 2 [1121, 1199]: C emergency-closes n3 at 1130; B's claim of 652 at 1150; a second
        open of n2 at 1160 (rejected). last_slot 1199 closes epoch 1.
    """
    alpha = config.channels[0].config
    log = LogWriter(partitions=1)
    log.next_slot[0] = 980
    log.batch(
        0,
        1060,
        [
            log.event(stake(C, alpha, key("n3"), 7, 10_000), 990),
            log.event(stake(A, alpha, key("n1"), 10, 10_000), 1020),
            log.event(stake(B, alpha, key("n2"), 30, 15_000), 1050),
        ],
    )
    log.batch(
        0,
        1120,
        [
            log.event(unstake(A, alpha, key("n1")), 1070),
            log.event(stake(A, alpha, key("n4"), 1, 20_000), 1099),
            log.event(unstake(A, alpha, key("n9")), 1110),
        ],
    )
    log.batch(
        0,
        1199,
        [
            log.event(emergency_unstake(C, alpha, key("n3")), 1130),
            log.event(claimed(alpha, B, 652), 1150),
            log.event(stake(B, alpha, key("n2"), 5, 10_000), 1160),
        ],
    )
    return log


def _config(fmt: str = "cumulative-v2") -> FoldConfig:
    return config_for(
        ["alpha"],
        partitions=1,
        genesis_slot=1000,
        epoch_slots=100,
        emission=1000,
        formats={"alpha": fmt},
        first_root_seq={"alpha": 7},
    )


def _entries(root: Any) -> list[tuple[bytes, int]]:
    return list(zip(root.tree.wallets, root.tree.amounts, strict=True))


def test_cumulative_example_allocations_match_the_hand_computation() -> None:
    """Epoch 0 weights (amount x boost x slots held in [1000, 1099]):
    A = 10*10000*50 (1020..1069) + 1*20000*1 (1099) = 5,020,000; B = 30*15000*50 = 22,500,000;
    C = 7*10000*100 (opened before genesis: counts from 1000) = 7,000,000; W = 34,520,000.
    E*w/W: A 145.42 (rem 14,600,000), B 651.80 (rem 27,480,000), C 202.78 (rem 26,960,000);
    floors sum to 998, so B and C (largest remainders) get +1: A 145, B 652, C 203.

    Epoch 1 [1100, 1199]: A = 20000*100 = 2,000,000; B = 450000*100 = 45,000,000;
    C = 70000*30 (1100..1129) = 2,100,000; W = 49,100,000.
    A 40.73 (rem 36,000,000), B 916.50 (rem 24,400,000), C 42.77 (rem 37,800,000); floors 998,
    so C and A get +1: A 41, B 916, C 43. Cumulative: A 186, B 1568, C 246.
    """
    config = _config()
    log = _example(config)
    roots = fold_log(log.records, config)

    assert [(r.epoch, r.root_seq) for r in roots] == [(0, 7), (1, 8)]
    assert _entries(roots[0]) == [(A, 145), (C, 203), (B, 652)]
    assert _entries(roots[1]) == [(A, 186), (C, 246), (B, 1568)]
    first, second = roots[0].epoch_root, roots[1].epoch_root
    assert (first["total"], first["emission"], first["leaf_count"]) == ("1000", "1000", 3)
    assert (second["total"], second["closed_at_slot"]) == ("2000", 1199)
    assert first["closed_at_slot"] == 1120
    assert first["input"] == [{"partition": 0, "first_offset": 0, "last_offset": 1}]
    assert second["input"] == [{"partition": 0, "first_offset": 1, "last_offset": 2}]


def test_cumulative_example_root_is_the_core_tree_of_the_hand_totals() -> None:
    """The records carry core's cumulative-v2 tree over the written-out totals."""
    config = _config()
    roots = fold_log(_example(config).records, config)
    scope = TreeScope(Pubkey.from_string(PROGRAM_ID), Pubkey.from_string(MINT), "alpha", 8, 1)
    tree = get_claim_format("cumulative-v2").build(
        scope, [ClaimInput(A, 186), ClaimInput(B, 1568), ClaimInput(C, 246)]
    )
    record = roots[1].epoch_root
    assert (record["root"], record["dataset_hash"]) == (tree.root, tree.dataset_hash)
    assert record["channel_config"] == str(scope.channel_config)
    [chunk] = roots[1].chunks
    assert chunk["entries"] == b"".join(
        w + t.to_bytes(8, "little") for w, t in [(A, 186), (C, 246), (B, 1568)]
    )
    assert (chunk["chunk_index"], chunk["chunk_count"], chunk["first_leaf"]) == (0, 1, 0)


def test_ring_example_orders_by_first_seen_and_carries_epoch_amounts() -> None:
    """ring-v0: the epoch's own amounts, indexed by first slot staked: C (990), A (1020),
    B (1050)."""
    config = _config("ring-v0")
    roots = fold_log(_example(config).records, config)
    assert _entries(roots[0]) == [(C, 203), (A, 145), (B, 652)]
    assert _entries(roots[1]) == [(C, 43), (A, 41), (B, 916)]
    [chunk] = roots[1].chunks
    assert chunk["entries"] == b"".join(
        w + i.to_bytes(4, "little") + a.to_bytes(8, "little")
        for i, (w, a) in enumerate([(C, 43), (A, 41), (B, 916)])
    )
    scope = TreeScope(Pubkey.from_string(PROGRAM_ID), Pubkey.from_string(MINT), "alpha", 8, 1)
    assert roots[1].epoch_root["channel_config"] == str(
        get_claim_format("ring-v0").root_account(scope)
    )


def test_example_rejects_a_second_open_and_skips_an_unknown_close() -> None:
    config = _config()
    fold = ReferenceFold(config)
    results = list(fold.feed_all(_example(config).records))
    assert results[1].counts["skipped_unknown_position"] == 1
    [rejection] = results[2].rejections
    assert rejection.reason == "duplicate_position"
    assert rejection.source.startswith("aop.chain.events/0/2#sig")
    record = rejection.dead_letter(at_ms=5)
    assert (record["stage"], record["reason"], record["at_ms"]) == ("fold", "duplicate_position", 5)


def test_example_claim_raises_the_claimed_total() -> None:
    config = _config()
    fold = ReferenceFold(config)
    list(fold.feed_all(_example(config).records))
    state = fold.stores[0].wallet(config.channels[0].config, B)
    assert state is not None
    assert (state.claimed, state.total) == (652, 1568)


def test_split_gives_remainder_ties_to_the_lowest_wallet_bytes() -> None:
    """Three equal weights, E = 2: floors 0, remainders all 2, so the two lowest wallets win."""
    low, mid, high = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    assert split_emission(2, {high: 5, low: 5, mid: 5}) == {low: 1, mid: 1, high: 0}


def test_split_of_exact_proportions_has_no_remainder() -> None:
    a, b = b"\x01" * 32, b"\x02" * 32
    assert split_emission(10, {a: 1, b: 4}) == {a: 2, b: 8}
    assert split_emission(10, {a: 0, b: 0}) == {}


def test_split_refuses_a_negative_weight() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        split_emission(10, {b"\x01" * 32: -1})
