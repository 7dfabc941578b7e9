"""The attention fold on small logs whose results were worked out by hand (see each test).

One channel, "lofigirl", one partition, hourly epochs from H = 1,796,666,400 (18:00 UTC).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from solders.pubkey import Pubkey

from aop.core.attention.policy import AttentionPolicy
from aop.core.fold import ReferenceFold
from aop.core.fold_config import FoldConfig
from aop.core.fold_output import BatchResult
from aop.core.pda import attention_root_key, channel_config_address
from tests.support.fold_logs import MINT, PROGRAM_ID, key, random_log
from tests.support.signal_logs import (
    HOUR0 as H,
)
from tests.support.signal_logs import (
    SignalLogWriter,
    attention_config_for,
    binding,
    random_signals,
    signal,
)
from tests.unit.core import independent

WA, WB, WC = key("WA"), key("WB"), key("WC")
HOUR_MS = 3_600_000
T = H * 1000  # epoch H's first millisecond
PROGRAM, MINT_KEY = Pubkey.from_string(PROGRAM_ID), Pubkey.from_string(MINT)
CONFIG_PDA = bytes(
    channel_config_address(program_id=PROGRAM, mint=MINT_KEY, channel="lofigirl").address
)
ROOT_KEY = str(attention_root_key(program_id=PROGRAM, mint=MINT_KEY, channel="lofigirl").address)


def _config(policy: AttentionPolicy | None = None, fmt: str = "cumulative-v2") -> FoldConfig:
    return attention_config_for(
        ["lofigirl"],
        partitions=1,
        policies={"lofigirl": policy or AttentionPolicy()},
        formats={"lofigirl": fmt},
    )


def _example() -> SignalLogWriter:
    """r0 [watermark T]: bindings alice->WA at T-5000, bob->WB at T-1, carol->WC at T+10
        (inside epoch H: it applies from H+3600 on).
    r1 [watermark T+60,000]: epoch H's signals (module table below) and a repeat of alice's
        sub (same source and id): counted once.
    r2 [watermark T+3,600,000, a pure watermark]: closes epoch H.
    r3 [watermark T+7,200,000]: a signal of epoch H (late), a binding observed in epoch H
        (late), carol's presence in epoch H+3600; the watermark closes H+3600.

    Epoch H, weights in hundredths: alice presence + sub + 250 bits = 100 + 1000 + 250 = 1350,
    first seen T+1000; bob presence + 3 raids = 100 + 30 = 130, first seen T+500; carol 2
    gifts + resub = 1000 + 1000 = 2000, unbound in H; dave 5 chats = 0 (not counted as
    unbound: nothing to pay).
    """
    log = SignalLogWriter()
    log.batch(
        0,
        T,
        bindings=[
            binding("b1", "Alice", WA, T - 5000),
            binding("b2", "bob", WB, T - 1),
            binding("b3", "carol", WC, T + 10),
        ],
    )
    log.batch(
        0,
        T + 60_000,
        [
            signal("s1", "lofigirl", "alice", "presence", 1, T + 1000),
            signal("s2", "lofigirl", "ALICE", "sub", 1, T + 2000),
            signal("s3", "lofigirl", "alice", "bits", 250, T + 3000),
            signal("s4", "lofigirl", "bob", "presence", 1, T + 500),
            signal("s5", "lofigirl", "bob", "raid", 3, T + 600),
            signal("s6", "lofigirl", "carol", "gift", 2, T + 100),
            signal("s7", "lofigirl", "carol", "resub", 1, T + 200),
            signal("s8", "lofigirl", "dave", "chat", 5, T + 50),
            signal("s2", "lofigirl", "ALICE", "sub", 1, T + 2000),
        ],
    )
    log.batch(0, T + HOUR_MS)
    log.batch(
        0,
        T + 2 * HOUR_MS,
        [
            signal("s9", "lofigirl", "alice", "sub", 1, T + 5),
            signal("s10", "lofigirl", "carol", "presence", 1, T + HOUR_MS + 7),
        ],
        [binding("b4", "alice", WC, T + 999)],
    )
    return log


def _fold(config: FoldConfig, log: SignalLogWriter) -> list[BatchResult]:
    fold = ReferenceFold(config)
    return [fold.feed_signals(p, o, b) for p, o, b in log.records]


def _cumulative_root(root_seq: int, totals: dict[bytes, int]) -> bytes:
    leaves = [
        independent.cumulative_leaf(CONFIG_PDA, bytes(MINT_KEY), root_seq, w, t)
        for w, t in sorted(totals.items())
    ]
    return independent.root_of(leaves)


def test_per_weight_cumulative_roots_of_the_example() -> None:
    """H pays 80 x 10^9 per weight: alice (WA) 13.5 -> 1,080,000,000,000; bob (WB) 1.3 ->
    104,000,000,000; carol is unbound in H. H+3600 pays carol (WC, bound from then on) 1.0 ->
    80,000,000,000, so root_seq 2 holds the three totals."""
    results = _fold(_config(), _example())
    roots = [root for r in results for root in r.roots]
    assert [r.record_type for r in roots] == ["AttentionRoot", "AttentionRoot"]
    first, second = (r.epoch_root for r in roots)
    totals_1 = {WA: 1_080_000_000_000, WB: 104_000_000_000}
    totals_2 = {**totals_1, WC: 80_000_000_000}
    assert (first["epoch"], first["root_seq"], first["emission"], first["total"]) == (
        H,
        1,
        "1184000000000",
        "1184000000000",
    )
    assert first["root"] == _cumulative_root(1, totals_1)
    assert (second["epoch"], second["root_seq"], second["emission"]) == (
        H + 3600,
        2,
        "80000000000",
    )
    assert second["root"] == _cumulative_root(2, totals_2)
    assert first["channel_config"] == second["channel_config"] == ROOT_KEY
    assert (first["unbound_users"], second["unbound_users"]) == (1, 0)
    assert first["input"] == [{"partition": 0, "first_offset": 1, "last_offset": 2}]
    assert first["closed_at_ms"] == T + HOUR_MS
    assert results[1].counts["skipped_duplicate_signal"] == 1
    assert results[2].counts["unbound_users"] == 1


def test_markers_and_dead_letters_of_the_example() -> None:
    """The first watermark (T) opens epoch H: the marker says every epoch up to H-3600 is
    closed; r2 closes H, r3 closes H+3600. r3's signal s9 (epoch H) and binding b4 (observed
    in H) are late."""
    results = _fold(_config(), _example())
    markers = [r.attention_closed for r in results]
    assert [m.epoch if m else None for m in markers] == [H - 3600, None, H, H + 3600]
    late = [(j.reason, j.source) for j in results[3].rejections]
    assert late == [
        ("late_signal", "aop.attention.signals/0/3#b4"),
        ("late_signal", "aop.attention.signals/0/3#s9"),
    ]


def test_pro_rata_splits_the_epochs_emission_over_bound_wallets() -> None:
    """E = 1000 in H over WA 1350 and WB 130 (total 1480; carol's 2000 is unbound and not in
    the split): WA 1,350,000/1480 = 912 rem 240, WB 130,000/1480 = 87 rem 1240; the unit left
    goes to WB -> 912 + 88. H+3600: carol alone takes the 1000."""
    results = _fold(_config(AttentionPolicy(mode="pro-rata", emission=1000)), _example())
    first, second = (root.epoch_root for r in results for root in r.roots)
    assert first["root"] == _cumulative_root(1, {WA: 912, WB: 88})
    assert (first["emission"], first["total"]) == ("1000", "1000")
    assert second["root"] == _cumulative_root(2, {WA: 912, WB: 88, WC: 1000})
    assert (second["emission"], second["total"]) == ("1000", "2000")


def test_the_legacy_ring_v0_epochs_of_the_example() -> None:
    """ring-v0-legacy, per weight: H's claims are bob (first seen T+500) then alice (T+1000),
    indexes 0 and 1, ids twitch:lofigirl:bob / twitch:lofigirl:alice, amounts of the epoch
    only. H+3600 holds carol alone: index 0, 80,000,000,000."""
    results = _fold(_config(fmt="ring-v0-legacy"), _example())
    first, second = (root.epoch_root for r in results for root in r.roots)
    leaves = [
        independent.ring_leaf(WB, 0, 104_000_000_000, "twitch:lofigirl:bob"),
        independent.ring_leaf(WA, 1, 1_080_000_000_000, "twitch:lofigirl:alice"),
    ]
    assert first["root"] == independent.root_of(leaves)
    assert (first["format"], first["epoch"], first["root_seq"], first["leaf_count"]) == (
        "ring-v0-legacy",
        H,
        1,
        2,
    )
    assert second["root"] == independent.ring_leaf(WC, 0, 80_000_000_000, "twitch:lofigirl:carol")
    assert second["total"] == "80000000000"


def test_explicit_epochs_bad_signals_and_channels_of_other_partitions() -> None:
    """A legacy request's explicit epoch is honoured (a signal observed in H+3600 counted in
    H); a misaligned epoch, a zero value and an unknown channel are refused; a channel of
    partition 1 is refused on partition 0."""
    config = attention_config_for(["lofigirl", "other"], partitions=2)
    assert config.attention is not None
    parts = {c.name: c.partition for c in config.attention.channels}
    mine = parts["lofigirl"]
    elsewhere = (
        next(n for n, p in parts.items() if p != mine) if len(set(parts.values())) > 1 else None
    )
    log = SignalLogWriter()
    signals = [
        signal("e1", "lofigirl", "alice", "presence", 1, T + HOUR_MS + 1, epoch=H),
        signal("e2", "lofigirl", "alice", "presence", 1, T + 1, epoch=H + 1),
        signal("e3", "lofigirl", "alice", "presence", 0, T + 1),
        signal("e4", "nobody", "alice", "presence", 1, T + 1),
    ]
    if elsewhere is not None:
        signals.append(signal("e5", elsewhere, "alice", "presence", 1, T + 1))
    log.batch(mine, T, signals, [binding("b1", "alice", WA, T - 1)])
    log.batch(mine, T + HOUR_MS)
    results = _fold(config, log)
    reasons = sorted((j.reason, j.source.rsplit("#", 1)[1]) for j in results[0].rejections)
    expected = [("bad_signal", "e2"), ("bad_signal", "e3"), ("unknown_channel", "e4")]
    if elsewhere is not None:
        expected.append(("wrong_partition", "e5"))
    assert reasons == sorted(expected)
    [root] = results[1].roots
    assert root.epoch_root["epoch"] == H
    assert root.epoch_root["total"] == "80000000000"


def test_a_replayed_record_changes_nothing() -> None:
    config = _config()
    log = _example()
    fold = ReferenceFold(config)
    first = [fold.feed_signals(p, o, b) for p, o, b in log.records]
    again = fold.feed_signals(*log.records[1])
    assert again.skipped and not again.roots and not again.rejections
    assert [r.epoch_root for res in first for r in res.roots]


def _outputs(results: list[BatchResult]) -> list[Any]:
    out: list[Any] = []
    for result in results:
        out += [(r.record_type, r.key, r.epoch_root, r.chunks) for r in result.roots]
        out += [(j.reason, j.source, j.detail) for j in result.rejections]
        for marker in (result.closed, result.attention_closed):
            if marker is not None:
                out.append((marker.key, marker.record))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_interleaving_of_the_two_topics_changes_no_output(seed: int) -> None:
    """A random staking log and a random signal log fed in two random interleavings (each
    topic's partitions in log order): each topic's outputs are the same."""
    config = attention_config_for(["alpha", "beta", "gamma", "delta"], partitions=3, epoch_slots=50)
    chain = [
        ("chain", p, b) for p, b in random_log(config, seed=seed, batches=30, events_per_batch=5)
    ]
    signals = [("signals", p, b) for p, b in random_signals(config, seed=seed, batches=150)]
    runs = []
    for order_seed in (seed, seed + 100):
        rng = random.Random(order_seed)
        queues = {"chain": list(chain), "signals": list(signals)}
        fold = ReferenceFold(config)
        offsets: dict[tuple[str, int], int] = {}
        by_topic: dict[str, list[BatchResult]] = {"chain": [], "signals": []}
        while any(queues.values()):
            topic = rng.choice([t for t, q in queues.items() if q])
            _, partition, batch = queues[topic].pop(0)
            offset = offsets.get((topic, partition), 0)
            offsets[(topic, partition)] = offset + 1
            feed = fold.feed if topic == "chain" else fold.feed_signals
            by_topic[topic].append(feed(partition, offset, batch))
        runs.append({t: sorted(map(repr, _outputs(r))) for t, r in by_topic.items()})
    assert runs[0] == runs[1]
    assert any("AttentionRoot" in line for line in runs[0]["signals"])
