"""`aop replay` with attention signals on the real broker and database: the channels'
attention roots (`--attention`) and the global roots with their attention_bonus (`--global`)
rebuilt from aop.chain.events and aop.attention.signals match Postgres byte for byte, and a
tampered attention root is found."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from typing import Any

import pytest
from confluent_kafka import Producer
from solders.pubkey import Pubkey
from sqlalchemy import Engine

from aop.core.combine import GlobalCombiner, GlobalOutput
from aop.core.fold import ReferenceFold
from aop.core.fold_output import RootOutput
from aop.log.kafka import ATTENTION_SIGNALS, CHAIN_EVENTS, EPOCH_ROOTS, producer_config
from aop.projections.projector import Projector
from aop.runtime.settings import Settings
from aop.streams.combiner.config import combine_config
from aop.streams.fold.config import fold_config
from tests.integration.test_projections_global import api_get
from tests.integration.test_replay import (  # noqa: F401 (aop, engine, settings: fixtures)
    CODEC,
    AopRunner,
    aop,
    count_roots,
    engine,
    execute,
    project_global,
    settings,
)
from tests.support.fold_logs import random_log
from tests.support.signal_logs import HOUR0, random_signals

SLOT_S = 2


@pytest.fixture
def replay_env(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, db_schema: str
) -> dict[str, str]:
    return {
        "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "AOP_DATABASE_URL": database_url,
        "AOP_TOPIC_PREFIX": topic_prefix,
        "AOP_DATABASE_SCHEMA": db_schema,
        "AOP_CHAIN_PARTITIONS": "3",
        "AOP_CHANNELS": "alpha,beta,gamma",
        "AOP_GENESIS_SLOT": "0",
        "AOP_EPOCH_SLOTS": "50",
        "AOP_EMISSION_DEFAULT": "1000000",
        "AOP_ATTENTION_ENABLED": "true",
        "AOP_ATTENTION_EPOCH_SECONDS": "60",
        "AOP_ATTENTION_FORMATS": json.dumps({"beta": "ring-v0-legacy"}),
        "AOP_RPC_URL": "http://127.0.0.1:9",
        "AOP_LOG_LEVEL": "WARNING",
        "AOP_PROJECTION_POLL_TIMEOUT_S": "0.2",
        "AOP_REPLAY_POLL_TIMEOUT_S": "0.2",
        "AOP_REPLAY_STALL_TIMEOUT_S": "20",
    }


def _produce(
    deployment: Settings, topic: str, record_type: str, batches: Sequence[Any]
) -> list[tuple[int, int, dict[str, Any]]]:
    producer = Producer(producer_config(deployment))
    stored: list[tuple[int, int, dict[str, Any]]] = []
    for partition, batch in batches:

        def delivered(err: Any, msg: Any, batch: dict[str, Any] = batch) -> None:
            assert err is None, err
            stored.append((msg.partition(), msg.offset(), batch))

        producer.produce(
            deployment.topic(topic),
            CODEC.encode(record_type, batch),
            key=b"p%d" % partition,
            partition=partition,
            on_delivery=delivered,
        )
    assert producer.flush(30) == 0
    return sorted(stored, key=lambda r: (r[0], r[1]))


def _reference(
    deployment: Settings,
    chain: list[tuple[int, int, dict[str, Any]]],
    signals: list[tuple[int, int, dict[str, Any]]],
) -> tuple[list[RootOutput], list[GlobalOutput]]:
    """Every channel and attention root of the two logs, and the global roots of the pure
    combiner over them (the topics interleaved at random: the result does not depend on it)."""
    fold = ReferenceFold(fold_config(deployment))
    combiner = GlobalCombiner(combine_config(deployment))
    queues = {"chain": list(chain), "signals": list(signals)}
    rng = random.Random(5)
    roots: list[RootOutput] = []
    outputs: list[Any] = []
    position: dict[int, int] = {}
    while any(queues.values()):
        topic = rng.choice([t for t, q in queues.items() if q])
        partition, offset, batch = queues[topic].pop(0)
        feed = fold.feed if topic == "chain" else fold.feed_signals
        result = feed(partition, offset, batch)
        for root in result.roots:
            roots.append(root)
            at = position.get(partition, 0)
            position[partition] = at + 1 + len(root.chunks)
            part = "attention_bonus" if root.record_type == "AttentionRoot" else "base_yield"
            outputs += combiner.add_root(
                partition,
                at,
                root.epoch_root,
                root.tree.dataset,
                part=part,  # type: ignore[arg-type]
            )
        for marker in (result.closed, result.attention_closed):
            if marker is not None:
                at = position.get(partition, 0)
                position[partition] = at + 1
                add = (
                    combiner.add_closed
                    if marker is result.closed
                    else combiner.add_attention_closed
                )
                outputs += add(partition, at, marker.record)
    return roots, [o for o in outputs if isinstance(o, GlobalOutput)]


def _project(deployment: Settings, database: Engine, roots: Sequence[RootOutput]) -> None:
    producer = Producer(producer_config(deployment))
    topic = deployment.topic(EPOCH_ROOTS)
    for root in roots:
        producer.produce(
            topic,
            CODEC.encode(root.record_type, root.epoch_root),
            root.key,
            partition=root.partition,
        )
        for chunk in root.chunks:
            producer.produce(
                topic, CODEC.encode("LeafChunk", chunk), root.key, partition=root.partition
            )
    assert producer.flush(30) == 0
    projector = Projector(deployment, database)
    deadline = time.monotonic() + 60
    try:
        while count_roots(database) < len(roots):
            assert time.monotonic() < deadline, "the projector did not write every root"
            projector.poll_once()
    finally:
        projector.close()


def test_replay_of_attention_and_global_roots_matches_and_finds_a_tampered_one(
    settings: Settings,  # noqa: F811 (the fixture)
    engine: Engine,  # noqa: F811
    aop: AopRunner,  # noqa: F811
) -> None:
    config = fold_config(settings)
    chain_batches = random_log(config, seed=31, batches=40, events_per_batch=8, slots_per_batch=25)
    for _, batch in chain_batches:
        batch["last_block_time"] = HOUR0 + batch["last_slot"] * SLOT_S
    signal_batches = random_signals(
        config, seed=31, batches=200, step_ms=10_000, start_ms=HOUR0 * 1000, users=15
    )
    chain = _produce(settings, CHAIN_EVENTS, "SlotBatch", chain_batches)
    signals = _produce(settings, ATTENTION_SIGNALS, "SignalBatch", signal_batches)
    roots, outputs = _reference(settings, chain, signals)
    attention = [r for r in roots if r.record_type == "AttentionRoot"]
    assert len(attention) >= 20 and len(outputs) >= 4
    assert int(outputs[-1].record["bonus_total"]) > 0 and int(outputs[-1].record["base_total"]) > 0
    _project(settings, engine, roots)
    project_global(settings, engine, outputs)

    # the read API's V5 claim of a wallet with both parts, from the last global root
    last = outputs[-1]
    both = next(
        i
        for i, (base, bonus) in enumerate(
            zip(last.tree.base_amounts, last.tree.bonus_amounts, strict=True)
        )
        if base and bonus
    )
    wallet = last.tree.wallets[both]
    body = asyncio.run(api_get(settings, f"/v1/claims/{Pubkey(wallet)}")).json()
    assert (body["root_seq"], body["base_yield"], body["attention_bonus"]) == (
        last.root_seq,
        last.tree.base_amounts[both],
        last.tree.bonus_amounts[both],
    )
    assert body["base_yield"] > 0 and body["attention_bonus"] > 0

    code, out = aop("replay", "--attention", "--all", "--no-chain", "--json")
    report = json.loads(out)
    assert code == 0, out
    statuses = {
        (c["channel"], r["root_seq"], r["status"]) for c in report["channels"] for r in c["roots"]
    }
    assert statuses == {(r.channel, r.root_seq, "match") for r in attention}

    code, out = aop("replay", "--global", "--all", "--no-chain", "--json")
    assert code == 0, out
    (run,) = json.loads(out)["channels"]
    assert [(r["root_seq"], r["status"]) for r in run["roots"]] == [
        (o.root_seq, "match") for o in outputs
    ]

    legacy = next(r for r in attention if r.epoch_root["format"] == "ring-v0-legacy")
    code, out = aop(
        "replay",
        "--attention",
        "--channel",
        "beta",
        "--epoch",
        str(legacy.epoch),
        "--no-chain",
        "--json",
    )
    assert code == 0, out
    execute(
        engine,
        "UPDATE roots SET root = decode(repeat('00', 32), 'hex') "
        "WHERE channel_config = :c AND root_seq = :s",
        c=legacy.key.decode(),
        s=legacy.root_seq,
    )
    code, out = aop(
        "replay", "--attention", "--channel", "beta", "--root-seq", str(legacy.root_seq),
        "--no-chain", "--json",
    )  # fmt: skip
    assert code == 1, out
    (root,) = json.loads(out)["channels"][0]["roots"]
    assert root["status"] == "mismatch"
    assert "root" in [f["field"] for f in root["fields"]]
