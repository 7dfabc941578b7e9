"""`aop fold` as a Faust app: aop.chain.events (and, with AOP_ATTENTION_ENABLED,
aop.attention.signals) -> changelog-backed state -> aop.epoch.roots.

One agent (concurrency 1) reads SlotBatch records (and SignalBatch records: the two topics are
co-partitioned, so Faust assigns partition p of both to the same worker, and the changelog's
partition p with them) with `take_events` and, for each chunk of one partition's records of
one topic:

1. folds them with `core.fold.PartitionFold` into a `ChunkStore` (state as of the partition's
   last complete chunk, see `streams.fold.table_state`), or SignalBatches with
   `core.attention.fold.AttentionFold` into an `AttentionChunkStore` (keys of their own,
   `streams.fold.attention_state`: the interleaving of the topics changes nothing);
2. sends the chunk's roots (EpochRoot or AttentionRoot, then its LeafChunks in order, to the
   source's partition number of aop.epoch.roots), after each record's roots its EpochClosed
   (AttentionClosed) marker when the partition's open (attention) epoch advanced, then dead
   letters, and waits until the broker has them all;
3. writes each key the chunk read or changed, the partition meta last, to the changelog
   partition of the source's number, and waits until the broker has every record (`_write`);
4. returns: Faust acks the events and commits their offsets later.

Common failure scenarios:

* crash before step 2 ends: nothing of the chunk is in the state; the records are read again
  and produce the same roots (duplicates are byte-identical, consumers upsert);
* crash inside step 3: the changelog holds a prefix of the chunk's writes; on recovery the
  keys written ahead of the partition meta are read through their undo entries, so the
  replay starts from the state before the chunk and emits the same roots again;
* crash after step 3, before the commit: the records are read again, found at or below the
  partition meta's offset and skipped (their keys are written back unchanged);
* shutdown or rebalance during a chunk: the chunk runs in its own task and finishes before
  the cancellation goes on; an error in a chunk ends the process (exit code 70) before Faust
  can commit the chunk's offsets (`take_events` acknowledges them whatever happens).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn, cast

import faust
from faust.types import TP, EventT, StreamT

from aop.core.attention.fold import AttentionFold
from aop.core.fold import PartitionFold
from aop.core.fold_output import BatchResult
from aop.log.avro import AvroDecodeError, codec_for
from aop.log.kafka import ATTENTION_SIGNALS, CHAIN_EVENTS, DLQ, EPOCH_ROOTS
from aop.log.slot_batch import SlotBatchDecoder
from aop.runtime.faults import FaultPlan
from aop.runtime.settings import Settings
from aop.streams.fold import metrics
from aop.streams.fold.attention_state import AttentionChunkStore
from aop.streams.fold.config import fold_app_id, fold_config
from aop.streams.fold.credentials import fold_credentials
from aop.streams.fold.table_state import KeyChunk, TableState
from aop.streams.fold.topics import STATE_TABLE
from aop.streams.fold.transport import use_fold_consumer

__all__ = ["STATE_TABLE", "FoldService", "create_app"]

log = logging.getLogger(__name__)

#: how long a cancelled chunk may take to finish before the process gives up on it.
_FINISH_CHUNK_S = 60.0


def create_app(settings: Settings) -> faust.App:
    """The Faust app of `aop fold` (start it with `faust.Worker(app).execute_from_commandline()`).

    Raises:
        SettingsError: a bad `AOP_FOLD_CRASH_AT`.
        InvalidChannelNameError, UnknownClaimFormatError: a bad channel setting.
    """
    partitions = settings.chain_partitions
    settings.fold_datadir.mkdir(parents=True, exist_ok=True)  # Faust creates only the leaf
    app = faust.App(
        fold_app_id(settings),
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=fold_credentials(settings),
        # `run_fold` creates Faust's topics first (`fold_topic_specs`, replicated as asked);
        # this only matters if Faust had to create one (it refuses -1, the broker's default)
        topic_replication_factor=max(settings.kafka_replication_factor, 0) or None,
        store="memory://",
        datadir=str(settings.fold_datadir / fold_app_id(settings)),
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=partitions,
        processing_guarantee="at_least_once",
        web_enabled=False,
        table_standby_replicas=settings.fold_standby_replicas,
        broker_commit_interval=settings.fold_commit_interval,
        consumer_max_fetch_size=8 * 1024 * 1024,
        producer_max_request_size=4 * 1024 * 1024,
        # aiokafka waits for a full batch to drain before the next record of its partition:
        # batches must hold many state values, or each changelog write costs a round trip.
        producer_max_batch_size=1024 * 1024,
        producer_linger=0.005,
        stream_wait_empty=True,
        consumer_group_instance_id=settings.fold_instance_id or None,
        broker_session_timeout=settings.fold_session_timeout,
    )
    topics = [settings.topic(CHAIN_EVENTS)]
    if settings.attention_enabled:
        topics.append(settings.topic(ATTENTION_SIGNALS))
    use_fold_consumer(app, *topics)
    source = app.topic(
        *topics,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    table = app.Table(STATE_TABLE, partitions=partitions, key_type=bytes, value_type=bytes)
    service = FoldService(app, settings, table)

    @app.agent(source, name="fold", concurrency=1)
    async def fold(stream: StreamT[bytes]) -> None:
        take_max, within = settings.fold_take_max, settings.fold_take_within
        # faust hands an agent its `Stream`, whose `StreamT` interface omits take_events
        events_of = cast("faust.Stream[bytes]", stream).take_events
        async for events in events_of(take_max, within=within):
            await _uninterrupted(service.process(events))

    return app


async def _uninterrupted(chunk: Coroutine[Any, Any, None]) -> None:
    """Run one chunk to its end, or end the process.

    `take_events` acknowledges a chunk's events when its body exits, even by an exception, and
    Faust then commits them. A chunk cut short would thus lose its records. So a chunk runs in
    its own task: a cancellation (shutdown, rebalance) waits for it to finish (state written)
    before it propagates, and any error ends the process at once, before the next commit.
    """
    task = asyncio.ensure_future(chunk)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=_FINISH_CHUNK_S)
        except BaseException:
            _abandon("cancelled twice while finishing a chunk")
        raise
    except Exception:
        log.exception("a chunk failed")
        _abandon("a chunk failed")


def _abandon(why: str) -> NoReturn:
    log.critical("exiting without committing: %s; the records are folded again on restart", why)
    logging.shutdown()
    os._exit(70)


class FoldService:
    """Folds `take_events` chunks into the table and emits roots (module docstring)."""

    def __init__(self, app: faust.App, settings: Settings, table: Any) -> None:
        self.app = app
        self.config = fold_config(settings)
        self.state = TableState(table, settings.fold_bucket_entries)
        self.table = table
        self.codec = codec_for(settings)
        self.decoder = SlotBatchDecoder(self.codec)
        self.faults = FaultPlan.for_service(settings, "fold")
        self.source_topic = settings.topic(CHAIN_EVENTS)
        self.signals_topic = settings.topic(ATTENTION_SIGNALS)
        self.roots_topic = settings.topic(EPOCH_ROOTS)
        self.dlq_topic = settings.topic(DLQ)
        self._folds: dict[int, PartitionFold] = {}
        self._attention_folds: dict[int, AttentionFold] = {}

    def _fold(self, partition: int) -> PartitionFold:
        fold = self._folds.get(partition)
        if fold is None:
            fold = self._folds[partition] = PartitionFold(self.config, partition)
        return fold

    def _signal_batch(self, value: bytes) -> dict[str, Any]:
        return self.codec.decode_as("SignalBatch", value)

    def _attention_fold(self, partition: int) -> AttentionFold:
        fold = self._attention_folds.get(partition)
        if fold is None:
            if self.config.attention is None:
                raise RuntimeError("a SignalBatch reached a fold without AOP_ATTENTION_ENABLED")
            fold = AttentionFold(self.config.attention, partition)
            self._attention_folds[partition] = fold
        return fold

    def _fault(self, point: str) -> None:
        self.faults.hit(point)

    async def process(self, events: Sequence[EventT[bytes]]) -> None:
        """Fold one `take_events` chunk, partition by partition, topic by topic."""
        taken_at = time.perf_counter()
        by_partition: dict[tuple[int, str], list[EventT[bytes]]] = defaultdict(list)
        for event in events:
            by_partition[(event.message.partition, event.message.topic)].append(event)
        for partition, topic in sorted(by_partition):
            await self._chunk(partition, topic, by_partition[(partition, topic)], taken_at)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - taken_at)

    def _fold_records(
        self,
        events: list[EventT[bytes]],
        decode: Callable[[bytes], dict[str, Any]],
        fold: PartitionFold | AttentionFold,
        store: Any,
    ) -> list[BatchResult]:
        """Step 1: decode and fold each record; one that does not decode is rejected whole."""
        results: list[BatchResult] = []
        for event in events:
            message = event.message
            # a null value is an empty record, as replay's reader reads it: undecodable
            value = message.value or b""
            try:
                batch = decode(value)
            except AvroDecodeError as exc:
                payload = bytes(value)
                results.append(
                    fold.reject_record(
                        store, message.offset, "undecodable_batch", str(exc), payload
                    )
                )
                continue
            results.append(fold.apply(store, message.offset, batch))
        return results

    async def _chunk(
        self, partition: int, topic: str, events: list[EventT[bytes]], taken_at: float
    ) -> None:
        self._fault("chunk_start")
        started = time.perf_counter()
        store: KeyChunk
        if topic == self.signals_topic:
            store = AttentionChunkStore(self.state, partition)
            results = self._fold_records(
                events, self._signal_batch, self._attention_fold(partition), store
            )
        else:
            store = self.state.chunk(partition)
            results = self._fold_records(events, self.decoder.decode, self._fold(partition), store)
        roots = [root for result in results for root in result.roots]
        folded = time.perf_counter()
        if roots:
            self._fault("before_root")
        await self._emit(results, taken_at)
        if roots:
            self._fault("after_root")
        emitted = time.perf_counter()
        writes = store.writes(events[-1].message.offset)
        await self._write(partition, writes)
        self._observe(partition, topic, events[-1].message.offset, results)
        log.debug(
            "chunk folded",
            extra={
                "partition": partition,
                "topic": topic,
                "records": len(events),
                "writes": len(writes),
                "bytes": sum(len(w.data) for w in writes),
                "fold_s": round(folded - started, 4),
                "emit_s": round(emitted - folded, 4),
                "write_s": round(time.perf_counter() - emitted, 4),
            },
        )

    async def _emit(self, results: list[BatchResult], taken_at: float) -> None:
        """Send each record's roots then its EpochClosed marker (record order, so a partition's
        marker follows the roots it closes), then the dead letters; wait until the broker
        acknowledged all."""
        producer = self.app.producer
        encode = self.codec.encode
        roots = [root for result in results for root in result.roots]
        rejections = [r for result in results for r in result.rejections]
        pending: list[Any] = []
        for result in results:
            for root in result.roots:
                value = encode(root.record_type, root.epoch_root, topic=self.roots_topic)
                sent = await producer.send(
                    self.roots_topic, root.key, value, root.partition, None, None
                )
                if self.faults.due("mid_root"):
                    await sent
                    self.faults.kill("mid_root")
                pending.append(sent)
                for chunk in root.chunks:
                    value = encode("LeafChunk", chunk, topic=self.roots_topic)
                    pending.append(
                        await producer.send(
                            self.roots_topic, root.key, value, root.partition, None, None
                        )
                    )
            for marker in (result.closed, result.attention_closed):
                if marker is None:
                    continue
                value = encode(marker.record_type, marker.record, topic=self.roots_topic)
                pending.append(
                    await producer.send(
                        self.roots_topic, marker.key, value, marker.partition, None, None
                    )
                )
        now_ms = int(time.time() * 1000)
        for rejection in rejections:
            value = encode("DeadLetter", rejection.dead_letter(now_ms), topic=self.dlq_topic)
            pending.append(
                await producer.send(
                    self.dlq_topic, rejection.source.encode(), value, None, None, None
                )
            )
        if pending:
            await asyncio.gather(*pending)
        for root in roots:
            metrics.ROOTS.labels(root.channel).inc()
            metrics.TREE_BUILD_SECONDS.labels(root.epoch_root["format"]).observe(root.build_seconds)
            metrics.EPOCH_CLOSE_SECONDS.observe(time.perf_counter() - taken_at)
            log.info(
                "root emitted",
                extra={
                    "channel": root.channel,
                    "epoch": root.epoch,
                    "root_seq": root.root_seq,
                    "leaves": root.epoch_root["leaf_count"],
                },
            )
        for rejection in rejections:
            metrics.DLQ.labels("fold", rejection.reason).inc()
            log.warning(
                "dead letter: %s",
                rejection.detail,
                extra={"reason": rejection.reason, "source": rejection.source},
            )

    async def _write(self, partition: int, writes: list[Any]) -> None:
        """Store the chunk's keys in order, the partition meta last, and wait until the broker
        has every changelog record.

        Each record is sent with `table.send_changelog` to the source's partition number and
        its delivery awaited here, not left to Faust's commit: `Producer.flush()` (0.15.3)
        returns as soon as one record sits in its buffer for 0.1 s (`flush_atmost` gives up on
        a timeout), so a commit after it can cover records still in the buffer, and a kill then
        loses the chunk's state while its input offsets are committed (found by the
        kill-at-every-point test). The explicit partition also routes each record by its key's
        partition without a current event (faust #497, #300). The store is `memory://`, whose
        `__setitem__` needs no current event either.
        """
        table = self.table
        store = table.data
        sent: list[Any] = []
        crash_mid = self.faults.due("mid_state")
        half = len(writes) // 2
        for index, write in enumerate(writes):
            if crash_mid and index == half:
                await asyncio.gather(*sent)
                self.faults.kill("mid_state")
            sent.append(table.send_changelog(partition, write.key, write.data))
            store[write.key] = write.data
            self.state.remember(write)
        await asyncio.gather(*sent)
        metrics.STATE_VALUE_BYTES.set(self.state.largest_value)
        self._fault("after_state")

    def _observe(
        self, partition: int, topic: str, last_offset: int, results: list[BatchResult]
    ) -> None:
        counts: dict[str, int] = defaultdict(int)
        for result in results:
            for name, count in result.counts.items():
                counts[name] += count
        for name, count in counts.items():
            metrics.EVENTS.labels(name).inc(count)
        if counts.get("unbound_users"):
            metrics.UNBOUND_USERS.inc(counts["unbound_users"])
        if topic == self.signals_topic:
            metrics.SIGNAL_RECORDS.inc(len(results))
            for result in results:
                if result.attention_closed is not None:
                    metrics.ATTENTION_WATERMARK.labels(str(partition)).set(
                        result.attention_closed.watermark_ms / 1000
                    )
        else:
            metrics.RECORDS.inc(len(results))
        try:
            highwater = self.app.consumer.highwater(TP(topic, partition))
        except Exception:  # the consumer may not know the partition's highwater yet
            highwater = None
        if highwater is not None:
            lag = metrics.CONSUMER_LAG if topic == self.source_topic else metrics.SIGNALS_LAG
            lag.labels(str(partition)).set(max(0, highwater - last_offset - 1))
