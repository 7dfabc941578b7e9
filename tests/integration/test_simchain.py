"""`aop simulate-chain` as a subprocess: the workload's record equals what the RPC reveals.

Only the simulator runs here (no Kafka or PostgreSQL): its emitted event ids, read with
`sim_emittedEventIds`, must be exactly the ids found by paging getSignaturesForAddress at
finalized and decoding each successful transaction's `Program data:` lines with `core`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solders.pubkey import Pubkey
from solders.signature import Signature

from aop.core.program_ids import DEFAULT_PROGRAM_ID
from aop.core.program_logs import extract_program_data
from aop.simchain import SimChainProcess, SimChainServer, SimConfig, spawn_simchain
from tests.support.threaded_simchain import ThreadedSimChain

FINALITY = 6


@pytest.fixture(scope="module")
def simchain_process() -> Iterator[SimChainProcess]:
    """A running `aop simulate-chain` with a busy workload and fast slots."""
    args = ["--slot-ms", "20", "--rate", "200", "--finality-depth", str(FINALITY)]
    args += ["--wallets", "60", "--channels", "5", "--seed", "5"]
    env = {"AOP_PROGRAM_ID": str(DEFAULT_PROGRAM_ID), "AOP_LOG_LEVEL": "WARNING"}
    with spawn_simchain(args, env=env) as process:
        yield process


async def chain_event_ids(http_url: str, program: Pubkey) -> list[str]:
    """Every program event id of successful finalized transactions, in chain order."""
    async with AsyncClient(http_url, timeout=30) as client:
        statuses = []
        before: Signature | None = None
        while True:
            page = (
                await client.get_signatures_for_address(program, before=before, limit=1000)
            ).value
            statuses.extend(page)
            if len(page) < 1000:
                break
            before = page[-1].signature
        ok = [s for s in reversed(statuses) if s.err is None]
        gate = asyncio.Semaphore(16)

        async def events_of(signature: Signature) -> list[str]:
            async with gate:
                tx = (
                    await client.get_transaction(signature, max_supported_transaction_version=0)
                ).value
            assert tx is not None and tx.transaction.meta.err is None
            logs = tx.transaction.meta.log_messages
            return [
                f"{signature}:{p.event_index}" for p in extract_program_data(logs, program).payloads
            ]

        per_tx = await asyncio.gather(*(events_of(s.signature) for s in ok))
    return [event_id for ids in per_tx for event_id in ids]


def recorded_ids(process: SimChainProcess) -> list[str]:
    ids: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = process.control("sim_emittedEventIds", {"offset": offset, "limit": 500})
        ids.extend(event["id"] for event in page["events"])
        offset = page["next"]
    return ids


def test_recorded_events_equal_what_rpc_reveals_at_finalized(
    simchain_process: SimChainProcess,
) -> None:
    """Same ids, same count, same order; truncated transactions included by visible event."""
    process = simchain_process
    process.control("sim_injectTruncated", {"count": 2})
    time.sleep(3.0)
    process.control("sim_pause")
    tip = process.control("sim_status")["tip"]
    deadline = time.monotonic() + 20
    while process.control("sim_status")["finalized"] < tip:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    recorded = recorded_ids(process)
    revealed = asyncio.run(chain_event_ids(process.http_url, DEFAULT_PROGRAM_ID))
    assert len(recorded) > 300
    assert len(set(recorded)) == len(recorded)
    assert revealed == recorded
    status = process.control("sim_status")
    assert status["truncated_transactions"] == 2
    assert status["counts"]["failed"] > 0
    process.control("sim_resume")


def test_kill_minus_nine_stops_the_endpoint() -> None:
    """A SIGKILLed simulator stops answering (clients must reconnect elsewhere)."""
    process = spawn_simchain(["--slot-ms", "50", "--rate", "0"])
    assert process.control("sim_status")["tip"] >= 1000
    process.kill()
    assert process.process.returncode == -9
    with pytest.raises(httpx.ConnectError):
        httpx.post(
            process.http_url, json={"jsonrpc": "2.0", "id": 1, "method": "getSlot"}, timeout=2
        )


def test_threaded_server_serves_synchronous_clients() -> None:
    """ThreadedSimChain: a background-thread server for synchronous tests; `call` reaches it."""
    config = SimConfig(slot_ms=0, rate=0, workload=False, finality_depth=2)
    with ThreadedSimChain(SimChainServer(config)) as sim:
        sim.call(lambda: sim.server.advance(5))
        reply = httpx.post(sim.http_url, json={"jsonrpc": "2.0", "id": 1, "method": "getSlot"})
        assert reply.json() == {"jsonrpc": "2.0", "result": 1003, "id": 1}
        assert sim.call(lambda: sim.server.chain.tip) == 1005
