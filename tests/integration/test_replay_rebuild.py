"""`aop rebuild` on the real broker and database: a lost or damaged schema comes back with
identical rows; an intact one is switched keeping root ids; a rebuild that does not match the
fold is refused; settlement state comes from the old schema or from aop.settlement."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer
from psycopg import sql
from sqlalchemy import Engine, text

from aop.core.fold import fold_log
from aop.core.fold_output import RootOutput
from aop.log.avro import AvroCodec
from aop.log.kafka import EPOCH_ROOTS, SETTLEMENT, producer_config
from aop.runtime.settings import Settings, load_settings
from aop.streams.fold.config import fold_config
from tests.conftest import libpq_url
from tests.integration import test_replay as base
from tests.support.fold_logs import key, random_log
from tests.support.sample_roots import build_sample_root

AopRunner = base.AopRunner
execute = base.execute
produce_log = base.produce_log
project = base.project
# the fixtures of test_replay (pytest finds them in this module's namespace)
replay_env = base.replay_env
settings = base.settings
engine = base.engine
aop = base.aop


Dump = dict[str, list[tuple[Any, ...]]]

#: every row that carries meaning; root_id (a surrogate key) is replaced by the root's key and
#: the timestamps the database sets on insert are left out.
DUMP_SQL = {
    "channels": "SELECT channel_config, name, subject_id, format, program_id, mint, "
    "latest_root_seq, latest_epoch FROM channels",
    "roots": "SELECT channel_config, root_seq, channel, epoch, format, program_id, mint, root, "
    "dataset_hash, leaf_count, tree_depth, total, emission, closed_at_slot, input_offsets, "
    "source_partition, source_offset FROM roots",
    "leaves": "SELECT r.channel_config, r.root_seq, l.leaf_index, l.wallet, l.amount "
    "FROM leaves l JOIN roots r USING (root_id)",
    "tree_levels": "SELECT r.channel_config, r.root_seq, t.level, t.node_count, t.nodes "
    "FROM tree_levels t JOIN roots r USING (root_id)",
    "claimed_totals": "SELECT channel_config, wallet, claimed_total, root_seq, slot, signature "
    "FROM claimed_totals",
    "settlement_outbox": "SELECT * FROM settlement_outbox",
    "settlement_attempts": "SELECT * FROM settlement_attempts",
    "consumer_offsets": "SELECT consumer, topic, partition, next_offset FROM consumer_offsets",
}


def dump(engine: Engine) -> Dump:
    with engine.connect() as conn:
        return {
            table: sorted((tuple(row) for row in conn.execute(text(query))), key=repr)
            for table, query in DUMP_SQL.items()
        }


@pytest.fixture
def schemas_left(database_url: str, db_schema: str) -> Iterator[None]:
    """Drops the `<schema>_rb_*` / `<schema>_old_*` schemas a rebuild leaves behind."""
    yield
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        names = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (db_schema + r"\_%",)
        ).fetchall()
        for (name,) in names:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def live_run(settings: Settings, engine: Engine) -> list[RootOutput]:
    """A random multi-channel log with claims, its roots projected, settlement on root 1."""
    config = fold_config(settings)
    batches = random_log(config, seed=3, batches=16, events_per_batch=10, slots_per_batch=25)
    stored = produce_log(settings, batches, transactional=True)
    roots = fold_log(stored, config)
    project(settings, engine, roots, stored)
    first = roots[0]
    execute(
        engine,
        "UPDATE settlement_outbox SET status = 'published', signature = 'sig1', slot = 77, "
        "attempts = 1 WHERE channel_config = :c AND root_seq = :s",
        c=first.key.decode(),
        s=first.root_seq,
    )
    for outcome in ("intent", "published"):
        execute(
            engine,
            "INSERT INTO settlement_attempts (channel_config, root_seq, outcome, signature, "
            "slot, emitted) VALUES (:c, :s, :o, 'sig1', 77, true)",
            c=first.key.decode(),
            s=first.root_seq,
            o=outcome,
        )
    return roots


def test_rebuild_after_dropping_the_root_tables_restores_identical_rows(
    settings: Settings,
    engine: Engine,
    live_run: list[RootOutput],
    aop: AopRunner,
    schemas_left: None,
) -> None:
    """roots, leaves and tree_levels dropped: the old schema is damaged, the rebuilt one
    verifies against the fold and is switched in; every table's rows equal the dump taken
    before the loss (settlement state copied from the old schema)."""
    before = dump(engine)
    assert len(before["roots"]) == len(live_run)
    assert before["claimed_totals"], "the log must hold claims"
    execute(engine, "DROP TABLE roots, leaves, tree_levels CASCADE")

    code, out = aop("rebuild", "--json")
    report = json.loads(out)
    assert code == 0, report["reason"]
    assert report["decision"] == "switched"
    assert report["old_state"].startswith("damaged (roots: ")
    assert report["settlement_source"] == "old"
    assert report["verification"]["roots_checked"] == len(live_run)
    assert report["verification"]["mismatches"] == 0
    assert report["loads"][0]["written"] == len(live_run)
    assert report["old_schema"] == f"{settings.database_schema}_old_{report['build_schema'][-14:]}"
    assert dump(engine) == before


def test_rebuild_of_an_intact_schema_switches_keeping_root_ids_for_open_readers(
    settings: Settings,
    engine: Engine,
    live_run: list[RootOutput],
    aop: AopRunner,
    database_url: str,
    schemas_left: None,
) -> None:
    """Every table digest is identical; a reader session opened before the switch (with a
    prepared statement) reads the new tables afterwards, with the same root ids."""
    options = f'-c search_path="{settings.database_schema}"'
    query = "SELECT root_id, channel_config, root_seq FROM roots ORDER BY root_id"
    with psycopg.connect(libpq_url(database_url), options=options, autocommit=True) as reader:
        ids_before = reader.execute(query, prepare=True).fetchall()
        table_before = reader.execute("SELECT 'roots'::regclass::oid").fetchone()
        before = dump(engine)

        code, out = aop("rebuild", "--json")
        report = json.loads(out)
        assert code == 0, report["reason"]
        assert report["old_state"] == "intact"
        assert report["old_differs"] == []
        differing = [
            t for t, d in report["tables"].items() if d["old"]["digest"] != d["new"]["digest"]
        ]
        assert differing == ["settlement_outbox", "settlement_attempts"]  # copied at the switch

        assert reader.execute(query, prepare=True).fetchall() == ids_before
        assert reader.execute("SELECT 'roots'::regclass::oid").fetchone() != table_before
    assert dump(engine) == before
    with engine.connect() as conn:
        next_id = conn.execute(
            text("SELECT nextval(pg_get_serial_sequence('roots', 'root_id'))")
        ).scalar_one()
    assert next_id == max(i for i, _, _ in ids_before) + 1


def test_rebuild_refuses_a_log_root_the_fold_does_not_produce(
    settings: Settings,
    engine: Engine,
    live_run: list[RootOutput],
    aop: AopRunner,
    schemas_left: None,
) -> None:
    """A valid tree for alpha root_seq 99 sits on aop.epoch.roots (and was projected): the
    rebuilt schema holds it, the fold does not produce it: refused, exit 1, nothing switched."""
    sample = build_sample_root(
        channel="alpha",
        root_seq=99,
        epoch=50,
        amounts={key("w1"): 5, key("w2"): 7},
        program_id=fold_config(settings).program_id,
        mint=fold_config(settings).mint,
        emission=12,
    )
    codec = AvroCodec()
    producer = Producer(producer_config(settings))
    partition = next(r.partition for r in live_run if r.channel == "alpha")
    for record_type, value in sample.records():
        producer.produce(
            settings.topic(EPOCH_ROOTS),
            codec.encode(record_type, value),
            key=value["channel_config"].encode(),
            partition=partition,
        )
    assert producer.flush(10) == 0
    project(settings, engine, [*live_run, live_run[0]])
    before = dump(engine)

    code, out = aop("rebuild", "--json")
    report = json.loads(out)
    assert code == 1
    assert report["decision"] == "refused"
    assert report["reason"] == "the rebuilt schema does not match the fold's replay"
    failed = [
        (c["channel"], r["root_seq"], r["status"])
        for c in report["verification"]["channels"]
        for r in c["roots"]
        if r["failed"]
    ]
    assert failed == [("alpha", 99, "not_replayed")]
    assert report["old_schema"] is None
    assert dump(engine) == before

    code, out = aop("rebuild", "--no-switch")
    assert code == 1
    assert out.splitlines()[-1].startswith(
        f"REFUSED: the rebuilt schema does not match the fold's replay; "
        f"{settings.database_schema} is unchanged"
    )


def test_rebuild_of_a_lost_schema_takes_settlement_state_from_the_log(
    settings: Settings,
    engine: Engine,
    live_run: list[RootOutput],
    aop: AopRunner,
    schemas_left: None,
) -> None:
    """The whole schema dropped: roots come back from the log, and the final settlement
    result on aop.settlement marks root 1 published with its signature and slot."""
    first = live_run[0]
    result = {
        "channel": first.channel,
        "channel_config": first.key.decode(),
        "root_seq": first.root_seq,
        "root": first.tree.root,
        "outcome": "PUBLISHED",
        "signature": "sig-from-log",
        "slot": 4242,
        "attempts": 1,
        "detail": None,
    }
    producer = Producer(producer_config(settings))
    producer.produce(
        settings.topic(SETTLEMENT), AvroCodec().encode("SettlementResult", result), key=b"k"
    )
    assert producer.flush(10) == 0
    roots_before = dump(engine)["roots"]
    execute(engine, f'DROP SCHEMA "{settings.database_schema}" CASCADE')

    code, out = aop("rebuild")
    assert code == 0, out
    assert out.splitlines()[-1].startswith(
        f"SWITCHED: {settings.database_schema} is now the rebuilt schema (verified)"
    )
    after = dump(engine)
    assert after["roots"] == roots_before
    published = [r for r in after["settlement_outbox"] if r[5] != "pending"]
    assert [(r[0], r[1], r[5], r[6], r[7], r[8]) for r in published] == [
        (first.key.decode(), first.root_seq, "published", "sig-from-log", 4242, 1)
    ]
    assert [(r[1], r[2], r[4], r[5], r[6], r[12]) for r in after["settlement_attempts"]] == [
        (first.key.decode(), first.root_seq, "published", "sig-from-log", 4242, True)
    ]


def _pruned_seqs(engine: Engine) -> dict[str, list[int]]:
    """channel_config -> root_seqs flagged proofs_pruned (with no leaf or level left)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.channel_config, r.root_seq, r.proofs_pruned, "
                "EXISTS (SELECT 1 FROM leaves l WHERE l.root_id = r.root_id) "
                "OR EXISTS (SELECT 1 FROM tree_levels t WHERE t.root_id = r.root_id) "
                "FROM roots r ORDER BY 1, 2"
            )
        ).all()
    out: dict[str, list[int]] = {}
    for config, seq, pruned, has_rows in rows:
        assert pruned != has_rows, (config, seq)  # flagged exactly when its rows are gone
        out.setdefault(str(config), [])
        if pruned:
            out[str(config)].append(int(seq))
    return out


