"""`aop project` on the real broker and the real database: verified roots, whole or nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from confluent_kafka import Consumer, Producer, TopicPartition
from solders.pubkey import Pubkey
from sqlalchemy import Engine, text

from aop.core.events import ChannelStaked, CumulativeRewardsClaimed
from aop.core.merkle import verify_proof
from aop.core.program_ids import DEFAULT_PROGRAM_ID
from aop.log.avro import AvroCodec
from aop.log.kafka import (
    CHAIN_EVENTS,
    DLQ,
    EPOCH_ROOTS,
    consumer_config,
    producer_config,
)
from aop.projections import metrics
from aop.projections.db import current_revision, engine_for, head_revision, upgrade
from aop.projections.models import Base
from aop.projections.projector import Projector
from aop.projections.queries import claim_for
from aop.replay.load import load_schema
from aop.runtime.settings import Settings
from tests.conftest import libpq_url
from tests.support.sample_roots import SampleRoot, build_sample_root

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MINT = Pubkey.from_string("Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM")
CHANNEL = "youtube_lofi"
DATA_TABLES = (
    "channels",
    "roots",
    "leaves",
    "tree_levels",
    "claimed_totals",
    "settlement_outbox",
    "settlement_attempts",
)
SettingsFactory = Callable[..., Settings]


def wallet(i: int) -> bytes:
    return hashlib.sha256(b"wallet-%d" % i).digest()


def sample(
    root_seq: int = 1,
    wallets: int = 5,
    *,
    channel: str = CHANNEL,
    chunk_entries: int = 2,
    format_name: str = "cumulative-v2",
    scale: int = 10,
) -> SampleRoot:
    amounts = {wallet(i): (i + 1) * scale * root_seq for i in range(wallets)}
    return build_sample_root(
        channel=channel,
        root_seq=root_seq,
        epoch=100 + root_seq,
        amounts=amounts,
        program_id=DEFAULT_PROGRAM_ID,
        mint=MINT,
        format_name=format_name,
        chunk_entries=chunk_entries,
        emission=sum(amounts.values()) + 3,
        closed_at_slot=9000 * root_seq,
        input_ranges=[{"partition": 1, "first_offset": 0, "last_offset": 40 + root_seq}],
    )


def produce(
    settings: Settings,
    records: Sequence[tuple[str, dict[str, Any]]],
    *,
    partition: int = 1,
    topic: str = EPOCH_ROOTS,
) -> None:
    codec = AvroCodec()
    producer = Producer(producer_config(settings))
    for record_type, value in records:
        producer.produce(
            settings.topic(topic), codec.encode(record_type, value), key=b"k", partition=partition
        )
    assert producer.flush(10) == 0


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every data table (consumer offsets excluded), in a stable order."""
    with engine.connect() as conn:
        return {
            table: sorted(
                (tuple(row) for row in conn.execute(text(f"SELECT * FROM {table}"))), key=repr
            )
            for table in DATA_TABLES
        }


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def stored_offset(engine: Engine, settings: Settings, partition: int = 1) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT next_offset FROM consumer_offsets WHERE topic = :t AND partition = :p"),
            {"t": settings.topic(EPOCH_ROOTS), "p": partition},
        ).scalar_one_or_none()


def run_projector(
    settings: Settings, engine: Engine, until: Callable[[], bool], timeout: float = 30
) -> None:
    projector = Projector(settings, engine)
    deadline = time.monotonic() + timeout
    try:
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError("the projector did not reach the expected state in time")
            projector.poll_once()
    finally:
        projector.close()


def dead_letters(settings: Settings, want: int, timeout: float = 15) -> list[dict[str, Any]]:
    codec = AvroCodec()
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}dlq-reader"))
    consumer.assign([TopicPartition(settings.topic(DLQ), 0, 0)])
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for message in consumer.consume(10, timeout=0.5):
            got.append(codec.decode_as("DeadLetter", message.value()))
    time.sleep(0.5)
    for message in consumer.consume(10, timeout=0.5):
        got.append(codec.decode_as("DeadLetter", message.value()))
    consumer.close()
    return got


