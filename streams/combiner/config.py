"""The combiner's settings as the pure combiner and the Kafka clients take them."""

from __future__ import annotations

from solders.pubkey import Pubkey

from aop.core.combine import CombineConfig
from aop.runtime.settings import Settings

__all__ = ["combine_config", "lease_group", "transactional_id"]


def combine_config(settings: Settings) -> CombineConfig:
    """The pure combiner's configuration (also what the replay combines with).

    Raises:
        UnknownClaimFormatError, CoreError: a bad format or partition count (settings
            validate both, so only a programming error gets here).
    """
    return CombineConfig(
        program_id=Pubkey.from_string(settings.program_id),
        mint=Pubkey.from_string(settings.mint),
        format_name=settings.global_format,
        partitions=settings.chain_partitions,
        first_root_seq=settings.global_first_root_seq,
        global_protocol=settings.global_protocol_state,
        attention_epoch_seconds=(
            settings.attention_epoch_seconds if settings.attention_enabled else None
        ),
    )


def transactional_id(settings: Settings) -> str:
    """The combiner's transactional id: the setting, else `<topic_prefix>aop.combiner`."""
    return settings.combiner_transactional_id or f"{settings.topic_prefix}aop.combiner"


def lease_group(settings: Settings) -> str:
    """The lease's consumer group: the setting, else `<topic_prefix>aop.combiner`."""
    return settings.combiner_group_id or f"{settings.topic_prefix}aop.combiner"
