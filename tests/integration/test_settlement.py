"""`aop settle` against the simulated chain (real RPC, real program rules) and real Postgres."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solders.keypair import Keypair
from solders.message import Message, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction
from sqlalchemy import Engine, text

from aop.core.accounts import ChannelConfigV2, ChannelState, RootEntry
from aop.core.claims.cumulative_v2 import (
    claim_cumulative_instruction,
    publish_cumulative_root_instruction,
)
from aop.core.pda import associated_token_address
from aop.log.avro import AvroCodec
from aop.log.kafka import SETTLEMENT, consumer_config, ensure_topics
from aop.projections.dataset import decode_root
from aop.projections.db import engine_for, upgrade
from aop.projections.queries import claim_for
from aop.projections.writer import OffsetUpdate, ProjectionWriter
from aop.runtime.settings import Settings
from aop.settlement import metrics
from aop.settlement.outbox import SettlementStore
from aop.settlement.rpc import SettlementRpc, SolanaRpc
from aop.settlement.settler import Settler
from aop.simchain import SimChainServer, SimConfig
from tests.integration.test_projections import ROOT_DIR, produce, run_projector
from tests.support.sample_roots import SampleRoot, build_sample_root

CHANNEL = "twitch:alpha"
OTHER = "youtube:beta"
SIM = SimConfig(
    seed=11,
    slot_ms=10,
    rate=0,
    workload=False,
    finality_depth=3,
    confirmation_depth=1,
    wallets=6,
    channels=(CHANNEL, OTHER),
    claim_channels=(),
)
SettingsFactory = Callable[..., Settings]


#: 50 ms slots: a blockhash lives 150 slots = 7.5 s, longer than a process restart.
SLOW_SIM = dataclasses.replace(SIM, slot_ms=50)


@pytest.fixture
def sim_config() -> SimConfig:
    return SIM


@pytest.fixture
async def sim(sim_config: SimConfig) -> AsyncIterator[SimChainServer]:
    async with SimChainServer(sim_config).serve() as server:
        yield server


@pytest.fixture
async def client(sim: SimChainServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(sim.http_url, timeout=10) as rpc:
        yield rpc


@pytest.fixture
def keypair_file(sim: SimChainServer, tmp_path: Path) -> Path:
    path = tmp_path / "publisher.json"
    path.write_text(json.dumps(list(bytes(sim.chain.keys.publisher))))
    path.chmod(0o600)
    return path


@pytest.fixture
def settle_env(sim: SimChainServer, keypair_file: Path) -> dict[str, str]:
    return {
        "AOP_RPC_URL": sim.http_url,
        "AOP_PROGRAM_ID": str(sim.chain.program_id),
        "AOP_MINT": str(sim.chain.mint),
        "AOP_PUBLISHER_KEYPAIR": str(keypair_file),
        "AOP_COMMITMENT": "finalized",
        "AOP_AUTO_PUBLISH": "true",
        # these tests publish channel roots (programs v0.2.2 and v0.2.1-clean)
        "AOP_SETTLEMENT_TARGET": "channel",
        "AOP_SETTLEMENT_BACKOFF_INITIAL_MS": "20",
        "AOP_SETTLEMENT_BACKOFF_MAX_MS": "200",
        "AOP_SETTLEMENT_CONFIRM_POLL_S": "0.05",
        "AOP_SETTLEMENT_POLL_INTERVAL_S": "0.1",
        "AOP_SETTLEMENT_RPC_TIMEOUT_S": "5",
    }


@pytest.fixture
def settings(settings_factory: SettingsFactory, settle_env: dict[str, str]) -> Settings:
    settings = settings_factory(settle_env)
    upgrade(settings)
    ensure_topics(settings)
    return settings


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = engine_for(settings)
    yield engine
    engine.dispose()


def roots_for(
    sim: SimChainServer,
    seqs: Sequence[int],
    *,
    channel: str = CHANNEL,
    format_name: str = "cumulative-v2",
) -> list[SampleRoot]:
    out = []
    for seq in seqs:
        amounts = {
            bytes(sim.chain.keys.wallet(i).pubkey()): (i + 1) * 1_000_000 * seq for i in range(4)
        }
        out.append(
            build_sample_root(
                channel=channel,
                root_seq=seq,
                epoch=20 + seq,
                amounts=amounts,
                program_id=sim.chain.program_id,
                mint=sim.chain.mint,
                format_name=format_name,
            )
        )
    return out


def store_roots(engine: Engine, roots: Sequence[SampleRoot]) -> None:
    """Write verified roots (and their outbox rows) as the projector does."""
    writer = ProjectionWriter(engine, consumer="test")
    offset = writer.load_offsets("test", [0])[0]
    for root in roots:
        decoded = decode_root(root.root, [c["entries"] for c in root.chunks])
        writer.write_root(
            decoded,
            source_partition=0,
            source_offset=offset,
            offsets=[OffsetUpdate("test", 0, offset, offset + 1)],
        )
        offset += 1


async def settle_once(settings: Settings, rpc: SettlementRpc | None = None) -> None:
    store = await SettlementStore.open(settings)
    real = SolanaRpc(settings.rpc_url, commitment=settings.commitment, timeout=5)
    from confluent_kafka import Producer

    from aop.log.kafka import producer_config

    producer = Producer(producer_config(settings))
    keypair = Keypair.from_bytes(
        bytes(json.loads(Path(str(settings.publisher_keypair)).read_text()))
    )
    settler = Settler(settings, store, rpc or real, keypair, producer=producer)
    try:
        await asyncio.wait_for(settler.run_once(), 60)
    finally:
        await real.close()
        await store.close()


def outbox(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT channel, root_seq, status, attempts, signature IS NOT NULL "
                    "FROM settlement_outbox ORDER BY channel, root_seq"
                )
            )
        ]


def attempts(engine: Engine, root_seq: int | None = None) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT outcome FROM settlement_attempts WHERE CAST(:seq AS bigint) IS NULL "
                "OR root_seq = :seq "
                "ORDER BY attempt_id"
            ),
            {"seq": root_seq},
        )
        return [row[0] for row in rows]


async def account(client: AsyncClient, address: Pubkey) -> bytes | None:
    value = (await client.get_account_info(address, commitment="finalized")).value
    return None if value is None else bytes(value.data)


async def transactions_touching(client: AsyncClient, address: Pubkey) -> list[str]:
    sigs = (await client.get_signatures_for_address(address, commitment="confirmed")).value
    return [str(s.signature) for s in sigs]


def settlement_results(settings: Settings, want: int, timeout: float = 15) -> list[dict[str, Any]]:
    codec = AvroCodec()
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}results"))
    consumer.assign([TopicPartition(settings.topic(SETTLEMENT), 0, 0)])
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for message in consumer.consume(10, timeout=0.5):
            got.append(codec.decode_as("SettlementResult", message.value()))
    consumer.close()
    return got


async def publish_directly(
    sim: SimChainServer, client: AsyncClient, root_seq: int, root: bytes, dataset_hash: bytes
) -> str:
    """Publish as the protocol's publisher without the pipeline (someone else did it)."""
    publisher = sim.chain.keys.publisher
    ix = publish_cumulative_root_instruction(
        program_id=sim.chain.program_id,
        mint=sim.chain.mint,
        payer=publisher.pubkey(),
        channel=CHANNEL,
        root_seq=root_seq,
        root=root,
        dataset_hash=dataset_hash,
    )
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = Transaction(
        [publisher], Message.new_with_blockhash([ix], publisher.pubkey(), blockhash), blockhash
    )
    signature = (await client.send_transaction(VersionedTransaction.from_legacy(tx))).value
    await wait_finalized(client, signature)
    return str(signature)


