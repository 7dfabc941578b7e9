"""Writes one partition of an export back into a topic, every record at its old offset.

`PartitionRestore.run` steps:

1. read the target partition's end; it is the start of the plan (0 for a new topic);
2. if the exported range is dense (one record per offset, nothing invisible) and the target
   starts where it starts: write every record with one idempotent producer (`plain`);
3. otherwise (`transactional`): for each record in offset order, run the operations of
   `OffsetPlanner.before` (commit A; begin, fill, abort B; after an abort wait until the
   partition's end is the record's offset), then write it with A; at the end,
   `OffsetPlanner.finish`;
4. check every delivery report: each record's offset must be the exported one
   (`OffsetDriftError` otherwise, e.g. another producer wrote to the topic meanwhile).

With `preserve_offsets=False` (an import into a topic that holds records) the records are
appended in order with one idempotent producer, and their offsets are new.

Common failure scenarios: a crash mid-partition leaves a prefix of the partition written
(committed transactions only, in order); the topic is then not empty and a new import refuses
it: delete the topic (or use a fresh cluster) and import again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from aop.log.backup.cut import OffsetReader, PartitionRef
from aop.log.backup.errors import BackupError, OffsetDriftError
from aop.log.backup.manifest import PartitionCoverage
from aop.log.backup.placement import OffsetPlanner, Op
from aop.log.backup.segment import read_segment
from aop.log.kafka import producer_config
from aop.runtime.settings import Settings

__all__ = ["PartitionRestore", "RestoredPartition"]

_TIMEOUT_S = 60.0
#: the broker's default transaction.max.timeout.ms: a B transaction may stay open a while.
_TXN_TIMEOUT_MS = 900_000


@dataclass(frozen=True)
class RestoredPartition:
    """What was written to one partition."""

    topic: str
    partition: int
    mode: str
    records: int
    bytes: int
    first_offset: int | None
    end_offset: int
    seconds: float


class PartitionRestore:
    """Restores `coverage` (the segments under `directory`) into `ref` (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        directory: Path,
        ref: PartitionRef,
        coverage: PartitionCoverage,
        *,
        preserve_offsets: bool,
        advance: Callable[[int], None] | None = None,
    ) -> None:
        self._settings = settings
        self._directory = directory
        self._ref = ref
        self._coverage = coverage
        self._preserve = preserve_offsets
        self._advance = advance or (lambda _n: None)
        self._failures: list[str] = []
        self._first: int | None = None
        self._bytes = 0

    def run(self) -> RestoredPartition:
        started = time.perf_counter()
        with OffsetReader(self._settings) as reader:
            start = reader.high(self._ref)  # step 1
            c = self._coverage
            dense = c.records == c.end - c.start and start == c.start
            if not self._preserve:
                mode = "appended"
                self._plain(None)
            elif dense:
                mode = "plain"
                self._plain(start)  # step 2
            else:
                mode = "transactional"
                self._transactional(reader, start)  # step 3
            end = reader.high(self._ref)
        return RestoredPartition(
            self._ref.topic,
            self._ref.partition,
            mode,
            c.records,
            self._bytes,
            self._first,
            end,
            time.perf_counter() - started,
        )

    def _records(self) -> Iterator[dict[str, Any]]:
        for segment in self._coverage.segments:
            yield from read_segment(self._directory / segment.path)

    def _producer(self, suffix: str | None) -> Producer:
        extra: dict[str, Any] = {"linger.ms": 5}
        if suffix is not None:
            extra["transactional.id"] = (
                f"{self._settings.topic_prefix}aop.log.import.{self._ref.topic}."
                f"{self._ref.partition}.{suffix}"
            )
            extra["transaction.timeout.ms"] = _TXN_TIMEOUT_MS
        producer = Producer(producer_config(self._settings, **extra))
        if suffix is not None:
            producer.init_transactions(_TIMEOUT_S)
        return producer

    def _delivered(self, expected: int | None) -> Callable[[KafkaError | None, Message], None]:
        def check(err: KafkaError | None, message: Message) -> None:
            if err is not None:
                self._failures.append(f"{self._ref}: delivery failed: {err}")
            else:
                got = message.offset()
                if self._first is None:
                    self._first = got
                if expected is not None and got != expected:
                    self._failures.append(
                        f"{self._ref}: the record of offset {expected} landed at {got}"
                    )

        return check

    def _produce(self, producer: Producer, record: dict[str, Any] | None, **kw: Any) -> None:
        if record is None:
            args: dict[str, Any] = {"value": b""}
        else:
            args = {
                "key": record["key"],
                "value": record["value"],
                "headers": [(h["key"], h["value"]) for h in record["headers"]] or None,
            }
            if record["timestamp"] > 0:
                args["timestamp"] = record["timestamp"]
            self._bytes += len(record["value"] or b"") + len(record["key"] or b"")
        while True:
            try:
                producer.produce(self._ref.topic, partition=self._ref.partition, **args, **kw)
                return
            except BufferError:
                producer.poll(0.05)

    def _check(self) -> None:
        if self._failures:
            problems = "; ".join(self._failures[:3])
            raise OffsetDriftError(
                f"{problems} ({len(self._failures)} problem(s)); operator action: make sure "
                "nothing else writes to the target topics, delete them and import again"
            )

    def _plain(self, start: int | None) -> None:
        """Step 2 (or an append when `start` is None)."""
        producer = self._producer(None)
        for index, record in enumerate(self._records()):
            expected = None if start is None else start + index
            self._produce(producer, record, on_delivery=self._delivered(expected))
            producer.poll(0)
            self._advance(1)
        if producer.flush(_TIMEOUT_S):
            raise BackupError(f"{self._ref}: the broker did not acknowledge every record")
        self._check()

    def _transactional(self, reader: OffsetReader, start: int) -> None:
        """Step 3."""
        planner = OffsetPlanner(start)
        a = self._producer("a")
        b: Producer | None = None
        a_in = False
        try:
            for record in self._records():
                offset = record["offset"]
                ops = planner.before(offset)
                b = self._run(ops, a, b)
                if Op.COMMIT_A in ops:
                    a_in = False
                if Op.ABORT_B in ops:
                    self._await_end(reader, offset)
                if not a_in:
                    a.begin_transaction()
                    a_in = True
                self._produce(a, record, on_delivery=self._delivered(offset))
                a.poll(0)
                self._advance(1)
            ops = planner.finish(self._coverage.end)
            self._run(ops, a, b)
            if a.flush(_TIMEOUT_S):
                raise BackupError(f"{self._ref}: the broker did not acknowledge every record")
            self._check()
        except KafkaException as exc:
            raise BackupError(f"{self._ref}: a transaction failed: {exc}") from exc

    def _run(self, ops: list[Op], a: Producer, b: Producer | None) -> Producer | None:
        for op in ops:
            if op is Op.COMMIT_A:
                a.commit_transaction(_TIMEOUT_S)
                self._check()
            elif op is Op.BEGIN_B:
                b = b or self._producer("b")
                b.begin_transaction()
            elif op is Op.FILL:
                assert b is not None
                self._produce(b, None)
                b.flush(_TIMEOUT_S)
            elif op is Op.ABORT_B:
                assert b is not None
                b.abort_transaction(_TIMEOUT_S)
        return b

    def _await_end(self, reader: OffsetReader, end: int) -> None:
        """Wait until the partition's end is `end` (an abort marker is written after the
        abort call returns)."""
        deadline = time.monotonic() + _TIMEOUT_S
        while (high := reader.high(self._ref)) < end:
            if time.monotonic() > deadline:
                raise BackupError(
                    f"{self._ref} ends at {high}, not {end}, {_TIMEOUT_S:.0f} s after an abort"
                )
            time.sleep(0.005)
        if high > end:
            raise OffsetDriftError(
                f"{self._ref} ends at {high} where the next record's offset is {end}; operator "
                "action: make sure nothing else writes to the target topics, delete them and "
                "import again"
            )
