"""The read API over roots whose proofs were pruned (`projections.retention`): 410 Gone for a
proof or a dataset of a pruned root, naming the account and root_seq; kept roots answer as
before, their proofs checked with the independent verifier of `test_api`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import httpx
import pytest
from solders.pubkey import Pubkey
from sqlalchemy import text
from starlette.applications import Starlette

from aop.api.app import create_app
from aop.api.hot_roots import HotRoots
from aop.api.openapi import openapi_document
from aop.api.routes import OPERATIONS
from aop.projections.db import engine_for, upgrade
from aop.runtime.settings import Settings, load_settings
from tests.integration.test_api import assert_error, b58, proof_holds
from tests.support.api_sample import random_amounts, write_sample_root

K = 2


@pytest.fixture
async def apps() -> AsyncIterator[list[Starlette]]:
    built: list[Starlette] = []
    yield built
    for app in built:
        await app.state.db.close()


def _client(apps: list[Starlette], settings: Settings) -> httpx.AsyncClient:
    app = create_app(settings)
    apps.append(app)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


async def test_pruned_root_answers_410_and_kept_roots_verify(
    database_url: str, db_schema: str, apps: list[Starlette]
) -> None:
    """Roots 1..4 with K = 2: roots 1 and 2 keep their row (GET the root: 200) but their
    proofs and datasets answer 410 naming the channel and root_seq and pointing at root 4;
    roots 3 and 4 give proofs that verify; a wallet only in root 1 has no claim left (404).
    A root whose facts the API cached while it was kept answers 410 once pruned."""
    settings = load_settings({"AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": db_schema})
    upgrade(settings)
    engine = engine_for(settings)
    program_id, mint = Pubkey.from_string(settings.program_id), Pubkey.from_string(settings.mint)
    rng = random.Random(22)
    base = random_amounts(37, rng, high=10**9)
    only_in_first = rng.randbytes(32)
    client = _client(apps, settings)

    def write(root_seq: int) -> str:
        amounts = {w: a * root_seq for w, a in base.items()}
        if root_seq == 1:
            amounts[only_in_first] = 5
        sample = write_sample_root(
            engine, channel="Alpha", root_seq=root_seq, amounts=amounts, program_id=program_id,
            mint=mint, proof_roots_kept=K,
        )  # fmt: skip
        return str(sample.root["channel_config"])

    wallet = sorted(base)[7]
    try:
        for root_seq in (1, 2, 3):
            config = write(root_seq)
        # root 2 is kept now: its proof and dataset answer, and the API caches its facts
        kept_then = await client.get(f"/v1/channels/alpha/roots/2/claims/{b58(wallet)}")
        assert kept_then.status_code == 200, kept_then.text
        dataset_then = await client.get(f"/v1/roots/{config}/2/dataset")
        assert dataset_then.status_code == 200
        write(4)  # prunes root 2 (root 1 went with root 3)
        with engine.connect() as conn:
            flags = conn.execute(
                text("SELECT root_seq, proofs_pruned FROM roots ORDER BY root_seq")
            ).all()
        assert [tuple(row) for row in flags] == [(1, True), (2, True), (3, False), (4, False)]

        for root_seq in (1, 2):
            proof = await client.get(f"/v1/channels/alpha/roots/{root_seq}/claims/{b58(wallet)}")
            error = assert_error(proof, 410, "proofs_pruned")
            assert f"root_seq {root_seq} of channel 'Alpha' ({config})" in error["message"]
            assert "newest root, root_seq 4" in error["message"]
            assert f"GET /v1/channels/{config}/claims/{{wallet}}" in error["message"]
            dataset = await client.get(f"/v1/roots/{config}/{root_seq}/dataset")
            assert assert_error(dataset, 410, "proofs_pruned") == error
            binary = await client.get(f"/v1/roots/{config}/{root_seq}/dataset?format=binary")
            assert binary.status_code == 410
            detail = await client.get(f"/v1/channels/alpha/roots/{root_seq}")
            assert detail.status_code == 200
            assert detail.json()["leaf_count"] == len(base) + (root_seq == 1)
        # a client holding the dataset's ETag gets 410 too, not 304: the dataset is gone
        revalidate = await client.get(
            f"/v1/roots/{config}/2/dataset",
            headers={"If-None-Match": dataset_then.headers["etag"]},
        )
        assert revalidate.status_code == 410
        # a wallet only in a pruned root: not in any root holding proofs
        gone_wallet = await client.get(f"/v1/channels/alpha/roots/1/claims/{b58(only_in_first)}")
        assert_error(gone_wallet, 410, "proofs_pruned")
        assert_error(
            await client.get(f"/v1/channels/alpha/claims/{b58(only_in_first)}"),
            404,
            "wallet_not_found",
        )

        for root_seq in (3, 4):
            kept = await client.get(f"/v1/channels/alpha/roots/{root_seq}/claims/{b58(wallet)}")
            assert kept.status_code == 200, kept.text
            claim = kept.json()
            assert int(claim["cumulative_total"]) == base[wallet] * root_seq
            assert proof_holds(claim, wallet, settings.mint)
        newest = (await client.get(f"/v1/channels/alpha/claims/{b58(wallet)}")).json()
        assert (newest["root_seq"], newest["latest_root_seq"]) == (4, 4)
        assert proof_holds(newest, wallet, settings.mint)
    finally:
        engine.dispose()


async def test_hot_roots_never_load_a_pruned_root(
    database_url: str, db_schema: str, apps: list[Starlette]
) -> None:
    """A load asked for a root pruned meanwhile reads no meta row and holds nothing."""
    settings = load_settings({"AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": db_schema})
    upgrade(settings)
    engine = engine_for(settings)
    program_id, mint = Pubkey.from_string(settings.program_id), Pubkey.from_string(settings.mint)
    amounts = random_amounts(9, random.Random(5))
    app = create_app(settings)
    apps.append(app)
    try:
        for root_seq in (1, 2):
            sample = write_sample_root(
                engine, channel="hot", root_seq=root_seq, amounts=amounts,
                program_id=program_id, mint=mint, proof_roots_kept=1,
            )  # fmt: skip
        config = sample.root["channel_config"]
        with engine.connect() as conn:
            ids = dict(
                conn.execute(text("SELECT root_seq, root_id FROM roots ORDER BY root_seq")).all()
            )
        hot = HotRoots(app.state.db, max_bytes=1 << 24, promote_after=1)
        try:
            assert await hot._fetch(config, ids[1], None) is None
            newest = await hot._fetch(config, ids[2], None)
            assert newest is not None and newest.root_seq == 2
        finally:
            hot.close()
    finally:
        engine.dispose()


def test_openapi_lists_the_410_of_proof_and_dataset_endpoints() -> None:
    """The endpoints that read a given root's leaves or levels declare 410; no other does."""
    document = openapi_document(OPERATIONS)
    with_gone = sorted(
        path
        for path, methods in document["paths"].items()
        for operation in methods.values()
        if "410" in operation["responses"]
    )
    assert with_gone == [
        "/v1/channels/{channel}/roots/{root_seq}/claims/{wallet}",
        "/v1/roots/{channel}/{root_seq}/dataset",
    ]