# -- migrations -------------------------------------------------------------------------------


def test_upgrade_creates_every_table_in_the_schema_and_matches_the_models(
    project_settings: Settings, engine: Engine
) -> None:
    """All objects and the version table live in the settings' schema; autogenerate finds no
    difference between the migration and the models; a second upgrade is a no-op."""
    assert upgrade(project_settings) == head_revision() == current_revision(project_settings)
    with engine.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
                "ORDER BY table_name"
            ),
            {"s": project_settings.database_schema},
        ).scalars()
        assert list(tables) == [
            "alembic_version",
            "channels",
            "claimed_totals",
            "consumer_offsets",
            "leaves",
            "roots",
            "settlement_attempts",
            "settlement_outbox",
            "tree_levels",
        ]
        storage = conn.execute(
            text(
                "SELECT attstorage FROM pg_attribute WHERE attrelid = 'tree_levels'::regclass "
                "AND attname = 'nodes'"
            )
        ).scalar_one()
        assert storage == "e"
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []


# -- the happy path ---------------------------------------------------------------------------


def test_root_is_projected_with_leaves_levels_outbox_and_offsets(
    project_settings: Settings, engine: Engine
) -> None:
    """Every row equals the tree core builds; proofs sliced in SQL equal core's and verify."""
    root = sample(wallets=5, chunk_entries=2)
    produce(project_settings, root.records())
    run_projector(
        project_settings, engine, lambda: count(engine, "SELECT count(*) FROM roots") == 1
    )

    config = root.root["channel_config"]
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM roots")).mappings().one()
        assert {k: row[k] for k in row if k not in ("root_id", "created_at")} == {
            "channel_config": config,
            "root_seq": 1,
            "channel": CHANNEL,
            "epoch": 101,
            "format": "cumulative-v2",
            "program_id": str(DEFAULT_PROGRAM_ID),
            "mint": str(MINT),
            "root": root.tree.root,
            "dataset_hash": root.tree.dataset_hash,
            "leaf_count": 5,
            "tree_depth": 3,
            "total": Decimal(150),
            "emission": Decimal(153),
            "closed_at_slot": 9000,
            "closed_at_ms": None,
            "input_offsets": [{"partition": 1, "first_offset": 0, "last_offset": 41}],
            "source_partition": 1,
            "source_offset": 0,
            "proofs_pruned": False,  # the only root of its account: well within retention
        }
        leaves = conn.execute(
            text("SELECT leaf_index, wallet, amount FROM leaves ORDER BY leaf_index")
        ).all()
        assert [(i, bytes(w), int(a)) for i, w, a in leaves] == [
            (i, w, a)
            for i, (w, a) in enumerate(zip(root.tree.wallets, root.tree.amounts, strict=True))
        ]
        levels = conn.execute(
            text("SELECT level, node_count, nodes FROM tree_levels ORDER BY level")
        ).all()
        assert [(lv, n, bytes(b)) for lv, n, b in levels] == [
            (i, len(b) // 32, b) for i, b in enumerate(root.tree.levels)
        ]
        channel = conn.execute(text("SELECT * FROM channels")).mappings().one()
        assert (channel["name"], channel["latest_root_seq"], channel["latest_epoch"]) == (
            CHANNEL,
            1,
            101,
        )
        outbox = conn.execute(
            text("SELECT channel_config, root_seq, status, attempts FROM settlement_outbox")
        ).all()
        assert outbox == [(config, 1, "pending", 0)]
        for index, wallet_bytes in enumerate(root.tree.wallets):
            claim = claim_for(conn, channel_config=config, root_seq=1, wallet=wallet_bytes)
            assert claim is not None
            assert (claim.leaf_index, claim.amount) == (index, root.tree.amounts[index])
            assert claim.leaf == root.tree.leaf(index)
            assert claim.proof == root.tree.proof(index)
            assert verify_proof(claim.leaf, claim.proof, claim.root)
        assert claim_for(conn, channel_config=config, root_seq=1, wallet=wallet(99)) is None
    # 1 EpochRoot + 3 chunks at offsets 0..3
    assert stored_offset(engine, project_settings) == 4


def test_u64_extremes_survive_the_binary_copy_exactly(
    project_settings: Settings, engine: Engine
) -> None:
    """Amounts at base-10000 digit boundaries and 2^64 - 1 read back exactly."""
    values = [1, 9_999, 10_000, 10**16, 10**19 + 7, 2**64 - 1]
    root = build_sample_root(
        channel=CHANNEL,
        root_seq=1,
        epoch=1,
        amounts={wallet(i): v for i, v in enumerate(values)},
        program_id=DEFAULT_PROGRAM_ID,
        mint=MINT,
    )
    produce(project_settings, root.records())
    run_projector(
        project_settings, engine, lambda: count(engine, "SELECT count(*) FROM roots") == 1
    )
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT wallet, amount FROM leaves")).all()
        total = conn.execute(text("SELECT total FROM roots")).scalar_one()
    assert sorted(int(a) for _, a in stored) == sorted(values)
    assert {bytes(w): int(a) for w, a in stored} == {wallet(i): v for i, v in enumerate(values)}
    assert int(total) == sum(values)


@pytest.mark.parametrize("wallets", [1, 2, 7, 33])
def test_sql_proofs_match_core_for_odd_and_tiny_trees(
    project_settings: Settings, engine: Engine, wallets: int
) -> None:
    """One leaf (empty proof), and odd levels (the last node is its own sibling)."""
    root = sample(wallets=wallets, chunk_entries=10)
    produce(project_settings, root.records())
    run_projector(
        project_settings, engine, lambda: count(engine, "SELECT count(*) FROM roots") == 1
    )
    with engine.connect() as conn:
        proofs = [
            claim_for(conn, channel_config=root.root["channel_config"], root_seq=1, wallet=w)
            for w in root.tree.wallets
        ]
    assert [p.proof if p else None for p in proofs] == [root.tree.proof(i) for i in range(wallets)]


def test_ring_v0_root_is_projected_in_index_order(
    project_settings: Settings, engine: Engine
) -> None:
    """ring-v0 entries carry their index; leaves keep it and proofs verify against the root."""
    root = sample(wallets=6, format_name="ring-v0", chunk_entries=4)
    produce(project_settings, root.records())
    run_projector(
        project_settings, engine, lambda: count(engine, "SELECT count(*) FROM roots") == 1
    )
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT leaf_index, wallet FROM leaves ORDER BY leaf_index"))
        assert [bytes(w) for _, w in rows] == list(root.tree.wallets)
        claim = claim_for(
            conn,
            channel_config=root.root["channel_config"],
            root_seq=1,
            wallet=root.tree.wallets[5],
        )
    assert claim is not None
    assert claim.proof == root.tree.proof(5)
    assert claim.leaf == root.tree.leaf(5)


# -- idempotence ------------------------------------------------------------------------------


def test_redelivered_root_leaves_the_database_unchanged(
    project_settings: Settings, engine: Engine
) -> None:
    """The same records again (a fold re-emission) change no row; only the offset moves on."""
    root = sample(wallets=9, chunk_entries=4)
    produce(project_settings, root.records())
    run_projector(project_settings, engine, lambda: stored_offset(engine, project_settings) == 4)
    before = dump(engine)
    duplicates_before = metrics.ROOTS.labels("duplicate")._value.get()

    produce(project_settings, root.records())
    run_projector(project_settings, engine, lambda: stored_offset(engine, project_settings) == 8)
    assert dump(engine) == before
    assert metrics.ROOTS.labels("duplicate")._value.get() == duplicates_before + 1


def test_reemission_interleaved_with_a_partial_root_writes_it_once(
    project_settings: Settings, engine: Engine
) -> None:
    """EpochRoot, chunk 0, then (fold crash) EpochRoot and all chunks again: one root, exact."""
    root = sample(wallets=6, chunk_entries=2)
    records = root.records()
    produce(project_settings, [*records[:2], *records])
    run_projector(project_settings, engine, lambda: stored_offset(engine, project_settings) == 6)
    assert count(engine, "SELECT count(*) FROM roots") == 1
    assert count(engine, "SELECT count(*) FROM leaves") == 6
    assert count(engine, "SELECT source_offset FROM roots") == 2


def test_conflicting_root_for_a_stored_seq_is_refused_and_nothing_changes(
    project_settings: Settings, engine: Engine
) -> None:
    """A different (valid) root for the same (channel, root_seq) never overwrites: DLQ."""
    produce(project_settings, sample(wallets=4).records())
    run_projector(project_settings, engine, lambda: stored_offset(engine, project_settings) == 3)
    before = dump(engine)
    other = sample(wallets=5)
    produce(project_settings, other.records())
    run_projector(project_settings, engine, lambda: stored_offset(engine, project_settings) == 7)
    assert dump(engine) == before
    letters = dead_letters(project_settings, 1)
    assert [(d["stage"], d["reason"], d["source"]) for d in letters] == [
        ("projector", "conflicting_root", f"{project_settings.topic(EPOCH_ROOTS)}/1/3")
    ]
    assert "leaf_count stored 4 vs new 5" in letters[0]["detail"]


# -- refusals ---------------------------------------------------------------------------------


def test_tampered_leaf_chunk_is_refused_with_a_reason_and_writes_nothing(
    project_settings: Settings, engine: Engine
) -> None:
    """One amount changed in a chunk: DLQ (total_mismatch), no row; the next good root lands."""
    bad = sample(root_seq=1, wallets=4, chunk_entries=2)
    chunk = bad.chunks[1]
    entries = bytearray(chunk["entries"])
    entries[32] ^= 0x01  # the low byte of the third wallet's total
    bad.chunks[1] = {**chunk, "entries": bytes(entries)}
    swapped = sample(root_seq=2, wallets=4, chunk_entries=4)
    raw = bytearray(swapped.chunks[0]["entries"])  # swap two totals: the sum stays the same
    raw[32:40], raw[72:80] = raw[72:80], raw[32:40]
    swapped.chunks[0] = {**swapped.chunks[0], "entries": bytes(raw)}
    good = sample(root_seq=3, wallets=4, channel="other_channel")
    produce(project_settings, [*bad.records(), *swapped.records(), *good.records()])

    run_projector(project_settings, engine, lambda: stored_offset(engine, project_settings) == 8)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT channel, root_seq FROM roots")).all() == [
            ("other_channel", 3)
        ]
        assert conn.execute(text("SELECT count(*) FROM leaves")).scalar_one() == 4
    letters = dead_letters(project_settings, 2)
    assert [(d["reason"], d["source"]) for d in letters] == [
        ("total_mismatch", f"{project_settings.topic(EPOCH_ROOTS)}/1/0"),
        ("root_mismatch", f"{project_settings.topic(EPOCH_ROOTS)}/1/3"),
    ]
    assert letters[0]["detail"] == "total: the EpochRoot says 100 but the leaves give 101"
    assert letters[0]["payload"] == AvroCodec().encode("EpochRoot", bad.root)


