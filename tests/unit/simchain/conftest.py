"""Fixtures: a simulated chain served in-process, with slots advanced by hand by default."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from solana.rpc.async_api import AsyncClient
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import Transaction, VersionedTransaction

from aop.simchain import SimChainServer, SimConfig

#: a quiet, hand-driven chain: no timer, no workload, finality after 4 slots.
QUIET = SimConfig(
    seed=7,
    slot_ms=0,
    rate=0,
    workload=False,
    finality_depth=4,
    wallets=8,
    channels=("twitch:alpha", "youtube:beta"),
    claim_channels=("sim:claims",),
)


@pytest.fixture
def sim_config() -> SimConfig:
    return QUIET


@pytest.fixture
async def sim(sim_config: SimConfig) -> AsyncIterator[SimChainServer]:
    """A running server (HTTP + websocket on free ports)."""
    async with SimChainServer(sim_config).serve() as server:
        yield server


@pytest.fixture
async def client(sim: SimChainServer) -> AsyncIterator[AsyncClient]:
    """The real `solana` client pointed at the server."""
    async with AsyncClient(sim.http_url, timeout=10) as rpc:
        yield rpc


@pytest.fixture
def tx_factory(sim: SimChainServer) -> Callable[..., VersionedTransaction]:
    """Signs `instructions` (fee payer = signers[0]) on the tip's blockhash, or `blockhash`."""

    def make(
        instructions: list[Instruction], signers: list[Keypair], blockhash: Hash | None = None
    ) -> VersionedTransaction:
        recent = blockhash or sim.chain.keys.blockhash(sim.chain.tip)
        message = Message.new_with_blockhash(instructions, signers[0].pubkey(), recent)
        return VersionedTransaction.from_legacy(Transaction(signers, message, recent))

    return make


def rpc_error(exc: BaseException) -> Any:
    """The solders error object a `solana` client RPCException carries."""
    return exc.args[0]
