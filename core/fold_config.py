"""What the fold's results depend on besides the log: channels, epochs, emissions, formats."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from solders.pubkey import Pubkey

from aop.core.attention.config import AttentionConfig
from aop.core.claims import get_claim_format
from aop.core.epoch import EpochClock
from aop.core.pda import channel_config_address
from aop.core.routing import partition_for_channel

__all__ = ["DEFAULT_SOURCE_TOPIC", "ChannelSpec", "FoldConfig"]

DEFAULT_SOURCE_TOPIC = "aop.chain.events"


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One channel this deployment serves."""

    name: str
    #: its ChannelConfigV2 PDA (32 bytes): how its events name it on the log.
    config: bytes
    #: the partition of `aop.chain.events` that carries its events.
    partition: int
    #: its emission per epoch (a u64).
    emission: int
    #: its claim format's name (`core.claims`).
    claim_format: str
    #: the root_seq of its first root (continues an on-chain sequence).
    first_root_seq: int


@dataclass(frozen=True)
class FoldConfig:
    """The fold's configuration (`FoldConfig.create`, or `streams.fold.fold_config(settings)`)."""

    program_id: Pubkey
    mint: Pubkey
    clock: EpochClock
    partitions: int
    #: the served channels, ordered by config PDA bytes.
    channels: tuple[ChannelSpec, ...]
    #: named in dead letters' `source`.
    source_topic: str = DEFAULT_SOURCE_TOPIC
    #: the attention side (signals of aop.attention.signals), None where it is off.
    attention: AttentionConfig | None = None

    @classmethod
    def create(
        cls,
        *,
        program_id: str | Pubkey,
        mint: str | Pubkey,
        genesis_slot: int,
        epoch_slots: int,
        partitions: int,
        channels: Iterable[str],
        emission_for: Callable[[str], int],
        claim_format_for: Callable[[str], str] = lambda _: "cumulative-v2",
        first_root_seq_for: Callable[[str], int] = lambda _: 1,
        source_topic: str = DEFAULT_SOURCE_TOPIC,
        attention: AttentionConfig | None = None,
    ) -> FoldConfig:
        """Derive each channel's config PDA and partition from its name.

        Raises:
            InvalidChannelNameError: a channel name is not 1-64 ASCII characters.
            UnknownClaimFormatError: a channel's claim format is not registered.
            ValueError: two names of one channel (they differ only in case), or an emission
                or first root_seq that is not a u64.
        """
        program = program_id if isinstance(program_id, Pubkey) else Pubkey.from_string(program_id)
        mint_key = mint if isinstance(mint, Pubkey) else Pubkey.from_string(mint)
        specs: dict[bytes, ChannelSpec] = {}
        for name in channels:
            config = bytes(
                channel_config_address(program_id=program, mint=mint_key, channel=name).address
            )
            if config in specs:
                raise ValueError(f"channel {name!r} is the same channel as {specs[config].name!r}")
            emission, first_root_seq = emission_for(name), first_root_seq_for(name)
            for what, value in (("emission", emission), ("first root_seq", first_root_seq)):
                if not 0 <= value < 2**64:
                    raise ValueError(f"{what} of {name!r} must be a u64 (got {value})")
            specs[config] = ChannelSpec(
                name=name,
                config=config,
                partition=partition_for_channel(config, partitions),
                emission=emission,
                claim_format=get_claim_format(claim_format_for(name)).name,
                first_root_seq=first_root_seq,
            )
        return cls(
            program_id=program,
            mint=mint_key,
            clock=EpochClock(genesis_slot, epoch_slots),
            partitions=partitions,
            channels=tuple(sorted(specs.values(), key=lambda s: s.config)),
            source_topic=source_topic,
            attention=attention,
        )

    def channels_of(self, partition: int) -> tuple[ChannelSpec, ...]:
        """The channels whose events travel in `partition`, by config PDA bytes."""
        return tuple(s for s in self.channels if s.partition == partition)
