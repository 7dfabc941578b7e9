"""`aop replay` on the real broker and database: MATCH for every root of a simulated run, and
the exact diff (wallets, amounts, traced events) for a root, a leaf or the log tampered with;
the global roots (`--global`, and in `aop parity`) likewise."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from confluent_kafka import Producer
from solders.pubkey import Pubkey
from sqlalchemy import Engine, text

from aop.cli import main
from aop.core.claims.cumulative_v2 import publish_cumulative_root_instruction
from aop.core.combine import GlobalCombiner, GlobalOutput
from aop.core.fold import ReferenceFold, fold_log
from aop.core.fold_output import RootOutput
from aop.log.avro import AvroCodec
from aop.log.kafka import CHAIN_EVENTS, EPOCH_ROOTS, GLOBAL_ROOTS, ensure_topics, producer_config
from aop.projections.db import engine_for, upgrade
from aop.projections.projector import Projector
from aop.replay.compare import matches_digest
from aop.replay.stored_roots import RootStore
from aop.runtime.settings import Settings, load_settings
from aop.simchain import SimChainServer, SimConfig
from aop.streams.combiner.config import combine_config
from aop.streams.fold.config import fold_config
from tests.support.fold_logs import random_log
from tests.support.threaded_simchain import ThreadedSimChain
from tests.unit.replay.logs import (
    WALLET_A,
    WALLET_B,
    WALLET_C,
    Batches,
    alpha_log,
    spec_of,
    without_events,
)

CODEC = AvroCodec()
Record = tuple[int, int, dict[str, Any]]


def b58(key: bytes) -> str:
    return str(Pubkey.from_bytes(key))


@pytest.fixture
def replay_env(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, db_schema: str
) -> dict[str, str]:
    """The AOP_* variables of the test's deployment (also exported for in-process `aop`)."""
    return {
        "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "AOP_DATABASE_URL": database_url,
        "AOP_TOPIC_PREFIX": topic_prefix,
        "AOP_DATABASE_SCHEMA": db_schema,
        "AOP_CHAIN_PARTITIONS": "4",
        "AOP_CHANNELS": "alpha,beta,gamma",
        "AOP_GENESIS_SLOT": "0",
        "AOP_EPOCH_SLOTS": "100",
        "AOP_EMISSION_DEFAULT": "1000000",
        "AOP_CLAIM_FORMATS": json.dumps({"gamma": "ring-v0"}),
        "AOP_RPC_URL": "http://127.0.0.1:9",
        "AOP_LOG_LEVEL": "WARNING",
        "AOP_PROJECTION_POLL_TIMEOUT_S": "0.2",
        "AOP_REPLAY_POLL_TIMEOUT_S": "0.2",
        "AOP_REPLAY_STALL_TIMEOUT_S": "20",
    }


@pytest.fixture
def settings(replay_env: dict[str, str]) -> Settings:
    settings = load_settings(replay_env)
    ensure_topics(settings)
    upgrade(settings)
    return settings


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = engine_for(settings)
    yield engine
    engine.dispose()


