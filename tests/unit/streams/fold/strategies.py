"""Hypothesis strategies for the fold: random staking logs cut into SlotBatches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from aop.core.fold_config import FoldConfig
from tests.support.fold_logs import (
    LogWriter,
    chain_event,
    claimed,
    config_for,
    emergency_unstake,
    key,
    slot_batch,
    stake,
    unstake,
)

CHANNELS = ("alpha", "beta", "gamma")
PARTITIONS = 2
EPOCH_SLOTS = 20
LAST_SLOT = 130
WALLETS = [key(f"wallet{i}") for i in range(5)]
NFTS = [key(f"nft{i}") for i in range(8)]


@dataclass(frozen=True)
class Op:
    slot: int
    kind: str  # open, close, emergency, claim
    channel: int
    wallet: int
    nft: int
    amount: int
    boost: int


ops = st.builds(
    Op,
    slot=st.integers(0, LAST_SLOT - 10),
    kind=st.sampled_from(["open", "open", "close", "emergency", "claim"]),
    channel=st.integers(0, len(CHANNELS) - 1),
    wallet=st.integers(0, len(WALLETS) - 1),
    nft=st.integers(0, len(NFTS) - 1),
    amount=st.integers(0, 10**6),
    boost=st.sampled_from([0, 5_000, 10_000, 15_000, 30_000]),
)


@dataclass(frozen=True)
class Scenario:
    config: FoldConfig
    #: per partition, the batches' (first, last) slot ranges and their ChainEvents.
    batches: dict[int, list[tuple[int, int, list[dict[str, Any]]]]]

    def records(self) -> list[tuple[int, int, dict[str, Any]]]:
        """The log, partitions interleaved batch by batch."""
        log = LogWriter(PARTITIONS)
        longest = max(len(b) for b in self.batches.values())
        for i in range(longest):
            for partition in sorted(self.batches):
                if i < len(self.batches[partition]):
                    first, last, events = self.batches[partition][i]
                    log.append(partition, slot_batch(partition, first, last, events))
        return log.records


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A config (random emissions and formats) and a log of random staking events."""
    emissions = draw(st.lists(st.integers(0, 10**9), min_size=3, max_size=3))
    formats = draw(st.lists(st.sampled_from(["cumulative-v2", "ring-v0"]), min_size=3, max_size=3))
    config = config_for(
        CHANNELS,
        partitions=PARTITIONS,
        epoch_slots=EPOCH_SLOTS,
        emission=dict(zip(CHANNELS, emissions, strict=True)),
        formats=dict(zip(CHANNELS, formats, strict=True)),
    )
    specs = {s.name: s for s in config.channels}
    events: dict[int, list[tuple[int, dict[str, Any]]]] = {p: [] for p in range(PARTITIONS)}
    for n, op in enumerate(draw(st.lists(ops, max_size=40))):
        spec = specs[CHANNELS[op.channel]]
        wallet, nft = WALLETS[op.wallet], NFTS[op.nft]
        if op.kind == "open":
            event: Any = stake(wallet, spec.config, nft, op.amount, op.boost)
        elif op.kind == "close":
            event = unstake(wallet, spec.config, nft)
        elif op.kind == "emergency":
            event = emergency_unstake(wallet, spec.config, nft)
        else:
            event = claimed(spec.config, wallet, op.amount)
        events[spec.partition].append((op.slot, chain_event(event, op.slot, f"s{n:04d}")))
    batches: dict[int, list[tuple[int, int, list[dict[str, Any]]]]] = {}
    for partition in range(PARTITIONS):
        cuts = sorted(set(draw(st.lists(st.integers(0, LAST_SLOT - 1), max_size=8))))
        bounds = [*cuts, LAST_SLOT]
        ordered = sorted(events[partition], key=lambda e: e[0])
        batches[partition] = []
        first = 0
        for last in bounds:
            inside = [e for slot, e in ordered if first <= slot <= last]
            batches[partition].append((first, last, inside))
            first = last + 1
    return Scenario(config, batches)
