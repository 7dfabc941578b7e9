"""The real broker and the real database answer as the pipeline needs them to."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition

from aop.log.avro import AvroCodec
from aop.log.kafka import CHAIN_EVENTS, consumer_config, ensure_topics, producer_config
from aop.runtime.settings import Settings
from tests.conftest import libpq_url


def _batch(first_slot: int) -> dict[str, object]:
    return {
        "partition": 2,
        "first_slot": first_slot,
        "last_slot": first_slot + 9,
        "events": [
            {
                "id": f"sig{first_slot}:0",
                "signature": f"sig{first_slot}",
                "slot": first_slot + 3,
                "block_time": 1_700_000_000,
                "event_index": 0,
                "program_id": "GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop",
                "name": "ChannelStaked",
                "data": bytes(range(40)),
                "fields": {"amount": "18446744073709551615"},
            }
        ],
        "cursor": f"sig{first_slot}",
        "last_block_time": None,
    }


def _poll_values(consumer: Consumer, want: int, timeout: float) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=10, timeout=0.5):
            assert message.error() is None, message.error()
            got.append(message.value())
    return got


def test_avro_record_round_trips_through_broker_without_redelivery_after_commit(
    settings_factory: Callable[..., Settings],
) -> None:
    """Produce, consume in a group, commit, restart the consumer: only the new record arrives."""
    settings = settings_factory()
    ensure_topics(settings)
    topic = settings.topic(CHAIN_EVENTS)
    codec = AvroCodec()
    producer = Producer(producer_config(settings))
    producer.produce(topic, codec.encode("SlotBatch", _batch(100)), key=b"k", partition=2)
    assert producer.flush(10) == 0

    group = f"{settings.topic_prefix}group"
    first = Consumer(consumer_config(settings, group))
    first.assign([TopicPartition(topic, 2)])
    values = _poll_values(first, 1, timeout=20)
    assert [codec.decode_as("SlotBatch", v) for v in values] == [_batch(100)]
    first.commit(asynchronous=False)
    first.close()

    producer.produce(topic, codec.encode("SlotBatch", _batch(200)), key=b"k", partition=2)
    assert producer.flush(10) == 0
    second = Consumer(consumer_config(settings, group))
    second.assign([TopicPartition(topic, 2)])
    values = _poll_values(second, 2, timeout=5)
    second.close()
    assert [codec.decode_as("SlotBatch", v)["first_slot"] for v in values] == [200]


def test_ensure_topics_refuses_a_topic_with_another_partition_count(
    settings_factory: Callable[..., Settings],
) -> None:
    ensure_topics(settings_factory())
    import pytest

    from aop.runtime.errors import AopError

    with pytest.raises(AopError, match=r"has 4 partitions but AOP_CHAIN_PARTITIONS asks for 6"):
        ensure_topics(settings_factory({"AOP_CHAIN_PARTITIONS": "6"}))


def test_postgres_row_round_trips_in_a_fresh_schema(database_url: str, db_schema: str) -> None:
    """A u64-sized total and a 32-byte root survive a write and a read on the real server."""
    root = bytes(range(32))
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute(f'SET search_path TO "{db_schema}"')
        conn.execute("CREATE TABLE probe (seq bigint PRIMARY KEY, root bytea, total numeric(20))")
        conn.execute("INSERT INTO probe VALUES (%s, %s, %s)", (7, root, 2**64 - 1))
        conn.commit()
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute(f'SELECT seq, root, total FROM "{db_schema}".probe').fetchone()
    assert row == (7, root, 2**64 - 1)
