"""The fold's policy configuration from the settings (shared by `aop fold` and replays)."""

from __future__ import annotations

from aop.core.fold_config import FoldConfig
from aop.log.kafka import CHAIN_EVENTS
from aop.runtime.settings import Settings

__all__ = ["fold_app_id", "fold_config"]


def fold_config(settings: Settings) -> FoldConfig:
    """The `FoldConfig` of a deployment: its channels, epochs, emissions and claim formats.

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
    )


def fold_app_id(settings: Settings) -> str:
    """The Faust app id (consumer group, changelog topic prefix) under the topic prefix."""
    return f"{settings.topic_prefix}{settings.fold_app_id}"
