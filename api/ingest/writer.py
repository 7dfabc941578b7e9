"""The one writer of `aop.attention.signals` in a process: requests' items in Kafka
transactions, each batch carrying the writer's time watermark.

`SignalWriter.write(jobs, tick=...)` steps (one call at a time: the service's writer thread,
or the backfill):

1. Advance the watermark: `W = max(W, clock - AOP_ATTENTION_ALLOWED_LATENESS_S)`, and forget
   the ids whose window ended before W (`api.ingest.dedupe`).
2. Judge each job's items in order. An item whose (source, id) the log holds, or an earlier
   item of this call holds, is a duplicate when it counts as the same (its fingerprint) and
   is refused `id_reused` when it does not; any other item is refused `late` or `future` by
   its time (`api.ingest.items.time_refusal`). A job with a refused item gets every refusal
   back and nothing of it is written.
3. One transaction: for each other job, one SignalBatch per partition its signals go to and,
   if it has bindings, one on every partition (each holding all of them); with `tick`, a pure
   watermark batch (no signals or bindings, source '') on every partition nothing else is
   written to. Every batch carries W.
4. Commit (acks=all, idempotent producer). Only then remember the new ids and report each
   job's counts: an answer is given only for what the brokers acknowledged.

Hence, per partition, this writer's batches are in watermark order and every signal after a
batch with watermark W has a window ending at or after W: the promise the fold closes
attention epochs on (`schemas/avro/SignalBatch.avsc`).

Record keys: a batch with signals is keyed by the channel of its first signal (a request's
signals for several channels on one partition share one batch); a batch of bindings only, or
a pure watermark, by its partition number.

The transactional id is one per writer role (AOP_INGEST_TRANSACTIONAL_ID): a restarted
ingest fences its predecessor, and its `init_transactions()` aborts the transaction a killed
one left open. Until then read_committed readers (the fold) wait at that transaction, at most
`TRANSACTION_TIMEOUT_MS` (the broker aborts it then) plus the broker's abort check interval.

Common failure scenarios:

* the broker aborts the transaction (an abortable error): it is aborted, nothing is visible,
  `WriterUnavailableError`; the requests are answered 503 and may be retried.
* the outcome is unknown (a commit timeout, the broker gone): `WriterUnavailableError`;
  before its next write the writer builds a new producer (whose `init_transactions()`
  completes or aborts the pending transaction) and reads the log's tail again
  (`api.ingest.recovery`), so a retry of a request that did commit counts as a duplicate.
* another writer with the same transactional id started, or a fatal producer error:
  `WriterFencedError`; this process must stop.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from aop.api.ingest import metrics
from aop.api.ingest.dedupe import SeenIds, seen_key
from aop.api.ingest.items import Item, time_refusal
from aop.api.ingest.recovery import LogState, read_log_state, since_for
from aop.api.shapes import RefusedItem
from aop.core.attention.signals import watermark_at
from aop.log.avro import AvroCodec
from aop.log.kafka import ATTENTION_SIGNALS, transactional_producer_config
from aop.runtime.errors import AopError
from aop.runtime.faults import FaultPlan
from aop.runtime.settings import Settings

__all__ = [
    "TRANSACTION_TIMEOUT_MS",
    "Backfill",
    "Job",
    "Refused",
    "SignalWriter",
    "WriterFencedError",
    "WriterUnavailableError",
    "Written",
    "new_request_id",
    "transactional_id",
    "unix_ms",
]

log = logging.getLogger(__name__)

#: an ingest transaction lasts milliseconds; a killed writer's open one holds read_committed
#: readers back at most this long (plus the broker's abort check interval).
TRANSACTION_TIMEOUT_MS: Final = 10_000
#: bound on init_transactions, commit and abort calls.
_CALL_TIMEOUT_S: Final = 10.0
_ID_REUSED: Final = "id_reused"
_FENCED = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)


class WriterUnavailableError(AopError):
    """Raised when a write's items are not (known to be) on the log: the transaction was
    aborted, or its outcome is unknown. Nothing was acknowledged; retrying is safe."""


class WriterFencedError(AopError):
    """Raised when this writer can no longer write: another one took its transactional id,
    or the producer failed fatally."""


def unix_ms() -> int:
    """The wall clock in unix milliseconds (the writer's default clock)."""
    return time.time_ns() // 1_000_000


def new_request_id() -> str:
    """A fresh request id (32 hex digits)."""
    return uuid.uuid4().hex


def transactional_id(settings: Settings) -> str:
    """The ingest's transactional id: the setting, else `<topic_prefix>aop.ingest`."""
    return settings.ingest_transactional_id or f"{settings.topic_prefix}aop.ingest"


@dataclass(frozen=True, slots=True)
class Job:
    """One request's items (or a backfill chunk's), all or nothing."""

    source: str
    request_id: str
    received_at_ms: int
    items: Sequence[Item]


@dataclass(frozen=True, slots=True)
class Written:
    """A job whose new items are on the log (acknowledged); `duplicates` were there before."""

    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class Refused:
    """A job of which nothing was written, and why: every refused item."""

    items: list[RefusedItem]


@dataclass(frozen=True)
class Backfill:
    """How `aop ingest --file` writes beside a live ingest (`api.ingest.backfill`): it accepts
    only items at least `margin_ms` inside what the live ingest accepts now (and not behind
    any watermark on the log), and its batches carry each partition's watermark as it read it
    from the log (0 where there is none), so it never moves one."""

    margin_ms: int


class SignalWriter:
    """See the module docstring. Not thread-safe: one caller at a time.

    Args:
        settings: the topic, partitions, lateness, skew and transactional id.
        codec: the Avro framing of the records.
        clock: the wall clock, unix ms (tests pass their own).
        backfill: write as a backfill (`Backfill`) instead of as the live ingest.
        txn_id: the transactional id, instead of the settings' (`transactional_id`).
        faults: where to die (tests; `runtime.faults`, AOP_INGEST_CRASH_AT); never unless told.
    """

    def __init__(
        self,
        settings: Settings,
        codec: AvroCodec,
        *,
        clock: Callable[[], int] = unix_ms,
        backfill: Backfill | None = None,
        txn_id: str | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self._settings = settings
        self._codec = codec
        self._clock = clock
        self._backfill = backfill
        self._topic = settings.topic(ATTENTION_SIGNALS)
        self._partitions = range(settings.chain_partitions)
        self._lateness_s = settings.attention_allowed_lateness_s
        self._skew_ms = settings.ingest_clock_skew_s * 1000
        self._txn_id = txn_id or transactional_id(settings)
        self._faults = faults or FaultPlan.never()
        self._producer: Producer | None = None
        self._needs_recovery = True
        self.seen = SeenIds()
        #: the watermark: never decreases in this process.
        self.watermark_ms = -1
        #: each partition's highest watermark on the log when it was last read.
        self.read_watermarks: dict[int, int] = {}

    # -- start and recovery ---------------------------------------------------------------------

    def start(self) -> None:
        """Register the transactional id (fencing a predecessor and aborting its open
        transaction), then read the log's tail: watermarks and ids (`api.ingest.recovery`).

        Raises:
            WriterFencedError: a fatal producer error (e.g. transactions unsupported).
            WriterUnavailableError: the broker did not answer in time; retry.
            LogReadError, ReadStalledError, KafkaConnectError: the log could not be read.
        """
        self._producer = Producer(
            transactional_producer_config(
                self._settings, self._txn_id, timeout_ms=TRANSACTION_TIMEOUT_MS
            )
        )
        try:
            self._producer.init_transactions(_CALL_TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].fatal():
                raise WriterFencedError(f"init_transactions failed: {exc}") from exc
            raise WriterUnavailableError(f"init_transactions failed: {exc}") from exc
        since = since_for(self._settings, self._clock())
        self._adopt(read_log_state(self._settings, self._codec, since_ms=since))
        self._needs_recovery = False

    def _adopt(self, state: LogState) -> None:
        self.seen = state.seen
        self.read_watermarks = dict(state.watermarks)
        newest = state.watermark_ms
        if newest is not None and newest > self.watermark_ms and self._backfill is None:
            self.watermark_ms = newest  # continue the log's watermark: never back
        self._advance()
        metrics.SEEN_IDS.set(len(self.seen))

    @property
    def ready(self) -> bool:
        """Whether the last write left the writer able to write without recovering first."""
        return not self._needs_recovery

    # -- the write ------------------------------------------------------------------------------

    def floor_ms(self) -> int:
        """The watermark items are judged against now (step 1 of the module docstring, or a
        backfill's stricter floor)."""
        if self._backfill is None:
            return self.watermark_ms
        live = watermark_at(self._clock(), self._lateness_s) + self._backfill.margin_ms
        return max([live, *self.read_watermarks.values()])

    def _advance(self) -> int:
        """Step 1: the watermark, advanced with the clock; expired ids forgotten."""
        self.watermark_ms = max(self.watermark_ms, watermark_at(self._clock(), self._lateness_s))
        self.seen.expire(self.floor_ms())
        return self.watermark_ms

    def write(self, jobs: Sequence[Job], *, tick: bool = False) -> list[Written | Refused]:
        """Steps 1-4 of the module docstring; one outcome per job, in order.

        Raises:
            WriterUnavailableError: nothing of this call is acknowledged (aborted or unknown).
            WriterFencedError: this writer can no longer write; stop.
        """
        if self._needs_recovery:
            self._recover()
        self._advance()
        floor = self.floor_ms()
        now = self._clock()
        outcomes: list[Written | Refused] = []
        staged: list[tuple[Job, list[Item]]] = []
        pending: dict[str, bytes] = {}  # ids this call writes (step 2: "an earlier item")
        for job in jobs:
            outcome, new = self._judge(job, pending, floor=floor, now=now)
            outcomes.append(outcome)
            if new:
                staged.append((job, new))
        records = self._records(staged, tick=tick)
        if records:
            self._transaction(records, started_ms=now)
        for job, new in staged:
            for item in new:
                self.seen.add(seen_key(job.source, item.id), item.fingerprint, item.last_ms)
        metrics.SEEN_IDS.set(len(self.seen))
        return outcomes

    def _judge(
        self, job: Job, pending: dict[str, bytes], *, floor: int, now: int
    ) -> tuple[Written | Refused, list[Item]]:
        """Step 2 for one job: its outcome and its new items (none when refused)."""
        refused: list[RefusedItem] = []
        new: list[Item] = []
        mine: dict[str, bytes] = {}
        duplicates = 0
        for item in job.items:
            key = seen_key(job.source, item.id)
            known = mine.get(key) or pending.get(key) or self.seen.get(key)
            if known is not None:
                if known == item.fingerprint:
                    duplicates += 1
                else:
                    refused.append(
                        RefusedItem(
                            item.index,
                            item.id,
                            _ID_REUSED,
                            f"id {item.id!r} of source {job.source!r} was already used for "
                            "another item (different channel, user, kind, value or time); "
                            "ids must be unique per source",
                        )
                    )
                continue
            late = time_refusal(item, watermark_ms=floor, now_ms=now, skew_ms=self._skew_ms)
            if late is not None:
                refused.append(late)
                continue
            mine[key] = item.fingerprint
            new.append(item)
        if refused:
            return Refused(refused), []
        pending.update(mine)
        return Written(len(new), duplicates), new

    def _watermark_of(self, partition: int) -> int:
        if self._backfill is None:
            return self.watermark_ms
        return self.read_watermarks.get(partition, 0)

    def _records(
        self, staged: list[tuple[Job, list[Item]]], *, tick: bool
    ) -> list[tuple[int, bytes, dict[str, Any]]]:
        """Step 3: (partition, key, SignalBatch) of every record of the transaction."""
        out: list[tuple[int, bytes, dict[str, Any]]] = []
        for job, items in staged:
            signals: dict[int, list[Item]] = {}
            bindings = [item.record for item in items if item.partition is None]
            for item in items:
                if item.partition is not None:
                    signals.setdefault(item.partition, []).append(item)
            partitions = self._partitions if bindings else sorted(signals)
            for partition in partitions:
                mine = signals.get(partition, [])
                key = mine[0].channel if mine else str(partition)
                batch = self._batch(partition, job.source, job.request_id, job.received_at_ms)
                batch["signals"] = [item.record for item in mine]
                batch["bindings"] = bindings
                out.append((partition, key.encode(), batch))
        if tick:
            written = {partition for partition, _, _ in out}
            now = self._clock()
            for partition in self._partitions:
                if partition not in written:
                    batch = self._batch(partition, "", new_request_id(), now)
                    out.append((partition, str(partition).encode(), batch))
        return out

    def _batch(
        self, partition: int, source: str, request_id: str, received_at_ms: int
    ) -> dict[str, Any]:
        return {
            "partition": partition,
            "source": source,
            "request_id": request_id,
            "received_at_ms": received_at_ms,
            "watermark_ms": self._watermark_of(partition),
            "signals": [],
            "bindings": [],
        }

    def _transaction(
        self, records: list[tuple[int, bytes, dict[str, Any]]], *, started_ms: int
    ) -> None:
        """Step 4: the records in one transaction, committed (or the error of the module
        docstring's failure scenarios)."""
        producer = self._producer
        if producer is None:  # start() was not called
            raise WriterUnavailableError("the writer is not started")
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _message: Message) -> None:
            if err is not None:
                failures.append(err)

        began = time.perf_counter()
        try:
            producer.begin_transaction()
            for partition, key, batch in records:
                value = self._codec.encode("SignalBatch", batch, topic=self._topic)
                self._produce(producer, value, key, partition, delivered)
            if self._backfill is not None:
                self._check_in_time(producer, started_ms, self._backfill.margin_ms)
            if self._faults.due("mid_transaction"):
                producer.flush(_CALL_TIMEOUT_S)
                self._faults.kill("mid_transaction")
            producer.commit_transaction(_CALL_TIMEOUT_S)
        except KafkaException as exc:
            self._fail(producer, exc)
        self._faults.hit("after_commit")
        if failures:  # a commit succeeds only when every record was delivered
            self._needs_recovery = True
            raise WriterUnavailableError(
                f"committed but {len(failures)} deliveries failed: {failures[:3]}"
            )
        metrics.TRANSACTION_SECONDS.observe(time.perf_counter() - began)
        metrics.BATCHES.inc(len(records))
        metrics.committed_watermark(max(batch["watermark_ms"] for _, _, batch in records))

    def _check_in_time(self, producer: Producer, started_ms: int, margin_ms: int) -> None:
        """A backfill's records must have their offsets before the live ingest's watermark
        passes the backfill's floor, `margin_ms` after the floor was taken: flush, and abort
        if that took longer."""
        producer.flush(_CALL_TIMEOUT_S)
        taken_ms = self._clock() - started_ms
        if taken_ms > margin_ms:
            producer.abort_transaction(_CALL_TIMEOUT_S)
            raise WriterUnavailableError(
                f"the chunk took {taken_ms} ms to reach the brokers, more than the backfill's "
                f"margin of {margin_ms} ms: aborted (nothing written); retry"
            )

    def _produce(
        self,
        producer: Producer,
        value: bytes,
        key: bytes,
        partition: int,
        on_delivery: Callable[[KafkaError | None, Message], None],
    ) -> None:
        while True:
            try:
                producer.produce(
                    self._topic, value, key=key, partition=partition, on_delivery=on_delivery
                )
                return
            except BufferError:
                producer.poll(0.05)

    def _fail(self, producer: Producer, exc: KafkaException) -> None:
        error: KafkaError = exc.args[0]
        metrics.WRITER_FAILURES.labels(_failure_kind(error)).inc()
        if error.fatal() or error.code() in _FENCED:
            self._needs_recovery = True
            raise WriterFencedError(
                f"the ingest's producer cannot write any more ({error}); operator action: run "
                "one `aop ingest` per AOP_INGEST_TRANSACTIONAL_ID, then restart it"
            ) from exc
        if error.txn_requires_abort():
            try:
                producer.abort_transaction(_CALL_TIMEOUT_S)
            except KafkaException as abort_exc:
                self._needs_recovery = True
                raise WriterUnavailableError(
                    f"abort after {error} failed: {abort_exc}"
                ) from abort_exc
            raise WriterUnavailableError(f"transaction aborted: {error}") from exc
        # Retriable or unknown: the commit may or may not have happened. Only the log knows;
        # recover (a new producer fences this one) before the next write.
        self._needs_recovery = True
        raise WriterUnavailableError(f"transaction outcome unknown: {error}") from exc

    def _recover(self) -> None:
        """A new producer and the log's tail read again (the unknown-outcome scenario)."""
        log.warning("recovering the writer: new producer, log tail read again")
        old, self._producer = self._producer, None
        if old is not None:
            try:
                old.flush(0)
            except KafkaException as exc:
                # a producer in a fatal state refuses even this (an abort the broker refused
                # during a broker's restart: INVALID_TXN_STATE); the new one fences it
                log.warning("dropping the old producer", extra={"error": str(exc)})
        self.start()

    def close(self) -> None:
        """Flush anything outstanding (nothing, between writes)."""
        if self._producer is not None:
            self._producer.flush(_CALL_TIMEOUT_S)


def _failure_kind(error: KafkaError) -> str:
    if error.fatal() or error.code() in _FENCED:
        return "fenced"
    return "aborted" if error.txn_requires_abort() else "unknown"
