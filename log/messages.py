"""Where a consumed record sits: (topic, partition, offset), typed.

confluent-kafka types `Message.topic()`, `.partition()` and `.offset()` as optional because a
produced message has no offset yet; a consumed record always has all three. One function
says so, for every reader of the log.
"""

from __future__ import annotations

from confluent_kafka import Message

__all__ = ["position"]


def position(message: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed record (or of a consumer event such as a
    partition EOF, whose offset is where it happened)."""
    return str(message.topic()), int(message.partition() or 0), int(message.offset() or 0)
