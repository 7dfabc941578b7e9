"""Catching up without the websocket's logs: one getBlock per busy slot writes exactly what
one getTransaction per transaction writes, and the simulator served the calls planned."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aop.log.kafka import DLQ
from aop.runtime.settings import Settings
from aop.simchain.server import SimChainServer
from aop.streams.listener import Listener
from tests.integration.test_listener import (
    CHAIN_START,
    FAST,
    assert_exactly,
    emitted_ids,
    read_log,
    sim_config,
)
from tests.integration.test_listener_sink import read_committed

#: the setting under test (AOP_LISTENER_BLOCK_FETCH_MIN_TXS) in the getBlock run.
BLOCK_MIN_TXS = 4
#: a threshold no slot reaches: the getTransaction-only path.
NEVER = "1000000"


async def catch_up(listener: Listener, final: int) -> None:
    """Run `listener` until it has written every slot up to `final`, then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    for _ in range(600):
        if listener.checkpoint is not None and listener.checkpoint.last_slot >= final:
            break
        assert not task.done(), task
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert listener.checkpoint is not None and listener.checkpoint.last_slot == final


def program_txs_per_slot(sim: SimChainServer, final: int) -> Counter[int]:
    """How many program transactions each slot up to `final` holds (what the listener lists)."""
    records = sim.chain.ledger.signatures_for_address(
        str(sim.chain.program_id), max_slot=final, limit=1 << 30
    )
    return Counter(r.slot for r in records)


async def test_get_block_catch_up_writes_exactly_what_get_transaction_does(
    settings_factory: Callable[..., Settings], topic_prefix: str, tmp_path: Path
) -> None:
    """A hand-driven chain's backlog of 80 busy slots, read twice with the websocket cache off
    (size 0): getTransaction only, then getBlock for slots with >= 4 program transactions.
    Same SlotBatches (events, ranges, cursors), same dead letters, the simulator's record; and
    getBlock served exactly the busy slots, getTransaction exactly the others' transactions."""
    async with SimChainServer(sim_config(seed=11, slot_ms=0, rate=12.0)).serve() as sim:
        sim.advance(80 + sim.config.finality_depth)
        sim.chain.workload.enabled = False
        final = sim.chain.finalized_slot
        per_slot = program_txs_per_slot(sim, final)
        busy = {slot for slot, count in per_slot.items() if count >= BLOCK_MIN_TXS}
        quiet_txs = sum(count for slot, count in per_slot.items() if slot not in busy)
        assert len(busy) > 20 and quiet_txs > 20, per_slot  # both paths are exercised

        runs: dict[str, tuple[Settings, Counter[str]]] = {}
        for name, min_txs in (("tx", NEVER), ("block", str(BLOCK_MIN_TXS))):
            settings = settings_factory(
                {
                    **FAST,
                    "AOP_TOPIC_PREFIX": f"{topic_prefix}{name}.",
                    "AOP_AUDIT_DIR": str(tmp_path / name),
                    "AOP_LISTENER_WS_CACHE_SIZE": "0",
                    "AOP_LISTENER_BLOCK_FETCH_MIN_TXS": min_txs,
                    "AOP_LISTENER_MAX_RANGE_TXS": "150",  # several steps
                },
                rpc_url=sim.http_url,
                ws_url=sim.ws_url,
            )
            served = Counter(sim.rpc.served)
            await catch_up(Listener(settings), final)
            runs[name] = (settings, Counter(sim.rpc.served) - served)
        expected = emitted_ids(sim, up_to=final)

    (by_tx, tx_calls), (by_block, block_calls) = runs["tx"], runs["block"]
    assert (tx_calls["getTransaction"], tx_calls["getBlock"]) == (sum(per_slot.values()), 0)
    assert (block_calls["getTransaction"], block_calls["getBlock"]) == (quiet_txs, len(busy))

    tx_view = read_log(by_tx, first_slot=CHAIN_START)
    block_view = read_log(by_block, first_slot=CHAIN_START)
    assert len(expected) > 300
    assert_exactly(block_view, expected)
    assert block_view.ids == tx_view.ids
    assert block_view.batches == tx_view.batches  # ranges, cursors, events, their fields

    def dead_letters(settings: Settings) -> list[dict[str, Any]]:
        records = read_committed(settings, settings.topic(DLQ), 1)
        return [{k: v for k, v in r.items() if k != "at_ms"} for _, r in records]

    failed = dead_letters(by_block)
    assert any(d["reason"] == "failed_transaction" for d in failed)
    assert failed == dead_letters(by_tx)