class AopRunner:
    """Runs `aop ARGS...` in-process with the test's environment: (exit code, stdout); the
    last run's stderr is in `err`."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.err = ""

    def __call__(self, *argv: str) -> tuple[int, str]:
        self._capsys.readouterr()
        code = main(list(argv))
        captured = self._capsys.readouterr()
        self.err = captured.err
        return code, captured.out


@pytest.fixture
def aop(
    replay_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> AopRunner:
    for name, value in replay_env.items():
        monkeypatch.setenv(name, value)
    return AopRunner(capsys)


# -- helpers ----------------------------------------------------------------------------------


def produce_log(
    settings: Settings, batches: Batches, *, transactional: bool = False
) -> list[Record]:
    """Append the SlotBatches (in a Kafka transaction per 7 records when `transactional`, as
    the listener writes, so the log holds transaction markers); the log as (p, offset, batch)."""
    extra = {"transactional.id": f"{settings.topic_prefix}replay-test"} if transactional else {}
    producer = Producer(producer_config(settings, **extra))
    topic = settings.topic(CHAIN_EVENTS)
    stored: list[Record] = []
    if transactional:
        producer.init_transactions(10)
        producer.begin_transaction()
    for i, (partition, batch) in enumerate(batches):

        def delivered(err: Any, msg: Any, batch: dict[str, Any] = batch) -> None:
            assert err is None, err
            stored.append((msg.partition(), msg.offset(), batch))

        producer.produce(
            topic,
            CODEC.encode("SlotBatch", batch),
            key=b"p%d" % partition,
            partition=partition,
            on_delivery=delivered,
        )
        if transactional and i % 7 == 6:
            producer.commit_transaction(10)
            producer.begin_transaction()
    if transactional:
        producer.commit_transaction(10)
    assert producer.flush(30) == 0
    stored.sort(key=lambda r: (r[0], r[1]))
    return stored


def as_records(batches: Batches, stored: Sequence[Record]) -> list[Record]:
    """`batches` placed at the offsets the stored log gave the same positions."""
    offsets: dict[int, list[int]] = {}
    for partition, offset, _ in stored:
        offsets.setdefault(partition, []).append(offset)
    seen: dict[int, int] = {}
    out = []
    for partition, batch in batches:
        index = seen.get(partition, 0)
        seen[partition] = index + 1
        out.append((partition, offsets[partition][index], batch))
    return out


def project(
    settings: Settings,
    engine: Engine,
    roots: Sequence[RootOutput],
    log: Sequence[Record] = (),
) -> None:
    """Put the roots on aop.epoch.roots as the fold does and run the projector until every
    root is in Postgres and the claims of `log` (on aop.chain.events) are projected."""
    producer = Producer(producer_config(settings))
    topic = settings.topic(EPOCH_ROOTS)
    for root in roots:
        producer.produce(
            topic,
            CODEC.encode("EpochRoot", root.epoch_root),
            key=root.key,
            partition=root.partition,
        )
        for chunk in root.chunks:
            producer.produce(
                topic, CODEC.encode("LeafChunk", chunk), key=root.key, partition=root.partition
            )
    assert producer.flush(30) == 0
    events = settings.topic(CHAIN_EVENTS)
    ends: dict[int, int] = {}
    for partition, offset, _ in log:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    projector = Projector(settings, engine)
    deadline = time.monotonic() + 60

    def done() -> bool:
        offsets = projector.stored_offsets
        claims = all(offsets.get((events, p), 0) >= end for p, end in ends.items())
        return claims and count_roots(engine) >= len(roots)

    try:
        while not done():
            assert time.monotonic() < deadline, "the projector did not write every root"
            projector.poll_once()
    finally:
        projector.close()


def count_roots(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM roots")).scalar_one())


def execute(engine: Engine, sql: str, **params: Any) -> int:
    with engine.begin() as conn:
        return int(conn.execute(text(sql), params).rowcount)


def alpha_key(settings: Settings) -> str:
    return b58(spec_of(fold_config(settings), "alpha").config)


@pytest.fixture
def alpha_run(settings: Settings, engine: Engine) -> list[RootOutput]:
    """The alpha log on the broker, its roots projected to Postgres."""
    config = fold_config(settings)
    batches = alpha_log(config)
    stored = produce_log(settings, batches)
    roots = fold_log(stored, config)
    project(settings, engine, roots)
    return roots


# -- MATCH ------------------------------------------------------------------------------------


def test_replay_all_of_a_simulated_run_matches_every_root(
    settings: Settings, engine: Engine, aop: AopRunner
) -> None:
    """A random multi-channel log (cumulative-v2 and ring-v0, written in Kafka transactions):
    every root the fold emits is projected, and `--all` reports each one MATCH, exit 0."""
    config = fold_config(settings)
    batches = random_log(config, seed=7, batches=24, events_per_batch=12, slots_per_batch=25)
    stored = produce_log(settings, batches, transactional=True)
    roots = fold_log(stored, config)
    assert len(roots) >= 12
    project(settings, engine, roots)
    store = RootStore(engine)
    assert {r.epoch_root["format"] for r in roots} == {"cumulative-v2", "ring-v0"}
    for root in roots:  # the server's digests agree with the replayed leaves and levels
        digest = store.root_digest(root.key.decode(), root.root_seq)
        assert digest is not None and matches_digest(root, digest), root.root_seq

    code, out = aop("replay", "--all", "--no-chain", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["status"] == "match"
    assert report["roots_checked"] == len(roots)
    assert report["mismatches"] == 0
    got = {
        (c["channel"], r["root_seq"]): r["status"] for c in report["channels"] for r in c["roots"]
    }
    assert got == {(r.channel, r.root_seq): "match" for r in roots}
    read = {c["channel"]: c["read"] for c in report["channels"]}
    highest = {p: o for p, o, _ in stored}
    for spec in config.channels:
        assert read[spec.name]["read_to"] == highest[spec.partition] + 1
        assert read[spec.name]["events"] == sum(
            len(b["events"]) for p, b in batches if p == spec.partition
        )

    code, out = aop("replay", "--all", "--no-chain", "--json", "--workers", "2")
    assert code == 0
    in_processes = json.loads(out)
    for document in (report, in_processes):
        document.pop("seconds")
        for channel in document["channels"]:
            channel["read"].pop("seconds")
            channel["read"].pop("events_per_second")
            channel["read"].pop("times")
    assert in_processes == report

    gamma = [r for r in roots if r.channel == "gamma"]
    code, out = aop("replay", "--channel", "gamma", "--epoch", str(gamma[1].epoch), "--no-chain")
    assert code == 0
    assert out.splitlines()[-1] == "MATCH: 1 root(s) checked"
    assert f"root_seq {gamma[1].root_seq} (epoch {gamma[1].epoch}): MATCH" in out


def test_replay_root_seq_reads_only_up_to_the_record_that_closed_it(
    settings: Settings, alpha_run: list[RootOutput], aop: AopRunner
) -> None:
    """root_seq 1 of alpha is closed by offset 1 of its partition: the read stops there."""
    code, out = aop("replay", "--channel", "ALPHA", "--root-seq", "1", "--no-chain", "--json")
    report = json.loads(out)
    assert code == 0
    [channel] = report["channels"]
    assert channel["read"]["read_to"] == 2
    assert channel["read"]["stop_offset"] == 6
    assert [(r["root_seq"], r["status"], r["closing_offset"]) for r in channel["roots"]] == [
        (1, "match", 1)
    ]
    assert channel["roots"][0]["replayed"]["input_offsets"] == [
        {"partition": 1, "first_offset": 0, "last_offset": 1}
    ]


# -- diffs ------------------------------------------------------------------------------------


def test_replay_root_altered_in_postgres_reports_the_root_and_exits_1(
    settings: Settings,
    engine: Engine,
    alpha_run: list[RootOutput],
    aop: AopRunner,
) -> None:
    """Only the root field differs; leaves and levels still match."""
    key = alpha_key(settings)
    assert (
        execute(
            engine,
            "UPDATE roots SET root = :r WHERE channel_config = :c AND root_seq = 2",
            r=b"\xab" * 32,
            c=key,
        )
        == 1
    )
    code, out = aop("replay", "--channel", "alpha", "--root-seq", "2", "--no-chain", "--json")
    assert code == 1
    [root] = json.loads(out)["channels"][0]["roots"]
    assert root["status"] == "mismatch"
    assert root["fields"] == [
        {"field": "root", "replayed": alpha_run[1].tree.root.hex(), "stored": "ab" * 32}
    ]
    assert root["leaves"]["match"] is True
    assert root["levels"] == {"match": True, "detail": ""}

    code, text_out = aop("replay", "--channel", "alpha", "--all", "--no-chain")
    assert code == 1
    assert f"    root: replayed {alpha_run[1].tree.root.hex()}, stored {'ab' * 32}" in text_out
    assert text_out.splitlines()[-1] == "MISMATCH: 1 of 3 root(s) differ"


def test_replay_leaf_altered_in_postgres_names_the_wallet_and_amounts(
    settings: Settings,
    engine: Engine,
    alpha_run: list[RootOutput],
    aop: AopRunner,
) -> None:
    """C's leaf in root_seq 2 raised by 5: the diff names C, 857,143 vs 857,148, and the trace
    says C diverges at root_seq 2 (epoch 1) and lists its stake of that epoch."""
    key = alpha_key(settings)
    changed = execute(
        engine,
        "UPDATE leaves SET amount = amount + 5 WHERE wallet = :w AND root_id = "
        "(SELECT root_id FROM roots WHERE channel_config = :c AND root_seq = 2)",
        w=WALLET_C,
        c=key,
    )
    assert changed == 1
    code, out = aop("replay", "--channel", "alpha", "--root-seq", "2", "--no-chain", "--json")
    assert code == 1
    [root] = json.loads(out)["channels"][0]["roots"]
    assert root["fields"] == []
    assert root["leaves"]["counts"] == {
        "amount": 1,
        "missing_in_store": 0,
        "extra_in_store": 0,
        "order": 0,
    }
    index_c = alpha_run[1].tree.wallets.index(WALLET_C)
    assert root["leaves"]["wallets"] == [
        {
            "wallet": b58(WALLET_C),
            "kind": "amount",
            "replayed": 857_143,
            "stored": 857_148,
            "delta": -5,
            "replayed_index": index_c,
            "stored_index": index_c,
        }
    ]
    [trace] = root["traces"]
    assert {
        k: trace[k] for k in ("wallet", "diverges_at", "diverges_epoch", "replayed", "stored")
    } == {
        "wallet": b58(WALLET_C),
        "diverges_at": 2,
        "diverges_epoch": 1,
        "replayed": 857_143,
        "stored": 857_148,
    }
    assert [
        (e["offset"], e["slot"], e["name"], e["amount"], e["ignored"]) for e in trace["events"]
    ] == [(2, 100, "ChannelStaked", 300, "")]


def test_replay_event_the_stored_roots_never_saw_names_wallets_and_the_event(
    settings: Settings, engine: Engine, aop: AopRunner
) -> None:
    """The log holds an extra ChannelStaked of B at slot 50 (offset 1, before epoch 0 closed)
    that the stored roots never counted (they come from the log without it): root_seq 1
    differs in root, dataset_hash and leaf_count; A 666,667 replayed vs 1,000,000 stored, B
    333,333 missing from Postgres; B's trace lists the extra event."""
    config = fold_config(settings)
    spec = spec_of(config, "alpha")
    tampered = alpha_log(config, extra_stake=True)
    stored_log = produce_log(settings, tampered)
    honest = as_records(without_events(tampered, spec.partition, 1), stored_log)
    project(settings, engine, fold_log(honest, config))
    extra = next(b for p, o, b in stored_log if p == spec.partition and o == 1)["events"][0]

    code, out = aop("replay", "--channel", "alpha", "--root-seq", "1", "--no-chain", "--json")
    assert code == 1
    [root] = json.loads(out)["channels"][0]["roots"]
    assert [f["field"] for f in root["fields"]] == [
        "root",
        "dataset_hash",
        "leaf_count",
        "tree_depth",
    ]
    assert root["fields"][2:] == [
        {"field": "leaf_count", "replayed": 2, "stored": 1},
        {"field": "tree_depth", "replayed": 1, "stored": 0},
    ]
    assert root["levels"] == {"match": False, "detail": "2 levels replayed, 1 stored"}
    wallets = {w["wallet"]: w for w in root["leaves"]["wallets"]}
    assert {k: (v["kind"], v["replayed"], v["stored"], v["delta"]) for k, v in wallets.items()} == {
        b58(WALLET_A): ("amount", 666_667, 1_000_000, -333_333),
        b58(WALLET_B): ("missing_in_store", 333_333, None, 333_333),
    }
    traces = {t["wallet"]: t for t in root["traces"]}
    b_trace = traces[b58(WALLET_B)]
    assert (b_trace["diverges_at"], b_trace["replayed"], b_trace["stored"]) == (1, 333_333, 0)
    assert [(e["offset"], e["event_id"], e["slot"], e["name"]) for e in b_trace["events"]] == [
        (1, extra["id"], 50, "ChannelStaked")
    ]
    a_trace = traces[b58(WALLET_A)]
    assert (a_trace["diverges_at"], a_trace["replayed"], a_trace["stored"]) == (
        1,
        666_667,
        1_000_000,
    )

    code, out = aop("replay", "--channel", "alpha", "--root-seq", "1", "--no-chain")
    assert code == 1
    assert (
        f"      {b58(WALLET_A)}  amount: replayed 666,667, stored 1,000,000 (delta -333,333)" in out
    )
    assert (
        f"      {b58(WALLET_B)}  missing_in_store: replayed 333,333, stored - (delta +333,333)"
        in out
    )
    assert (
        f"      offset 1 slot 50 (epoch 0) {extra['id']}: ChannelStaked amount 100 boost 10000"
        in out
    )


