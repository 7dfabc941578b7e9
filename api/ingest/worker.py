"""The service's writer thread: requests hand their jobs over and await the outcome;
concurrent requests share one Kafka transaction (group commit); every partition gets a pure
watermark at a steady interval.

Steps of the loop:

1. Wait for a job, at most until the next watermark tick is due.
2. Take every queued job, up to `max_group_items` items in all.
3. `SignalWriter.write(jobs, tick=<a tick is due>)`: one transaction.
4. Hand each job's outcome to its request (on the request's event loop).

Common failure scenarios:

* the transaction failed or the log could not be read (`WriterUnavailableError`, a log read
  error): each job of the group gets the error (its request answers 503), the loop waits a
  backoff, and the next write recovers first (`api.ingest.writer`);
* the writer is fenced or failed fatally, or anything unexpected (a bug): every queued job
  gets the error, `on_fatal` is called (the service stops) and the thread ends.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from aop.api.ingest.writer import Job, Refused, SignalWriter, WriterFencedError, Written
from aop.runtime.backoff import Backoff
from aop.runtime.errors import AopError

__all__ = ["WriterThread"]

log = logging.getLogger(__name__)

#: the most items one transaction takes from the queue (more wait for the next).
MAX_GROUP_ITEMS = 20_000


@dataclass
class _Pending:
    job: Job
    future: asyncio.Future[Written | Refused]
    loop: asyncio.AbstractEventLoop


def _settle(
    future: asyncio.Future[Written | Refused],
    outcome: Written | Refused | None,
    error: BaseException | None,
) -> None:
    if future.done():  # the request gave up waiting (it answered 503; a retry is safe)
        return
    if error is not None:
        future.set_exception(error)
    elif outcome is not None:
        future.set_result(outcome)


class WriterThread:
    """Runs `writer` (already started) on a thread of its own (module docstring)."""

    def __init__(
        self,
        writer: SignalWriter,
        *,
        interval_s: float,
        on_fatal: Callable[[BaseException], None],
        max_group_items: int = MAX_GROUP_ITEMS,
    ) -> None:
        self.writer = writer
        self._interval_s = interval_s
        self._on_fatal = on_fatal
        self._max_group_items = max_group_items
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._failed = False
        self._backoff = Backoff(initial_s=0.1, cap_s=5.0)

    @property
    def ready(self) -> bool:
        """Whether writes go through: started, not stopped, not failing."""
        return self._thread.is_alive() and not self._failed and self.writer.ready

    def start(self) -> None:
        self._thread.start()

    async def submit(self, job: Job) -> Written | Refused:
        """Queue `job` and wait for its outcome.

        Raises:
            WriterUnavailableError, WriterFencedError, AopError: nothing of it is acknowledged.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Written | Refused] = loop.create_future()
        self._queue.put(_Pending(job, future, loop))
        return await future

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then end the thread and flush the producer."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        self.writer.close()

    def _run(self) -> None:
        next_tick = time.monotonic()
        stopping = False
        while not stopping:
            group: list[_Pending] = []
            wait = max(0.0, next_tick - time.monotonic())
            try:
                first = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                first = None
            else:
                stopping = first is None
            if first is not None:
                group.append(first)
                stopping = self._drain(group)
            tick = time.monotonic() >= next_tick
            if not group and not tick:
                continue
            if tick:
                next_tick = time.monotonic() + self._interval_s
            if not self._write(group, tick=tick):
                return

    def _drain(self, group: list[_Pending]) -> bool:
        """Step 2: more queued jobs into `group`; whether the stop sentinel was met."""
        items = len(group[0].job.items)
        while items < self._max_group_items:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                return False
            if pending is None:
                return True
            group.append(pending)
            items += len(pending.job.items)
        return False

    def _write(self, group: list[_Pending], *, tick: bool) -> bool:
        """Steps 3-4; False when the thread must end (fenced)."""
        try:
            outcomes = self.writer.write([p.job for p in group], tick=tick)
        except (WriterFencedError, AopError, Exception) as exc:
            if isinstance(exc, AopError) and not isinstance(exc, WriterFencedError):
                return self._transient(group, exc)
            self._failed = True
            log.error("the ingest's writer cannot go on: stopping", exc_info=exc)
            for pending in group:
                pending.loop.call_soon_threadsafe(_settle, pending.future, None, exc)
            self._fail_queued(exc)
            self._on_fatal(exc)
            return False
        self._failed = False
        self._backoff.reset()
        for pending, outcome in zip(group, outcomes, strict=True):
            pending.loop.call_soon_threadsafe(_settle, pending.future, outcome, None)
        return True

    def _transient(self, group: list[_Pending], exc: AopError) -> bool:
        """A failed write: its jobs get the error; wait a backoff; go on."""
        self._failed = True
        log.warning("write failed", extra={"error": str(exc), "jobs": len(group)})
        for pending in group:
            pending.loop.call_soon_threadsafe(_settle, pending.future, None, exc)
        time.sleep(self._backoff.next_delay())
        return True

    def _fail_queued(self, error: BaseException) -> None:
        while True:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                return
            if pending is not None:
                pending.loop.call_soon_threadsafe(_settle, pending.future, None, error)
