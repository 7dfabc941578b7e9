"""`aop project`: aop.epoch.roots, aop.global.roots (and claims on aop.chain.events) ->
PostgreSQL.

Protocol, per consumed batch:

1. On assignment, seek each partition to the offset stored in Postgres (`consumer_offsets`);
   Kafka group commits are only advisory (for tooling).
2. Decode each record. Records of the roots topics (aop.epoch.roots: channel roots,
   attention roots (scope 'attention') and the EpochClosed/AttentionClosed markers, which
   carry no rows; aop.global.roots: global roots; headers read as `dataset.root_view` shows)
   go to the topic's `RootAssembler`; a root whose
   chunks are all in is verified (`verify_root`: tree rebuilt, root, dataset_hash,
   leaf_count, total compared) and written with the partition's new offset in ONE
   transaction (`ProjectionWriter.write_root`). A redelivered identical root is detected
   before verification and only advances the offset.
3. A record that fails (undecodable, orphan chunk, a root that does not verify, a different
   root for an existing (channel, root_seq)) goes to aop.dlq (stage "projector") with the
   reason; the DLQ record is flushed BEFORE any offset that passes it is committed.
4. CumulativeRewardsClaimed events of aop.chain.events (told by their discriminator, see
   `projections.claims`) raise `claimed_totals` (max), written with those partitions'
   offsets in one transaction per batch.

Common failure scenarios: a crash at any point leaves the last committed transaction; the
restart seeks to the stored offsets, re-reads the root's EpochRoot and chunks, and writes it
whole. A projector that loses a partition in a rebalance but still writes is fenced: the
offsets row it locks no longer holds what it expects (`OffsetConflictError`), it writes
nothing and re-seeks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from aop.log.avro import AvroCodec, AvroDecodeError, codec_for
from aop.log.kafka import (
    CHAIN_EVENTS,
    DLQ,
    EPOCH_ROOTS,
    GLOBAL_ROOTS,
    consumer_config,
    producer_config,
)
from aop.log.messages import position
from aop.log.root_assembly import CompleteRoot, RejectedRecord, RootAssembler
from aop.projections import metrics
from aop.projections.claims import ClaimUpdate, claims_of
from aop.projections.dataset import (
    SCOPES,
    DecodedRoot,
    VerifiedRoot,
    decode_root,
    root_view,
    verify_decoded,
)
from aop.projections.errors import LogStartAheadError, ProjectionError, RootRejectedError
from aop.projections.purge import purge_roots
from aop.projections.writer import (
    CONSUMER_NAME,
    OffsetConflictError,
    OffsetUpdate,
    ProjectionWriter,
    root_differences,
)
from aop.runtime.backoff import DATABASE_OUTAGE
from aop.runtime.errors import AopError
from aop.runtime.faults import FaultPlan
from aop.runtime.settings import Settings

__all__ = ["CONSUMER_NAME", "Projector", "lag_from_stats"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_STAGE = "projector"
_LAG_EVERY_S = 5.0


def lag_from_stats(
    stats_json: str, stored: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Per stored (topic, partition): last stable offset (else high watermark) - stored.

    Args:
        stats_json: a librdkafka statistics document (`stats_cb`).
        stored: the next offsets committed in Postgres.
    """
    try:
        stats = json.loads(stats_json)
    except ValueError:
        return {}
    out = {}
    for topic, info in stats.get("topics", {}).items():
        for part, pstats in info.get("partitions", {}).items():
            if not part.lstrip("-").isdigit() or (topic, int(part)) not in stored:
                continue
            high = pstats.get("ls_offset", -1)
            if not isinstance(high, int) or high < 0:
                high = pstats.get("hi_offset", -1)
            if isinstance(high, int) and high >= 0:
                out[(topic, int(part))] = max(high - stored[(topic, int(part))], 0)
    return out