def test_undecodable_record_and_orphan_chunk_go_to_the_dlq(
    project_settings: Settings, engine: Engine
) -> None:
    producer = Producer(producer_config(project_settings))
    producer.produce(project_settings.topic(EPOCH_ROOTS), b"garbage", partition=1)
    assert producer.flush(10) == 0
    root = sample(root_seq=1, wallets=3, chunk_entries=1)
    produce(project_settings, [("LeafChunk", root.chunks[0]), *root.records()])
    run_projector(project_settings, engine, lambda: stored_offset(engine, project_settings) == 6)
    assert count(engine, "SELECT count(*) FROM roots") == 1
    assert [d["reason"] for d in dead_letters(project_settings, 2)] == [
        "undecodable",
        "orphan_chunk",
    ]


def test_hostile_records_go_to_the_dlq_with_reasons_and_the_next_root_lands(
    project_settings: Settings, engine: Engine
) -> None:
    """Framing garbage (a truncated EpochRoot, a wrong fingerprint) and schema-valid roots
    Postgres could not store (a channel with a NUL, whose config PDA matches; a 40-digit
    emission): each is one DLQ record, none stops the projector or writes a row."""
    codec = AvroCodec()
    valid = codec.encode("EpochRoot", sample().root)
    producer = Producer(producer_config(project_settings))
    for raw in (valid[:-5], valid[:2] + bytes(8) + valid[10:]):
        producer.produce(project_settings.topic(EPOCH_ROOTS), raw, partition=1)
    assert producer.flush(10) == 0
    nul = sample(channel="a\x00b", wallets=1)
    huge = sample(wallets=1)
    huge_emission = {**huge.root, "emission": "1" + "0" * 39}
    good = sample(root_seq=1, wallets=3, chunk_entries=1)
    records = [*nul.records(), ("EpochRoot", huge_emission), *huge.records()[1:], *good.records()]
    produce(project_settings, records)
    total = 2 + len(records)
    run_projector(
        project_settings, engine, lambda: stored_offset(engine, project_settings) == total
    )
    assert count(engine, "SELECT count(*) FROM roots") == 1
    assert count(engine, "SELECT count(*) FROM leaves") == 3
    letters = dead_letters(project_settings, 4)
    topic = project_settings.topic(EPOCH_ROOTS)
    assert [(d["stage"], d["reason"], d["source"]) for d in letters] == [
        ("projector", "undecodable", f"{topic}/1/0"),
        ("projector", "undecodable", f"{topic}/1/1"),
        ("projector", "bad_scope", f"{topic}/1/2"),
        ("projector", "bad_emission", f"{topic}/1/{2 + len(nul.records())}"),
    ]
    assert letters[2]["detail"] == "channel must not contain NUL characters (got 'a\\x00b')"


