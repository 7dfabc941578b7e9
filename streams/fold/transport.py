"""The fold's Faust consumer: read_committed, and a seek that cannot lose records.

read_committed. The listener appends each slot range in one Kafka transaction. Faust's
aiokafka driver reads committed-only data only under `exactly_once`, which the fold does not
use (faust-notes §2), so records of an aborted transaction would reach the fold, and their
valid re-write would then be skipped as late. This consumer asks aiokafka for read_committed.

A safe seek. After every assignment Faust (0.15.3) seeks the source partitions back to their
committed offsets (`Recovery._resume_streams`: resume the partitions, `perform_seek()`, then
`flow_control.resume()`, which clears the streams' queues, then `resume_flow()`). Its fetch
loop (`Consumer._drain_messages`) is not stopped meanwhile, and it drops every record below
the last offset it handed to a stream. So records fetched before the seek and handed over
after it raise that mark past the seek's position, the queue clearing throws away those of
them not yet processed, and the same records fetched again from the seek position are
dropped as already read: lost, while later ones are folded (found by the kill-at-every-point
test: a restarted worker folded offsets 6-8, then 57-59; 9-56 never reached it, and an epoch
closed without them). `perform_seek` here first stops the flow and waits until the fetch loop
is back waiting for records (not holding one it fetched before), so nothing fetched before the
seek is handed over after it; Faust resumes the flow once its queues are cleared. And the seek
moves every source partition, also one without a committed offset (aiokafka leaves those
where the fetcher is: after records it fetched and the stop dropped), to its start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

__all__ = ["DrainerStuckError", "use_fold_consumer"]

#: how long a seek waits for the fetch loop to let go of the record it is handing over.
_DRAINER_IDLE_TIMEOUT_S = 30.0


class DrainerStuckError(RuntimeError):
    """Raised when the fetch loop does not stop handing over records before a seek."""


class _FoldConsumerThread(driver.AIOKafkaConsumerThread):
    consumer: _FoldConsumer

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this attribute when start() builds its Fetcher: set it before that.
        consumer._isolation_level = "read_committed"
        return consumer

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_to_committed_or_start)  # type: ignore[no-any-return]

    async def _seek_to_committed_or_start(self) -> Mapping[TP, int]:
        """Seek every source partition to its committed offset, or to its start if it has none.

        aiokafka's `seek_to_committed` leaves a partition without a commit (or with a commit
        of 0) where its fetcher is, which may be past records fetched and then dropped.
        """
        consumer = self._ensure_consumer()
        committed: dict[TP, int] = await consumer.seek_to_committed()
        fresh = [
            tp
            for tp, offset in committed.items()
            if not offset and tp.topic in self.consumer.source_topics
        ]
        if fresh:
            # a concrete offset: `seek_to_beginning` leaves the position unset until the next
            # fetch, and Faust's livelock check reads it meanwhile (an AssertionError)
            starts = await consumer.beginning_offsets(fresh)
            for tp, offset in starts.items():
                consumer.seek(tp, offset)
        return committed


class _FoldConsumer(driver.Consumer):
    #: the topics the fold reads (set by `use_fold_consumer`).
    source_topics: frozenset[str] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the fetch loop's task, and whether it is waiting for records (holding none).
        self._drainer: asyncio.Task[Any] | None = None
        self._drainer_idle = asyncio.Event()

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _FoldConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(self, timeout: float) -> Any:
        self._drainer = asyncio.current_task()
        self._drainer_idle.set()
        try:
            return await super()._wait_next_records(timeout)
        finally:
            self._drainer_idle.clear()

    async def perform_seek(self) -> None:
        """Stop the flow, let the fetch loop drop what it fetched, then seek (module doc).

        Raises:
            DrainerStuckError: the fetch loop kept a record for 30 s after the flow stopped.
        """
        self.stop_flow()
        drainer = self._drainer
        if drainer is not None and not drainer.done() and drainer is not asyncio.current_task():
            try:
                await asyncio.wait_for(self._drainer_idle.wait(), _DRAINER_IDLE_TIMEOUT_S)
            except TimeoutError:
                raise DrainerStuckError(
                    f"the fetch loop still held a record {_DRAINER_IDLE_TIMEOUT_S:.0f} s after "
                    "the flow stopped; not seeking (records could be lost), the worker restarts"
                ) from None
        await super().perform_seek()


def use_fold_consumer(app: faust.App, *source_topics: str) -> None:
    """Make `app`'s worker consumer the fold's, reading `source_topics` (call before it
    starts)."""
    transport = app.transport
    if not isinstance(transport, driver.Transport):
        raise TypeError(f"the fold needs the aiokafka transport (got {type(transport).__name__})")
    # faust declares `Consumer` a ClassVar; only this app's transport gets the fold's consumer
    transport.Consumer = type(  # type: ignore[misc]
        "FoldConsumer", (_FoldConsumer,), {"source_topics": frozenset(source_topics)}
    )