def test_replay_reports_roots_only_one_side_has(
    settings: Settings, engine: Engine, aop: AopRunner
) -> None:
    """A hole in Postgres is missing_in_store (exit 1); roots newer than every stored one are
    unprojected (exit 0); a stored root the log does not produce is not_replayed (exit 1)."""
    config = fold_config(settings)
    roots = fold_log(produce_log(settings, alpha_log(config)), config)
    project(settings, engine, [roots[0]])
    code, out = aop("replay", "--channel", "alpha", "--all", "--no-chain", "--json")
    assert code == 0
    statuses = [(r["root_seq"], r["status"]) for r in json.loads(out)["channels"][0]["roots"]]
    assert statuses == [(1, "match"), (2, "unprojected"), (3, "unprojected")]

    project(settings, engine, [roots[0], roots[2]])
    code, out = aop("replay", "--channel", "alpha", "--all", "--no-chain", "--json")
    assert code == 1
    statuses = [(r["root_seq"], r["status"]) for r in json.loads(out)["channels"][0]["roots"]]
    assert statuses == [(1, "match"), (2, "missing_in_store"), (3, "match")]

    execute(engine, "DELETE FROM settlement_outbox WHERE root_seq = 3")
    execute(engine, "UPDATE roots SET root_seq = 7 WHERE root_seq = 3 AND channel = 'alpha'")
    code, out = aop("replay", "--channel", "alpha", "--all", "--no-chain", "--json")
    assert code == 1
    statuses = [(r["root_seq"], r["status"]) for r in json.loads(out)["channels"][0]["roots"]]
    assert statuses == [
        (1, "match"),
        (2, "missing_in_store"),
        (3, "missing_in_store"),
        (7, "not_replayed"),
    ]


