"""How a step fetches the logs the websocket did not deliver: `plan_fetches` (getBlock for a
slot missing many, getTransaction for the rest) and `Listener._logs_of` against a fake RPC
(positions, cache, the fallback for a signature its block lacks, failures)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from aop.runtime.errors import RpcUnavailableError
from aop.runtime.settings import load_settings
from aop.streams.listener import Listener
from aop.streams.listener.model import SignatureInfo, TxLogs
from aop.streams.listener.service import FetchPlan, plan_fetches


def info(slot: int, n: int, err: str | None = None) -> SignatureInfo:
    return SignatureInfo(f"sig-{slot}-{n}", slot, 1_700_000_000 + slot, err)


def logs_of(signature: str) -> tuple[str, ...]:
    return (f"Program log: {signature}",)


def test_plan_fetches_groups_by_slot_at_the_threshold() -> None:
    """Slots with >= block_min_txs missing go by getBlock, in first-seen slot order with
    their signatures in input order; the others' signatures stay singles, in input order."""
    missing = [info(10, 0), info(11, 0), info(10, 1), info(12, 0), info(10, 2), info(12, 1)]
    assert plan_fetches(missing, block_min_txs=3) == FetchPlan(
        blocks={10: [info(10, 0), info(10, 1), info(10, 2)]},
        singles=[info(11, 0), info(12, 0), info(12, 1)],
    )
    assert plan_fetches(missing, block_min_txs=2) == FetchPlan(
        blocks={10: [info(10, 0), info(10, 1), info(10, 2)], 12: [info(12, 0), info(12, 1)]},
        singles=[info(11, 0)],
    )
    assert plan_fetches(missing, block_min_txs=1).singles == []
    assert plan_fetches(missing, block_min_txs=4) == FetchPlan(blocks={}, singles=missing)
    assert plan_fetches([], block_min_txs=1) == FetchPlan(blocks={}, singles=[])


class FakeRpc:
    """`ListenerRpc.transaction` / `block` over a fixed chain; records the calls; can fail."""

    def __init__(
        self, chain: Sequence[SignatureInfo], *, lacking: frozenset[str] = frozenset()
    ) -> None:
        self.chain = list(chain)
        self.lacking = lacking
        self.failing_blocks: set[int] = set()
        self.calls: list[tuple[str, object]] = []

    async def transaction(self, wanted: SignatureInfo) -> TxLogs:
        self.calls.append(("getTransaction", wanted.signature))
        return TxLogs(
            wanted.signature,
            wanted.slot,
            wanted.block_time,
            wanted.err,
            logs_of(wanted.signature),
        )

    async def block(self, slot: int) -> dict[str, TxLogs]:
        self.calls.append(("getBlock", slot))
        if slot in self.failing_blocks:
            raise RpcUnavailableError(f"getBlock {slot} failed 3 times")
        return {
            i.signature: TxLogs(i.signature, slot, i.block_time, i.err, logs_of(i.signature))
            for i in self.chain
            if i.slot == slot and i.signature not in self.lacking
        }


@pytest.fixture
def listener(tmp_path: Path) -> Listener:
    settings = load_settings(
        {"AOP_AUDIT_DIR": str(tmp_path), "AOP_LISTENER_BLOCK_FETCH_MIN_TXS": "3"}
    )
    return Listener(settings)


#: block order: slot 10 has 4 program txs, slot 11 has 2, slot 12 has 3 (one failed).
CHAIN = [
    *(info(10, n) for n in range(4)),
    *(info(11, n) for n in range(2)),
    *(info(12, n, "InstructionError(0, Custom(1))" if n == 1 else None) for n in range(3)),
]


def listed(chain: Sequence[SignatureInfo]) -> list[SignatureInfo]:
    """As getSignaturesForAddress lists them: newest first."""
    return list(reversed(chain))


def expected(chain: Sequence[SignatureInfo]) -> list[TxLogs]:
    """Block order, each with its logs and its position in its slot."""
    positions: dict[int, int] = {}
    out = []
    for i in chain:
        position = positions.get(i.slot, 0)
        positions[i.slot] = position + 1
        out.append(TxLogs(i.signature, i.slot, i.block_time, i.err, logs_of(i.signature), position))
    return out


