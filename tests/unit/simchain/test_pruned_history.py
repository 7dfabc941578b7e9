"""History past the ledger window answers as a pruned Agave node: exact codes and messages.

Agave's answers (anza-xyz/agave): getBlock and getBlockTime of a slot below the first
available block are -32001 `BlockCleanedUp` ("Block N cleaned up, does not exist on node.
First available block: M", rpc-client-api/src/custom_error.rs); getTransaction of a
signature it no longer holds is null and getSignatureStatuses has null for it
(rpc/src/rpc.rs); getSignaturesForAddress lists only slots >= the first available block,
answers [] for an unknown `before` and ignores an unknown `until`
(ledger/src/blockstore.rs, get_confirmed_signatures_for_address2); getFirstAvailableBlock
and minimumLedgerSlot give the lowest slot kept.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from solders.keypair import Keypair

from aop.simchain import SimChainServer, SimConfig
from aop.simchain.config import MAX_PROCESSING_AGE, MIN_RETAIN_SLOTS
from tests.unit.simchain.conftest import QUIET

WINDOW = 151
#: hand-driven chain: genesis 1000, finality 4 (QUIET).
ADVANCED = 300
TIP = 1000 + ADVANCED
FIRST = TIP - WINDOW + 1  # the window holds WINDOW slots ending at the tip


@pytest.fixture
def sim_config() -> SimConfig:
    return QUIET.replace(retain_slots=WINDOW)


async def call(sim: SimChainServer, method: str, *params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with httpx.AsyncClient() as http:
        return dict((await http.post(sim.http_url, json=body)).json())


async def test_pruned_history_answers_as_agave(sim: SimChainServer) -> None:
    """Two airdrops to one wallet, one landing in slot 1001 (pruned later) and one in the
    last slots (kept): each method answers as a node whose first available block is FIRST."""
    wallet = str(Keypair().pubkey())
    old = (await call(sim, "requestAirdrop", wallet, 1_000))["result"]
    sim.advance(ADVANCED - 10)
    new = (await call(sim, "requestAirdrop", wallet, 2_000))["result"]
    sim.advance(10)
    assert (sim.chain.tip, sim.chain.ledger.first_available) == (TIP, FIRST)
    cleaned = (
        f"Block {FIRST - 1} cleaned up, does not exist on node. First available block: {FIRST}"
    )
    for method in ("getBlock", "getBlockTime"):
        assert (await call(sim, method, FIRST - 1))["error"] == {"code": -32001, "message": cleaned}
        assert "result" in await call(sim, method, FIRST)
    assert (await call(sim, "getFirstAvailableBlock"))["result"] == FIRST
    assert (await call(sim, "minimumLedgerSlot"))["result"] == FIRST
    assert (await call(sim, "getTransaction", old))["result"] is None
    kept = (await call(sim, "getTransaction", new))["result"]
    assert kept["slot"] == 1000 + ADVANCED - 9
    statuses = (await call(sim, "getSignatureStatuses", [old, new]))["result"]["value"]
    assert statuses[0] is None and statuses[1]["slot"] == kept["slot"]

    async def listed(**config: str) -> list[str]:
        reply = await call(sim, "getSignaturesForAddress", wallet, config)
        return [entry["signature"] for entry in reply["result"]]

    assert await listed() == [new]
    assert await listed(until=old) == [new]  # pruned `until`: ignored
    assert await listed(before=old) == []  # pruned `before`: nothing
    assert await listed(before=new) == []  # nothing older is kept
    assert (await call(sim, "getTransactionCount"))["result"] == 2
    assert sim.status()["first_available"] == FIRST


def test_default_window_is_150_seconds_of_slots() -> None:
    """retained_slots: 150 s / slot_ms (400 ms when hand-driven), at least 151 and above the
    finality depth; an explicit window below either bound is refused with both values."""
    assert SimConfig(slot_ms=80).retained_slots == 150_000 // 80
    assert SimConfig(slot_ms=400).retained_slots == 375
    assert SimConfig(slot_ms=0).retained_slots == 375
    assert SimConfig(slot_ms=7).retained_slots == 21_429  # ceil(150000 / 7)
    assert SimConfig(slot_ms=2_000).retained_slots == MIN_RETAIN_SLOTS == MAX_PROCESSING_AGE + 1
    assert SimConfig(slot_ms=2_000, finality_depth=400).retained_slots == 401
    assert SimConfig(retain_slots=5_000).retained_slots == 5_000
    with pytest.raises(ValueError, match=r"retain_slots must be >= 151 .* \(got 150\)"):
        SimConfig(retain_slots=150)
    with pytest.raises(ValueError, match=r"> finality_depth 200 \(got 200\)"):
        SimConfig(retain_slots=200, finality_depth=200)