def test_replay_operator_errors_exit_2(alpha_run: list[RootOutput], aop: AopRunner) -> None:
    """An unknown channel, a root_seq nothing has, an epoch not closed, --root-seq without one
    channel: one line on stderr, exit 2."""
    assert aop("replay", "--channel", "nope", "--all", "--no-chain")[0] == 2
    assert aop.err.startswith("aop replay: channel 'nope' is not served by this deployment")
    assert aop("replay", "--channel", "alpha", "--root-seq", "9", "--no-chain")[0] == 2
    assert aop.err == (
        "aop replay: channel 'alpha' has no root_seq 9: none is stored (newest stored: 3) and "
        "the log up to offset 6 produces none (newest replayed: 3)\n"
    )
    assert aop("replay", "--channel", "alpha", "--epoch", "3", "--no-chain")[0] == 2
    assert "epoch 3 is not closed on the log yet (open epoch 3, watermark slot 310)" in aop.err
    assert aop("replay", "--root-seq", "1", "--no-chain")[0] == 2
    assert aop.err == "aop replay: --root-seq and --epoch need exactly one --channel\n"


# -- the chain --------------------------------------------------------------------------------


SIM = SimConfig(
    seed=5,
    slot_ms=10,
    rate=0,
    workload=False,
    finality_depth=3,
    confirmation_depth=1,
    wallets=4,
    channels=("alpha", "beta", "gamma"),
    claim_channels=(),
)


