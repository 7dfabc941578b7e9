"""Writes partitions of an export back into topics, every record at its old offset.

Two writers, chosen per partition by `restore.import_log`:

* `PlainRestore` — a dense range (one record per offset, nothing invisible between them,
  e.g. the fold's roots) starting where the target ends: one idempotent producer writes the
  records in order. Also used to append (`preserve_offsets=False`): new offsets.
* `LockstepRestore` — every other partition (the listener's, with transaction markers and
  aborted records between the records), all at once, the way the listener wrote them: one
  transactional producer A for all of them and, per partition, a filler producer B
  (`aop.log.backup.placement`). Rounds:

  1. for each partition, spend the gap before its next record with B (`OffsetPlanner.before`:
     begin, fill, abort; after an abort wait until the partition ends at the record's
     offset), then write with A that record and the following ones that need no gap;
  2. commit A once: each partition written in the round gets its marker
     (`OffsetPlanner.committed`);
  3. a partition out of records reaches its exported end (`OffsetPlanner.finish`).

  So one commit serves a round of every partition, as one listener transaction served a
  slot range of every partition.

Both check every delivery report: each record must land at its exported offset
(`OffsetDriftError` otherwise, e.g. another producer wrote to the topic meanwhile).

Common failure scenarios: a crash mid-import leaves a prefix of each partition written
(committed transactions only, in order); the topics are then not empty and a new import
refuses them: delete them (or use a fresh cluster) and import again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from aop.log.backup.cut import OffsetReader, PartitionRef
from aop.log.backup.errors import BackupError, OffsetDriftError
from aop.log.backup.manifest import PartitionCoverage
from aop.log.backup.placement import OffsetPlanner, Op
from aop.log.backup.segment import read_segment
from aop.log.kafka import producer_config, transactional_producer_config
from aop.runtime.settings import Settings

__all__ = ["LockstepRestore", "PartitionJob", "PlainRestore", "RestoredPartition"]

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


@dataclass
class PartitionJob:
    """One partition to restore: where to, what, and where the target ends now."""

    ref: PartitionRef
    coverage: PartitionCoverage
    directory: Path
    start: int
    first: int | None = None
    bytes: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def dense(self) -> bool:
        c = self.coverage
        return c.records == c.end - c.start and self.start == c.start

    def records(self) -> Iterator[dict[str, Any]]:
        for segment in self.coverage.segments:
            yield from read_segment(self.directory / segment.path)

    def delivered(self, expected: int | None) -> Callable[[KafkaError | None, Message], None]:
        def check(err: KafkaError | None, message: Message) -> None:
            if err is not None:
                self.failures.append(f"{self.ref}: delivery failed: {err}")
                return
            got = message.offset()
            if self.first is None:
                self.first = got
            if expected is not None and got != expected:
                self.failures.append(f"{self.ref}: the record of offset {expected} landed at {got}")

        return check

    def check(self) -> None:
        if self.failures:
            raise OffsetDriftError(
                f"{'; '.join(self.failures[:3])} ({len(self.failures)} problem(s)); operator "
                "action: make sure nothing else writes to the target topics, delete them and "
                "import again"
            )

    def result(self, mode: str, end: int, seconds: float) -> RestoredPartition:
        return RestoredPartition(
            self.ref.topic,
            self.ref.partition,
            mode,
            self.coverage.records,
            self.bytes,
            self.first,
            end,
            seconds,
        )


def _producer(settings: Settings, transactional_id: str | None) -> Producer:
    if transactional_id is None:
        producer = Producer(producer_config(settings))
    else:
        producer = Producer(
            transactional_producer_config(
                settings, transactional_id, timeout_ms=_TXN_TIMEOUT_MS, **{"linger.ms": 5}
            )
        )
    if transactional_id is not None:
        producer.init_transactions(_TIMEOUT_S)
    return producer


def _produce(
    producer: Producer, job: PartitionJob, record: dict[str, Any] | None, **kw: Any
) -> None:
    """Send a record (None: an empty filler) to the job's partition."""
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
        job.bytes += len(record["value"] or b"") + len(record["key"] or b"")
    while True:
        try:
            producer.produce(job.ref.topic, partition=job.ref.partition, **args, **kw)
            return
        except BufferError:
            producer.poll(0.05)