async def wait_finalized(client: AsyncClient, signature: Signature, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (await client.get_signature_statuses([signature])).value[0]
        if status is not None and str(status.confirmation_status).endswith("Finalized"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{signature} not finalized in {timeout} s")


# -- publishing -------------------------------------------------------------------------------


async def test_roots_are_published_in_order_and_land_as_the_program_stores_them(
    sim: SimChainServer, client: AsyncClient, settings: Settings, engine: Engine
) -> None:
    """Five roots: each ring slot of the ChannelConfigV2 holds the newest seq with our root,
    dataset_hash and the slot we recorded; one transaction per root; results on the log."""
    roots = roots_for(sim, [1, 2, 3, 4, 5])
    store_roots(engine, roots)
    await settle_once(settings)

    config_address = sim.chain.channel_config(CHANNEL)
    data = await account(client, config_address)
    assert data is not None
    config = ChannelConfigV2.decode(data)
    with engine.connect() as conn:
        slots = dict(conn.execute(text("SELECT root_seq, slot FROM settlement_outbox")).all())
    assert config.latest_root_seq == 5
    assert list(config.roots) == [
        RootEntry(
            seq=seq,
            root=roots[seq - 1].tree.root,
            dataset_hash=roots[seq - 1].tree.dataset_hash,
            published_slot=slots[seq],
        )
        for seq in (4, 5, 2, 3)
    ]
    assert outbox(engine) == [(CHANNEL, seq, "published", 1, True) for seq in range(1, 6)]
    assert attempts(engine) == ["intent", "published"] * 5
    assert len(await transactions_touching(client, config_address)) == 5
    results = settlement_results(settings, 5)
    assert [(r["root_seq"], r["outcome"], r["attempts"]) for r in results] == [
        (seq, "PUBLISHED", 1) for seq in range(1, 6)
    ]
    assert [r["slot"] for r in results] == [slots[seq] for seq in range(1, 6)]
    assert metrics.LAST_PUBLISHED_SEQ.labels(CHANNEL)._value.get() == 5


async def test_ring_v0_root_is_published_into_the_channel_state_ring(
    sim: SimChainServer, client: AsyncClient, settings: Settings, engine: Engine
) -> None:
    """set_channel_merkle_root creates the ChannelState; slot epoch % 10 holds our root."""
    roots = roots_for(sim, [1, 2], channel=OTHER, format_name="ring-v0")
    store_roots(engine, roots)
    await settle_once(settings)
    address = Pubkey.from_string(roots[0].root["channel_config"])
    data = await account(client, address)
    assert data is not None
    state = ChannelState.decode(data)
    assert state.latest_epoch == 22
    assert [(s.epoch, s.root) for s in state.slots if s.epoch] == [
        (21, roots[0].tree.root),
        (22, roots[1].tree.root),
    ]
    assert outbox(engine) == [(OTHER, 1, "published", 1, True), (OTHER, 2, "published", 1, True)]


async def test_dry_run_records_the_message_and_sends_nothing(
    sim: SimChainServer,
    client: AsyncClient,
    settings_factory: SettingsFactory,
    settle_env: dict[str, str],
    engine: Engine,
) -> None:
    """AOP_AUTO_PUBLISH=false: the account is unchanged, no transaction exists, each attempt
    holds the publish message; switched on later, the same roots are published."""
    dry = settings_factory({**settle_env, "AOP_AUTO_PUBLISH": "false"})
    roots = roots_for(sim, [1, 2])
    store_roots(engine, roots)
    address = sim.chain.channel_config(CHANNEL)
    before = await account(client, address)

    await settle_once(dry)
    await asyncio.sleep(0.2)
    assert await account(client, address) == before
    assert await transactions_touching(client, address) == []
    assert outbox(engine) == [(CHANNEL, 1, "dry_run", 0, False), (CHANNEL, 2, "dry_run", 0, False)]
    with engine.connect() as conn:
        messages = conn.execute(
            text("SELECT message_b64 FROM settlement_attempts ORDER BY attempt_id")
        ).scalars()
        decoded = [from_bytes_versioned(base64.b64decode(m)) for m in messages]
    for root, message in zip(roots, decoded, strict=True):
        expected = publish_cumulative_root_instruction(
            program_id=sim.chain.program_id,
            mint=sim.chain.mint,
            payer=sim.chain.keys.publisher.pubkey(),
            channel=CHANNEL,
            root_seq=root.root["root_seq"],
            root=root.tree.root,
            dataset_hash=root.tree.dataset_hash,
        )
        assert bytes(message.instructions[0].data) == bytes(expected.data)
        assert message.account_keys[0] == sim.chain.keys.publisher.pubkey()
    assert [r["outcome"] for r in settlement_results(dry, 2)] == ["DRY_RUN", "DRY_RUN"]

    await settle_once(settings_factory(settle_env))
    assert [(r[1], r[2]) for r in outbox(engine)] == [(1, "published"), (2, "published")]


# -- what the chain already says --------------------------------------------------------------


async def test_root_already_on_chain_is_recorded_not_sent_twice(
    sim: SimChainServer, client: AsyncClient, settings: Settings, engine: Engine
) -> None:
    roots = roots_for(sim, [1, 2])
    await publish_directly(sim, client, 1, roots[0].tree.root, roots[0].tree.dataset_hash)
    store_roots(engine, roots)
    await settle_once(settings)
    assert attempts(engine, 1) == ["already_on_chain"]
    assert attempts(engine, 2) == ["intent", "published"]
    assert outbox(engine) == [
        (CHANNEL, 1, "published", 0, False),
        (CHANNEL, 2, "published", 1, True),
    ]
    assert len(await transactions_touching(client, sim.chain.channel_config(CHANNEL))) == 2
    assert [r["outcome"] for r in settlement_results(settings, 2)] == [
        "ALREADY_ON_CHAIN",
        "PUBLISHED",
    ]


@pytest.mark.parametrize("case", ["chain_ahead", "other_root", "chain_behind"])
async def test_sequence_mismatch_is_reported_and_stops_the_channel(
    sim: SimChainServer, client: AsyncClient, settings: Settings, engine: Engine, case: str
) -> None:
    """Chain ahead of us, a different root for our seq, or a gap: SEQUENCE_MISMATCH, nothing
    sent for this or any later root of the channel, until an operator releases it."""
    if case == "chain_ahead":
        sim.chain.setup_channel(CHANNEL, latest_root_seq=7)
        sim.advance(1)
        await asyncio.sleep(0.2)
        roots = roots_for(sim, [1, 2])
    elif case == "other_root":
        await publish_directly(sim, client, 1, bytes(range(32)), bytes(32))
        roots = roots_for(sim, [1, 2])
    else:
        roots = roots_for(sim, [3, 4])
    address = sim.chain.channel_config(CHANNEL)
    sent_before = await transactions_touching(client, address)
    store_roots(engine, roots)
    mismatches = metrics.ATTEMPTS.labels("sequence_mismatch")._value.get()

    await settle_once(settings)
    await settle_once(settings)
    first = roots[0].root["root_seq"]
    assert outbox(engine) == [
        (CHANNEL, first, "sequence_mismatch", 0, False),
        (CHANNEL, first + 1, "pending", 0, False),
    ]
    assert attempts(engine) == ["sequence_mismatch"]
    assert metrics.ATTEMPTS.labels("sequence_mismatch")._value.get() == mismatches + 1
    assert await transactions_touching(client, address) == sent_before
    result = settlement_results(settings, 1)[0]
    assert (result["root_seq"], result["outcome"]) == (first, "SEQUENCE_MISMATCH")
    assert result["detail"]

    store = await SettlementStore.open(settings)
    try:
        (standing,) = await store.standings()
        assert (standing.channel, standing.state, standing.in_target) == (CHANNEL, "stopped", True)
        assert (standing.stopped_seq, standing.stopped_status) == (first, "sequence_mismatch")
        assert standing.stopped_detail == result["detail"]
        assert (standing.next_seq, standing.next_status, standing.open) == (
            first,
            "sequence_mismatch",
            2,
        )
        assert (standing.published, standing.last_published_seq) == (0, None)
        assert await store.release(CHANNEL.upper()) == 1
        (released,) = await store.standings()
        assert (released.state, released.stopped_seq, released.next_status) == (
            "waiting",
            None,
            "pending",
        )
    finally:
        await store.close()
    assert outbox(engine)[0][2] == "pending"


async def test_one_settler_leads_per_schema_and_a_standby_takes_over(settings: Settings) -> None:
    first = await SettlementStore.open(settings)
    second = await SettlementStore.open(settings)
    try:
        assert await first.try_lead() is True
        assert await first.try_lead() is True
        assert await second.try_lead() is False
        await first.close()  # the server releases the lock when the session ends
        deadline = time.monotonic() + 10
        while not await second.try_lead():
            assert time.monotonic() < deadline, "the standby never got the lock"
            await asyncio.sleep(0.05)
    finally:
        await second.close()


# -- faults -----------------------------------------------------------------------------------


class DroppingRpc(SettlementRpc):
    """Forwards to the real RPC but silently loses every send of the first transaction it is
    given (a lossy path for that one); any other transaction (a re-signed one) goes through."""

    def __init__(self, inner: SolanaRpc) -> None:
        self.inner = inner
        self.commitment = inner.commitment
        self.lost: bytes | None = None
        self.dropped: list[bytes] = []

    async def account_data(self, address: Pubkey) -> bytes | None:
        return await self.inner.account_data(address)

    async def balance(self, address: Pubkey) -> int:
        return await self.inner.balance(address)

    async def latest_blockhash(self) -> Any:
        return await self.inner.latest_blockhash()

    async def block_height(self) -> int:
        return await self.inner.block_height()

    async def send(self, transaction: bytes) -> None:
        if self.lost is None:
            self.lost = transaction
        if transaction == self.lost:
            self.dropped.append(transaction)
            return
        await self.inner.send(transaction)

    async def signature_state(self, signature: Signature) -> Any:
        return await self.inner.signature_state(signature)


async def test_blockhash_expiry_resigns_only_after_the_old_signature_did_not_land(
    sim: SimChainServer, client: AsyncClient, settings: Settings, engine: Engine
) -> None:
    """Every send of the first transaction is lost until its blockhash expires: expired is
    recorded, a fresh blockhash is signed, and exactly one publish lands."""
    store_roots(engine, roots_for(sim, [1]))
    inner = SolanaRpc(settings.rpc_url, commitment=settings.commitment, timeout=5)
    lossy = DroppingRpc(inner)
    try:
        await settle_once(settings, rpc=lossy)
    finally:
        await inner.close()
    assert attempts(engine) == ["intent", "expired", "intent", "published"]
    assert lossy.dropped and set(lossy.dropped) == {lossy.dropped[0]}  # resent, then lost
    with engine.connect() as conn:
        first, second = conn.execute(
            text(
                "SELECT signature FROM settlement_attempts WHERE outcome = 'intent' "
                "ORDER BY attempt_id"
            )
        ).scalars()
    statuses = (
        await client.get_signature_statuses(
            [Signature.from_string(first), Signature.from_string(second)],
            search_transaction_history=True,
        )
    ).value
    assert statuses[0] is None
    assert statuses[1] is not None and statuses[1].err is None
    assert await transactions_touching(client, sim.chain.channel_config(CHANNEL)) == [second]


async def test_rpc_errors_are_retried_with_backoff(
    sim: SimChainServer, client: AsyncClient, settings: Settings, engine: Engine
) -> None:
    """40% of RPC calls fail (JSON-RPC -32005 or HTTP 503): every root is still published
    once, in order, and the failures are on record."""
    store_roots(engine, roots_for(sim, [1, 2, 3]))
    sim.faults.update(rpc_error_p=0.4, rpc_error_mode="mixed")
    try:
        await settle_once(settings)
    finally:
        sim.faults.clear()
    assert [row[2] for row in outbox(engine)] == ["published"] * 3
    assert "rpc_error" in attempts(engine)
    for seq in (1, 2, 3):
        steps = [o for o in attempts(engine, seq) if o != "rpc_error"]
        assert steps[-1] == "published"
        # a new transaction is signed only after the previous one expired unseen
        assert steps[:-1] == ["intent", "expired"] * steps.count("expired") + ["intent"]
    data = await account(client, sim.chain.channel_config(CHANNEL))
    assert data is not None and ChannelConfigV2.decode(data).latest_root_seq == 3
    assert len(await transactions_touching(client, sim.chain.channel_config(CHANNEL))) == 3


@pytest.mark.parametrize("sim_config", [SLOW_SIM])
@pytest.mark.parametrize("crash_at", ["after_send", "before_send"])
async def test_crash_between_send_and_record_does_not_publish_twice(
    sim: SimChainServer,
    client: AsyncClient,
    settings: Settings,
    engine: Engine,
    settle_env: dict[str, str],
    crash_at: str,
) -> None:
    """`aop settle` is SIGKILLed right after sending (or after recording the intent, before
    sending): the restart finds the signature landed (or, not landed and still valid, sends
    the SAME signed transaction after reading the account) and records it: one intent, one
    transaction, the recorded signature is the one that landed."""
    store_roots(engine, roots_for(sim, [1, 2]))
    env = {
        **os.environ,
        **settle_env,
        "AOP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "AOP_DATABASE_URL": settings.database_url,
        "AOP_DATABASE_SCHEMA": settings.database_schema,
        "AOP_TOPIC_PREFIX": settings.topic_prefix,
        "AOP_CHAIN_PARTITIONS": str(settings.chain_partitions),
        "AOP_METRICS_PORT": "0",
        "AOP_LOG_LEVEL": "WARNING",
    }
    crashing = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aop.cli",
        "settle",
        cwd=ROOT_DIR,
        env={**env, "AOP_SETTLEMENT_CRASH_AT": crash_at},
        stderr=asyncio.subprocess.PIPE,
    )
    assert await asyncio.wait_for(crashing.wait(), 60) == -signal.SIGKILL
    assert attempts(engine) == ["intent"]
    assert outbox(engine)[0][2] == "sent"

    restarted = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aop.cli", "settle", "--once", cwd=ROOT_DIR, env=env
    )
    assert await asyncio.wait_for(restarted.wait(), 60) == 0
    assert attempts(engine) == ["intent", "published", "intent", "published"]
    assert [row[2] for row in outbox(engine)] == ["published", "published"]
    address = sim.chain.channel_config(CHANNEL)
    landed = await transactions_touching(client, address)
    with engine.connect() as conn:
        recorded = list(
            conn.execute(
                text("SELECT signature FROM settlement_outbox ORDER BY root_seq")
            ).scalars()
        )
        intents = conn.execute(
            text(
                "SELECT signature FROM settlement_attempts WHERE outcome = 'intent' "
                "ORDER BY attempt_id"
            )
        ).scalars()
        assert recorded == list(intents)
    assert sorted(landed) == sorted(recorded)
    data = await account(client, address)
    assert data is not None and ChannelConfigV2.decode(data).latest_root_seq == 2