# -- claimed totals ---------------------------------------------------------------------------


def _claim_batch(first_slot: int, claims: list[tuple[bytes, int, int]]) -> dict[str, Any]:
    config = Pubkey.from_string(sample().root["channel_config"])
    events = []
    for i, (claimer, total, seq) in enumerate(claims):
        event = CumulativeRewardsClaimed(
            channel=bytes(config),
            claimer=claimer,
            user_amount=total,
            creator_amount=0,
            cumulative_total=total,
            root_seq=seq,
        )
        events.append(
            {
                "id": f"sig{first_slot}-{i}:0",
                "signature": f"sig{first_slot}-{i}",
                "slot": first_slot + i,
                "block_time": None,
                "event_index": 0,
                "program_id": str(DEFAULT_PROGRAM_ID),
                "name": "CumulativeRewardsClaimed",
                "data": event.encode(),
                "fields": {},
            }
        )
    return {
        "partition": 2,
        "first_slot": first_slot,
        "last_slot": first_slot + 9,
        "events": events,
        "cursor": None,
    }


def test_claimed_totals_keep_the_maximum_and_ignore_redelivery(
    project_settings: Settings, engine: Engine
) -> None:
    """claimed_total = max over the wallet's CumulativeRewardsClaimed events, idempotent."""
    batches = [
        _claim_batch(100, [(wallet(1), 70, 1), (wallet(2), 5, 1)]),
        _claim_batch(200, [(wallet(1), 95, 2)]),
        _claim_batch(100, [(wallet(1), 70, 1), (wallet(2), 5, 1)]),  # redelivered
    ]
    produce(
        project_settings,
        [("SlotBatch", b) for b in batches],
        partition=2,
        topic=CHAIN_EVENTS,
    )

    def offset_is_3() -> bool:
        with engine.connect() as conn:
            return (
                conn.execute(
                    text(
                        "SELECT next_offset FROM consumer_offsets "
                        "WHERE topic = :t AND partition = 2"
                    ),
                    {"t": project_settings.topic(CHAIN_EVENTS)},
                ).scalar_one_or_none()
                == 3
            )

    run_projector(project_settings, engine, offset_is_3)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT wallet, claimed_total, root_seq, slot, signature FROM claimed_totals")
        ).all()
    assert sorted((bytes(w), int(t), s, sl, sig) for w, t, s, sl, sig in rows) == sorted(
        [(wallet(1), 95, 2, 200, "sig200-0"), (wallet(2), 5, 1, 101, "sig100-1")]
    )


