"""Where an export ends: per partition, an offset no transaction of the listener straddles.

The listener writes each slot range in one Kafka transaction over every partition of
`aop.chain.events` and `aop.dlq` (the specs marked `transactional`). Its commit markers reach
the partitions one by one, so for a few milliseconds a read_committed reader sees the range on
some partitions and not yet on others; an export ending then would hold part of a transaction.
`consistent_cut`:

1. reads the last stable offset (LSO: the end read_committed readers see) of every partition
   of the other topics, then the LSO and the high watermark (HW) of every partition of the
   transactional topics;
2. if on a transactional partition LSO < HW (a transaction is open there, or its marker is
   still on its way), waits `poll_s` and starts again;
3. reads the transactional partitions' LSO and HW again; if any moved, starts again;
4. otherwise the LSOs of step 1 are the cut. Between the two reads no transactional partition
   changed and none had an open transaction, so each transaction below the cut is decided on
   every partition it wrote. The other topics were read first: a root or a settlement result
   below their cut was written after the chain records it derives from, which are below theirs.

Common failure scenarios: a listener killed mid-transaction leaves it open until its successor
aborts it (`init_transactions`) or its `transaction.timeout.ms` (60 s) passes; the cut waits
up to `timeout_s` and then raises `CutTimeoutError` naming the partition.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from aop.log.backup.errors import BackupError, CutTimeoutError
from aop.log.kafka import consumer_config
from aop.runtime.settings import Settings

__all__ = ["OffsetReader", "PartitionRef", "consistent_cut"]


@dataclass(frozen=True, order=True)
class PartitionRef:
    """A partition of a topic (the full, prefixed topic name)."""

    topic: str
    partition: int
    transactional: bool = False

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


class OffsetReader:
    """The broker's offsets of partitions, asked fresh each time (never cached)."""

    def __init__(self, settings: Settings, *, timeout_s: float = 15.0) -> None:
        group = f"{settings.topic_prefix}aop.log.offsets.{uuid.uuid4().hex[:8]}"
        self._committed = Consumer(consumer_config(settings, group))
        self._uncommitted = Consumer(
            consumer_config(settings, group, **{"isolation.level": "read_uncommitted"})
        )
        self._timeout = timeout_s

    def _ask(self, consumer: Consumer, ref: PartitionRef) -> tuple[int, int]:
        """(low, high), retried for a while: a new topic's partitions have no leader yet."""
        tp = TopicPartition(ref.topic, ref.partition)
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                low, high = consumer.get_watermark_offsets(tp, timeout=self._timeout, cached=False)
                return int(low), int(high)
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    raise BackupError(f"cannot read the offsets of {ref}: {exc}") from exc
                time.sleep(0.1)

    def low(self, ref: PartitionRef) -> int:
        """The first offset still stored."""
        return self._ask(self._committed, ref)[0]

    def stable(self, ref: PartitionRef) -> int:
        """The last stable offset: the end of what read_committed readers see."""
        return self._ask(self._committed, ref)[1]

    def high(self, ref: PartitionRef) -> int:
        """The high watermark: the end of the log, open transactions included."""
        return self._ask(self._uncommitted, ref)[1]

    def topics(self) -> set[str]:
        """The names of the topics the cluster has."""
        try:
            return set(self._committed.list_topics(timeout=self._timeout).topics)
        except KafkaException as exc:
            raise BackupError(f"cannot list the topics: {exc}") from exc

    def close(self) -> None:
        self._committed.close()
        self._uncommitted.close()

    def __enter__(self) -> OffsetReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def consistent_cut(
    reader: OffsetReader,
    partitions: Sequence[PartitionRef],
    *,
    timeout_s: float = 120.0,
    poll_s: float = 0.02,
) -> dict[PartitionRef, int]:
    """The end offset (exclusive) of each partition (module docstring).

    Raises:
        CutTimeoutError: a transactional partition kept an open transaction for `timeout_s`.
        BackupError: the broker did not answer.
    """
    others = [p for p in partitions if not p.transactional]
    txn = [p for p in partitions if p.transactional]
    deadline = time.monotonic() + timeout_s
    while True:
        ends = {p: reader.stable(p) for p in others}  # step 1
        first = {p: (reader.stable(p), reader.high(p)) for p in txn}
        open_at = [p for p, (lso, hw) in first.items() if lso < hw]
        if not open_at:  # step 2
            again = {p: (reader.stable(p), reader.high(p)) for p in txn}  # step 3
            if again == first:
                ends.update({p: lso for p, (lso, _) in first.items()})  # step 4
                return ends
        if time.monotonic() > deadline:
            where = (
                ", ".join(f"{p} (stable {first[p][0]}, end {first[p][1]})" for p in open_at)
                or "transactional partitions kept moving"
            )
            raise CutTimeoutError(
                f"no moment without an open transaction in {timeout_s:.0f} s: {where}; "
                "operator action: check that one listener runs (a killed one's transaction "
                "is aborted by the next, or after 60 s), then export again"
            )
        time.sleep(poll_s)