async def test_settle_refuses_a_group_readable_keypair_file(
    settings: Settings, settle_env: dict[str, str], keypair_file: Path
) -> None:
    keypair_file.chmod(0o640)
    env = {
        **os.environ,
        **settle_env,
        "AOP_DATABASE_URL": settings.database_url,
        "AOP_DATABASE_SCHEMA": settings.database_schema,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aop.cli",
        "settle",
        cwd=ROOT_DIR,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert stderr.decode().strip().splitlines()[-1] == (
        f"aop settle: AOP_PUBLISHER_KEYPAIR: file {keypair_file} must not be accessible to group "
        f"or others (mode 0o640); operator action: chmod 600 {keypair_file}"
    )


async def test_settle_stops_cleanly_on_sigterm_and_release_reports(
    settings: Settings, settle_env: dict[str, str], engine: Engine, sim: SimChainServer
) -> None:
    """The loop ends on SIGTERM with exit 0; `--release` puts stopped entries back."""
    store_roots(engine, roots_for(sim, [3]))  # a gap: sequence_mismatch
    env = {
        **os.environ,
        **settle_env,
        "AOP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "AOP_DATABASE_URL": settings.database_url,
        "AOP_DATABASE_SCHEMA": settings.database_schema,
        "AOP_TOPIC_PREFIX": settings.topic_prefix,
        "AOP_CHAIN_PARTITIONS": str(settings.chain_partitions),
        "AOP_METRICS_PORT": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aop.cli", "settle", cwd=ROOT_DIR, env=env
    )
    deadline = time.monotonic() + 30
    while attempts(engine) != ["sequence_mismatch"]:
        assert time.monotonic() < deadline, "settle did not record the mismatch"
        await asyncio.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    release = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aop.cli",
        "settle",
        "--release",
        CHANNEL,
        cwd=ROOT_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(release.communicate(), 60)
    assert release.returncode == 0
    assert stdout.decode() == f"released 1 entry of {CHANNEL}\n"
    assert outbox(engine) == [(CHANNEL, 3, "pending", 0, False)]


# -- a wallet claims with a proof from the database -------------------------------------------


async def token_balance(client: AsyncClient, owner: Pubkey, mint: Pubkey) -> int:
    ata = associated_token_address(owner=owner, mint=mint)
    value = (await client.get_token_account_balance(ata, "finalized")).value
    return int(value.amount)


async def test_wallet_claims_with_the_proof_sliced_from_the_database(
    sim: SimChainServer, client: AsyncClient, settings: Settings, engine: Engine
) -> None:
    """log -> projector -> settle -> claim: the proof comes from tree_levels via SQL; the
    claim pays exactly the total; a wrong proof is rejected with InvalidProof (6005)."""
    (root,) = roots_for(sim, [1])
    produce(settings, root.records())
    run_projector(
        settings,
        engine,
        lambda: outbox(engine) == [(CHANNEL, 1, "pending", 0, False)],
    )
    await settle_once(settings)
    assert outbox(engine)[0][2] == "published"

    claimer = sim.chain.keys.wallet(2)
    with engine.connect() as conn:
        claim = claim_for(
            conn,
            channel_config=root.root["channel_config"],
            root_seq=1,
            wallet=bytes(claimer.pubkey()),
        )
        other = claim_for(
            conn,
            channel_config=root.root["channel_config"],
            root_seq=1,
            wallet=bytes(sim.chain.keys.wallet(1).pubkey()),
        )
    assert claim is not None and other is not None
    assert claim.amount == 3_000_000
    data = await account(client, sim.chain.channel_config(CHANNEL))
    assert data is not None
    creator = ChannelConfigV2.decode(data).creator_wallet
    assert creator is not None

    def claim_tx(proof: list[bytes], blockhash: Any) -> VersionedTransaction:
        ix = claim_cumulative_instruction(
            program_id=sim.chain.program_id,
            mint=sim.chain.mint,
            claimer=claimer.pubkey(),
            channel=CHANNEL,
            root_seq=claim.root_seq,
            cumulative_total=claim.amount,
            proof=proof,
            creator_wallet=Pubkey(creator),
        )
        message = Message.new_with_blockhash([ix], claimer.pubkey(), blockhash)
        return VersionedTransaction.from_legacy(Transaction([claimer], message, blockhash))

    blockhash = (await client.get_latest_blockhash()).value.blockhash
    with pytest.raises(RPCException) as caught:
        await client.send_transaction(claim_tx(other.proof[:1] + claim.proof[1:], blockhash))
    error = caught.value.args[0]
    assert error.message.endswith("custom program error: 0x1775")
    assert "InstructionErrorCustom(6005)" in str(error.data.err)

    ata = associated_token_address(owner=claimer.pubkey(), mint=sim.chain.mint)
    before_info = (await client.get_account_info(ata, commitment="finalized")).value
    before = (
        0 if before_info is None else await token_balance(client, claimer.pubkey(), sim.chain.mint)
    )
    signature = (await client.send_transaction(claim_tx(claim.proof, blockhash))).value
    await wait_finalized(client, signature)
    assert await token_balance(client, claimer.pubkey(), sim.chain.mint) - before == 3_000_000


async def test_publisher_balance_is_exported_and_a_low_balance_warns(
    sim: SimChainServer,
    client: AsyncClient,
    settings_factory: SettingsFactory,
    settle_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One pass sets aop_settlement_publisher_lamports to the chain's balance of the key and
    the minimum gauge to the setting; a balance below it is logged as an operator action."""
    publisher = sim.chain.keys.publisher.pubkey()
    lamports = (await client.get_balance(publisher)).value
    assert lamports > 0
    settings = settings_factory(
        {**settle_env, "AOP_SETTLEMENT_MIN_BALANCE_LAMPORTS": str(lamports + 1)}
    )
    upgrade(settings)
    with caplog.at_level("WARNING", logger="aop.settlement.settler"):
        await settle_once(settings)
    assert metrics.PUBLISHER_LAMPORTS._value.get() == lamports
    assert metrics.PUBLISHER_MIN_LAMPORTS._value.get() == lamports + 1
    (low,) = [r for r in caplog.records if r.getMessage().startswith("publisher balance low")]
    assert (low.lamports, low.min_lamports, low.publisher) == (
        lamports,
        lamports + 1,
        str(publisher),
    )  # type: ignore[attr-defined]
