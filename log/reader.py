"""Reads ranges of the log in large batches, with no consumer group state at all.

Used by the replay, the rebuild, the combiner's recovery and the backups. A reader must not
disturb the live consumers, so the reader assigns partitions and seeks
(`assign`, never `subscribe`), never commits (`enable.auto.commit` off, no `commit()` call),
and uses a throwaway group id. Each partition is read from `start` up to `stop` (exclusive),
where `stop` is normally the partition's last stable offset captured before reading
(`log_bounds`, read_committed, like every consumer of the pipeline): records appended while
the replay runs are not part of it.

A partition is finished when a record at `stop - 1` or later arrives, when the broker reports
the end of the partition (`enable.partition.eof`: the transaction markers the listener's
transactional producer writes occupy offsets but are never delivered), or when the consumer's
position reaches `stop`.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from aop.log.errors import LogReadError, ReadStalledError
from aop.log.kafka import connected_admin, consumer_config
from aop.log.messages import position
from aop.runtime.backoff import BackoffPolicy
from aop.runtime.settings import Settings

__all__ = ["LogBounds", "LogReader", "ReadRange", "Record", "log_bounds", "offsets_at"]

log = logging.getLogger(__name__)

#: the offset specs of `list_offsets` (confluent-kafka ships them untyped).
_EARLIEST = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
_LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]

#: (topic, partition, offset, value) of one record.
Record = tuple[str, int, int, bytes]


@dataclass(frozen=True)
class LogBounds:
    """The first offset still stored and the last stable offset (exclusive) of a partition."""

    low: int
    stop: int


@dataclass(frozen=True)
class ReadRange:
    """Read `partition` of `topic` over [start, stop)."""

    topic: str
    partition: int
    start: int
    stop: int


#: how long a bounds read keeps asking: it outlasts the election of a new leader after a
#: broker is killed (the broker's session timeout, 9 s, then a metadata refresh: answers came
#: back 10-12 s after a SIGKILL on the local three-node cluster).
BOUNDS_TIMEOUT_S = 30.0


def log_bounds(
    settings: Settings,
    topic: str,
    partitions: Iterable[int],
    *,
    timeout: float = BOUNDS_TIMEOUT_S,
) -> dict[int, LogBounds]:
    """The bounds of each partition of `topic`, as read_committed consumers see it now (a
    partition whose leader is moving is asked again until `timeout`: `_list_offsets`).

    Raises:
        KafkaConnectError: the brokers refuse the credentials or do not answer at all.
        LogReadError: the broker does not answer (a partition still has no leader at
            `timeout`), or the topic or a partition does not exist.
    """
    asks = {"low": (_EARLIEST, {}), "stop": (_LATEST, _READ_COMMITTED)}
    found = _list_offsets(settings, topic, partitions, asks, timeout=timeout)
    return {p: LogBounds(found["low"][p], found["stop"][p]) for p in found["low"]}


def offsets_at(
    settings: Settings,
    topic: str,
    partitions: Iterable[int],
    timestamp_ms: int,
    *,
    timeout: float = BOUNDS_TIMEOUT_S,
) -> dict[int, int | None]:
    """The first offset of each partition of `topic` whose record's timestamp is at or after
    `timestamp_ms` (Kafka's time index; the producer's clock at produce time), or None when
    every record is older.

    Raises:
        KafkaConnectError: the brokers refuse the credentials or do not answer at all.
        LogReadError: the broker does not answer, or the topic or a partition does not exist.
    """
    spec = OffsetSpec.for_timestamp(timestamp_ms)
    found = _list_offsets(
        settings, topic, partitions, {"at": (spec, {})}, timeout=timeout, none_allowed=True
    )
    return {p: (offset if offset >= 0 else None) for p, offset in found["at"].items()}


_READ_COMMITTED = {"isolation_level": IsolationLevel.READ_COMMITTED}


#: the longest one ask of offsets waits for its answer before it is asked again (within the
#: caller's timeout): an ask sent to a leader just killed is never answered (below).
ASK_TIMEOUT_S = 3.0


def _list_offsets(
    settings: Settings,
    topic: str,
    partitions: Iterable[int],
    asks: dict[str, tuple[Any, dict[str, Any]]],
    *,
    timeout: float,
    none_allowed: bool = False,
) -> dict[str, dict[int, int]]:
    """For each ask (name -> (OffsetSpec, list_offsets options)), each partition's offset.

    A partition answered with no offset is asked again, like a leadership change: an ask sent
    to a leader that was just killed gets, at the request's timeout, the offset "invalid"
    (OFFSET_INVALID, -1001) and no error (librdkafka 2.16, measured on a three-node cluster),
    and a bounds read that took it for 0 read nothing of the partition (a day-run parity
    turn's global replay then combined nothing: its newest global roots `not_replayed`).
    With `none_allowed` (a timestamp lookup) -1, "no such record", is an answer.
    """
    admin = connected_admin(settings)
    parts = sorted(set(partitions))
    lowest = -1 if none_allowed else 0
    asked = 0

    def ask_all() -> dict[str, dict[int, int]]:
        nonlocal asked
        if asked:
            # the client learns of a new leader only from fresh metadata: an unanswered ask
            # reports no error that would make it refresh them
            with contextlib.suppress(KafkaException):
                admin.list_topics(topic, timeout=min(timeout, ASK_TIMEOUT_S))
        asked += 1
        out: dict[str, dict[int, int]] = {}
        for name, (spec, options) in asks.items():
            found = admin.list_offsets(
                {TopicPartition(topic, p): spec for p in parts},
                request_timeout=min(timeout, ASK_TIMEOUT_S),
                **options,
            )
            out[name] = {tp.partition: f.result().offset for tp, f in found.items()}
            unanswered = sorted(
                p for p, o in out[name].items() if o < lowest or o == OFFSET_INVALID
            )
            if unanswered:
                raise KafkaException(
                    KafkaError(
                        KafkaError.OFFSET_NOT_AVAILABLE,
                        f"partitions {unanswered} answered no offset (their leader is moving)",
                    )
                )
        return out

    try:
        return retry_leadership_changes(ask_all, deadline=time.monotonic() + timeout)
    except KafkaException as exc:
        raise LogReadError(
            f"cannot read the offsets of {topic} partitions {parts} from "
            f"{settings.kafka_bootstrap}: {exc}"
        ) from exc


#: errors a partition answers while its leadership moves (a broker stopped, killed or back):
#: the next ask, after the metadata refresh, goes to the new leader.
LEADERSHIP_CHANGES = frozenset(
    {
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.OFFSET_NOT_AVAILABLE,
    }
)
#: the pauses between asks while leadership moves (a broker's partitions move in seconds).
LEADERSHIP_BACKOFF = BackoffPolicy(initial_s=0.1, cap_s=2.0)

T = TypeVar("T")


def retry_leadership_changes(
    ask: Callable[[], T], *, deadline: float, sleep: Callable[[float], None] = time.sleep
) -> T:
    """`ask()`, asked again (after a `LEADERSHIP_BACKOFF` pause) while it fails with a
    `LEADERSHIP_CHANGES` error, until `deadline` (time.monotonic()); then the last error is
    raised. Any other error is raised at once (a missing topic must not wait out the
    deadline, so the client's own "retriable" flag is not enough to ask again).

    Why: a bounds read while a broker is killed answered FENCED_LEADER_EPOCH and stopped an
    `aop parity` run (exit 2) that a second ask would have served (the day run, RELIABILITY.md).
    """
    attempt = 0
    while True:
        try:
            return ask()
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            transient = isinstance(error, KafkaError) and error.code() in LEADERSHIP_CHANGES
            left = deadline - time.monotonic()
            if not transient or left <= 0:
                raise
            sleep(min(LEADERSHIP_BACKOFF.delay(attempt), left))
            attempt += 1


class LogReader:
    """Yields the records of some partition ranges in batches (see the module docstring).

    Records of one partition come in offset order; partitions interleave.
    """

    def __init__(
        self,
        settings: Settings,
        ranges: Iterable[ReadRange],
        *,
        batch_size: int | None = None,
        poll_timeout: float | None = None,
        stall_timeout: float | None = None,
        **consumer_overrides: Any,
    ) -> None:
        self._ranges = {(r.topic, r.partition): r for r in ranges if r.stop > r.start}
        self._batch_size = batch_size or settings.replay_batch_size
        self._poll_timeout = poll_timeout or settings.replay_poll_timeout_s
        self._stall_timeout = stall_timeout or settings.replay_stall_timeout_s
        config = consumer_config(
            settings,
            f"{settings.topic_prefix}aop.replay.{uuid.uuid4().hex[:12]}",
            **{
                "enable.partition.eof": True,
                "enable.auto.offset.store": False,
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 16 * 1024 * 1024,
                "queued.max.messages.kbytes": 256 * 1024,
                "fetch.wait.max.ms": 50,
                **consumer_overrides,
            },
        )
        self._consumer = Consumer(config)
        #: offset after the last record handed out, per (topic, partition).
        self.next_offsets = {key: r.start for key, r in self._ranges.items()}

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close()

    def batches(self) -> Iterator[list[Record]]:
        """Each consume() call's records inside the ranges, until every range is read.

        Raises:
            ReadStalledError: no progress for `stall_timeout` seconds.
            KafkaException: a fatal consumer error.
        """
        pending = dict(self._ranges)
        if not pending:
            return
        self._consumer.assign(
            [TopicPartition(r.topic, r.partition, r.start) for r in pending.values()]
        )
        last_progress = time.monotonic()
        while pending:
            # consume() returns when it has `num_messages` or at the timeout: never ask for
            # more than is left (transaction markers make this an upper bound).
            left = sum(r.stop - self.next_offsets[key] for key, r in pending.items())
            messages = self._consumer.consume(
                max(1, min(self._batch_size, left)), self._poll_timeout
            )
            out: list[Record] = []
            finished: list[tuple[str, int]] = []
            for message in messages:
                topic, partition, offset = position(message)
                key = (topic, partition)
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if key in pending:
                            finished.append(key)
                        continue
                    if error.fatal():
                        raise KafkaException(error)
                    log.warning("consumer error", extra={"error": str(error)})
                    continue
                wanted = pending.get(key)
                if wanted is None or offset >= wanted.stop:
                    if wanted is not None:
                        finished.append(key)
                    continue
                out.append((key[0], key[1], offset, message.value() or b""))
                self.next_offsets[key] = offset + 1
                if offset >= wanted.stop - 1:
                    finished.append(key)
            if out or finished:
                last_progress = time.monotonic()
            for key in finished:
                if key in pending:
                    del pending[key]
                    self._consumer.pause([TopicPartition(key[0], key[1])])
            if not messages and pending:
                self._finish_by_position(pending)
                if pending and time.monotonic() - last_progress > self._stall_timeout:
                    where = ", ".join(
                        f"{t}[{p}] at {self.next_offsets[(t, p)]} (stop {r.stop})"
                        for (t, p), r in pending.items()
                    )
                    raise ReadStalledError(
                        f"no progress reading {where} for {self._stall_timeout:.0f} s; operator "
                        "action: check the broker (and AOP_REPLAY_STALL_TIMEOUT_S)"
                    )
            if out:
                yield out

    def _finish_by_position(self, pending: dict[tuple[str, int], ReadRange]) -> None:
        """Drop ranges whose position passed their stop (only markers were left)."""
        try:
            positions = self._consumer.position([TopicPartition(t, p) for (t, p) in pending])
        except KafkaException:
            return
        for tp in positions:
            key = (tp.topic, tp.partition)
            if key in pending and tp.offset >= pending[key].stop:
                del pending[key]