class Projector:
    """Consumes the log and writes the projections (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        codec: AvroCodec | None = None,
        consumer_factory: Callable[[dict[str, Any]], Consumer] = Consumer,
        producer: Producer | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._codec = codec or codec_for(settings)
        self._writer = ProjectionWriter(
            engine,
            consumer=CONSUMER_NAME,
            faults=FaultPlan.for_service(settings, "projection"),
            proof_roots_kept=settings.proof_roots_kept,
        )
        self._roots_topic = settings.topic(EPOCH_ROOTS)
        self._global_topic = settings.topic(GLOBAL_ROOTS)
        self._global_account = settings.global_root_account
        self._events_topic = settings.topic(CHAIN_EVENTS)
        self._dlq_topic = settings.topic(DLQ)
        self._topics = [self._roots_topic, self._global_topic]
        if settings.projection_claims:
            self._topics.append(self._events_topic)
        group = settings.projection_group_id or f"{settings.topic_prefix}aop.projector"
        extra: dict[str, Any] = {
            "statistics.interval.ms": int(_LAG_EVERY_S * 1000),
            "stats_cb": self._on_stats,
            "session.timeout.ms": settings.projection_session_timeout_ms,
        }
        if settings.projection_instance_id:
            extra["group.instance.id"] = settings.projection_instance_id
        self._consumer = consumer_factory(consumer_config(settings, group, **extra))
        self._producer = producer or Producer(producer_config(settings))
        #: one assembler per roots topic (channel roots; global roots).
        self._assemblers = {t: RootAssembler() for t in (self._roots_topic, self._global_topic)}
        #: what this process last read from or wrote to consumer_offsets, per (topic, part).
        self._stored: dict[tuple[str, int], int] = {}
        #: the offset after the last record handed to the assembler / claims, per partition.
        self._consumed: dict[tuple[str, int], int] = {}
        self._dlq_pending = 0
        self._dlq_errors: list[str] = []
        self._fenced: set[tuple[str, int]] = set()
        self._subscribed = False
        #: a database error interrupted a batch: re-read from the stored offsets first.
        self._needs_rewind = False
        #: an assignment could not load its offsets: leave and rejoin the group.
        self._resubscribe = False
        #: an assigned partition's stored offset is below its log start (records deleted
        #: unseen): `poll_once` raises it.
        self._deleted_unseen: LogStartAheadError | None = None
        #: roots purge (`projections.purge`): when it last ran, and whether an offset was
        #: committed since.
        self._purged_at = time.monotonic()
        self._committed_since_purge = False

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; then finish the batch in hand and close.

        A database outage does not stop the loop: after a pause (`DATABASE_OUTAGE`: full
        jitter under a ceiling doubling from 1 s to 30 s) every partition is re-read from its
        stored offset (whatever committed stays committed; whatever did not is redone,
        idempotently).
        """
        failures = 0
        try:
            while not stop.is_set():
                try:
                    self.poll_once()
                    failures = 0
                except (DBAPIError, psycopg.OperationalError) as exc:
                    failures += 1
                    pause = DATABASE_OUTAGE.delay(failures)
                    log.error(
                        "database error; retrying from the stored offsets",
                        extra={"error": str(exc).splitlines()[0], "pause_s": pause},
                    )
                    self._needs_rewind = True
                    stop.wait(pause)
        finally:
            self.close()

    def _rewind(self) -> None:
        """Forget in-flight state and seek every assigned partition to its stored offset.

        Raises:
            DBAPIError, psycopg.OperationalError: the database is still away (the caller
                retries; nothing is consumed until a rewind succeeds).
        """
        by_topic: dict[str, list[int]] = {}
        for topic, part in self._stored:
            by_topic.setdefault(topic, []).append(part)
        for topic, parts in by_topic.items():
            for part, offset in self._writer.load_offsets(topic, parts).items():
                self._stored[(topic, part)] = offset
                self._consumed[(topic, part)] = offset
                if topic in self._assemblers:
                    self._assemblers[topic].drop_partition(part)
                try:
                    self._consumer.seek(TopicPartition(topic, part, offset))
                except KafkaException as exc:  # no longer ours: the next assignment seeks
                    log.warning("seek failed", extra={"error": str(exc)})
        self._needs_rewind = False

    def close(self) -> None:
        self._producer.flush(10)
        self._consumer.close()

    def _subscribe(self) -> None:
        if self._resubscribe:
            self._consumer.unsubscribe()
            self._subscribed = self._resubscribe = False
        if not self._subscribed:
            self._consumer.subscribe(
                self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke
            )
            self._subscribed = True

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        by_topic: dict[str, list[int]] = {}
        for tp in partitions:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        try:
            loaded = {
                topic: self._writer.load_offsets(topic, parts) for topic, parts in by_topic.items()
            }
        except (DBAPIError, psycopg.OperationalError) as exc:
            log.error(
                "cannot load the stored offsets; rejoining the group",
                extra={"error": str(exc).splitlines()[0]},
            )
            self._resubscribe = True
            return
        for topic, offsets in loaded.items():
            for part, offset in offsets.items():
                self._stored[(topic, part)] = offset
                self._consumed[(topic, part)] = offset
                if topic in self._assemblers:
                    self._assemblers[topic].drop_partition(part)
        for tp in partitions:
            tp.offset = self._stored[(tp.topic, tp.partition)]
        behind = self._behind_log_start(consumer, partitions)
        if behind:
            self._deleted_unseen = LogStartAheadError(
                f"the stored offsets of {', '.join(behind)}: the records in between were "
                "deleted before the projector read them (retention, or a manual deletion); "
                "projecting on would silently skip roots. Operator action: `aop rebuild` "
                "(rebuilds the projections from what the log holds)"
            )
            return
        log.info(
            "assigned partitions",
            extra={"partitions": [f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in partitions]},
        )
        consumer.assign(partitions)

    @staticmethod
    def _behind_log_start(consumer: Consumer, partitions: list[TopicPartition]) -> list[str]:
        """'topic[p]: stored X < log start Y' for each partition whose stored offset the log
        no longer holds (librdkafka would jump to the start silently)."""
        out = []
        for tp in partitions:
            low, _ = consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=15, cached=False
            )
            if tp.offset < low:
                out.append(f"{tp.topic}[{tp.partition}] is {tp.offset}, below its log start {low}")
        return out

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._stored.pop(key, None)
            self._consumed.pop(key, None)
            if tp.topic in self._assemblers:
                self._assemblers[tp.topic].drop_partition(tp.partition)
        log.info("revoked partitions", extra={"partitions": [str(tp) for tp in partitions]})
        consumer.unassign()

    # -- one batch ---------------------------------------------------------------------------

    def poll_once(self) -> int:
        """Consume and handle one batch; returns the number of records received.

        Raises:
            LogStartAheadError: an assigned partition no longer holds its stored offset.
        """
        if self._needs_rewind:
            self._rewind()
        self._subscribe()
        messages = self._consumer.consume(
            num_messages=self._settings.projection_batch_size,
            timeout=self._settings.projection_poll_timeout_s,
        )
        if self._deleted_unseen is not None:
            raise self._deleted_unseen
        self._fenced.clear()
        claims: list[ClaimUpdate] = []
        claim_parts: set[int] = set()
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if error.fatal():
                    raise KafkaException(error)
                log.warning("consumer error", extra={"error": str(error)})
                continue
            topic, part, offset = position(message)
            key = (topic, part)
            if key in self._fenced or key not in self._stored:
                continue
            if offset < self._consumed.get(key, 0):
                continue  # already handled (re-seek in flight)
            if topic in self._assemblers:
                self._handle_root_record(message)
            else:
                claims.extend(self._claims_of(message))
                claim_parts.add(part)
            if key not in self._fenced:
                self._consumed[key] = offset + 1
        if claim_parts:
            self._write_claims(claims, claim_parts)
        self._advance_idle_root_offsets()
        self._maybe_purge()
        return len(messages)

    def _maybe_purge(self) -> None:
        """Purge the roots topics (`projections.purge`) at most every AOP_ROOTS_PURGE_EVERY_S
        after a commit; a failure is logged and retried at the next interval."""
        settings = self._settings
        if not (settings.roots_purge and self._committed_since_purge):
            return
        if time.monotonic() - self._purged_at < settings.roots_purge_every_s:
            return
        self._purged_at = time.monotonic()
        self._committed_since_purge = False
        try:
            purge_roots(settings, self._engine, self._codec)
        except (AopError, KafkaException, DBAPIError, psycopg.OperationalError) as exc:
            log.warning(
                "roots purge failed; retrying later", extra={"error": str(exc).splitlines()[0]}
            )

    # -- roots -------------------------------------------------------------------------------

    def _handle_root_record(self, message: Message) -> None:
        topic, part, offset = position(message)
        payload = message.value() or b""
        try:
            record_type, value = self._codec.decode(payload)
        except AvroDecodeError as exc:
            self._dead_letter(part, offset, "undecodable", str(exc), payload, topic)
            return
        view = root_view(record_type, value)
        for item in self._assemblers[topic].add(part, offset, record_type, view, payload):
            if isinstance(item, RejectedRecord):
                metrics.ROOTS.labels("rejected").inc()
                self._dead_letter(
                    item.partition, item.offset, item.reason, item.detail, item.payload, topic
                )
            elif isinstance(item, CompleteRoot):  # never a PurgedRemainder: no purged_start
                self._project_root(topic, item, next_offset=offset + 1)
                if (topic, part) in self._fenced:
                    return

    def _project_root(self, topic: str, complete: CompleteRoot, *, next_offset: int) -> None:
        record, part = complete.record, complete.partition
        config, seq = str(record["channel_config"]), int(record["root_seq"])
        started = time.perf_counter()
        stored = self._writer.find_root(config, seq)
        if stored is not None:
            differences = root_differences(stored, record)
            if differences:
                self._reject(topic, complete, "conflicting_root", "; ".join(differences))
            else:
                metrics.ROOTS.labels("duplicate").inc()
                log.info(
                    "duplicate root skipped",
                    extra={"channel_config": config, "root_seq": seq, "offset": complete.offset},
                )
            return
        try:
            decoded = decode_root(
                record, complete.chunks, scope_name=SCOPES.get(complete.record_type, "")
            )
        except RootRejectedError as exc:
            self._reject(topic, complete, exc.reason, exc.detail)
            return
        key = (topic, part)
        update = OffsetUpdate(
            topic, part, self._stored[key], self._assemblers[topic].safe_offset(part, next_offset)
        )
        self._flush_dlq()
        verify_seconds = 0.0

        def verify(root: DecodedRoot) -> VerifiedRoot:
            nonlocal verify_seconds
            begun = time.perf_counter()
            try:
                return verify_decoded(root)
            finally:
                verify_seconds = time.perf_counter() - begun

        try:
            outcome = self._writer.write_root(
                decoded,
                source_partition=part,
                source_offset=complete.offset,
                offsets=[update],
                verify=verify,
            )
        except RootRejectedError as exc:  # the tree did not verify, or a conflicting root
            self._reject(topic, complete, exc.reason, exc.detail)
            return
        except OffsetConflictError as exc:
            self._fence(topic, part, exc)
            return
        self._stored[key] = update.next_offset
        self._committed_since_purge = True
        self._commit_to_kafka(topic, part, update.next_offset)
        elapsed = time.perf_counter() - started
        metrics.ROOTS.labels(outcome).inc()
        if outcome == "written":
            metrics.WRITE_SECONDS.observe(elapsed)
            metrics.ROWS.labels("roots").inc()
            metrics.ROWS.labels("leaves").inc(len(decoded.entries))
            metrics.ROWS.labels("tree_levels").inc(decoded.tree_depth + 1 if decoded.entries else 0)
            if decoded.scope_name != "attention":
                metrics.ROWS.labels("settlement_outbox").inc()
        log.info(
            "root projected",
            extra={
                "channel_config": config,
                "root_seq": seq,
                "outcome": outcome,
                "leaves": len(decoded.entries),
                "seconds": round(elapsed, 3),
                "verify_seconds": round(verify_seconds, 3),
            },
        )

    def _reject(self, topic: str, complete: CompleteRoot, reason: str, detail: str) -> None:
        metrics.ROOTS.labels("rejected").inc()
        record = complete.record
        log.error(
            "root refused",
            extra={
                "channel_config": record["channel_config"],
                "root_seq": record["root_seq"],
                "reason": reason,
                "detail": detail,
            },
        )
        self._dead_letter(
            complete.partition, complete.offset, reason, detail, complete.payload, topic
        )

    def _advance_idle_root_offsets(self) -> None:
        """Commit offsets that moved past records which produced no rows (DLQ, duplicates)."""
        updates = []
        for (topic, part), consumed in self._consumed.items():
            if topic not in self._assemblers or (topic, part) in self._fenced:
                continue
            target = self._assemblers[topic].safe_offset(part, consumed)
            if target > self._stored[(topic, part)]:
                updates.append(OffsetUpdate(topic, part, self._stored[(topic, part)], target))
        self._commit_updates(updates)

    # -- claims ------------------------------------------------------------------------------

    def _claims_of(self, message: Message) -> list[ClaimUpdate]:
        """The record's claimed-total updates (`projections.claims`); an undecodable record
        or claim event goes to the DLQ."""
        _, part, offset = position(message)
        payload = message.value() or b""
        try:
            batch = self._codec.decode_as("SlotBatch", payload)
        except AvroDecodeError as exc:
            self._dead_letter(part, offset, "undecodable", str(exc), payload, self._events_topic)
            return []
        found = claims_of(batch, global_account=self._global_account)
        for bad in found.undecodable:
            detail = f"event {bad.event_id}: {bad.error}"
            self._dead_letter(
                part, offset, "undecodable_event", detail, payload, self._events_topic
            )
        return found.updates

    def _write_claims(self, claims: list[ClaimUpdate], parts: set[int]) -> None:
        updates = []
        for part in sorted(parts):
            key = (self._events_topic, part)
            if key in self._fenced or key not in self._stored:
                continue
            if self._consumed[key] > self._stored[key]:
                updates.append(
                    OffsetUpdate(self._events_topic, part, self._stored[key], self._consumed[key])
                )
        changed = self._commit(updates, lambda: self._writer.apply_claims(claims, updates))
        if changed:
            metrics.ROWS.labels("claimed_totals").inc(changed)

    # -- offsets, DLQ, lag -------------------------------------------------------------------

    def _commit_updates(self, updates: list[OffsetUpdate]) -> None:
        self._commit(updates, lambda: self._writer.commit_offsets(updates))

    def _commit(self, updates: list[OffsetUpdate], write: Callable[[], T]) -> T | None:
        """Flush the DLQ, then `write()`, which stores `updates` in its transaction; then
        remember them and commit them to Kafka (advisory). None when nothing was to be
        stored, or when another projector moved an offset (fenced: nothing written)."""
        if not updates:
            return None
        self._flush_dlq()
        try:
            result = write()
        except OffsetConflictError as exc:
            for update in updates:
                self._fence(update.topic, update.partition, exc)
            return None
        for update in updates:
            self._stored[(update.topic, update.partition)] = update.next_offset
            self._commit_to_kafka(update.topic, update.partition, update.next_offset)
        self._committed_since_purge = True
        return result

    def _fence(self, topic: str, part: int, exc: ProjectionError) -> None:
        """Another projector moved our offsets: drop our state and re-seek to the stored one."""
        log.warning(
            "offset conflict; re-seeking",
            extra={"topic": topic, "partition": part, "error": str(exc)},
        )
        self._fenced.add((topic, part))
        stored = self._writer.load_offsets(topic, [part])[part]
        self._stored[(topic, part)] = stored
        self._consumed[(topic, part)] = stored
        if topic in self._assemblers:
            self._assemblers[topic].drop_partition(part)
        try:
            self._consumer.seek(TopicPartition(topic, part, stored))
        except KafkaException as seek_error:  # partition no longer ours
            log.warning("seek failed", extra={"error": str(seek_error)})

    def _commit_to_kafka(self, topic: str, part: int, offset: int) -> None:
        try:
            self._consumer.commit(offsets=[TopicPartition(topic, part, offset)], asynchronous=True)
        except KafkaException as exc:  # advisory only
            log.debug("advisory commit failed", extra={"error": str(exc)})

    def _dead_letter(
        self, part: int, offset: int, reason: str, detail: str, payload: bytes, topic: str
    ) -> None:
        source = f"{topic}/{part}/{offset}"
        value = {
            "stage": _STAGE,
            "reason": reason,
            "detail": detail,
            "source": source,
            "payload": payload,
            "at_ms": int(time.time() * 1000),
        }
        self._producer.produce(
            self._dlq_topic,
            self._codec.encode("DeadLetter", value, topic=self._dlq_topic),
            key=source.encode(),
            on_delivery=self._on_dlq_delivery,
        )
        self._dlq_pending += 1
        metrics.DLQ.labels(_STAGE, reason).inc()
        log.error("dead-lettered", extra={"source": source, "reason": reason, "detail": detail})

    def _on_dlq_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._dlq_errors.append(str(error))

    def _flush_dlq(self) -> None:
        """Make every DLQ record durable before an offset past it is committed."""
        if not self._dlq_pending:
            return
        remaining = self._producer.flush(30)
        if remaining or self._dlq_errors:
            errors, self._dlq_errors = self._dlq_errors, []
            raise ProjectionError(
                f"could not write {remaining or len(errors)} DLQ record(s) to {self._dlq_topic} "
                f"({'; '.join(errors) or 'flush timed out'}); not committing past them"
            )
        self._dlq_pending = 0

    def _on_stats(self, stats_json: str) -> None:
        """librdkafka statistics (every few seconds, from consume()): report the lag without
        a blocking watermark query."""
        for (topic, part), lag in lag_from_stats(stats_json, self._stored).items():
            metrics.CONSUMER_LAG.labels(topic, str(part)).set(lag)

    @property
    def stored_offsets(self) -> Mapping[tuple[str, int], int]:
        """What this process last stored or read per (topic, partition) (for tests)."""
        return dict(self._stored)
