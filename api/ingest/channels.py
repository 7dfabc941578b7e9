"""The channels an ingest accepts signals for, and the partition each one's signals go to.

A channel's signals travel in the partition of `aop.attention.signals` that has the same
number as its chain events' partition of `aop.chain.events`: `core.routing.partition_for_channel`
of its ChannelConfigV2 PDA (`core.pda.channel_config_address`), as the fold derives it
(`core.fold_config.FoldConfig.create`). So one fold worker sees both inputs of a channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from solders.pubkey import Pubkey

from aop.core.pda import channel_config_address
from aop.core.routing import partition_for_channel
from aop.runtime.settings import Settings

__all__ = ["ServedChannels"]


class ServedChannels:
    """Served channel names (ASCII-lower-cased, as the log stores them) -> partition."""

    def __init__(
        self, names: Iterable[str], *, program_id: Pubkey, mint: Pubkey, partitions: int
    ) -> None:
        partition_of: dict[str, int] = {}
        for name in names:
            config = channel_config_address(program_id=program_id, mint=mint, channel=name)
            partition_of[name.lower()] = partition_for_channel(bytes(config.address), partitions)
        self.partitions = partitions
        self._partition_of: Mapping[str, int] = MappingProxyType(partition_of)

    @classmethod
    def from_settings(cls, settings: Settings) -> ServedChannels:
        """AOP_CHANNELS under AOP_PROGRAM_ID and AOP_MINT, over AOP_CHAIN_PARTITIONS."""
        return cls(
            settings.channels,
            program_id=Pubkey.from_string(settings.program_id),
            mint=Pubkey.from_string(settings.mint),
            partitions=settings.chain_partitions,
        )

    def partition_of(self, channel: str) -> int | None:
        """The partition of `channel` (any ASCII case), or None when it is not served."""
        return self._partition_of.get(channel.lower())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._partition_of)

    def __repr__(self) -> str:
        return f"ServedChannels({dict(self._partition_of)!r})"
