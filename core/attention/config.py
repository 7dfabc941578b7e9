"""What the attention fold depends on besides the log: epochs, channels and their policies."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from solders.pubkey import Pubkey

from aop.core.attention.legacy import (
    DEFAULT_CLAIM_ID_TEMPLATE,
    InvalidTemplateError,
    check_claim_id_template,
)
from aop.core.attention.policy import AttentionPolicy
from aop.core.errors import CoreError, UnknownClaimFormatError
from aop.core.pda import attention_root_key, channel_config_address
from aop.core.routing import partition_for_channel

__all__ = [
    "ATTENTION_FORMATS",
    "DEFAULT_SIGNALS_TOPIC",
    "AttentionChannel",
    "AttentionConfig",
]

DEFAULT_SIGNALS_TOPIC = "aop.attention.signals"
#: the claim formats an attention root can take: cumulative totals per wallet (what the
#: combiner adds as attention_bonus) or the legacy aggregator's ring-v0 epochs.
ATTENTION_FORMATS = ("cumulative-v2", "ring-v0-legacy")


@dataclass(frozen=True, slots=True)
class AttentionChannel:
    """One channel's attention side."""

    name: str
    #: its ChannelConfigV2 PDA: its signals travel in the partition its chain events do.
    config: bytes
    partition: int
    #: base58 root account of its attention roots (`core.pda.attention_root_key`).
    key: str
    #: "cumulative-v2" or "ring-v0-legacy".
    claim_format: str
    policy: AttentionPolicy
    #: the root_seq of its first attention root.
    first_root_seq: int


@dataclass(frozen=True)
class AttentionConfig:
    """The attention fold's configuration (`AttentionConfig.create`)."""

    program_id: Pubkey
    mint: Pubkey
    #: L: attention epoch [s, s+L) of unix seconds, s a multiple of L.
    epoch_seconds: int
    partitions: int
    #: the served channels, ordered by config PDA bytes.
    channels: tuple[AttentionChannel, ...]
    claim_id_template: str = DEFAULT_CLAIM_ID_TEMPLATE
    #: named in dead letters' `source`.
    source_topic: str = DEFAULT_SIGNALS_TOPIC
    #: lower-cased name -> channel (signals name their channel).
    by_name: Mapping[str, AttentionChannel] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {c.name.lower(): c for c in self.channels}
        object.__setattr__(self, "by_name", MappingProxyType(by_name))

    @classmethod
    def create(
        cls,
        *,
        program_id: str | Pubkey,
        mint: str | Pubkey,
        epoch_seconds: int,
        partitions: int,
        channels: Iterable[str],
        policy_for: Callable[[str], AttentionPolicy] = lambda _: AttentionPolicy(),
        claim_format_for: Callable[[str], str] = lambda _: "cumulative-v2",
        first_root_seq_for: Callable[[str], int] = lambda _: 1,
        claim_id_template: str = DEFAULT_CLAIM_ID_TEMPLATE,
        source_topic: str = DEFAULT_SIGNALS_TOPIC,
    ) -> AttentionConfig:
        """Derive each channel's routing and root key from its name.

        Raises:
            InvalidChannelNameError: a channel name is not 1-64 ASCII characters.
            UnknownClaimFormatError: a channel's attention format is not one of
                `ATTENTION_FORMATS`.
            InvalidTemplateError: a bad claim id template, or one without {user} while a
                channel is ring-v0-legacy (its ids would repeat).
            CoreError: a non-positive epoch length, or a first root_seq not a u64.
        """
        if epoch_seconds < 1:
            raise CoreError(f"attention epoch_seconds must be >= 1 (got {epoch_seconds})")
        program = program_id if isinstance(program_id, Pubkey) else Pubkey.from_string(program_id)
        mint_key = mint if isinstance(mint, Pubkey) else Pubkey.from_string(mint)
        check_claim_id_template(claim_id_template)
        specs: dict[bytes, AttentionChannel] = {}
        for name in channels:
            config = bytes(
                channel_config_address(program_id=program, mint=mint_key, channel=name).address
            )
            fmt = claim_format_for(name)
            if fmt not in ATTENTION_FORMATS:
                raise UnknownClaimFormatError(
                    f"attention format of {name!r} must be one of {', '.join(ATTENTION_FORMATS)} "
                    f"(got {fmt!r})"
                )
            if fmt == "ring-v0-legacy" and "{user}" not in claim_id_template:
                raise InvalidTemplateError(
                    f"channel {name!r} is ring-v0-legacy: the claim id template must hold "
                    f"{{user}}, or every claim of an epoch gets the same id (got "
                    f"{claim_id_template!r})"
                )
            first = first_root_seq_for(name)
            if not 0 <= first < 2**64:
                raise CoreError(f"first attention root_seq of {name!r} must be a u64 (got {first})")
            key = attention_root_key(program_id=program, mint=mint_key, channel=name).address
            specs[config] = AttentionChannel(
                name=name,
                config=config,
                partition=partition_for_channel(config, partitions),
                key=str(key),
                claim_format=fmt,
                policy=policy_for(name),
                first_root_seq=first,
            )
        return cls(
            program_id=program,
            mint=mint_key,
            epoch_seconds=epoch_seconds,
            partitions=partitions,
            channels=tuple(sorted(specs.values(), key=lambda s: s.config)),
            claim_id_template=claim_id_template,
            source_topic=source_topic,
        )

    def channels_of(self, partition: int) -> tuple[AttentionChannel, ...]:
        """The channels whose signals travel in `partition`, by config PDA bytes."""
        return tuple(c for c in self.channels if c.partition == partition)
