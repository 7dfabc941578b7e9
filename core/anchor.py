"""Anchor's 8-byte discriminators: the first 8 bytes of sha256("<namespace>:<name>").

Instructions use namespace `global` and the snake_case handler name, accounts `account` and
events `event` with the CamelCase type name.
"""

from __future__ import annotations

import hashlib
from functools import cache

__all__ = ["account_discriminator", "event_discriminator", "instruction_discriminator"]


@cache
def _discriminator(namespace: str, name: str) -> bytes:
    return hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:8]


def instruction_discriminator(name: str) -> bytes:
    """sha256("global:<name>")[:8], e.g. `publish_cumulative_root` -> 38c189e2399b4019."""
    return _discriminator("global", name)


def event_discriminator(name: str) -> bytes:
    """sha256("event:<Name>")[:8], e.g. `CumulativeRewardsClaimed` -> 6e3d928afda76d39."""
    return _discriminator("event", name)


def account_discriminator(name: str) -> bytes:
    """sha256("account:<Name>")[:8], e.g. `ChannelConfigV2` -> 0fcb4c4f34bc472f."""
    return _discriminator("account", name)