def test_rebuild_with_proof_retention_equals_live_and_a_larger_k_restores_proofs(
    replay_env: dict[str, str],
    settings: Settings,
    engine: Engine,
    aop: AopRunner,
    monkeypatch: pytest.MonkeyPatch,
    schemas_left: None,
) -> None:
    """Live projector and rebuild with AOP_PROOF_ROOTS_KEPT=2: every root verifies (pruned
    ones on their fields), the old schema is consistent, the rows are identical. A rebuild
    with K=10 then brings every root's proofs back and still finds the old one consistent."""
    kept = {**replay_env, "AOP_PROOF_ROOTS_KEPT": "2"}
    live = load_settings(kept)
    config = fold_config(live)
    batches = random_log(config, seed=3, batches=16, events_per_batch=10, slots_per_batch=25)
    stored = produce_log(live, batches, transactional=True)
    roots = fold_log(stored, config)
    project(live, engine, roots, stored)
    by_account: dict[str, list[int]] = {}
    for root in roots:
        by_account.setdefault(root.key.decode(), []).append(root.root_seq)
    expected = {k: sorted(seqs)[:-2] for k, seqs in by_account.items()}
    assert sum(map(len, expected.values())) >= 3, "the log must give some accounts > 2 roots"
    assert _pruned_seqs(engine) == expected
    before = dump(engine)

    monkeypatch.setenv("AOP_PROOF_ROOTS_KEPT", "2")
    code, out = aop("rebuild", "--json")
    report = json.loads(out)
    assert code == 0, report["reason"]
    assert (report["decision"], report["old_state"], report["old_differs"]) == (
        "switched",
        "intact",
        [],
    )
    checked = [r for c in report["verification"]["channels"] for r in c["roots"]]
    assert len(checked) == len(roots) and report["verification"]["mismatches"] == 0
    assert sorted(r["root_seq"] for r in checked if r["proofs_pruned"]) == sorted(
        s for seqs in expected.values() for s in seqs
    )
    differing = [t for t, d in report["tables"].items() if d["old"]["digest"] != d["new"]["digest"]]
    assert differing == []  # no settlement state in this run: nothing copied differs
    assert dump(engine) == before
    assert _pruned_seqs(engine) == expected

    monkeypatch.setenv("AOP_PROOF_ROOTS_KEPT", "10")
    code, out = aop("rebuild", "--json")
    report = json.loads(out)
    assert code == 0, report["reason"]
    assert (report["decision"], report["old_differs"]) == ("switched", [])
    assert _pruned_seqs(engine) == {k: [] for k in by_account}
    restored = dump(engine)
    assert restored["roots"] == before["roots"]
    assert len(restored["leaves"]) == sum(r.tree.leaf_count for r in roots)
