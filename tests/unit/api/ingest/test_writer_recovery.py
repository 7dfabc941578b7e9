"""`SignalWriter._recover` after an abort the broker refused: the old producer is in a fatal
state and refuses even `flush`; recovery drops it and starts a new one instead of stopping
the ingest (the day run's broker restart stopped it with INVALID_TXN_STATE from `flush(0)`).
No broker: the producer is a stand-in that fails as librdkafka's did."""

from __future__ import annotations

from types import SimpleNamespace

from confluent_kafka import KafkaError, KafkaException

from aop.api.ingest.writer import SignalWriter


class FatalProducer:
    def __init__(self) -> None:
        self.flushes = 0

    def flush(self, timeout: float) -> int:
        self.flushes += 1
        raise KafkaException(KafkaError(KafkaError.INVALID_TXN_STATE, fatal=True))


def test_a_producer_in_a_fatal_state_is_dropped_and_a_new_one_started() -> None:
    old = FatalProducer()
    started: list[object] = []
    writer = SimpleNamespace(_producer=old)
    writer.start = lambda: started.append(writer._producer)
    SignalWriter._recover(writer)  # type: ignore[arg-type]
    # flushed once (refused), dropped before the new start
    assert (old.flushes, started) == (1, [None])
