"""Which partition of `aop.chain.events` carries a channel's events.

A channel is identified on the log by its ChannelConfigV2 PDA (the `channel` field of its
events). PDAs are uniformly distributed, so the first 8 bytes read as a little-endian integer,
modulo the partition count, spread channels evenly; anyone can recompute it.
Protocol-wide events (no channel) go to partition 0.
"""

from __future__ import annotations

__all__ = ["PROTOCOL_PARTITION", "partition_for_channel"]

PROTOCOL_PARTITION = 0


def partition_for_channel(channel_config: bytes, partitions: int) -> int:
    """The partition of the channel whose config PDA is `channel_config` (32 bytes)."""
    if len(channel_config) != 32:
        raise ValueError(f"channel_config must be 32 bytes (got {len(channel_config)})")
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1 (got {partitions})")
    return int.from_bytes(channel_config[:8], "little") % partitions
