"""`aop combine`: the combiner's loop (`core.combine` does the combining).

Why not a Faust agent: the combiner needs every partition of aop.epoch.roots in one place (a
global root waits for all of them), so Faust's partition-parallel tables buy nothing, and the
defects the fold works around (faust-notes §7.5) would come along. A plain consumer whose
checkpoint is its own output is simpler and exactly once: each global root and its chunks are
one Kafka transaction, and the last committed GlobalRoot says where to continue.

Steps:

1. Lease: join the consumer group `lease_group` on aop.global.roots (one partition). Only the
   member holding partition 0 combines; the others wait, and one takes over within the
   session timeout when the active instance dies (a second instance is a hot standby).
2. On taking the lease: `init_transactions()` with the shared transactional id (fences the
   previous holder and aborts its open transaction), then recover the state from the last
   GlobalRoot (`recovery.recover_state`) and seek every partition of aop.epoch.roots to its
   resume offset (the marker's offset when it comes first, so it is read again; offset 0
   without a checkpoint).
3. Read aop.epoch.roots: roots are assembled with their chunks (`log.root_assembly`) and
   handed to the combiner with their partition and offset (an AttentionRoot feeds
   `attention_bonus`, an EpochRoot `base_yield`), markers (EpochClosed, AttentionClosed)
   likewise.
4. Each global root (or refusal) the combiner returns is written in its own transaction
   (`writer`) before the next record is read.
5. Losing the lease, being fenced, or a write error: drop the state and go back to 1 (a
   restart recovers from the log, so nothing is lost and nothing is written twice).

Fault points (`AOP_COMBINER_CRASH_AT`, tests): `before_global` (a root computed, nothing
written), `mid_global` (its GlobalRoot record flushed inside the open transaction),
`after_global` (committed, the next record not read yet).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from aop.core.combine import GlobalCombiner, GlobalOutput, GlobalRefusal, Part
from aop.core.errors import CoreError
from aop.log.avro import AvroCodec, AvroDecodeError, codec_for
from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS, consumer_config, ensure_topics
from aop.log.messages import position
from aop.log.root_assembly import CompleteRoot, RejectedRecord, RootAssembler
from aop.runtime.faults import FaultPlan
from aop.runtime.settings import Settings
from aop.runtime.shutdown import arm_shutdown_deadline, run_in_worker_thread
from aop.streams.combiner import metrics
from aop.streams.combiner.config import combine_config, lease_group
from aop.streams.combiner.recovery import recover_state
from aop.streams.combiner.writer import GlobalRootWriter, WriterError

__all__ = ["CombinerService", "run_combiner"]

log = logging.getLogger(__name__)


class _Active:
    """The state of the instance holding the lease (steps 2-4)."""

    def __init__(self, service: CombinerService) -> None:
        settings = service.settings
        self.writer = GlobalRootWriter(settings, service.codec, service.faults)
        self.writer.start()
        state = recover_state(settings, service.codec)
        self.combiner = GlobalCombiner(service.config, state)
        self.assembler = RootAssembler()
        topic = settings.topic(EPOCH_ROOTS)
        resume = state.resume if state is not None else {}
        starts = [
            TopicPartition(topic, p, min(resume[p]) if p in resume else 0)
            for p in range(settings.chain_partitions)
        ]
        self.reader = Consumer(
            consumer_config(
                settings,
                f"{lease_group(settings)}.reader",
                **{"enable.auto.offset.store": False, "fetch.wait.max.ms": 100},
            )
        )
        self.reader.assign(starts)
        #: when the oldest pending epoch started waiting (wall clock, for the held-back gauge).
        self.waiting_since: float | None = None
        metrics.ACTIVE.set(1)
        if state is not None:
            metrics.LAST_EPOCH.set(state.last_epoch)
        log.info(
            "combining",
            extra={"starts": {tp.partition: tp.offset for tp in starts}, "fresh": state is None},
        )

    def close(self) -> None:
        metrics.ACTIVE.set(0)
        self.reader.close()
        self.writer.close()


class CombinerService:
    """The loop of `aop combine` (module docstring)."""

    def __init__(self, settings: Settings, codec: AvroCodec | None = None) -> None:
        self.settings = settings
        self.codec = codec or codec_for(settings)
        self.config = combine_config(settings)
        self.faults = FaultPlan.for_service(settings, "combiner")
        self._stop = threading.Event()
        self._leased = False
        self._active: _Active | None = None
        self._lease = Consumer(
            consumer_config(
                settings,
                lease_group(settings),
                **{
                    "session.timeout.ms": settings.combiner_session_timeout_ms,
                    "heartbeat.interval.ms": max(1000, settings.combiner_session_timeout_ms // 5),
                },
            )
        )

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Steps 1-5 until `stop()`."""
        self._lease.subscribe(
            [self.settings.topic(GLOBAL_ROOTS)], on_assign=self._assigned, on_revoke=self._revoked
        )
        try:
            while not self._stop.is_set():
                self._lease.poll(0.05 if self._active else 0.5)
                if not self._leased:
                    self._drop("the lease is elsewhere")
                    continue
                try:
                    if self._active is None:
                        self._active = _Active(self)
                    self._step(self._active)
                except (WriterError, KafkaException, LookupError) as exc:
                    log.warning("combiner restarts from the log: %s", exc)
                    self._drop(str(exc))
                    time.sleep(1.0)
        finally:
            self._drop("stopping")
            self._lease.close()

    def _assigned(self, _consumer: Any, partitions: Sequence[TopicPartition]) -> None:
        self._leased = any(tp.partition == 0 for tp in partitions)
        log.info("lease %s", "taken" if self._leased else "not held")

    def _revoked(self, _consumer: Any, _partitions: Sequence[TopicPartition]) -> None:
        self._leased = False
        log.info("lease revoked")

    def _drop(self, why: str) -> None:
        if self._active is not None:
            log.info("combiner state dropped: %s", why)
            self._active.close()
            self._active = None

    def _step(self, active: _Active) -> None:
        """Steps 3-4 for one consume() batch."""
        messages = active.reader.consume(200, 0.2)
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error", extra={"error": str(error)})
                continue
            _, partition, offset = position(message)
            for output in self._take(active, partition, offset, message.value()):
                self._write(active, output)
        self._observe(active)

    def _take(
        self, active: _Active, partition: int, offset: int, value: bytes | None
    ) -> list[GlobalOutput | GlobalRefusal]:
        payload = value or b""
        try:
            name, record = self.codec.decode(payload)
        except AvroDecodeError as exc:
            log.warning("undecodable record on aop.epoch.roots: %s", exc)
            return []
        if name == "EpochClosed":
            return active.combiner.add_closed(partition, offset, record)
        if name == "AttentionClosed":
            return active.combiner.add_attention_closed(partition, offset, record)
        out: list[GlobalOutput | GlobalRefusal] = []
        for item in active.assembler.add(partition, offset, name, record, payload):
            if isinstance(item, RejectedRecord):
                # the projector dead-letters what it cannot assemble; the combiner skips it
                metrics.SKIPPED.labels(item.reason).inc()
            elif isinstance(item, CompleteRoot):  # never a PurgedRemainder: no purged_start
                out += self._root(active, item)
        return out

    def _root(self, active: _Active, root: CompleteRoot) -> list[GlobalOutput | GlobalRefusal]:
        part: Part = "attention_bonus" if root.record_type == "AttentionRoot" else "base_yield"
        try:
            return active.combiner.add_root(
                root.partition, root.offset, root.record, b"".join(root.chunks), part=part
            )
        except CoreError as exc:
            epoch = int(root.record["epoch"])
            detail = f"{root.record['channel']!r} root_seq {root.record['root_seq']}: {exc}"
            return [GlobalRefusal("bad_root", detail, epoch)]

    def _write(self, active: _Active, output: GlobalOutput | GlobalRefusal) -> None:
        if isinstance(output, GlobalOutput) and self.faults.due("before_global"):
            self.faults.kill("before_global")
        started = time.perf_counter()
        active.writer.write(output)
        if isinstance(output, GlobalOutput):
            metrics.GLOBAL_ROOTS.inc()
            metrics.LAST_EPOCH.set(output.epoch)
            metrics.COMBINE_SECONDS.observe(time.perf_counter() - started)
            log.info(
                "global root written",
                extra={
                    "epoch": output.epoch,
                    "root_seq": output.root_seq,
                    "leaves": output.record["leaf_count"],
                    "total": output.record["total"],
                },
            )
            if self.faults.due("after_global"):
                self.faults.kill("after_global")
        else:
            metrics.REFUSED.labels(output.reason).inc()
            log.warning("global root refused: %s", output.detail, extra={"reason": output.reason})

    def _observe(self, active: _Active) -> None:
        combiner = active.combiner
        for reason, count in combiner.skipped.items():
            metrics.SKIPPED.labels(reason).inc(count)
        combiner.skipped.clear()
        waiting = combiner.waiting_partitions
        metrics.PENDING_EPOCHS.set(len(combiner.pending_epochs))
        metrics.PENDING_ATTENTION_EPOCHS.set(len(combiner.pending_attention_epochs))
        metrics.WAITING_PARTITIONS.set(len(waiting))
        if waiting:
            active.waiting_since = active.waiting_since or time.monotonic()
            metrics.HELD_BACK_SECONDS.set(time.monotonic() - active.waiting_since)
        else:
            active.waiting_since = None
            metrics.HELD_BACK_SECONDS.set(0)


def run_combiner(settings: Settings) -> int:
    """Run `aop combine` until SIGTERM or SIGINT; returns the exit code."""
    ensure_topics(settings)
    service = CombinerService(settings)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        service.stop()
        arm_shutdown_deadline(settings.shutdown_timeout_s, "combiner")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    run_in_worker_thread(service.run, name="combiner")
    return 0
