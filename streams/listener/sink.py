"""Kafka writes: one slot range (all partitions' SlotBatches + its dead letters) per transaction.

`write_range` steps:

1. `begin_transaction()`.
2. Produce each SlotBatch to its partition of `aop.chain.events` (key: the partition number)
   and each dead letter to `aop.dlq`.
3. `commit_transaction()`: flushes, then makes all of it visible to read_committed readers at
   once. A kill -9 before this point leaves an open transaction that the next listener's
   `init_transactions()` aborts: the range is then written again, exactly once.

Common failure scenarios:

* Abortable error: the transaction is aborted and `SinkError` is raised.
* Any other error (e.g. a commit timeout): the outcome is unknown and `SinkError` is raised.
  In both cases the caller drops this sink, starts a new one (whose `init_transactions()`
  completes or aborts whatever is pending) and recovers the checkpoint from the log, which
  alone says whether the range is on it.
* Fenced (another producer with the same transactional id started) or fatal producer error:
  `SinkFencedError`; this listener must stop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from aop.log.avro import AvroCodec
from aop.log.kafka import CHAIN_EVENTS, DLQ, transactional_producer_config
from aop.log.slot_batch import SlotBatchEncoder
from aop.runtime.settings import Settings
from aop.streams.listener.batcher import PlannedBatch
from aop.streams.listener.errors import SinkError, SinkFencedError
from aop.streams.listener.model import DeadLetter

__all__ = ["KafkaSink", "WrittenBatch", "transactional_id"]

log = logging.getLogger(__name__)


def transactional_id(settings: Settings) -> str:
    """The listener's transactional id: the setting, else `<topic_prefix>aop.listener`."""
    return settings.listener_transactional_id or f"{settings.topic_prefix}aop.listener"


@dataclass(frozen=True, slots=True)
class WrittenBatch:
    """A SlotBatch now on the log, and where."""

    batch: PlannedBatch
    offset: int


class KafkaSink:
    """A transactional producer writing whole slot ranges.

    Args:
        settings: broker, topics, transactional id.
        codec: Avro framing of the records.
        timeout_s: bound on init, commit and abort calls.
    """

    def __init__(self, settings: Settings, codec: AvroCodec, *, timeout_s: float = 30.0) -> None:
        self._codec = codec
        self._events_topic = settings.topic(CHAIN_EVENTS)
        self._dlq_topic = settings.topic(DLQ)
        self._timeout = timeout_s
        self._batches = SlotBatchEncoder(codec, topic=self._events_topic)
        self._producer = Producer(
            transactional_producer_config(settings, transactional_id(settings))
        )

    def start(self) -> None:
        """Register the transactional id, fencing and aborting any predecessor's transaction.

        Raises:
            SinkFencedError: a fatal producer error (e.g. transactions unsupported).
            SinkError: the broker did not answer in time; retry.
        """
        try:
            self._producer.init_transactions(self._timeout)
        except KafkaException as exc:
            if exc.args[0].fatal():
                raise SinkFencedError(f"init_transactions failed: {exc}") from exc
            raise SinkError(f"init_transactions failed: {exc}") from exc

    def write_range(
        self, batches: Sequence[PlannedBatch], dead: Sequence[DeadLetter]
    ) -> list[WrittenBatch]:
        """Append `batches` and `dead` atomically; returns each batch's offset.

        Raises:
            SinkError: the transaction was aborted; nothing is visible, retry the range.
            SinkFencedError: this producer can no longer write.
        """
        offsets: dict[int, int] = {}
        failures: list[KafkaError] = []

        def delivered(index: int) -> Any:
            def callback(err: KafkaError | None, message: Message) -> None:
                if err is not None:
                    failures.append(err)
                else:
                    offsets[index] = int(message.offset() or 0)

            return callback

        at_ms = int(time.time() * 1000)
        try:
            self._producer.begin_transaction()
            for index, batch in enumerate(batches):
                value = self._batches.encode(
                    batch.partition,
                    batch.first_slot,
                    batch.last_slot,
                    batch.events,
                    batch.cursor,
                    batch.last_block_time,
                )
                self._produce(
                    self._events_topic,
                    value,
                    key=str(batch.partition).encode(),
                    partition=batch.partition,
                    on_delivery=delivered(index),
                )
            for letter in dead:
                self._produce(
                    self._dlq_topic,
                    self._codec.encode("DeadLetter", letter.to_avro(at_ms), topic=self._dlq_topic),
                    key=letter.source.encode(),
                    partition=0,
                )
            self._producer.commit_transaction(self._timeout)
        except KafkaException as exc:
            self._fail(exc)
        if failures or len(offsets) != len(batches):
            raise SinkError(f"committed but {len(failures)} deliveries failed: {failures[:3]}")
        return [WrittenBatch(batch, offsets[i]) for i, batch in enumerate(batches)]

    def close(self) -> None:
        """Flush anything outstanding (nothing, between ranges)."""
        self._producer.flush(self._timeout)

    def _produce(self, topic: str, value: bytes, **kwargs: Any) -> None:
        while True:
            try:
                self._producer.produce(topic, value, **kwargs)
                return
            except BufferError:
                self._producer.poll(0.05)

    def _fail(self, exc: KafkaException) -> None:
        error: KafkaError = exc.args[0]
        if error.fatal() or error.code() in _FENCED:
            raise SinkFencedError(
                f"the listener's producer cannot write any more ({error}); operator action: "
                "make sure one listener runs per transactional id, then restart it"
            ) from exc
        if error.txn_requires_abort():
            try:
                self._producer.abort_transaction(self._timeout)
            except KafkaException as abort_exc:
                raise SinkError(f"abort after {error} failed: {abort_exc}") from abort_exc
            raise SinkError(f"transaction aborted: {error}") from exc
        # Retriable or unknown: the commit may or may not have happened. Only the log knows;
        # the caller rebuilds the producer (fencing this one) and recovers from the log.
        raise SinkError(f"transaction outcome unknown: {error}") from exc


_FENCED = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)
