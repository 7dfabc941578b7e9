"""Claims answered from roots held in memory (`api.hot_roots`) are the claims Postgres gives.

Every test compares a server that loads a channel's latest root after one claim
(AOP_API_HOT_ROOT_CLAIMS=1) with one that holds none (AOP_API_HOT_ROOTS_BYTES=0): same
bytes, same headers, and what changes after a root is written (claimed totals, newer roots)
is seen at once when the facts are read per claim (AOP_API_FACTS_MAX_AGE_MS=0), and once
they are older than their max age when they are held per channel (`api.hot_facts`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from solders.pubkey import Pubkey
from starlette.applications import Starlette

from aop.api.app import create_app
from aop.api.hot_roots import RECORD
from aop.api.reader import Reader
from aop.projections.db import engine_for, upgrade
from aop.runtime.settings import Settings, load_settings
from tests.integration.test_api import Seed, b58, proof_holds
from tests.support.api_hot import wait_hot_root_loaded
from tests.support.api_sample import write_claimed_total, write_sample_root

HOT = {"AOP_API_HOT_ROOT_CLAIMS": "1"}
PER_CLAIM = {"AOP_API_FACTS_MAX_AGE_MS": "0"}
COLD = {"AOP_API_HOT_ROOTS_BYTES": "0"}


@pytest.fixture
async def apps() -> AsyncIterator[list[Starlette]]:
    """The apps a test builds (their pools are closed afterwards)."""
    built: list[Starlette] = []
    yield built
    for app in built:
        await app.state.db.close()


def _client(
    apps: list[Starlette], settings: Settings, overrides: dict[str, str]
) -> tuple[httpx.AsyncClient, Reader]:
    """A client of an app on `settings`' schema with the `overrides`, and the app's reader."""
    app = create_app(
        load_settings(
            {
                "AOP_DATABASE_URL": settings.database_url,
                "AOP_DATABASE_SCHEMA": settings.database_schema,
                **overrides,
            }
        )
    )
    apps.append(app)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    return client, app.state.reader


async def _warm(client: httpx.AsyncClient, reader: Reader, channel: str, wallet: bytes) -> None:
    """One claim promotes the channel's latest root; wait for it to be in memory."""
    assert (await client.get(f"/v1/channels/{channel}/claims/{b58(wallet)}")).status_code == 200
    await wait_hot_root_loaded(reader.hot_roots)