def test_projector_and_rebuild_load_derive_the_same_claims_by_discriminator(
    project_settings: Settings, engine: Engine, database_url: str
) -> None:
    """One SlotBatch through `aop project` and through the rebuild's loader: the same
    claimed_totals rows. The discriminator decides, not the name: the claim's bytes named
    UnknownEvent count, a ChannelStaked's bytes named CumulativeRewardsClaimed do not; a
    claim whose body is cut short goes to the DLQ (projector) and counts nowhere."""
    claims = [(wallet(1), 40, 1), (wallet(2), 9, 1), (wallet(3), 7, 1), (wallet(4), 8, 1)]
    batch = _claim_batch(300, claims)
    _, renamed, misnamed, cut = batch["events"]
    renamed["name"] = "UnknownEvent"
    misnamed["data"] = ChannelStaked(wallet(3), wallet(4), 1, wallet(5), 0, 0, 0).encode()
    cut["data"] = cut["data"][:-1]
    batch["events"].append(_claim_batch(400, [(wallet(1), 44, 2)])["events"][0])
    produce(project_settings, [("SlotBatch", batch)], partition=2, topic=CHAIN_EVENTS)
    expected = sorted([(wallet(1), 44, 2, 400, "sig400-0"), (wallet(2), 9, 1, 301, "sig300-1")])

    def claimed(on: Engine) -> list[tuple[Any, ...]]:
        with on.connect() as conn:
            rows = conn.execute(
                text("SELECT wallet, claimed_total, root_seq, slot, signature FROM claimed_totals")
            ).all()
        return sorted((bytes(w), int(t), s, sl, sig) for w, t, s, sl, sig in rows)

    run_projector(project_settings, engine, lambda: len(claimed(engine)) == 2)
    assert claimed(engine) == expected
    (letter,) = dead_letters(project_settings, 1)
    assert (letter["reason"], letter["source"]) == (
        "undecodable_event",
        f"{project_settings.topic(CHAIN_EVENTS)}/2/0",
    )
    assert letter["detail"].startswith("event sig300-3:0: CumulativeRewardsClaimed: payload")

    loaded_schema = f"{project_settings.database_schema}_load"
    loaded_settings = project_settings.model_copy(update={"database_schema": loaded_schema})
    loaded = engine_for(loaded_settings)
    try:
        upgrade(loaded_settings)
        result = load_schema(loaded_settings, loaded)
        assert result.rejected == []
        assert claimed(loaded) == expected
    finally:
        loaded.dispose()
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{loaded_schema}" CASCADE')