@pytest.fixture
def sim() -> Iterator[ThreadedSimChain]:
    with ThreadedSimChain(SimChainServer(SIM)) as threaded:
        yield threaded


def publish(sim: ThreadedSimChain, root_seq: int, root: bytes, dataset_hash: bytes) -> None:
    """Publish alpha's root_seq as the protocol's publisher and wait until it is finalized."""
    chain = sim.server.chain
    ix = publish_cumulative_root_instruction(
        program_id=chain.program_id,
        mint=chain.mint,
        payer=chain.keys.publisher.pubkey(),
        channel="alpha",
        root_seq=root_seq,
        root=root,
        dataset_hash=dataset_hash,
    )
    record = sim.call(lambda: chain.submit(chain.sign([ix], [chain.keys.publisher])))
    assert record is not None
    deadline = time.monotonic() + 10
    while sim.call(lambda: chain.finalized_slot) <= record.slot:
        assert time.monotonic() < deadline, "not finalized in time"
        time.sleep(0.02)


def test_replay_compares_with_the_root_stored_on_chain(
    alpha_run: list[RootOutput],
    aop: AopRunner,
    sim: ThreadedSimChain,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """root_seq 1 published as replayed: match; root_seq 2 published with another root:
    mismatch (exit 1) although Postgres matches; root_seq 3 not published: not_on_chain."""
    publish(sim, 1, alpha_run[0].tree.root, alpha_run[0].tree.dataset_hash)
    publish(sim, 2, b"\x0b" * 32, alpha_run[1].tree.dataset_hash)
    monkeypatch.setenv("AOP_RPC_URL", sim.http_url)

    code, out = aop("replay", "--channel", "alpha", "--all", "--chain", "--json")
    report = json.loads(out)
    assert code == 1
    assert report["chain"] == "compared"
    roots = report["channels"][0]["roots"]
    assert [(r["root_seq"], r["status"], r["chain"]["status"]) for r in roots] == [
        (1, "match", "match"),
        (2, "match", "mismatch"),
        (3, "match", "not_on_chain"),
    ]
    assert roots[0]["chain"]["root"] == alpha_run[0].tree.root.hex()
    assert roots[0]["chain"]["published_slot"] > 0
    assert roots[1]["chain"]["detail"] == (
        f"on-chain root {'0b' * 32} dataset_hash {alpha_run[1].tree.dataset_hash.hex()}"
    )
    assert roots[2]["chain"]["detail"] == "latest_root_seq 2; the account holds root_seqs [1, 2]"

    code, out = aop("replay", "--channel", "alpha", "--root-seq", "2")
    assert code == 1
    assert out.splitlines()[1:3] == [
        "  root_seq 2 (epoch 1): MISMATCH ON-CHAIN (Postgres matches the replay)",
        f"    on-chain: on-chain root {'0b' * 32} dataset_hash "
        f"{alpha_run[1].tree.dataset_hash.hex()}; replayed root {alpha_run[1].tree.root.hex()}",
    ]
    code, out = aop("replay", "--channel", "alpha", "--root-seq", "1")
    assert code == 0
    assert out.splitlines()[1] == (
        f"  root_seq 1 (epoch 0): MATCH (root {alpha_run[0].tree.root.hex()[:16]}…, 1 leaf; "
        "on-chain: match)"
    )


def test_replay_without_an_answering_rpc_skips_the_chain_unless_required(
    alpha_run: list[RootOutput], aop: AopRunner
) -> None:
    """Auto: the comparison is skipped and said so (exit 0); --chain: exit 2."""
    code, out = aop("replay", "--channel", "alpha", "--all")
    assert code == 0
    assert out.splitlines()[-2] == (
        "chain comparison: skipped (RPC at http://127.0.0.1:9 not answering)"
    )
    assert aop("replay", "--channel", "alpha", "--all", "--chain")[0] == 2
    assert aop.err.startswith("aop replay: --chain: the RPC at http://127.0.0.1:9 does not answer")


# -- global roots -----------------------------------------------------------------------------


def global_roots_of(
    settings: Settings, stored: Sequence[tuple[int, int, dict]]
) -> tuple[list, list[GlobalOutput]]:  # type: ignore[type-arg]
    """The reference fold's channel roots of the log and the pure combiner's global roots."""
    fold = ReferenceFold(fold_config(settings))
    combiner = GlobalCombiner(combine_config(settings))
    channel_roots, outputs = [], []
    position: dict[int, int] = {}
    for partition, offset, batch in stored:
        result = fold.feed(partition, offset, batch)
        for root in result.roots:
            channel_roots.append(root)
            at = position.get(partition, 0)
            position[partition] = at + 1 + len(root.chunks)
            outputs += combiner.add_root(partition, at, root.epoch_root, root.tree.dataset)
        if result.closed is not None:
            at = position.get(partition, 0)
            position[partition] = at + 1
            outputs += combiner.add_closed(partition, at, result.closed.record)
    return channel_roots, [o for o in outputs if isinstance(o, GlobalOutput)]


def project_global(settings: Settings, engine: Engine, outputs: Sequence[GlobalOutput]) -> None:
    producer = Producer(producer_config(settings))
    topic = settings.topic(GLOBAL_ROOTS)
    for output in outputs:
        producer.produce(topic, CODEC.encode("GlobalRoot", output.record), output.key, partition=0)
        for chunk in output.chunks:
            producer.produce(topic, CODEC.encode("LeafChunk", chunk), output.key, partition=0)
    assert producer.flush(30) == 0
    projector = Projector(settings, engine)
    want = count_roots(engine) + len(outputs)
    deadline = time.monotonic() + 60
    try:
        while count_roots(engine) < want:
            assert time.monotonic() < deadline, "the projector did not store the global roots"
            projector.poll_once()
    finally:
        projector.close()


def test_replay_global_matches_and_finds_a_tampered_root(
    settings: Settings, engine: Engine, aop: AopRunner
) -> None:
    config = fold_config(settings)
    batches = random_log(config, seed=21, batches=24, events_per_batch=12, slots_per_batch=25)
    stored = produce_log(settings, batches)
    channel_roots, outputs = global_roots_of(settings, stored)
    assert len(outputs) >= 3
    project(settings, engine, channel_roots)
    project_global(settings, engine, outputs)

    code, out = aop("replay", "--global", "--all", "--no-chain", "--json")
    report = json.loads(out)
    assert code == 0, out
    (run,) = report["channels"]
    assert run["channel"] == "global"
    assert [(r["root_seq"], r["status"]) for r in run["roots"]] == [
        (o.root_seq, "match") for o in outputs
    ]

    code, out = aop("parity", "--roots", "2", "--no-chain", "--json")
    document = json.loads(out)
    assert code == 0, out
    global_run = next(c for c in document["channels"] if c["channel"] == "global")
    assert [r["root_seq"] for r in global_run["roots"]] == [o.root_seq for o in outputs[-2:]]

    target = outputs[1]
    execute(
        engine,
        "UPDATE roots SET total = total + 1 WHERE channel_config = :c AND root_seq = :s",
        c=settings.global_root_account,
        s=target.root_seq,
    )
    code, out = aop(
        "replay", "--global", "--root-seq", str(target.root_seq), "--no-chain", "--json"
    )
    report = json.loads(out)
    assert code == 1
    (root,) = report["channels"][0]["roots"]
    assert root["status"] == "mismatch"
    assert [f["field"] for f in root["fields"]] == ["total"]
