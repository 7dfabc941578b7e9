"""The independent legacy aggregator of the parallel-run tests (tests/support) against the
reference's vectors and hand-computed amounts, and against our fold: over the same traffic,
our ring-v0-legacy attention roots are its roots, (channel, epoch) for (channel, epoch)."""

from __future__ import annotations

import pytest

from aop.core.fold import ReferenceFold
from tests.support.fold_logs import key
from tests.support.legacy_aggregator import LegacyAggregator, amount_of, claim_leaf, merkle_root
from tests.support.legacy_scenario import legacy_roots, legacy_scenario, signal_batches
from tests.support.signal_logs import attention_config_for, binding, signal

CHANNELS = ["lofigirl", "ansem", "mixed"]
LEGACY = {"lofigirl": "ring-v0-legacy", "ansem": "ring-v0-legacy"}
#: 2026-11-18 00:00 UTC.
FIRST = 1_794_960_000


def test_claim_leaf_is_the_reference_ring_leaf_vector() -> None:
    """Reference §12: keccak([07]*32 || u32 5 || u64 123456 || "twitch:unit:alice")."""
    assert claim_leaf(bytes([7]) * 32, 5, 123456, "twitch:unit:alice").hex() == (
        "3719e81ed948903eb5fefc3ddd9e4e12d18f24f3462a57509618651678cc11b4"
    )


def test_merkle_root_pairs_sorted_and_duplicates_the_odd_node() -> None:
    """Reference §12's three-leaf V2 example (the same tree rule as ring-v0's)."""
    leaves = [
        bytes.fromhex("da1958b9514205f3f06a25b8534d51dd0b5c3375b05cecc39d6c9ac099719569"),
        bytes.fromhex("e494d5df23ef8b7897abe7490b164db875c4f047e1d95c76cad1894cf635c73f"),
        bytes.fromhex("7f5e886f70e93d172fbfa8e89a99c979960734ad72f1940b03f8d136895346c3"),
    ]
    assert merkle_root(leaves).hex() == (
        "b167e655801696f66bbcc9f444d4140c750dceb18d8004fbff40b1bbcf396caa"
    )
    assert merkle_root(leaves[:1]) == leaves[0]


@pytest.mark.parametrize(
    ("counts", "amount"),
    [
        ({"presence": 1}, 80 * 10**9),
        ({"sub": 1, "gift": 3}, 25 * 80 * 10**9),
        ({"bits": 333}, 266_400_000_000),  # 3.33 × 80 × 10^9
        ({"raid": 3, "presence": 2}, 184_000_000_000),  # 2.3 × 80 × 10^9
        ({"chat": 40, "listen_seconds": 600}, 0),
    ],
)
def test_amount_is_math_round_of_the_float_weight(counts: dict[str, int], amount: int) -> None:
    assert amount_of(counts) == amount


def test_seal_orders_by_first_seen_then_user_hash_and_skips_the_unpaid() -> None:
    """Two users at the same first_seen are ordered by keccak(lowercase name); an unbound
    user and a chat-only one get no leaf."""
    hour = FIRST
    legacy = LegacyAggregator()
    legacy.ingest(
        "irc",
        [
            signal("1", "lofigirl", "Bob", "presence", 1, hour * 1000 + 5),
            signal("2", "lofigirl", "alice", "bits", 150, hour * 1000 + 5),
            signal("3", "lofigirl", "carol", "chat", 9, hour * 1000 + 1),
            signal("4", "lofigirl", "dave", "sub", 1, hour * 1000 + 2),
        ],
        [binding(f"b{u}", u, key(u), hour * 1000 - 1) for u in ("alice", "bob", "carol")],
    )
    # keccak("alice") = 9c0257..., keccak("bob") = 38e47a...: bob first
    leaves = [
        claim_leaf(key("bob"), 0, 80 * 10**9, "twitch:lofigirl:bob"),
        claim_leaf(key("alice"), 1, 120 * 10**9, "twitch:lofigirl:alice"),
    ]
    assert legacy.seal(hour) == {"lofigirl": merkle_root(leaves)}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_our_fold_gives_the_independent_legacy_roots(seed: int) -> None:
    """Every ring-v0-legacy attention root of our reference fold is the independent
    aggregator's for its (channel, epoch), and no (channel, epoch) has a root on one side
    only (the cumulative-v2 channel is not compared)."""
    config = attention_config_for(CHANNELS, partitions=2, formats=LEGACY)
    assert config.attention is not None
    partition_of = {c.name: c.partition for c in config.attention.channels}
    steps = legacy_scenario(CHANNELS, seed=seed, first_epoch=FIRST)
    fold = ReferenceFold(config)
    offsets: dict[int, int] = {}
    ours = {}
    for partition, batch in signal_batches(steps, partition_of, 2):
        offset = offsets.get(partition, 0)
        offsets[partition] = offset + 1
        for root in fold.feed_signals(partition, offset, batch).roots:
            if root.epoch_root["format"] == "ring-v0-legacy":
                ours[(root.channel, root.epoch)] = root.epoch_root["root"]
    theirs = {k: r for k, r in legacy_roots(steps).items() if k[0] in LEGACY}
    assert sorted(theirs) == [(c, FIRST + e * 3600) for c in sorted(LEGACY) for e in range(3)]
    assert ours == theirs
