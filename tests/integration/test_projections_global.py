"""`aop project` with global roots (aop.global.roots) on the real broker and database: the
rows equal the tree `core` builds, the leaves keep both V5 parts, the root account is a
'global' channel row, a tampered root is a dead letter, and EpochClosed markers on
aop.epoch.roots write nothing but move the offsets."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import httpx
from solders.pubkey import Pubkey
from sqlalchemy import Engine, text

from aop.api.app import create_app
from aop.core.claims import TreeScope, get_global_format
from aop.core.fold_output import EpochClosed, leaf_chunks
from aop.core.pda import claim_state_global_address
from aop.core.program_ids import DEFAULT_PROGRAM_ID
from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS
from aop.projections.claims import ClaimUpdate
from aop.projections.queries import claim_for
from aop.projections.writer import ProjectionWriter
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


# -- the read API over projected global roots -------------------------------------------------


async def api_get(settings: Settings, path: str, **headers: str) -> httpx.Response:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client,
    ):
        return await client.get(path, headers=headers)


def project_root(
    settings: Settings, engine: Engine, parts: dict[bytes, tuple[int, int]], root_seq: int = 1802
) -> tuple[dict[str, Any], Any]:
    record, chunks, tree = global_root(parts, root_seq=root_seq)
    produce(settings, records_of(record, chunks), partition=0, topic=GLOBAL_ROOTS)
    want = count(engine, "SELECT count(*) FROM roots") + 1
    run_projector(settings, engine, lambda: count(engine, "SELECT count(*) FROM roots") == want)
    return record, tree


async def test_the_live_api_claim_shape_serves_the_global_v5_proof(
    project_settings: Settings, engine: Engine
) -> None:
    """GET /v1/claims/{wallet}: the SDKs' fields as JSON numbers, proof hex without 0x; the
    leaf rebuilt with the independent re-statement folds to the root; claimed totals of the
    global root account count; an Authorization header changes nothing."""
    parts = {wallet(i): (1_000 * i + 7, 500 * i) for i in range(5)}
    record, tree = project_root(project_settings, engine, parts)
    target = wallet(4)  # the largest amounts: 4007 + 2000
    index = sorted(parts).index(target)
    ProjectionWriter(engine, consumer="test").apply_claims(
        [ClaimUpdate(project_settings.global_root_account, target, 1_000, 1802, 5, "sig")], []
    )
    plain = await api_get(project_settings, f"/v1/claims/{Pubkey(target)}")
    authorized = await api_get(
        project_settings, f"/v1/claims/{Pubkey(target)}", Authorization="Bearer whatever"
    )
    assert plain.status_code == 200 and authorized.json() == plain.json()
    body = plain.json()
    base, bonus = parts[target]
    assert {k: body[k] for k in ("root_seq", "base_yield", "attention_bonus", "leaf_index")} == {
        "root_seq": 1802,
        "base_yield": base,
        "attention_bonus": bonus,
        "leaf_index": index,
    }
    assert (body["cumulative_total"], body["claimed_total"], body["claimable"]) == (
        base + bonus,
        1_000,
        base + bonus - 1_000,
    )
    assert all(type(body[k]) is int for k in ("root_seq", "base_yield", "attention_bonus"))
    assert all(len(node) == 64 and not node.startswith("0x") for node in body["proof"])
    leaf = independent.global_v5_leaf(bytes(MINT), 1802, target, base, bonus)
    assert body["leaf"] == leaf.hex()
    assert independent.fold(leaf, [bytes.fromhex(n) for n in body["proof"]]) == tree.root
    assert body["claim_state"] == str(
        claim_state_global_address(
            program_id=DEFAULT_PROGRAM_ID, mint=MINT, wallet=Pubkey(target)
        ).address
    )
    assert (body["global_root_config"], body["stale"]) == (record["channel_config"], False)
    text = (await api_get(project_settings, f"/v1/global/claims/{Pubkey(target)}")).json()
    assert (text["base_yield"], text["attention_bonus"], text["claimed_total"]) == (
        str(base),
        str(bonus),
        "1000",
    )


async def test_global_errors_and_listings(project_settings: Settings, engine: Engine) -> None:
    """404 before any global root and for a wallet without a leaf; 422 naming the string
    endpoint for an amount over 2^53 - 1; the global root is not a channel in /v1/channels."""
    stranger = Pubkey(bytes([9]) * 32)
    none_yet = await api_get(project_settings, f"/v1/claims/{stranger}")
    assert (none_yet.status_code, none_yet.json()["error"]["code"]) == (
        404,
        "global_root_not_found",
    )
    big = 2**53
    parts = {wallet(0): (5, 0), wallet(1): (big, 3)}
    project_root(project_settings, engine, parts)
    missing = await api_get(project_settings, f"/v1/claims/{stranger}")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "wallet_not_found")
    unsafe = await api_get(project_settings, f"/v1/claims/{Pubkey(wallet(1))}")
    assert unsafe.status_code == 422
    error = unsafe.json()["error"]
    assert error["code"] == "unsafe_integer"
    assert (
        f"base_yield={big}" in error["message"]
        and f"cumulative_total={big + 3}" in error["message"]
    )
    assert f"/v1/global/claims/{Pubkey(wallet(1))}" in error["message"]
    as_text = (await api_get(project_settings, f"/v1/global/claims/{Pubkey(wallet(1))}")).json()
    assert as_text["base_yield"] == str(big)
    channels = (await api_get(project_settings, "/v1/channels")).json()
    assert channels["channels"] == []
    detail = (await api_get(project_settings, "/v1/global")).json()
    assert (detail["format"], detail["latest_root_seq"]) == ("global-v5", 1802)


async def test_the_global_v5_dataset_rebuilds_root_and_dataset_hash(
    project_settings: Settings, engine: Engine
) -> None:
    parts = {wallet(i): (i + 1, 2 * i) for i in range(9)}
    _, tree = project_root(project_settings, engine, parts)
    root = (await api_get(project_settings, "/v1/global/roots/1802")).json()
    binary = await api_get(project_settings, root["dataset_url"] + "?format=binary")
    assert binary.content == tree.dataset
    assert independent.keccak(binary.content) == tree.dataset_hash
    entries = (await api_get(project_settings, root["dataset_url"])).json()
    w = sorted(parts)[4]
    assert entries[4] == {
        "index": 4,
        "wallet": str(Pubkey(w)),
        "amount": str(sum(parts[w])),
        "base_yield": str(parts[w][0]),
        "attention_bonus": str(parts[w][1]),
    }