async def test_logs_of_uses_get_block_for_slots_missing_enough(listener: Listener) -> None:
    """Slot 10 (4 missing) by getBlock; 11 (2) by getTransaction; 12 has one in the cache,
    so its 2 missing go by getTransaction. Every fetched transaction lands in the cache."""
    rpc = FakeRpc(CHAIN)
    listener._rpc = rpc  # type: ignore[assignment]
    cached = CHAIN[6]
    listener._cache.put(TxLogs(cached.signature, 12, None, None, logs_of(cached.signature)))
    assert await listener._logs_of(listed(CHAIN)) == expected(CHAIN)
    assert sorted(rpc.calls, key=str) == sorted(
        [("getBlock", 10)]
        + [("getTransaction", i.signature) for i in CHAIN[4:] if i is not cached],
        key=str,
    )
    assert all(listener._cache.get(i.signature) is not None for i in CHAIN)


async def test_logs_of_is_the_same_by_get_transaction_only(tmp_path: Path) -> None:
    """A threshold above every slot's count gives the very same answer, one call per tx."""
    settings = load_settings(
        {"AOP_AUDIT_DIR": str(tmp_path), "AOP_LISTENER_BLOCK_FETCH_MIN_TXS": "1000"}
    )
    listener = Listener(settings)
    rpc = FakeRpc(CHAIN)
    listener._rpc = rpc  # type: ignore[assignment]
    assert await listener._logs_of(listed(CHAIN)) == expected(CHAIN)
    assert [method for method, _ in rpc.calls] == ["getTransaction"] * len(CHAIN)


async def test_a_signature_its_block_lacks_is_asked_by_get_transaction(
    listener: Listener,
) -> None:
    rpc = FakeRpc(CHAIN, lacking=frozenset({"sig-10-2"}))
    listener._rpc = rpc  # type: ignore[assignment]
    assert await listener._logs_of(listed(CHAIN[:4])) == expected(CHAIN[:4])
    assert rpc.calls == [("getBlock", 10), ("getTransaction", "sig-10-2")]


async def test_a_failed_get_block_fails_the_step_but_keeps_what_was_fetched(
    listener: Listener,
) -> None:
    """getBlock 12 fails: the step raises, yet slot 10's block and slot 11's transactions are
    cached, so the retry asks only for slot 12."""
    rpc = FakeRpc(CHAIN)
    rpc.failing_blocks.add(12)
    listener._rpc = rpc  # type: ignore[assignment]
    with pytest.raises(RpcUnavailableError, match="getBlock 12"):
        await listener._logs_of(listed(CHAIN))
    rpc.calls.clear()
    rpc.failing_blocks.clear()
    assert await listener._logs_of(listed(CHAIN)) == expected(CHAIN)
    assert rpc.calls == [("getBlock", 12)]


async def test_the_signature_list_gives_error_and_time_whichever_call_fetched_the_logs(
    listener: Listener,
) -> None:
    """getBlock's and getTransaction's answers bring logs only: the error text and the block
    time written are the signature list's, as for cached logs (the block time of the answer
    only where the list has none), so the record never depends on how logs were fetched."""
    chain = [
        SignatureInfo("sig-20-0", 20, None, None),
        *(info(20, n, "InstructionError(0, Custom(1))") for n in range(1, 3)),
        SignatureInfo("sig-21-0", 21, None, "InstructionError(1, Custom(2))"),
    ]

    class OtherWording(FakeRpc):
        """Answers with another error text and another block time than the list."""

        async def block(self, slot: int) -> dict[str, TxLogs]:
            return {
                s: TxLogs(s, slot, 99, "other text", tx.logs)
                for s, tx in (await super().block(slot)).items()
            }

        async def transaction(self, wanted: SignatureInfo) -> TxLogs:
            tx = await super().transaction(wanted)
            return TxLogs(tx.signature, tx.slot, 99, "other text", tx.logs)

    listener._rpc = OtherWording(chain)  # type: ignore[assignment]
    got = await listener._logs_of(listed(chain))
    assert [(t.signature, t.block_time, t.err, t.logs) for t in got] == [
        ("sig-20-0", 99, None, logs_of("sig-20-0")),
        ("sig-20-1", 1_700_000_020, "InstructionError(0, Custom(1))", logs_of("sig-20-1")),
        ("sig-20-2", 1_700_000_020, "InstructionError(0, Custom(1))", logs_of("sig-20-2")),
        ("sig-21-0", 99, "InstructionError(1, Custom(2))", logs_of("sig-21-0")),
    ]
    assert ("getBlock", 20) in listener._rpc.calls  # type: ignore[attr-defined]