class PlainRestore:
    """A dense partition in order with one idempotent producer (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        job: PartitionJob,
        *,
        preserve_offsets: bool,
        advance: Callable[[int], None],
    ) -> None:
        self._settings, self._job = settings, job
        self._preserve, self._advance = preserve_offsets, advance

    def run(self) -> list[RestoredPartition]:
        started, job = time.perf_counter(), self._job
        producer = _producer(self._settings, None)
        for index, record in enumerate(job.records()):
            expected = job.start + index if self._preserve else None
            _produce(producer, job, record, on_delivery=job.delivered(expected))
            producer.poll(0)
            self._advance(1)
        if producer.flush(_TIMEOUT_S):
            raise BackupError(f"{job.ref}: the broker did not acknowledge every record")
        job.check()
        mode = "plain" if self._preserve else "appended"
        end = job.start + job.coverage.records
        return [job.result(mode, end, time.perf_counter() - started)]


@dataclass
class _Lane:
    job: PartitionJob
    planner: OffsetPlanner
    records: Iterator[dict[str, Any]]
    pending: dict[str, Any] | None
    b: Producer | None = None
    done: bool = False


class LockstepRestore:
    """Every other partition, in rounds over one shared producer A (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        jobs: list[PartitionJob],
        *,
        advance: Callable[[int], None],
    ) -> None:
        self._settings, self._jobs, self._advance = settings, jobs, advance
        self._txn_prefix = f"{settings.topic_prefix}aop.log.import"

    def run(self) -> list[RestoredPartition]:
        if not self._jobs:
            return []
        started = time.perf_counter()
        lanes = []
        for job in self._jobs:
            records = job.records()
            lanes.append(_Lane(job, OffsetPlanner(job.start), records, next(records, None)))
        a = _producer(self._settings, f"{self._txn_prefix}.a")
        try:
            with OffsetReader(self._settings) as reader:
                while not all(lane.done for lane in lanes):
                    self._round(a, lanes, reader)
                ends = {lane.job.ref: reader.high(lane.job.ref) for lane in lanes}
        except KafkaException as exc:
            raise BackupError(f"a transaction of the import failed: {exc}") from exc
        seconds = time.perf_counter() - started
        return [lane.job.result("transactional", ends[lane.job.ref], seconds) for lane in lanes]

    def _round(self, a: Producer, lanes: list[_Lane], reader: OffsetReader) -> None:
        in_txn = False
        for lane in lanes:  # step 1
            if lane.pending is None:
                continue
            offset = lane.pending["offset"]
            if self._spend(lane, lane.planner.before(offset)):
                _await_end(reader, lane.job.ref, offset)
            if not in_txn:
                a.begin_transaction()
                in_txn = True
            while lane.pending is not None:
                record = lane.pending
                _produce(a, lane.job, record, on_delivery=lane.job.delivered(record["offset"]))
                self._advance(1)
                lane.pending = next(lane.records, None)
                if lane.pending is None or lane.planner.gap(lane.pending["offset"]):
                    break
                lane.planner.before(lane.pending["offset"])
            a.poll(0)
        if in_txn:  # step 2
            a.commit_transaction(_TIMEOUT_S)
            for lane in lanes:
                if lane.planner.a_open:
                    lane.planner.committed()
        for lane in lanes:
            lane.job.check()
            if lane.pending is None and not lane.done:  # step 3
                self._spend(lane, lane.planner.finish(lane.job.coverage.end))
                lane.done = True

    def _spend(self, lane: _Lane, ops: list[Op]) -> bool:
        """Run B's operations for a lane; True when they ended with an abort."""
        for op in ops:
            if op is Op.BEGIN_B:
                if lane.b is None:
                    ref = lane.job.ref
                    lane.b = _producer(
                        self._settings, f"{self._txn_prefix}.{ref.topic}.{ref.partition}.b"
                    )
                lane.b.begin_transaction()
            elif op is Op.FILL:
                assert lane.b is not None
                _produce(lane.b, lane.job, None)
                lane.b.flush(_TIMEOUT_S)
            elif op is Op.ABORT_B:
                assert lane.b is not None
                lane.b.abort_transaction(_TIMEOUT_S)
            else:  # COMMIT_A: A is committed once per round, never per lane
                raise AssertionError(f"{lane.job.ref}: unexpected {op}")
        return Op.ABORT_B in ops


def _await_end(reader: OffsetReader, ref: PartitionRef, end: int) -> None:
    """Wait until `ref` ends at `end` (an abort's marker is written after the call returns)."""
    deadline = time.monotonic() + _TIMEOUT_S
    while (high := reader.high(ref)) < end:
        if time.monotonic() > deadline:
            raise BackupError(f"{ref} ends at {high}, not {end}, {_TIMEOUT_S:.0f} s after an abort")
        time.sleep(0.005)
    if high > end:
        raise OffsetDriftError(
            f"{ref} ends at {high} where the next record's offset is {end}; operator action: "
            "make sure nothing else writes to the target topics, delete them and import again"
        )
