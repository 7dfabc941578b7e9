"""The listener: Solana program events onto `aop.chain.events`, none lost, none doubled.

Start:

1. Ensure the topics; start the transactional producer (`init_transactions()` aborts whatever
   a killed predecessor left open); recover the checkpoint from the log's committed tail.
2. Subscribe to the program's logs over the websocket (a trigger and a logs cache), then
   backfill from the checkpoint.

Each step (at most one per `listener_min_interval_ms`, at least one per
`listener_max_interval_ms`, earlier when a notification arrives):

1. F = getSlot(commitment): everything up to F is final at that commitment.
2. List the program's signatures above the checkpoint and at or below F
   (getSignaturesForAddress back to the checkpoint's cursor); anything above F waits. Then
   getFirstAvailableBlock: if the node no longer holds the slot the checkpoint resumes from,
   the listing was cut short by its pruning (it lists only what it kept and ignores a pruned
   cursor), so the step stops with `HistoryPrunedError` instead of skipping those slots.
   (Asked after the listing: a node's first available block only rises, so one at or below
   the resume slot then was at or below it during the listing.)
3. Take each transaction's logs from the websocket cache, else fetch them: one getBlock for a
   slot missing at least `listener_block_fetch_min_txs` of them, getTransaction for the rest.
4. Decode (events, dead letters), plan the SlotBatches of [checkpoint + 1, F] for every
   partition (empty ones included; a range never crosses an epoch's end, and the batches
   ending it carry its last slot's block time, getBlockTime), and write them with the dead
   letters in ONE Kafka transaction; only then advance the checkpoint, audit and count.
   (Slots before genesis belong to no epoch: a range starting before genesis runs to the
   end of epoch 0.)

Common failure scenarios:

* RPC down, slow or erroring, websocket dropped: the step fails before writing anything and is
  retried after a capped exponential backoff with jitter; the websocket reconnects on its own.
* Missed or repeated notifications: harmless; step 2 is the source of completeness and events
  are deduplicated by id.
* kill -9 anywhere: an uncommitted range is invisible and aborted on restart; a committed one
  is the recovered checkpoint. Either way the next range starts right after the last one.
* Away longer than the node keeps history (its ledger window): `HistoryPrunedError`, the
  listener stops and says which slots are gone; nothing is written past the gap. A
  transaction pruned between its listing and its fetch (a lag just at the window) answers
  null: the step is retried, and the next step's check stops it. With no checkpoint and
  `listener_start_slot` 0 the listener starts from whatever the node holds.
* Kafka error while writing: the producer is replaced and the checkpoint re-read from the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace

from aop.core.epoch import EpochClock
from aop.log.avro import AvroCodec, codec_for
from aop.log.chain_event import RoutedEvent
from aop.log.kafka import CHAIN_EVENTS, ensure_topics
from aop.runtime.backoff import Backoff
from aop.runtime.errors import RpcUnavailableError
from aop.runtime.settings import Settings
from aop.streams.listener import metrics
from aop.streams.listener.audit import AuditLog
from aop.streams.listener.batcher import (
    PlannedBatch,
    choose_range,
    cursor_at,
    cut_at_epoch_end,
    plan_range,
)
from aop.streams.listener.checkpoint import Checkpoint, recover_checkpoint
from aop.streams.listener.decode import TxDecoder
from aop.streams.listener.errors import (
    HistoryPrunedError,
    ListenerError,
    SinkError,
    SinkFencedError,
)
from aop.streams.listener.model import DeadLetter, SignatureInfo, TxLogs
from aop.streams.listener.rpc_source import ListenerRpc, LogsCache, LogsWatcher
from aop.streams.listener.sink import KafkaSink, WrittenBatch

__all__ = ["FetchPlan", "Listener", "StepResult", "plan_fetches"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepResult:
    """What one step appended (for logs and tests)."""

    last_slot: int
    written: list[WrittenBatch]
    dead: int

    @property
    def events(self) -> int:
        return sum(len(w.batch.events) for w in self.written)


@dataclass(frozen=True)
class FetchPlan:
    """How the missing logs of a step are fetched: `blocks` (slot -> its missing signatures,
    block order) by one getBlock each, `singles` by one getTransaction each."""

    blocks: dict[int, list[SignatureInfo]]
    singles: list[SignatureInfo]


def plan_fetches(missing: Sequence[SignatureInfo], *, block_min_txs: int) -> FetchPlan:
    """Group `missing` by slot: a slot with at least `block_min_txs` of them is one getBlock
    (one call instead of that many), the others' transactions are fetched one by one.
    Input order is kept, in each block and among the singles."""
    by_slot: dict[int, list[SignatureInfo]] = {}
    for info in missing:
        by_slot.setdefault(info.slot, []).append(info)
    blocks = {slot: infos for slot, infos in by_slot.items() if len(infos) >= block_min_txs}
    return FetchPlan(blocks, [info for info in missing if info.slot not in blocks])


class Listener:
    """Wires the RPC source, the decoder, the batcher and the Kafka sink.

    Args:
        settings: every knob (the listener's section, chain, topics, audit).
        codec: Avro codec (one per process).
    Raises:
        ListenerError: the commitment is `processed`.
    """

    def __init__(self, settings: Settings, *, codec: AvroCodec | None = None) -> None:
        if settings.commitment == "processed":
            raise ListenerError(
                "AOP_COMMITMENT must be confirmed or finalized for the listener (got "
                "'processed': processed blocks can be dropped, and getSignaturesForAddress "
                "does not serve them)"
            )
        self._settings = settings
        self._clock = EpochClock(settings.genesis_slot, settings.epoch_slots)
        self._codec = codec or codec_for(settings)
        self._decoder = TxDecoder(settings.program_id, settings.chain_partitions)
        self._cache = LogsCache(settings.listener_ws_cache_size)
        self._trigger = asyncio.Event()
        self._backoff = _backoff(settings)
        self._audit = AuditLog(
            settings.audit_dir,
            max_bytes=settings.audit_max_bytes,
            keep=settings.listener_audit_keep,
            on_error=lambda exc: metrics.AUDIT_ERRORS.inc(),
        )
        self._rpc = ListenerRpc(
            settings.rpc_url,
            program_id=settings.program_id,
            commitment=settings.commitment,
            timeout_s=settings.listener_rpc_timeout_s,
            page=settings.listener_signatures_page,
            concurrency=settings.listener_rpc_concurrency,
        )
        self._watcher = LogsWatcher(
            settings.ws_url,
            program_id=settings.program_id,
            commitment=settings.commitment,
            cache=self._cache,
            on_notification=self._trigger.set,
            on_reconnect=metrics.RECONNECTS.inc,
            backoff=_backoff(settings),
            timeout_s=settings.listener_rpc_timeout_s,
        )
        self._sink: KafkaSink | None = None
        self.checkpoint: Checkpoint | None = None
        #: signatures listed above the checkpoint it names but not yet written (capped step).
        self._backlog: tuple[Checkpoint | None, list[SignatureInfo]] = (None, [])

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; the range in flight is committed before returning.

        Raises:
            SinkFencedError: another listener took over this transactional id.
            AopError: the topics cannot be created or the log's tail is not ours.
        """
        await asyncio.to_thread(ensure_topics, self._settings)
        await self._open_sink()
        watcher = asyncio.create_task(self._watcher.run(), name="listener-ws")
        try:
            await _wait_events(
                (self._watcher.connected, stop), self._settings.listener_rpc_timeout_s
            )
            await self._loop(stop)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await self._rpc.close()
            if self._sink is not None:
                await asyncio.to_thread(self._sink.close)
            self._audit.close()
            log.info("listener stopped", extra={"last_slot": self._last_slot()})

    async def _loop(self, stop: asyncio.Event) -> None:
        min_s = self._settings.listener_min_interval_ms / 1000
        max_s = max(self._settings.listener_max_interval_ms / 1000, min_s)
        while not stop.is_set():
            started = time.monotonic()
            self._trigger.clear()
            try:
                await self.step()
                self._backoff.reset()
            except RpcUnavailableError as exc:
                metrics.RECONNECTS.inc()
                log.warning("RPC unavailable, backing off: %s", exc)
                await _sleep_unless(stop, self._backoff.next_delay())
                continue
            except SinkFencedError:
                raise
            except SinkError as exc:
                log.warning("Kafka write failed, reopening the producer: %s", exc)
                await _sleep_unless(stop, self._backoff.next_delay())
                try:
                    await self._open_sink()
                except SinkFencedError:
                    raise
                except SinkError as again:  # the broker is still away: next turn
                    log.warning("reopening the producer failed: %s", again)
                continue
            await _sleep_unless(stop, started + min_s - time.monotonic())
            if not self._trigger.is_set():
                await _wait_events((self._trigger, stop), started + max_s - time.monotonic())

    async def _open_sink(self) -> None:
        """(Re)start the producer and read the checkpoint from what the log holds."""
        old, self._sink = self._sink, None
        if old is not None:
            await asyncio.to_thread(old.close)
        sink = KafkaSink(self._settings, self._codec)
        await asyncio.to_thread(sink.start)
        self.checkpoint = await asyncio.to_thread(
            recover_checkpoint,
            self._settings,
            self._codec,
            start_slot=self._settings.listener_start_slot,
        )
        self._sink = sink
        metrics.LAST_SLOT.set(self.checkpoint.last_slot)

    async def step(self) -> StepResult | None:
        """Append everything final since the checkpoint (see the module steps); None if idle.

        Raises:
            RpcUnavailableError: nothing was written; retry.
            SinkError: the range's transaction did not (surely) commit; reopen the sink.
            HistoryPrunedError: the node no longer holds the resume slot; nothing written.
        """
        checkpoint, sink = self.checkpoint, self._sink
        if checkpoint is None or sink is None:
            raise SinkError("the listener is not started")
        final = await self._rpc.slot()
        tip = await self._rpc.slot("processed")
        if final < checkpoint.resume_slot:
            metrics.SLOT_LAG.set(max(tip - checkpoint.last_slot, 0))
            return None
        signatures = await self._signatures(checkpoint, final)
        checkpoint = await self._check_history(checkpoint)
        choice = choose_range(
            signatures, final_slot=final, max_txs=self._settings.listener_max_range_txs
        )
        clock = self._clock
        # slots before genesis belong to no epoch: a range that starts before genesis (a
        # start slot below it) runs on to epoch 0's end, not to a made-up epoch's
        epoch = max(clock.epoch_of(checkpoint.resume_slot), 0)
        choice = cut_at_epoch_end(choice, clock.last_slot(epoch))
        txs = await self._logs_of(choice.in_range)
        newest = _newest_per_slot(choice.in_range)
        last = choice.last_slot
        block_time = await self._rpc.block_time(last)
        # CPU-bound (~20 us per event): off the event loop, so the websocket keeps reading.
        batches, dead, truncated = await asyncio.to_thread(
            self._prepare, txs, checkpoint, last, newest, block_time
        )
        written = await asyncio.to_thread(sink.write_range, batches, dead)
        self.checkpoint = checkpoint.advanced(last, cursor_at(newest, last, checkpoint.cursor))
        self._backlog = (self.checkpoint, choice.later)
        if choice.later:
            self._trigger.set()  # more is final already: no need to wait
        self._cache.prune(last)
        self._record(written, dead, truncated, last, tip)
        return StepResult(last, list(written), len(dead))

    def _prepare(
        self,
        txs: Sequence[TxLogs],
        checkpoint: Checkpoint,
        last: int,
        newest: Sequence[tuple[int, str]],
        block_time: int | None,
    ) -> tuple[list[PlannedBatch], list[DeadLetter], int]:
        """Decode `txs` and plan the SlotBatches of `[checkpoint.resume_slot, last]`."""
        events: list[RoutedEvent] = []
        dead: list[DeadLetter] = []
        truncated = 0
        for tx in txs:
            decoded = self._decoder.decode(tx)
            events.extend(decoded.events)
            dead.extend(decoded.dead)
            truncated += decoded.truncated
        batches = plan_range(
            first_slot=checkpoint.resume_slot,
            last_slot=last,
            events=events,
            next_slot=checkpoint.next_slot,
            max_events=self._settings.listener_max_batch_events,
            newest=newest,
            previous_cursor=checkpoint.cursor,
            last_block_time=block_time,
        )
        return batches, dead, truncated

    async def _check_history(self, checkpoint: Checkpoint) -> Checkpoint:
        """Step 2's check: the node still holds `checkpoint.resume_slot`. Slot 0 (a first
        start with no start slot) means "whatever the node holds": the checkpoint returned
        then resumes at the node's first available block, so later steps do not ask for the
        slots below it (a node started from a snapshot never held them).

        Raises:
            HistoryPrunedError: its first available block is above the resume slot.
        """
        resume = checkpoint.resume_slot
        first = await self._rpc.first_available_block()
        if resume == 0:
            return checkpoint.advanced(first - 1, checkpoint.cursor) if first > 0 else checkpoint
        if first > resume:
            raise HistoryPrunedError(resume_slot=resume, first_available=first)
        return checkpoint

    async def _signatures(self, checkpoint: Checkpoint, final: int) -> list[SignatureInfo]:
        """Program signatures in `[checkpoint.resume_slot, final]`, newest first.

        Lists only what is newer than the backlog a capped step left (or than the cursor).
        """
        base, backlog = self._backlog
        if base is not checkpoint:
            backlog = []
        top = backlog[0].signature if backlog else checkpoint.cursor
        fresh = await self._rpc.signatures_since(
            until=top, after_slot=checkpoint.resume_slot - 1, max_slot=final
        )
        listed = {info.signature for info in fresh}
        return fresh + [info for info in backlog if info.signature not in listed]

    async def _logs_of(self, signatures: Sequence[SignatureInfo]) -> list[TxLogs]:
        """Each signature's logs: from the websocket cache, else fetched (and cached too): by
        one getBlock for a slot missing many, by getTransaction otherwise (`plan_fetches`).

        Each gets its position in its slot: getSignaturesForAddress lists a slot's
        transactions newest first (the reverse of block order).
        """
        out: list[TxLogs] = []
        missing: dict[str, int] = {}  # signature -> its index in `out`
        to_fetch: list[SignatureInfo] = []
        per_slot: Counter[int] = Counter()
        for info in reversed(signatures):
            position = per_slot[info.slot]
            per_slot[info.slot] += 1
            cached = self._cache.get(info.signature)
            if cached is None or cached.slot != info.slot:
                missing[info.signature] = len(out)
                to_fetch.append(info)
                cached = TxLogs(info.signature, info.slot, None, None, None)
            out.append(
                TxLogs(info.signature, info.slot, info.block_time, info.err, cached.logs, position)
            )
        plan = plan_fetches(to_fetch, block_min_txs=self._settings.listener_block_fetch_min_txs)
        # Each answer is cached as it comes, so a step that fails keeps what it fetched.
        fetched = await _gather_all(
            *(self._fetch_block(slot, infos) for slot, infos in plan.blocks.items()),
            *(self._fetch(info) for info in plan.singles),
        )
        for group in fetched:
            for tx in group:
                # the answer brings the logs (and the block time if the list had none); the
                # error stays the list's, as for cached logs, whichever call fetched them
                at = missing[tx.signature]
                listed = out[at]
                block_time = tx.block_time if listed.block_time is None else listed.block_time
                out[at] = replace(listed, logs=tx.logs, block_time=block_time)
        return out

    async def _fetch(self, info: SignatureInfo) -> list[TxLogs]:
        tx = await self._rpc.transaction(info)
        self._cache.put(tx)
        return [tx]

    async def _fetch_block(self, slot: int, infos: Sequence[SignatureInfo]) -> list[TxLogs]:
        """The logs of `infos` (all of `slot`) from one getBlock; a signature the block does
        not hold (it should, at the same commitment) is asked by getTransaction."""
        block = await self._rpc.block(slot)
        found: list[TxLogs] = []
        absent: list[SignatureInfo] = []
        for info in infos:
            tx = block.get(info.signature)
            if tx is None:
                absent.append(info)
            else:
                self._cache.put(tx)
                found.append(tx)
        if absent:
            log.warning(
                "getBlock %d lacks %d listed signatures; fetching them by getTransaction",
                slot,
                len(absent),
                extra={"slot": slot, "absent": [info.signature for info in absent[:5]]},
            )
            for group in await _gather_all(*(self._fetch(info) for info in absent)):
                found.extend(group)
        return found

    def _record(
        self,
        written: Sequence[WrittenBatch],
        dead: Sequence[DeadLetter],
        truncated: int,
        final: int,
        tip: int,
    ) -> None:
        names = Counter(e.name for w in written for e in w.batch.events)
        for name, count in names.items():
            metrics.EVENTS.labels(event=name).inc(count)
        for reason, count in Counter(d.reason for d in dead).items():
            metrics.DLQ.labels(stage="listener", reason=reason).inc(count)
        metrics.BATCHES.inc(len(written))
        metrics.TRUNCATED_LOGS.inc(truncated)
        metrics.LAST_SLOT.set(final)
        metrics.SLOT_LAG.set(max(tip - final, 0))
        topic = self._settings.topic(CHAIN_EVENTS)
        self._audit.write(
            {
                "topic": topic,
                "partition": w.batch.partition,
                "first_slot": w.batch.first_slot,
                "last_slot": w.batch.last_slot,
                "events": len(w.batch.events),
                "offset": w.offset,
                "cursor": w.batch.cursor,
            }
            for w in written
        )
        if names or dead:
            log.info(
                "range appended",
                extra={
                    "last_slot": final,
                    "batches": len(written),
                    "events": sum(names.values()),
                    "dead_letters": len(dead),
                },
            )

    def _last_slot(self) -> int | None:
        return None if self.checkpoint is None else self.checkpoint.last_slot


def _backoff(settings: Settings) -> Backoff:
    initial_ms = settings.listener_backoff_initial_ms
    cap_ms = max(settings.listener_backoff_max_ms, initial_ms)
    return Backoff(initial_s=initial_ms / 1000, cap_s=cap_ms / 1000)


async def _gather_all(*calls: Awaitable[list[TxLogs]]) -> list[list[TxLogs]]:
    """Await every call to its end, then raise the first failure: a failing call does not
    abandon the others, so what they fetch still reaches the cache."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if not isinstance(result, BaseException)]


def _newest_per_slot(signatures: Sequence[SignatureInfo]) -> list[tuple[int, str]]:
    """(slot, the RPC's newest signature of that slot), ascending; input is newest first."""
    newest: dict[int, str] = {}
    for info in signatures:
        newest.setdefault(info.slot, info.signature)
    return sorted(newest.items())


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    await _wait_events((stop,), seconds)


async def _wait_events(events: Sequence[asyncio.Event], timeout: float) -> None:
    """Return once any of `events` is set, or after `timeout` seconds."""
    if timeout <= 0 or any(event.is_set() for event in events):
        return
    tasks = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
