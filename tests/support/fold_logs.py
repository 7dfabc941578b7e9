"""Builders of SlotBatch logs for the fold's tests (events encoded with `core.events`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aop.core.events import (
    ChannelEmergencyUnstaked,
    ChannelStaked,
    ChannelUnstaked,
    CumulativeRewardsClaimed,
    Event,
)
from aop.core.fold_config import FoldConfig

PROGRAM_ID = "GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop"
MINT = "Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM"


def key(label: str) -> bytes:
    """A deterministic 32-byte public key for a test label."""
    return hashlib.sha256(label.encode()).digest()


def chain_event(
    event: Event, slot: int, signature: str, index: int = 0, program_id: str = PROGRAM_ID
) -> dict[str, Any]:
    """A ChainEvent record carrying `event`'s bytes."""
    return {
        "id": f"{signature}:{index}",
        "signature": signature,
        "slot": slot,
        "block_time": None,
        "event_index": index,
        "program_id": program_id,
        "name": event.NAME,
        "data": event.encode(),
        "fields": {},
    }


def slot_batch(
    partition: int, first_slot: int, last_slot: int, events: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    return {
        "partition": partition,
        "first_slot": first_slot,
        "last_slot": last_slot,
        "events": list(events),
        "cursor": None,
        "last_block_time": None,
    }


def stake(
    user: bytes, channel: bytes, nft: bytes, amount: int, boost_bps: int = 10_000
) -> ChannelStaked:
    return ChannelStaked(
        user=user,
        channel=channel,
        amount=amount,
        nft_mint=nft,
        lock_duration=0,
        boost_bps=boost_bps,
        timestamp=0,
    )


def unstake(user: bytes, channel: bytes, nft: bytes, amount: int = 0) -> ChannelUnstaked:
    return ChannelUnstaked(user=user, channel=channel, amount=amount, nft_mint=nft, timestamp=0)


def emergency_unstake(user: bytes, channel: bytes, nft: bytes) -> ChannelEmergencyUnstaked:
    return ChannelEmergencyUnstaked(
        user=user,
        channel=channel,
        staked_amount=0,
        penalty_amount=0,
        returned_amount=0,
        nft_mint=nft,
        remaining_lock_slots=0,
        timestamp=0,
    )


def claimed(
    channel: bytes, claimer: bytes, total: int, root_seq: int = 1
) -> CumulativeRewardsClaimed:
    return CumulativeRewardsClaimed(
        channel=channel,
        claimer=claimer,
        user_amount=0,
        creator_amount=0,
        cumulative_total=total,
        root_seq=root_seq,
    )


def config_for(
    channels: Iterable[str],
    *,
    partitions: int = 4,
    genesis_slot: int = 0,
    epoch_slots: int = 100,
    emission: int | dict[str, int] = 1_000_000,
    formats: dict[str, str] | None = None,
    first_root_seq: dict[str, int] | None = None,
) -> FoldConfig:
    def emission_for(name: str) -> int:
        return emission if isinstance(emission, int) else emission.get(name, 0)

    return FoldConfig.create(
        program_id=PROGRAM_ID,
        mint=MINT,
        genesis_slot=genesis_slot,
        epoch_slots=epoch_slots,
        partitions=partitions,
        channels=list(channels),
        emission_for=emission_for,
        claim_format_for=lambda n: (formats or {}).get(n, "cumulative-v2"),
        first_root_seq_for=lambda n: (first_root_seq or {}).get(n, 1),
    )


@dataclass
class LogWriter:
    """Appends SlotBatches per partition; `records` is the log as (partition, offset, batch)."""

    partitions: int
    records: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)
    next_slot: dict[int, int] = field(default_factory=dict)
    _offsets: dict[int, int] = field(default_factory=dict)
    _sig: int = 0

    def event(self, event: Event, slot: int) -> dict[str, Any]:
        self._sig += 1
        return chain_event(event, slot, f"sig{self._sig:08d}")

    def batch(
        self, partition: int, last_slot: int, events: Sequence[dict[str, Any]] = ()
    ) -> dict[str, Any]:
        first = self.next_slot.get(partition, 0)
        batch = slot_batch(partition, first, last_slot, events)
        self.append(partition, batch)
        self.next_slot[partition] = last_slot + 1
        return batch

    def append(self, partition: int, batch: dict[str, Any]) -> None:
        offset = self._offsets.get(partition, 0)
        self._offsets[partition] = offset + 1
        self.records.append((partition, offset, batch))


def random_log(
    config: FoldConfig,
    *,
    seed: int,
    batches: int,
    events_per_batch: int,
    slots_per_batch: int = 10,
    wallets: int = 30,
) -> list[tuple[int, dict[str, Any]]]:
    """A realistic staking log: (partition, SlotBatch) in append order, every partition
    advancing together (empty batches included), opens, closes, claims and a few repeats."""
    import random

    rng = random.Random(seed)
    log = LogWriter(config.partitions)
    out: list[tuple[int, dict[str, Any]]] = []
    open_positions: dict[bytes, list[tuple[bytes, bytes]]] = {s.config: [] for s in config.channels}
    serial = 0
    for i in range(batches):
        last = (i + 1) * slots_per_batch - 1
        for partition in range(config.partitions):
            specs = config.channels_of(partition)
            events = []
            for _ in range(events_per_batch if specs else 0):
                spec = rng.choice(specs)
                slot = rng.randint(last - slots_per_batch + 1, last)
                positions = open_positions[spec.config]
                roll = rng.random()
                if roll < 0.55 or not positions:
                    serial += 1
                    wallet = key(f"wallet{rng.randrange(wallets)}")
                    nft = key(f"nft{serial}")
                    amount = rng.randint(1, 10**12)
                    boost = rng.choice([10_000, 12_500, 15_000, 20_000])
                    event: Any = stake(wallet, spec.config, nft, amount, boost)
                    positions.append((wallet, nft))
                elif roll < 0.85:
                    wallet, nft = positions.pop(rng.randrange(len(positions)))
                    close = unstake if rng.random() < 0.7 else emergency_unstake
                    event = close(wallet, spec.config, nft)
                else:
                    wallet = key(f"wallet{rng.randrange(wallets)}")
                    event = claimed(spec.config, wallet, rng.randint(0, 10**9))
                events.append(log.event(event, slot))
            if events and rng.random() < 0.05:  # a repeated open: rejected by the fold
                events.append(dict(events[0], id=events[0]["id"] + "r"))
            events.sort(key=lambda e: e["slot"])
            out.append((partition, log.batch(partition, last, events)))
    return out
