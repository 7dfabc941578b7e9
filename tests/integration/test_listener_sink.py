"""The listener's Kafka side on the real broker: one transaction per range, checkpoint from
the committed tail, and a killed writer's half-written range never visible nor lost."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from aop.log.avro import AvroCodec
from aop.log.chain_event import RoutedEvent
from aop.log.kafka import CHAIN_EVENTS, DLQ, consumer_config, ensure_topics, producer_config
from aop.runtime.settings import Settings
from aop.streams.listener.batcher import plan_range
from aop.streams.listener.checkpoint import Checkpoint, recover_checkpoint
from aop.streams.listener.model import DeadLetter
from aop.streams.listener.sink import KafkaSink, transactional_id


def _event(partition: int, slot: int, signature: str) -> RoutedEvent:
    program = "GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop"
    return RoutedEvent(
        partition, slot, signature, 0, "ChannelStaked", None, program, b"\x01" * 16, {}
    )


def read_committed(settings: Settings, topic: str, partitions: int) -> list[tuple[int, dict]]:
    """Every committed record of `topic` as (partition, decoded value), in offset order."""
    codec = AvroCodec()
    consumer = Consumer(
        consumer_config(
            settings, f"{settings.topic_prefix}reader", **{"enable.partition.eof": True}
        )
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[tuple[int, dict]] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + 30
    while len(at_end) < partitions and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error() is not None:
            assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
            at_end.add(message.partition())
            continue
        out.append((message.partition(), codec.decode(message.value())[1]))
    consumer.close()
    assert len(at_end) == partitions
    return out


def test_sink_writes_a_range_to_every_partition_and_checkpoint_recovers_it(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    ensure_topics(settings)
    codec = AvroCodec()
    assert recover_checkpoint(settings, codec, start_slot=50) == Checkpoint((50, 50, 50, 50), None)

    sink = KafkaSink(settings, codec)
    sink.start()
    batches = plan_range(
        first_slot=50,
        last_slot=60,
        events=[_event(1, 55, "s1"), _event(3, 57, "s2")],
        next_slot=[50] * 4,
        max_events=10,
        newest=[(55, "s1"), (57, "s2")],
    )
    dead = [DeadLetter("bad_base64", "slot 56: bad", "s9:0", b"xx", 56)]
    written = sink.write_range(batches, dead)
    assert [(w.batch.partition, w.offset) for w in written] == [(0, 0), (1, 0), (2, 0), (3, 0)]
    batches = plan_range(
        first_slot=61,
        last_slot=70,
        events=[],
        next_slot=[61] * 4,
        max_events=10,
        previous_cursor="s2",
    )
    assert [w.offset for w in sink.write_range(batches, [])] == [2, 2, 2, 2]  # + commit markers
    sink.close()

    assert recover_checkpoint(settings, codec, start_slot=50) == Checkpoint((71, 71, 71, 71), "s2")
    records = read_committed(settings, settings.topic(CHAIN_EVENTS), 4)
    assert [
        (p, r["first_slot"], r["last_slot"], [e["id"] for e in r["events"]]) for p, r in records
    ] == [
        (0, 50, 60, []),
        (0, 61, 70, []),
        (1, 50, 60, ["s1:0"]),
        (1, 61, 70, []),
        (2, 50, 60, []),
        (2, 61, 70, []),
        (3, 50, 60, ["s2:0"]),
        (3, 61, 70, []),
    ]
    dlq = read_committed(settings, settings.topic(DLQ), 1)
    assert [(r["stage"], r["reason"], r["source"], r["payload"]) for _, r in dlq] == [
        ("listener", "bad_base64", "s9:0", b"xx")
    ]


def test_range_left_open_by_a_killed_writer_is_aborted_and_rewritten_once(
    settings_factory: Callable[..., Settings],
) -> None:
    """A writer dies after producing partitions 0-1 of a range (no commit): the next writer
    fences it, the half range never shows, and the checkpoint still ends before it."""
    settings = settings_factory()
    ensure_topics(settings)
    codec = AvroCodec()
    first = KafkaSink(settings, codec)
    first.start()
    first.write_range(
        plan_range(first_slot=0, last_slot=9, events=[], next_slot=[0] * 4, max_events=5), []
    )
    topic = settings.topic(CHAIN_EVENTS)
    zombie = Producer(producer_config(settings, **{"transactional.id": transactional_id(settings)}))
    zombie.init_transactions(30)
    zombie.begin_transaction()
    for batch in plan_range(
        first_slot=10, last_slot=19, events=[], next_slot=[10] * 4, max_events=5
    )[:2]:
        zombie.produce(topic, codec.encode("SlotBatch", batch.to_avro()), partition=batch.partition)
    assert zombie.flush(10) == 0  # on the broker, uncommitted: then "kill -9"

    second = KafkaSink(settings, codec)
    second.start()
    checkpoint = recover_checkpoint(settings, codec, start_slot=0)
    assert checkpoint == Checkpoint((10, 10, 10, 10), None)
    second.write_range(
        plan_range(
            first_slot=10,
            last_slot=19,
            events=[],
            next_slot=list(checkpoint.next_slot),
            max_events=5,
        ),
        [],
    )
    second.close()
    records = read_committed(settings, topic, 4)
    assert [(p, r["first_slot"], r["last_slot"]) for p, r in records] == [
        (p, lo, hi) for p in range(4) for lo, hi in ((0, 9), (10, 19))
    ]