@pytest.mark.parametrize("facts_max_age_ms", ["0", "250"])
async def test_every_claim_from_memory_equals_the_claim_from_postgres(
    seeded: Seed, apps: list[Starlette], facts_max_age_ms: str
) -> None:
    hot, reader = _client(
        apps, seeded.settings, {**HOT, "AOP_API_FACTS_MAX_AGE_MS": facts_max_age_ms}
    )
    cold, _ = _client(apps, seeded.settings, COLD)
    for channel, roots in seeded.roots.items():
        latest = max(roots)
        await _warm(hot, reader, channel.lower(), next(iter(roots[latest])))
        wallets = {w for amounts in roots.values() for w in amounts} | {b"\x05" * 32}
        for wallet in sorted(wallets):
            url = f"/v1/channels/{channel.lower()}/claims/{b58(wallet)}"
            from_memory, from_sql = await hot.get(url), await cold.get(url)
            assert from_memory.status_code == from_sql.status_code
            assert from_memory.content == from_sql.content
            assert from_memory.headers == from_sql.headers
    assert len(reader.hot_roots) == len(seeded.roots)
    for config in seeded.configs.values():  # cumulative-v2 roots came with their addresses
        held = reader.hot_roots.get(config)
        assert held is not None
        assert len(held.claim_states) == (0 if held.channel_config == seeded.configs["ringy"]
                                          else 32 * len(held.records) // RECORD)  # fmt: skip
    if reader.hot_facts is None:  # facts read per claim
        assert reader._facts.lookups > 1000
    else:  # read per channel: two statements a channel at least, not per claim
        assert reader._facts.lookups == 0
        assert 2 * len(seeded.roots) <= reader.hot_facts.reads < 1000


async def test_claimed_totals_and_newer_roots_are_seen_at_once(
    database_url: str, db_schema: str, apps: list[Starlette]
) -> None:
    settings = load_settings({"AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": db_schema})
    upgrade(settings)
    engine = engine_for(settings)
    program_id, mint = Pubkey.from_string(settings.program_id), Pubkey.from_string(settings.mint)
    payer, leaver = b"\x09" * 32, b"\x08" * 32
    hot, reader = _client(apps, settings, {**HOT, **PER_CLAIM})
    try:
        sample = write_sample_root(
            engine, channel="paid", root_seq=3, amounts={payer: 1000, leaver: 1},
            program_id=program_id, mint=mint,
        )  # fmt: skip
        await _warm(hot, reader, "paid", payer)
        assert len(reader.hot_roots) == 1
        config = sample.root["channel_config"]
        write_claimed_total(engine, channel_config=config, wallet=payer, claimed_total=400,
                            root_seq=3)  # fmt: skip
        claim = (await hot.get(f"/v1/channels/paid/claims/{b58(payer)}")).json()
        assert (claim["claimed_total"], claim["claimable"]) == ("400", "600")

        write_sample_root(
            engine, channel="paid", root_seq=4, amounts={payer: 1500},
            program_id=program_id, mint=mint,
        )  # fmt: skip
        claim = (await hot.get(f"/v1/channels/paid/claims/{b58(payer)}")).json()
        assert (claim["root_seq"], claim["latest_root_seq"], claim["claimable"]) == (4, 4, "1100")
        assert proof_holds(claim, payer, settings.mint)
        await wait_hot_root_loaded(reader.hot_roots)  # that claim promoted root 4 in root 3's place
        held = reader.hot_roots.get(config)
        assert held is not None and held.root_seq == 4 and len(reader.hot_roots) == 1
        old = (await hot.get(f"/v1/channels/paid/claims/{b58(leaver)}")).json()
        assert (old["root_seq"], old["latest_root_seq"]) == (3, 4)
    finally:
        engine.dispose()


async def test_a_root_larger_than_the_budget_stays_in_postgres(
    seeded: Seed, apps: list[Starlette]
) -> None:
    small, reader = _client(apps, seeded.settings, {**HOT, "AOP_API_HOT_ROOTS_BYTES": "1000"})
    wallet = next(iter(seeded.roots["Alpha"][5]))
    await _warm(small, reader, "alpha", wallet)
    assert len(reader.hot_roots) == 0
    claim = (await small.get(f"/v1/channels/alpha/claims/{b58(wallet)}")).json()
    assert proof_holds(claim, wallet, seeded.mint)


async def test_facts_held_per_channel_are_re_read_once_older_than_their_max_age(
    database_url: str, db_schema: str, apps: list[Starlette]
) -> None:
    """Claimed totals (one more in the slot already seen, too) and a newer root reach the
    claims of a hot root once its facts are older than AOP_API_FACTS_MAX_AGE_MS; until then
    claims read nothing."""
    settings = load_settings({"AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": db_schema})
    upgrade(settings)
    engine = engine_for(settings)
    program_id, mint = Pubkey.from_string(settings.program_id), Pubkey.from_string(settings.mint)
    payer, other = b"\x09" * 32, b"\x07" * 32
    hot, reader = _client(apps, settings, {**HOT, "AOP_API_FACTS_MAX_AGE_MS": "1000"})
    max_age_s = 1.05

    async def claim(wallet: bytes) -> dict:
        return (await hot.get(f"/v1/channels/paid/claims/{b58(wallet)}")).json()

    try:
        sample = write_sample_root(
            engine, channel="paid", root_seq=3, amounts={payer: 1000, other: 50},
            program_id=program_id, mint=mint,
        )  # fmt: skip
        config = sample.root["channel_config"]
        await _warm(hot, reader, "paid", payer)
        write_claimed_total(engine, channel_config=config, wallet=payer, claimed_total=400,
                            root_seq=3)  # fmt: skip
        await asyncio.sleep(max_age_s)
        assert reader.hot_facts is not None
        first = await claim(payer)
        assert (first["claimed_total"], first["claimable"], first["root_seq"]) == ("400", "600", 3)
        reads = reader.hot_facts.reads
        assert [(await claim(payer))["claimed_total"] for _ in range(5)] == ["400"] * 5
        assert reader.hot_facts.reads == reads  # within the max age: no statement
        assert reader._batcher.lookups == 1  # the warm-up's: the others came from memory

        # the same slot as the claim already seen (write_claimed_total: slot root_seq*1000+1)
        write_claimed_total(engine, channel_config=config, wallet=other, claimed_total=30,
                            root_seq=3)  # fmt: skip
        await asyncio.sleep(max_age_s)
        later = await claim(other)
        assert (later["claimed_total"], later["claimable"]) == ("30", "20")

        write_sample_root(
            engine, channel="paid", root_seq=4, amounts={payer: 1500},
            program_id=program_id, mint=mint,
        )  # fmt: skip
        await asyncio.sleep(max_age_s)
        newest = await claim(payer)
        assert (newest["root_seq"], newest["latest_root_seq"]) == (4, 4)
        assert (newest["claimed_total"], newest["claimable"]) == ("400", "1100")
        assert proof_holds(newest, payer, settings.mint)
    finally:
        engine.dispose()
