"""Logs for the replay tests: a small hand-computed one and a realistic random one."""

from __future__ import annotations

from typing import Any

from aop.core.fold_config import FoldConfig
from tests.support.fold_logs import LogWriter, key, stake, unstake

#: (partition, SlotBatch) in append order.
Batches = list[tuple[int, dict[str, Any]]]

WALLET_A = key("replay-wallet-a")
WALLET_B = key("replay-wallet-b")
WALLET_C = key("replay-wallet-c")


def spec_of(config: FoldConfig, name: str) -> Any:
    return next(s for s in config.channels if s.name == name)


def alpha_log(config: FoldConfig, *, extra_stake: bool = False) -> Batches:
    """Channel `alpha` (emission 1,000,000 per epoch of 100 slots from slot 0):

    * epoch 0: A stakes 100 at slot 0 (and, with `extra_stake`, B stakes 100 at slot 50, in
      the record at offset 1 which is otherwise empty);
    * epoch 1: C stakes 300 at slot 100; A unstakes at slot 150;
    * epoch 2: C alone.

    Without the extra stake: root_seq 1 = {A: 1,000,000}; root_seq 2 = {A: 1,000,000 +
    1e6 * 50/(50 + 300) ...}: see the tests for the exact figures. Every other partition gets
    empty watermark batches at the same slots, so its epochs close too.
    """
    spec = spec_of(config, "alpha")
    ch, p = spec.config, spec.partition
    log = LogWriter(config.partitions)
    out: Batches = []

    def add(partition: int, last: int, events: list[dict[str, Any]] | None = None) -> None:
        out.append((partition, log.batch(partition, last, events or [])))

    def step(last: int, events: list[dict[str, Any]] | None = None) -> None:
        for partition in range(config.partitions):
            add(partition, last, events if partition == p else None)

    add(p, 49, [log.event(stake(WALLET_A, ch, key("nft-a"), 100), 0)])
    extra = [log.event(stake(WALLET_B, ch, key("nft-b"), 100), 50)] if extra_stake else []
    add(p, 99, extra)
    for partition in range(config.partitions):
        if partition != p:
            add(partition, 99)
    step(149, [log.event(stake(WALLET_C, ch, key("nft-c"), 300), 100)])
    step(199, [log.event(unstake(WALLET_A, ch, key("nft-a")), 150)])
    step(299)
    step(310)
    return out


def without_events(batches: Batches, partition: int, index: int) -> Batches:
    """`batches` with the events of the `index`-th batch of `partition` removed."""
    out: Batches = []
    seen = 0
    for part, batch in batches:
        if part == partition:
            if seen == index:
                batch = dict(batch, events=[])
            seen += 1
        out.append((part, batch))
    return out