def test_database_error_mid_write_rewinds_to_the_stored_offsets_and_completes(
    project_settings: Settings, engine: Engine
) -> None:
    """The first write fails as if the server went away: the loop pauses, re-reads the
    partition from its stored offset (the root's chunks included) and writes it whole."""
    root = sample(wallets=6, chunk_entries=2)
    produce(project_settings, root.records())
    projector = Projector(project_settings, engine)
    writer = projector._writer
    real_write = writer.write_root
    failures: list[str] = []

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append("boom")
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real_write(*args, **kwargs)

    writer.write_root = failing_once  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=projector.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while stored_offset(engine, project_settings) != 4:
            assert time.monotonic() < deadline, "the projector did not recover"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    assert failures == ["boom"]
    _assert_roots_complete(engine, [root])


# -- crashes (a real `aop project` process, killed) -------------------------------------------


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AOP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "AOP_DATABASE_URL": settings.database_url,
            "AOP_DATABASE_SCHEMA": settings.database_schema,
            "AOP_TOPIC_PREFIX": settings.topic_prefix,
            "AOP_CHAIN_PARTITIONS": str(settings.chain_partitions),
            "AOP_PROJECTION_POLL_TIMEOUT_S": "0.2",
            "AOP_PROJECTION_INSTANCE_ID": "projector-under-test",
            "AOP_METRICS_PORT": "0",
            "AOP_LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    return env


