"""A simulated Solana cluster for the pipeline: JSON-RPC + websocket pubsub on 127.0.0.1.

No validator can run here, so `simchain` produces slots itself, runs the attention-oracle
program's rules in Python (`simchain.program`), generates a seeded workload of staking,
claim and admin transactions (`simchain.workload`), and serves the standard Solana RPC and
pubsub shapes (`simchain.rpc`, `simchain.pubsub`) plus `sim_*` control methods
(`simchain.control`), with injectable faults (`simchain.faults`). It keeps the authoritative
record of every program event in a finalized slot, to compare with what the pipeline logged.

It runs one of two program versions (`SimConfig.program`, `AOP_SIM_PROGRAM`): `v0.2.2`
(per-channel cumulative roots and claims; the default) or `deployed` (the program on mainnet
today: `publish_global_root` and the global claims, with the reference's rules and error
codes; everything else fails with 101). One departure in `deployed`: the live binary routes no
staking instruction, but the simulator keeps its staking instructions routed there, because
the pipeline's stake-time fold needs ChannelStaked/ChannelUnstaked events as its input: they
are the simulated source of the base yield (`simchain.program`).

    async with SimChainServer(SimConfig(slot_ms=20)).serve() as sim:
        ...  # sim.http_url, sim.ws_url, sim.faults, sim.emitted_event_ids()
"""

from aop.simchain.chain import SimChain
from aop.simchain.config import SimConfig
from aop.simchain.errors import ChainRequestError, RpcError, SimChainError
from aop.simchain.faults import Faults
from aop.simchain.ledger import EmittedEvent
from aop.simchain.process import SimChainProcess, spawn_simchain
from aop.simchain.server import SimChainServer

__all__ = [
    "ChainRequestError",
    "EmittedEvent",
    "Faults",
    "RpcError",
    "SimChain",
    "SimChainError",
    "SimChainProcess",
    "SimChainServer",
    "SimConfig",
    "spawn_simchain",
]
