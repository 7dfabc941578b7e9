"""`Listener` against a simulated chain that keeps a short window of history, as a pruned
Agave node does: while its lag stays within the window it misses nothing; once it was away
longer than the window it stops with `HistoryPrunedError` and writes nothing past the gap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from aop.runtime.settings import Settings
from aop.simchain.config import MIN_RETAIN_SLOTS
from aop.simchain.server import SimChainServer
from aop.streams.listener import Listener
from aop.streams.listener.errors import HistoryPrunedError
from tests.integration.test_listener import (
    FAST,
    assert_exactly,
    emitted_ids,
    read_log,
    run_until_caught_up,
    sim_config,
)

WINDOW = MIN_RETAIN_SLOTS  # 151 slots: 3 s of 20 ms slots


async def test_listener_stays_exact_while_the_node_prunes_behind_it(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Six seconds of 20 ms slots (about 300) through a 151-slot window, the websocket cut
    midway and a third of the notifications lost (so logs are fetched over HTTP): every
    event the chain finalized is on the log once, though the chain pruned most of them."""
    async with SimChainServer(sim_config(seed=5, retain_slots=WINDOW)).serve() as sim:
        sim.faults.update(drop_notification_p=0.3)
        settings = settings_factory(
            {**FAST, "AOP_AUDIT_DIR": str(tmp_path)}, rpc_url=sim.http_url, ws_url=sim.ws_url
        )
        listener = Listener(settings)

        def drop() -> None:
            assert sim.drop_connections() == 1

        target, task, stop = await run_until_caught_up(listener, sim, busy_s=6.0, during=drop)
        stop.set()
        await task
        assert listener.checkpoint is not None
        expected = emitted_ids(sim, up_to=listener.checkpoint.last_slot)
        tip, first_available = sim.chain.tip, sim.chain.ledger.first_available
        pruned = [e for e in sim.chain.emitted_events() if e.slot < first_available]
    assert tip - first_available == WINDOW - 1 and first_available > target - WINDOW
    assert len(pruned) > 500  # most of what the listener wrote is gone from the node
    assert_exactly(read_log(settings, first_slot=0), expected)


async def _caught_up_listener(sim: SimChainServer, settings: Settings) -> int:
    """Run a listener on the hand-driven `sim` until it has written every finalized slot;
    returns its last slot."""
    listener = Listener(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    target = sim.chain.finalized_slot
    for _ in range(400):
        if listener.checkpoint is not None and listener.checkpoint.last_slot >= target:
            break
        assert not task.done(), task
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert listener.checkpoint is not None and listener.checkpoint.last_slot >= target
    return listener.checkpoint.last_slot


def _hand_driven() -> SimChainServer:
    """Slots only on `advance`; 20 events per slot."""
    return SimChainServer(sim_config(seed=6, slot_ms=0, rate=50.0, retain_slots=WINDOW))


async def test_listener_back_within_the_window_catches_up_exactly(
    settings_factory: Callable[..., Settings],
) -> None:
    """Stopped while the chain runs 111 slots (less than the 151-slot window, minus the
    finality depth): the next listener resumes from the log's checkpoint, which the node
    still holds, and the log ends up exact."""
    async with _hand_driven().serve() as sim:
        settings = settings_factory(FAST, rpc_url=sim.http_url, ws_url=sim.ws_url)
        sim.advance(30)
        last = await _caught_up_listener(sim, settings)
        sim.advance(WINDOW - 40)
        assert sim.chain.ledger.first_available <= last + 1
        last = await _caught_up_listener(sim, settings)
        expected = emitted_ids(sim, up_to=last)
    assert_exactly(read_log(settings, first_slot=0), expected)


async def test_listener_away_longer_than_the_window_stops_loudly(
    settings_factory: Callable[..., Settings],
) -> None:
    """Stopped while the chain runs 191 slots (more than the window): the next listener's
    `run` raises `HistoryPrunedError` naming the slot it resumes from and the node's first
    available block, and the log is exactly as the first listener left it."""
    async with _hand_driven().serve() as sim:
        settings = settings_factory(FAST, rpc_url=sim.http_url, ws_url=sim.ws_url)
        sim.advance(30)
        resume = await _caught_up_listener(sim, settings) + 1
        before = read_log(settings, first_slot=0)
        sim.advance(WINDOW + 40)
        first_available = sim.chain.tip - WINDOW + 1
        assert sim.chain.ledger.first_available == first_available > resume
        with pytest.raises(HistoryPrunedError) as raised:
            await asyncio.wait_for(Listener(settings).run(asyncio.Event()), 30)
    assert (raised.value.resume_slot, raised.value.first_available) == (resume, first_available)
    assert f"slots {resume}..{first_available - 1} were pruned" in str(raised.value)
    assert read_log(settings, first_slot=0).batches == before.batches


async def test_listener_first_start_from_slot_0_with_genesis_above_it_runs_on(
    settings_factory: Callable[..., Settings],
) -> None:
    """No checkpoint and start slot 0, genesis at the chain's first slot (1,000) with
    150-slot epochs: the first range runs past genesis instead of ending at slot 99 (the end
    of a pre-genesis "epoch"), so the next step does not find slot 100 pruned on a node whose
    ledger begins at 1,000, and the log is exact."""
    async with _hand_driven().serve() as sim:
        genesis = sim.chain.config.first_slot
        settings = settings_factory(
            {**FAST, "AOP_GENESIS_SLOT": str(genesis), "AOP_EPOCH_SLOTS": "150"},
            rpc_url=sim.http_url,
            ws_url=sim.ws_url,
        )
        sim.advance(30)
        assert sim.chain.ledger.first_available == genesis > 100
        last = await _caught_up_listener(sim, settings)
        expected = emitted_ids(sim, up_to=last)
    assert_exactly(read_log(settings, first_slot=0), expected)
