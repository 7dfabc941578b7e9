"""A log written as the pipeline writes it, with a ledger of what is visible, and a reader.

`PipelineLikeWriter` writes the transactional topics as the listener does (each range one
Kafka transaction over every partition of aop.chain.events, with dead letters; some ranges
aborted, as a killed listener leaves them) and the others as the fold and settlement do (no
transactions). Its ledger holds every committed record with the offset its delivery report
gave: the expected content of any faithful copy, derived without the code under test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from aop.log.kafka import CHAIN_EVENTS, DLQ, EPOCH_ROOTS, SETTLEMENT, ensure_topics, producer_config
from aop.runtime.settings import Settings

__all__ = ["PipelineLikeWriter", "Rec", "read_partition"]


@dataclass(frozen=True)
class Rec:
    """What a read_committed reader sees of one record."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp: int


def _rec(message: Message) -> Rec:
    return Rec(
        message.offset(),
        message.key(),
        message.value(),
        tuple(message.headers() or ()),
        message.timestamp()[1],
    )


@dataclass
class PipelineLikeWriter:
    settings: Settings
    #: logical topic name -> partition -> committed records, in offset order.
    ledger: dict[str, dict[int, list[Rec]]] = field(default_factory=dict)
    _serial: int = 0

    def __post_init__(self) -> None:
        ensure_topics(self.settings)
        tid = f"{self.settings.topic_prefix}test.listener"
        self._txn = Producer(producer_config(self.settings, **{"transactional.id": tid}))
        self._txn.init_transactions(30)
        self._plain = Producer(producer_config(self.settings))

    def _value(self, size: int) -> bytes:
        self._serial += 1
        return self._serial.to_bytes(8, "big") + os.urandom(size)

    def _send(
        self,
        producer: Producer,
        topic: str,
        partition: int,
        *,
        size: int = 64,
        key: bytes | None = b"k",
        headers: list[tuple[str, bytes | None]] | None = None,
        pending: list[tuple[str, int, Rec]] | None = None,
    ) -> None:
        sink: list[tuple[str, int, Rec]] = pending if pending is not None else []

        def delivered(err: KafkaError | None, message: Message) -> None:
            assert err is None, err
            # a delivery report carries no headers: keep the ones sent
            sink.append((topic, partition, replace(_rec(message), headers=tuple(headers or ()))))

        producer.produce(
            self.settings.topic(topic),
            self._value(size),
            key=key,
            partition=partition,
            headers=headers,
            timestamp=1_700_000_000_000 + self._serial,
            on_delivery=delivered,
        )
        if pending is None:
            producer.flush(30)
            self._record(sink)

    def _record(self, delivered: list[tuple[str, int, Rec]]) -> None:
        for topic, partition, rec in delivered:
            self.ledger.setdefault(topic, {}).setdefault(partition, []).append(rec)
        for parts in self.ledger.values():
            for records in parts.values():
                records.sort(key=lambda r: r.offset)

    def listener_range(
        self, *, dead: int = 0, abort: bool = False, per_partition: int = 1, size: int = 64
    ) -> None:
        """One range: `per_partition` records (of `size` random bytes and a serial) on every
        chain partition, `dead` dead letters."""
        pending: list[tuple[str, int, Rec]] = []
        self._txn.begin_transaction()
        for p in range(self.settings.chain_partitions):
            for _ in range(per_partition):
                self._send(
                    self._txn, CHAIN_EVENTS, p, size=size, key=str(p).encode(), pending=pending
                )
        for _ in range(dead):
            self._send(
                self._txn, DLQ, 0, key=None, headers=[("why", b"x"), ("n", None)], pending=pending
            )
        if abort:
            self._txn.flush(30)
            self._txn.abort_transaction(30)
        else:
            self._txn.commit_transaction(30)
            self._record(pending)

    def root(self, partition: int, chunks: int = 2) -> None:
        """An EpochRoot and its chunks, as the fold sends them (no transaction)."""
        for _ in range(1 + chunks):
            self._send(self._plain, EPOCH_ROOTS, partition, size=300, key=b"cfg")

    def settlement(self) -> None:
        self._send(self._plain, SETTLEMENT, 0, key=b"cfg", headers=[("h", b"v")])

    def close(self) -> None:
        self._txn.flush(30)
        self._plain.flush(30)


def read_partition(settings: Settings, topic: str, partition: int) -> tuple[list[Rec], int]:
    """Every record a read_committed reader sees in a partition, and its end (high watermark)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": "test-reader",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            # a purged roots topic starts above 0: read from its log start
            "auto.offset.reset": "earliest",
        }
    )
    name = settings.topic(topic)
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
        if high == 0:
            return [], 0
        consumer.assign([TopicPartition(name, partition, 0)])
        records = []
        while True:
            message = consumer.poll(10)
            assert message is not None, f"no answer reading {name}[{partition}]"
            if message.error():
                assert message.error().code() == KafkaError._PARTITION_EOF
                if message.offset() >= high:
                    break
                continue
            records.append(_rec(message))
        uncommitted = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": "test-reader",
                "isolation.level": "read_uncommitted",
            }
        )
        end = uncommitted.get_watermark_offsets(TopicPartition(name, partition), timeout=10)[1]
        uncommitted.close()
        return records, end
    finally:
        consumer.close()
