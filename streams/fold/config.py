"""The fold's policy configuration from the settings (shared by `aop fold` and replays)."""

from __future__ import annotations

from aop.core.attention.config import AttentionConfig
from aop.core.fold_config import FoldConfig
from aop.log.kafka import ATTENTION_SIGNALS, CHAIN_EVENTS
from aop.runtime.settings import Settings

__all__ = ["attention_config", "fold_app_id", "fold_config"]


def fold_config(settings: Settings) -> FoldConfig:
    """The `FoldConfig` of a deployment: its channels, epochs, emissions and claim formats,
    and its attention side when AOP_ATTENTION_ENABLED is set.

    Raises:
        InvalidChannelNameError, UnknownClaimFormatError: a bad channel setting.
    """
    return FoldConfig.create(
        program_id=settings.program_id,
        mint=settings.mint,
        genesis_slot=settings.genesis_slot,
        epoch_slots=settings.epoch_slots,
        partitions=settings.chain_partitions,
        channels=settings.channels,
        emission_for=settings.emission_for,
        claim_format_for=settings.claim_format_for,
        first_root_seq_for=settings.first_root_seq_for,
        source_topic=settings.topic(CHAIN_EVENTS),
        attention=attention_config(settings) if settings.attention_enabled else None,
    )


def attention_config(settings: Settings) -> AttentionConfig:
    """The attention side of the fold (whether or not AOP_ATTENTION_ENABLED is set)."""
    return AttentionConfig.create(
        program_id=settings.program_id,
        mint=settings.mint,
        epoch_seconds=settings.attention_epoch_seconds,
        partitions=settings.chain_partitions,
        channels=settings.channels,
        policy_for=settings.attention_policy_for,
        claim_format_for=settings.attention_format_for,
        claim_id_template=settings.attention_claim_id_template,
        source_topic=settings.topic(ATTENTION_SIGNALS),
    )


def fold_app_id(settings: Settings) -> str:
    """The Faust app id (consumer group, changelog topic prefix) under the topic prefix."""
    return f"{settings.topic_prefix}{settings.fold_app_id}"
