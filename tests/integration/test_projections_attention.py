"""`aop project` with attention roots (AttentionRoot on aop.epoch.roots) on the real broker
and database: stored under scope 'attention' with their own root account, the legacy ring-v0
epochs' leaves (a wallet with two users' claims included) verified and stored, no settlement
outbox row, the markers write nothing, a redelivery changes nothing, and the read API's
channel routes do not serve them."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import Engine, text

from aop.api.app import create_app
from aop.core.attention.policy import AttentionPolicy
from aop.core.fold import ReferenceFold
from aop.core.fold_output import RootOutput
from aop.runtime.settings import Settings
from tests.integration.test_projections import count, produce, run_projector
from tests.support.fold_logs import key
from tests.support.signal_logs import HOUR0, SignalLogWriter, attention_config_for, binding, signal

T = HOUR0 * 1000
SHARED = key("shared")


def _roots(fmt: str) -> tuple[list[RootOutput], list[tuple[str, dict]]]:  # type: ignore[type-arg]
    """Epochs H and H+3600 of "lofigirl": alice and bob bound to the same wallet (two claims,
    one wallet), carol to her own; the records the fold writes, markers included."""
    config = attention_config_for(
        ["lofigirl"],
        partitions=1,
        formats={"lofigirl": fmt},
        policies={"lofigirl": AttentionPolicy()},
    )
    log = SignalLogWriter()
    log.batch(
        0,
        T,
        bindings=[
            binding("b1", "alice", SHARED, T - 10),
            binding("b2", "bob", SHARED, T - 9),
            binding("b3", "carol", key("carol"), T - 8),
        ],
    )
    log.batch(
        0,
        T + 1000,
        [
            signal("s1", "lofigirl", "alice", "presence", 1, T + 100),
            signal("s2", "lofigirl", "bob", "sub", 1, T + 200),
            signal("s3", "lofigirl", "carol", "bits", 300, T + 300),
        ],
    )
    log.batch(0, T + 3_600_000, [signal("s4", "lofigirl", "carol", "raid", 2, T + 3_600_500)])
    log.batch(0, T + 7_200_000)
    fold = ReferenceFold(config)
    roots: list[RootOutput] = []
    records: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    for p, o, b in log.records:
        result = fold.feed_signals(p, o, b)
        for root in result.roots:
            roots.append(root)
            records.append((root.record_type, root.epoch_root))
            records += [("LeafChunk", c) for c in root.chunks]
        if result.attention_closed is not None:
            records.append(("AttentionClosed", result.attention_closed.record))
    return roots, records


def test_legacy_attention_roots_are_stored_under_their_own_scope(
    project_settings: Settings, engine: Engine
) -> None:
    roots, records = _roots("ring-v0-legacy")
    assert [r.epoch for r in roots] == [HOUR0, HOUR0 + 3600]
    produce(project_settings, records, partition=0)
    run_projector(
        project_settings, engine, lambda: count(engine, "SELECT count(*) FROM roots") == 2
    )
    first = roots[0].epoch_root
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM roots ORDER BY root_seq")).mappings().all()
        assert [(r["epoch"], r["root_seq"], r["format"]) for r in rows] == [
            (HOUR0, 1, "ring-v0-legacy"),
            (HOUR0 + 3600, 2, "ring-v0-legacy"),
        ]
        assert bytes(rows[0]["root"]) == first["root"]
        assert (rows[0]["closed_at_slot"], rows[0]["closed_at_ms"]) == (0, T + 3_600_000)
        assert rows[0]["input_offsets"] == first["input"]
        assert rows[0]["channel_config"] == first["channel_config"]
        channel = conn.execute(text("SELECT name, scope, channel_config FROM channels")).one()
        assert tuple(channel) == ("lofigirl", "attention", first["channel_config"])
        # epoch H: bob (first seen T+200... after alice at T+100): alice 0, bob 1, carol 2;
        # alice and bob share a wallet
        leaves = conn.execute(
            text(
                "SELECT l.wallet, l.amount FROM leaves l JOIN roots r USING (root_id) "
                "WHERE r.root_seq = 1 ORDER BY l.leaf_index"
            )
        ).all()
        assert [(bytes(w), int(a)) for w, a in leaves] == [
            (SHARED, 80 * 10**9),
            (SHARED, 800 * 10**9),
            (key("carol"), 240 * 10**9),
        ]
        assert count(engine, "SELECT count(*) FROM settlement_outbox") == 0
        assert rows[1]["total"] == Decimal(16 * 10**9)
    # a redelivery is a duplicate: nothing changes
    produce(project_settings, records, partition=0)
    run_projector(
        project_settings,
        engine,
        lambda: (
            count(
                engine,
                "SELECT next_offset FROM consumer_offsets WHERE partition = 0 AND topic LIKE "
                "'%aop.epoch.roots'",
            )
            == 2 * len(records)
        ),
    )
    assert count(engine, "SELECT count(*) FROM roots") == 2


async def test_the_api_channel_routes_do_not_serve_attention_roots(
    project_settings: Settings, engine: Engine
) -> None:
    _, records = _roots("cumulative-v2")
    produce(project_settings, records, partition=0)
    run_projector(
        project_settings, engine, lambda: count(engine, "SELECT count(*) FROM roots") == 2
    )
    app = create_app(project_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            listed = (await client.get("/v1/channels")).json()
            assert listed["channels"] == []
            assert (await client.get("/v1/channels/lofigirl")).status_code == 404
