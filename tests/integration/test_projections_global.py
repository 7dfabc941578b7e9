"""`aop project` with global roots (aop.global.roots) on the real broker and database: the
rows equal the tree `core` builds, the leaves keep both V5 parts, the root account is a
'global' channel row, a tampered root is a dead letter, and EpochClosed markers on
aop.epoch.roots write nothing but move the offsets."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, text

from aop.core.claims import TreeScope, get_global_format
from aop.core.fold_output import EpochClosed, leaf_chunks
from aop.core.program_ids import DEFAULT_PROGRAM_ID
from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS
from aop.projections.queries import claim_for
from aop.runtime.settings import Settings
from tests.integration.test_projections import (
    MINT,
    count,
    dead_letters,
    produce,
    run_projector,
)
from tests.unit.core import independent


def wallet(i: int) -> bytes:
    return hashlib.sha256(b"global-%d" % i).digest()


def global_root(
    parts: dict[bytes, tuple[int, int]],
    root_seq: int = 1802,
    epoch: int = 7,
    fmt: str = "global-v5",
) -> tuple[dict[str, Any], tuple[dict[str, Any], ...], Any]:
    """A GlobalRoot record and its LeafChunks (3 entries each) for `parts`."""
    scope = TreeScope(DEFAULT_PROGRAM_ID, MINT, None, root_seq, epoch)
    global_format = get_global_format(fmt)
    tree = global_format.build_from_parts(scope, parts)
    account = str(global_format.root_account(scope))
    chunks = leaf_chunks(tree, account, root_seq)
    record = {
        "channel_config": account,
        "program_id": str(DEFAULT_PROGRAM_ID),
        "mint": str(MINT),
        "format": fmt,
        "epoch": epoch,
        "root_seq": root_seq,
        "root": tree.root,
        "dataset_hash": tree.dataset_hash,
        "leaf_count": tree.leaf_count,
        "total": str(sum(tree.amounts)),
        "base_total": str(sum(tree.base_amounts)),
        "bonus_total": str(sum(tree.bonus_amounts)),
        "emission": "17",
        "chunk_count": len(chunks),
        "closed_at_slot": 9999,
        "sources": [
            {
                "part": "base_yield",
                "channel": "alpha",
                "channel_config": "C" * 43,
                "format": "cumulative-v2",
                "epoch": epoch,
                "root_seq": 3,
                "partition": 2,
                "offset": 40,
                "total": "5",
            }
        ],
        "resume": [{"partition": 0, "first_offset": 5, "last_offset": 4}],
    }
    return record, chunks, tree


def stored(engine: Engine, topic: str, partition: int) -> int:
    """The projector's stored next offset of (topic, partition), 0 before any."""
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT next_offset FROM consumer_offsets WHERE topic = :t AND partition = :p"),
            {"t": topic, "p": partition},
        ).scalar_one_or_none()
    return int(value or 0)


def records_of(record: dict[str, Any], chunks: tuple[dict[str, Any], ...]) -> list[Any]:
    return [("GlobalRoot", record), *(("LeafChunk", c) for c in chunks)]


def test_a_global_v5_root_is_projected_with_both_parts(
    project_settings: Settings, engine: Engine
) -> None:
    parts = {wallet(i): (10 * i + 1, 3 * i) for i in range(7)}
    record, chunks, tree = global_root(parts)
    produce(project_settings, records_of(record, chunks), partition=0, topic=GLOBAL_ROOTS)
    run_projector(
        project_settings, engine, lambda: count(engine, "SELECT count(*) FROM roots") == 1
    )
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM roots")).mappings().one()
        assert (row["channel_config"], row["channel"], row["format"], row["root_seq"]) == (
            record["channel_config"],
            "",
            "global-v5",
            1802,
        )
        assert bytes(row["root"]) == tree.root
        assert row["total"] == Decimal(sum(b + o for b, o in parts.values()))
        assert row["input_offsets"] == []
        leaves = conn.execute(
            text("SELECT wallet, amount, attention_bonus FROM leaves ORDER BY leaf_index")
        ).all()
        assert [(bytes(w), int(a), int(b)) for w, a, b in leaves] == [
            (w, parts[w][0] + parts[w][1], parts[w][1]) for w in sorted(parts)
        ]
        channel = conn.execute(text("SELECT name, scope, subject_id FROM channels")).one()
        assert (channel.name, channel.scope, bytes(channel.subject_id)) == ("", "global", bytes(32))
        outbox = conn.execute(text("SELECT channel, format, status FROM settlement_outbox")).one()
        assert tuple(outbox) == ("", "global-v5", "pending")
    # the stored proof folds to the root with the independent re-statement
    w = sorted(parts)[4]
    with engine.connect() as conn:
        claim = claim_for(conn, channel_config=record["channel_config"], root_seq=1802, wallet=w)
    assert claim is not None
    leaf = independent.global_v5_leaf(bytes(MINT), 1802, w, parts[w][0], parts[w][1])
    assert independent.fold(leaf, list(claim.proof)) == tree.root


def test_a_tampered_global_root_is_a_dead_letter_and_writes_nothing(
    project_settings: Settings, engine: Engine
) -> None:
    record, chunks, _ = global_root({wallet(i): (i + 1, 1) for i in range(4)})
    forged = {**chunks[0], "entries": chunks[0]["entries"][:-8] + (99).to_bytes(8, "little")}
    produce(
        project_settings, records_of(record, (forged, *chunks[1:])), partition=0, topic=GLOBAL_ROOTS
    )
    topic = project_settings.topic(GLOBAL_ROOTS)
    run_projector(project_settings, engine, lambda: stored(engine, topic, 0) == 1 + len(chunks))
    (letter,) = dead_letters(project_settings, 1)
    assert letter["stage"] == "projector"
    assert letter["reason"] in ("total_mismatch", "root_mismatch")
    assert count(engine, "SELECT count(*) FROM roots") == 0


def test_epoch_closed_markers_write_no_rows_and_are_not_dead_letters(
    project_settings: Settings, engine: Engine
) -> None:
    markers = [EpochClosed(1, e, 100 * e, e).record for e in range(3)]
    produce(project_settings, [("EpochClosed", m) for m in markers], partition=1, topic=EPOCH_ROOTS)
    topic = project_settings.topic(EPOCH_ROOTS)
    run_projector(project_settings, engine, lambda: stored(engine, topic, 1) == 3)
    assert count(engine, "SELECT count(*) FROM roots") == 0
    assert dead_letters(project_settings, 0, timeout=1) == []
