"""The combiner's writes: one Kafka transaction per global root (or refusal).

`write` steps:

1. `begin_transaction()`.
2. Produce the GlobalRoot record, then its LeafChunks in order, to partition 0 of
   aop.global.roots (key: the GlobalRootConfig PDA); a refusal is a DeadLetter on aop.dlq.
3. `commit_transaction()`: all of it becomes visible to read_committed readers at once.

Common failure scenarios:

* kill -9 before step 3: the open transaction is aborted by the next `init_transactions()`
  (the next active instance's); it recovers from the previous GlobalRoot and writes the same
  bytes again;
* fenced (another instance with the same transactional id took over) or a fatal error:
  `WriterFencedError`: this instance gives up its state and waits for the lease again;
* any other error: `WriterError`; the service drops the writer and recovers from the log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from aop.core.combine import GlobalOutput, GlobalRefusal
from aop.log.avro import AvroCodec
from aop.log.kafka import DLQ, GLOBAL_ROOTS, transactional_producer_config
from aop.runtime.errors import AopError
from aop.runtime.faults import FaultPlan
from aop.runtime.settings import Settings
from aop.streams.combiner.config import transactional_id

__all__ = ["GlobalRootWriter", "WriterError", "WriterFencedError"]

log = logging.getLogger(__name__)


class WriterError(AopError):
    """Raised when a transaction failed and was aborted, or its outcome is unknown."""


class WriterFencedError(WriterError):
    """Raised when this producer can no longer write (fenced, or a fatal error)."""


class GlobalRootWriter:
    """A transactional producer for global roots (see the module docstring)."""

    def __init__(
        self, settings: Settings, codec: AvroCodec, faults: FaultPlan, *, timeout_s: float = 30.0
    ) -> None:
        self._codec = codec
        self._faults = faults
        self._topic = settings.topic(GLOBAL_ROOTS)
        self._dlq = settings.topic(DLQ)
        self._timeout = timeout_s
        self._producer = Producer(
            transactional_producer_config(settings, transactional_id(settings))
        )

    def start(self) -> None:
        """Register the transactional id: fences an older instance, aborts its open
        transaction.

        Raises:
            WriterFencedError: a fatal error; WriterError: no answer in time (retry).
        """
        try:
            self._producer.init_transactions(self._timeout)
        except KafkaException as exc:
            raise self._error("init_transactions", exc) from exc

    def write(self, output: GlobalOutput | GlobalRefusal) -> None:
        """Steps 1-3 for one output.

        Raises:
            WriterError, WriterFencedError: see the module docstring.
        """
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _message: Message) -> None:
            if err is not None:
                failures.append(err)

        encode = self._codec.encode
        try:
            self._producer.begin_transaction()
            if isinstance(output, GlobalOutput):
                value = encode("GlobalRoot", output.record, topic=self._topic)
                self._producer.produce(
                    self._topic, value, output.key, partition=0, on_delivery=delivered
                )
                if self._faults.due("mid_global"):
                    self._producer.flush(self._timeout)
                    self._faults.kill("mid_global")
                for chunk in output.chunks:
                    value = encode("LeafChunk", chunk, topic=self._topic)
                    self._producer.produce(
                        self._topic, value, output.key, partition=0, on_delivery=delivered
                    )
            else:
                letter = output.dead_letter(int(time.time() * 1000))
                value = encode("DeadLetter", letter, topic=self._dlq)
                self._producer.produce(
                    self._dlq, value, output.source.encode(), on_delivery=delivered
                )
            self._producer.commit_transaction(self._timeout)
        except KafkaException as exc:
            self._abort()
            raise self._error("a global root's transaction", exc) from exc
        if failures:
            raise WriterError(f"a record of the transaction was not delivered: {failures[0]}")

    def close(self) -> None:
        self._producer.flush(5)

    def _abort(self) -> None:
        try:
            self._producer.abort_transaction(self._timeout)
        except KafkaException as exc:
            log.warning("abort_transaction failed: %s", exc)

    @staticmethod
    def _error(what: str, exc: KafkaException) -> WriterError:
        error: Any = exc.args[0]
        if error.fatal() or error.code() in (
            KafkaError._FENCED,
            KafkaError.PRODUCER_FENCED,
            KafkaError.INVALID_PRODUCER_EPOCH,
        ):
            return WriterFencedError(f"{what}: {error}")
        return WriterError(f"{what}: {error}")
