"""A Faust consumer that reads `aop.chain.events` with isolation.level=read_committed.

The listener appends each slot range in one Kafka transaction. Faust's aiokafka driver reads
committed-only data only under `exactly_once`, which the fold does not use (faust-notes §2),
so records of an aborted transaction would reach the fold, and their valid re-write would then
be skipped as late. This consumer asks aiokafka for read_committed instead.
"""

from __future__ import annotations

from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as driver

__all__ = ["use_read_committed"]


class _ReadCommittedThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this attribute when start() builds its Fetcher: set it before that.
        consumer._isolation_level = "read_committed"
        return consumer


class _ReadCommittedConsumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)


def use_read_committed(app: faust.App) -> None:
    """Make `app`'s worker consumer read only committed records (call before it starts)."""
    transport = app.transport
    if not isinstance(transport, driver.Transport):
        raise TypeError(f"the fold needs the aiokafka transport (got {type(transport).__name__})")
    transport.Consumer = _ReadCommittedConsumer
