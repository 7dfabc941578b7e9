"""The listener's checkpoint, recovered from the committed tail of `aop.chain.events`.

The log is the only place the checkpoint lives: partition p's newest committed SlotBatch says
p is complete up to its `last_slot`, and its `cursor` names the newest program signature at or
below it. Recovery must run after the transactional producer's `init_transactions()`, which
aborts any transaction a killed predecessor left open, so the read_committed tail is final.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from aop.log.avro import AvroCodec, AvroDecodeError
from aop.log.kafka import CHAIN_EVENTS, consumer_config
from aop.runtime.settings import Settings
from aop.streams.listener.errors import ListenerError, SinkError

__all__ = ["Checkpoint", "recover_checkpoint"]

log = logging.getLogger(__name__)

_FIRST_WINDOW = 16
_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Per partition, the first slot not yet on the log; and the newest signature covered."""

    next_slot: tuple[int, ...]
    cursor: str | None

    @property
    def resume_slot(self) -> int:
        """The first slot some partition still needs."""
        return min(self.next_slot)

    @property
    def last_slot(self) -> int:
        """The slot every partition is complete up to (-1 before the first range)."""
        return self.resume_slot - 1

    def advanced(self, last_slot: int, cursor: str | None) -> Checkpoint:
        """The checkpoint once `[.., last_slot]` is on every partition."""
        return Checkpoint(tuple(max(s, last_slot + 1) for s in self.next_slot), cursor)


def recover_checkpoint(settings: Settings, codec: AvroCodec, *, start_slot: int) -> Checkpoint:
    """Read the newest committed SlotBatch of every partition of `aop.chain.events`.

    Args:
        settings: broker, topic prefix and partition count.
        codec: decodes the SlotBatch records.
        start_slot: the next slot of a partition that holds no SlotBatch yet.
    Returns:
        The checkpoint; its cursor is that of a batch ending at the lowest `last_slot`.
    Raises:
        SinkError: the broker did not answer in time (transient).
        ListenerError: a partition's tail is not a SlotBatch (an operator must look).
    """
    topic = settings.topic(CHAIN_EVENTS)
    config = consumer_config(
        settings,
        f"{settings.topic_prefix}aop.listener.recovery",
        **{"enable.partition.eof": True, "fetch.wait.max.ms": 10},
    )
    consumer = Consumer(config)
    try:
        tails = _tails(consumer, codec, topic, settings.chain_partitions)
    finally:
        consumer.close()
    next_slot = tuple(start_slot if t is None else t[0] + 1 for t in tails)
    lowest = min(next_slot)
    cursor = next((t[1] for t in tails if t is not None and t[0] + 1 == lowest), None)
    log.info(
        "checkpoint recovered",
        extra={"next_slot": list(next_slot), "cursor": cursor, "topic": topic},
    )
    return Checkpoint(next_slot, cursor)


def _tails(
    consumer: Consumer, codec: AvroCodec, topic: str, partitions: int
) -> list[tuple[int, str | None] | None]:
    """Per partition, (last_slot, cursor) of its newest committed SlotBatch, or None if empty.

    Reads the last few records of every partition at once; a partition whose window held no
    SlotBatch (e.g. only aborted records) is read again with an 8 times wider window.
    """
    marks = [_watermarks(consumer, TopicPartition(topic, p)) for p in range(partitions)]
    tails: list[tuple[int, str | None] | None] = [None] * partitions
    pending = {p: _FIRST_WINDOW for p in range(partitions)}
    while pending:
        starts = {p: max(marks[p][0], marks[p][1] - window) for p, window in pending.items()}
        found = _last_batches(consumer, codec, topic, starts)
        for p in list(pending):
            if found.get(p) is not None or starts[p] <= marks[p][0]:
                tails[p] = found.get(p)
                del pending[p]
            else:
                pending[p] *= 8
    return tails


def _watermarks(consumer: Consumer, tp: TopicPartition) -> tuple[int, int]:
    """(low, high) offsets, retried for a while (a new topic's partitions have no leader yet)."""
    deadline = time.monotonic() + _TIMEOUT_S
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=_TIMEOUT_S)
            return int(low), int(high)
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise SinkError(
                    f"cannot read the offsets of {tp.topic}[{tp.partition}]: {exc}"
                ) from exc
            time.sleep(0.2)


def _last_batches(
    consumer: Consumer, codec: AvroCodec, topic: str, starts: dict[int, int]
) -> dict[int, tuple[int, str | None]]:
    """Read each partition from its start offset to its end; the last SlotBatch of each."""
    consumer.assign([TopicPartition(topic, p, offset) for p, offset in starts.items()])
    found: dict[int, tuple[int, str | None]] = {}
    open_partitions = set(starts)
    while open_partitions:
        message = consumer.poll(_TIMEOUT_S)
        if message is None:
            raise SinkError(f"no answer reading the tail of {topic}")
        partition = message.partition()
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                open_partitions.discard(partition)
                continue
            raise SinkError(f"reading the tail of {topic}[{partition}]: {error}")
        if partition is None:  # typed optional by confluent-kafka; a record always has one
            raise SinkError(f"a record of {topic} came without a partition")
        try:
            batch = codec.decode_as("SlotBatch", message.value() or b"")
        except AvroDecodeError as exc:
            raise ListenerError(
                f"{topic}[{partition}] offset {message.offset()} is not a SlotBatch: {exc}; "
                "operator action: the listener only resumes from its own records"
            ) from exc
        found[partition] = (int(batch["last_slot"]), batch.get("cursor"))
    consumer.unassign()
    return found