def _spawn(settings: Settings, **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aop.cli", "project"],
        cwd=ROOT_DIR,
        env=_env(settings, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def _assert_roots_complete(engine: Engine, roots: Sequence[SampleRoot]) -> None:
    """Each stored root has exactly its leaves and levels, byte for byte."""
    with engine.connect() as conn:
        for root in roots:
            row = conn.execute(
                text("SELECT root_id, root FROM roots WHERE root_seq = :s"),
                {"s": root.root["root_seq"]},
            ).one()
            assert bytes(row.root) == root.tree.root
            leaves = conn.execute(
                text("SELECT count(*), sum(amount) FROM leaves WHERE root_id = :r"),
                {"r": row.root_id},
            ).one()
            assert (leaves[0], int(leaves[1])) == (root.tree.leaf_count, root.tree.total)
            levels = conn.execute(
                text("SELECT nodes FROM tree_levels WHERE root_id = :r ORDER BY level"),
                {"r": row.root_id},
            ).scalars()
            assert tuple(bytes(b) for b in levels) == root.tree.levels


@pytest.mark.parametrize("crash_at", ["after_copy", "before_commit"])
def test_kill_during_the_write_leaves_no_partial_root_and_restart_completes_it(
    project_settings: Settings, engine: Engine, crash_at: str
) -> None:
    """SIGKILL after the COPY (or just before COMMIT): no row of the root exists, the offset
    did not move; a clean restart writes the whole root."""
    root = sample(wallets=50, chunk_entries=20)
    produce(project_settings, root.records())
    crashing = _spawn(project_settings, AOP_PROJECTION_CRASH_AT=crash_at)
    assert crashing.wait(60) == -signal.SIGKILL
    assert dump(engine) == {table: [] for table in DATA_TABLES}
    assert stored_offset(engine, project_settings) == 0

    clean = _spawn(project_settings)
    try:
        _wait(lambda: stored_offset(engine, project_settings) == 4, 60, "the restarted write")
    finally:
        clean.send_signal(signal.SIGTERM)
        assert clean.wait(30) == 0, clean.stderr.read().decode() if clean.stderr else ""
    _assert_roots_complete(engine, [root])
    assert count(engine, "SELECT count(*) FROM settlement_outbox") == 1


def test_timed_kills_never_leave_a_partial_root(project_settings: Settings, engine: Engine) -> None:
    """kill -9 at staggered moments while roots are being written (just after a root commits,
    so the next one is mid-flight); every restart resumes from the stored offsets, and in the
    end every root is complete and written once.

    The kills are placed by what the projector has done, not by wall time alone, so a fast
    machine cannot finish the whole log before the kills land: each run is killed a jitter
    after its first committed root, and there are more roots than kills."""
    roots = [sample(root_seq=seq, wallets=40_000, chunk_entries=10_000) for seq in range(1, 11)]
    produce(project_settings, [r for root in roots for r in root.records()])
    stored = 0
    interrupted = 0
    for jitter in (0.0, 0.02, 0.05, 0.1):
        process = _spawn(project_settings)
        before = stored
        _wait(
            lambda before=before: count(engine, "SELECT count(*) FROM roots") > before,
            60,
            "progress",
            poll=0.005,
        )
        time.sleep(jitter)
        process.kill()
        assert process.wait(30) == -signal.SIGKILL
        stored = count(engine, "SELECT count(*) FROM roots")
        _assert_roots_complete(engine, [r for r in roots if r.root["root_seq"] <= stored])
        assert stored_offset(engine, project_settings) == 5 * stored
        interrupted += stored < len(roots)
    assert interrupted >= 2  # the kills did interrupt the work, more than once
    final = _spawn(project_settings)
    try:
        _wait(lambda: stored_offset(engine, project_settings) == 5 * len(roots), 120, "all roots")
    finally:
        final.send_signal(signal.SIGTERM)
        final.wait(30)
    _assert_roots_complete(engine, roots)
    assert count(engine, "SELECT count(*) FROM roots") == len(roots)
